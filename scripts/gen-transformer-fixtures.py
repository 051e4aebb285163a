#!/usr/bin/python3
"""gen-transformer-fixtures.py OUTDIR — transformer fixtures for nn/graph.

No pretrained transformer can be downloaded here, and the `transformers`
package is not installed: both models are written in plain torch with the
structure of Hugging Face's, fixed-seed random weights (N(0, 0.02) as HF
initialises them, LayerNorm affines perturbed so that their folding is
tested), in eval mode:

  bert  a MiniLM-L6-shaped BertModel: word/position/token-type embeddings,
        LayerNorm (eps 1e-12), 6 layers of self-attention (12 heads of 32,
        hidden 384) with HF's additive mask ((1 - mask) · finfo.min
        broadcast to [B, 1, 1, S]), GELU (erf form), FFN 1536. Inputs
        input_ids, attention_mask, token_type_ids (INT64, dynamic batch and
        sequence); output last_hidden_state [B, S, 384]. Exported at opset
        14 (torch writes LayerNorm as ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add
        below 17) and 17 (LayerNormalization).
  gpt2  a GPT-2-small-shaped GPT2LMHeadModel: learned positions from the
        past length on, pre-LN blocks, the fused c_attn Conv1D (addmm)
        split into q, k, v, the causal mask as HF's precomputed bias buffer
        (tril of ones, sliced, torch.where with finfo.min), gelu_new (tanh
        form), tied lm_head. Inputs input_ids, attention_mask (over past and
        new tokens) and past_key_values.{i}.key/value [B, 12, T, 64];
        outputs logits and present.{i}.key/value; dynamic batch, sequence
        and past length. One export per opset (14, 17) serves both the
        prefill (a past of length 0) and the decoding steps, which keeps the
        folder at ~1.4 GB instead of twice that.

References, computed by the same torch modules:

  bert   hidden states for two rows of 16 tokens (the second padded after
         11), and the mean-pooled (over the mask), L2-normalised embedding
         of each row;
  gpt2   the logits of a 16-token prompt (computed without a cache), the
         logits of one decoding step fed the prompt's cache, and 32 greedy
         tokens from the prompt (each step fed the previous cache).

Files, little-endian and row-major: NAME.onnx; NAME.<tensor>.bin (float32,
or int64 for ids and masks); NAME.json says what each file is (shape,
type, max |value|) and lists the file's operators. fixtures.json, the list,
is written last: its presence means the folder is complete. Everything
runs on one thread with deterministic algorithms. Prints one line per file
written, nothing else. Exit status 3: torch or onnx is missing.
"""

import hashlib
import io
import json
import math
import os
import sys
import warnings

try:
    import numpy  # noqa: F401  (Tensor.numpy)
    import onnx
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the Go test tells this apart from a failure
    print(f"gen-transformer-fixtures: {sys.executable} lacks a Python module: {e} "
          "(Debian: apt-get install python3-torch python3-onnx; scripts/deps.sh does)", file=sys.stderr)
    sys.exit(3)

SEED = 20240717
OPSETS = (14, 17)


def init_weights(model, std=0.02):
    """HF's _init_weights: N(0, std) for Linear/Conv1D/Embedding weights,
    biases N(0, std) too (HF: zero); LayerNorm weight 1 + N(0, 0.1), bias
    N(0, std) (HF: 1 and 0), so that the affine parts are not identities."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
                m.bias.copy_(std * torch.randn_like(m.bias))
            elif isinstance(m, (nn.Linear, nn.Embedding, Conv1D)):
                m.weight.normal_(0.0, std)
                if getattr(m, "bias", None) is not None:
                    m.bias.copy_(std * torch.randn_like(m.bias))


# ---------------------------------------------------------------- BERT


class BertConfig:
    vocab_size = 30522
    hidden = 384
    layers = 6
    heads = 12
    intermediate = 1536
    max_positions = 512
    type_vocab = 2
    eps = 1e-12


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(c.max_positions, c.hidden)
        self.token_type_embeddings = nn.Embedding(c.type_vocab, c.hidden)
        self.LayerNorm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.register_buffer("position_ids", torch.arange(c.max_positions).expand((1, -1)))

    def forward(self, input_ids, token_type_ids):
        seq = input_ids.size(1)
        position_ids = self.position_ids[:, :seq]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads = c.heads
        self.head_size = c.hidden // c.heads
        self.query = nn.Linear(c.hidden, c.hidden)
        self.key = nn.Linear(c.hidden, c.hidden)
        self.value = nn.Linear(c.hidden, c.hidden)

    def split(self, x):
        x = x.view(x.size()[:-1] + (self.heads, self.head_size))
        return x.permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q = self.split(self.query(x))
        k = self.split(self.key(x))
        v = self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2))
        scores = scores / math.sqrt(self.head_size)
        scores = scores + mask
        probs = F.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v)
        ctx = ctx.permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.heads * self.head_size,))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertSelfAttention(c)
        self.attention_output = nn.Linear(c.hidden, c.hidden)
        self.attention_LayerNorm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.intermediate = nn.Linear(c.hidden, c.intermediate)
        self.output = nn.Linear(c.intermediate, c.hidden)
        self.output_LayerNorm = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, x, mask):
        a = self.attention_LayerNorm(self.attention_output(self.attention(x, mask)) + x)
        h = F.gelu(self.intermediate(a))
        return self.output_LayerNorm(self.output(h) + a)


class Bert(nn.Module):
    def __init__(self, c=BertConfig):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.layers)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        ext = attention_mask[:, None, None, :].to(torch.float32)
        ext = (1.0 - ext) * torch.finfo(torch.float32).min
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.layer:
            x = layer(x, ext)
        return x


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    s = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(s, p=2, dim=1)


# ---------------------------------------------------------------- GPT-2


class GPT2Config:
    vocab_size = 50257
    positions = 1024
    hidden = 768
    layers = 12
    heads = 12
    eps = 1e-5


class Conv1D(nn.Module):
    """HF's Conv1D: a linear layer with the weight stored [in, out], run as
    addmm on the flattened rows (exported as Gemm between Reshapes)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        n = c.positions
        self.register_buffer("bias", torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n), persistent=False)
        self.register_buffer("masked_bias", torch.tensor(-1e4), persistent=False)
        self.heads = c.heads
        self.head_dim = c.hidden // c.heads
        self.split_size = c.hidden
        self.c_attn = Conv1D(3 * c.hidden, c.hidden)
        self.c_proj = Conv1D(c.hidden, c.hidden)

    def _attn(self, query, key, value, attention_mask):
        w = torch.matmul(query, key.transpose(-1, -2))
        w = w / torch.full([], value.size(-1) ** 0.5, dtype=w.dtype, device=w.device)
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length: key_length, :key_length].to(torch.bool)
        mask_value = torch.finfo(w.dtype).min
        mask_value = torch.full([], mask_value, dtype=w.dtype, device=w.device)
        w = torch.where(causal_mask, w, mask_value)
        if attention_mask is not None:
            w = w + attention_mask
        w = F.softmax(w, dim=-1)
        return torch.matmul(w, value)

    def _split_heads(self, x):
        x = x.view(x.size()[:-1] + (self.heads, self.head_dim))
        return x.permute(0, 2, 1, 3)

    def _merge_heads(self, x):
        x = x.permute(0, 2, 1, 3).contiguous()
        return x.view(x.size()[:-2] + (self.heads * self.head_dim,))

    def forward(self, x, layer_past, attention_mask):
        query, key, value = self.c_attn(x).split(self.split_size, dim=2)
        query, key, value = self._split_heads(query), self._split_heads(key), self._split_heads(value)
        if layer_past is not None:
            past_key, past_value = layer_past
            key = torch.cat((past_key, key), dim=-2)
            value = torch.cat((past_value, value), dim=-2)
        present = (key, value)
        a = self._merge_heads(self._attn(query, key, value, attention_mask))
        return self.c_proj(a), present


class GPT2MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = Conv1D(4 * c.hidden, c.hidden)
        self.c_proj = Conv1D(c.hidden, 4 * c.hidden)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.attn = GPT2Attention(c)
        self.ln_2 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.mlp = GPT2MLP(c)

    def forward(self, x, layer_past, attention_mask):
        a, present = self.attn(self.ln_1(x), layer_past, attention_mask)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT2(nn.Module):
    """GPT2LMHeadModel's forward with use_cache: (logits, presents)."""

    def __init__(self, c=GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.hidden)
        self.wpe = nn.Embedding(c.positions, c.hidden)
        self.h = nn.ModuleList([GPT2Block(c) for _ in range(c.layers)])
        self.ln_f = nn.LayerNorm(c.hidden, eps=c.eps)
        self.lm_head = nn.Linear(c.hidden, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(self, input_ids, attention_mask, past):
        b, s = input_ids.size()
        past_length = past[0][0].size(-2)
        position_ids = torch.arange(past_length, s + past_length, dtype=torch.long).unsqueeze(0)
        m = attention_mask.view(b, -1)[:, None, None, :].to(torch.float32)
        m = (1.0 - m) * torch.finfo(torch.float32).min
        x = self.wte(input_ids) + self.wpe(position_ids)
        presents = []
        for block, layer_past in zip(self.h, past):
            x, present = block(x, layer_past, m)
            presents.append(present)
        x = self.ln_f(x)
        return self.lm_head(x), presents


class GPT2Flat(nn.Module):
    """The exported signature: past and presents as flat lists of tensors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, *flat):
        past = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]
        logits, presents = self.model(input_ids, attention_mask, past)
        out = [logits]
        for k, v in presents:
            out += [k, v]
        return tuple(out)


def empty_past(c, batch):
    return [(torch.zeros(batch, c.heads, 0, c.hidden // c.heads), torch.zeros(batch, c.heads, 0, c.hidden // c.heads))
            for _ in range(c.layers)]


# ---------------------------------------------------------------- files


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print(path)


def tensor_file(out, base, key, t):
    """Writes t as NAME.key.bin and returns its description."""
    t = t.detach().contiguous()
    if t.dtype == torch.int64:
        dt, b = "INT64", t.numpy().astype("<i8").tobytes()
    else:
        dt, b = "FLOAT", t.to(torch.float32).numpy().astype("<f4").tobytes()
    f = f"{base}.{key}.bin"
    write(os.path.join(out, f), b)
    d = {"file": f, "dtype": dt, "shape": list(t.shape)}
    if dt == "FLOAT":
        d["max_abs"] = float(t.abs().max()) if t.numel() else 0.0
    return d


def export(model, args, opset, input_names, output_names, dynamic_axes):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, buf, opset_version=opset, do_constant_folding=True,
                          input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes)
    b = buf.getvalue()
    mp = onnx.load_from_string(b)
    onnx.checker.check_model(mp)
    return b, sorted({n.op_type for n in mp.graph.node})


def same(a, b, what):
    if not all(torch.equal(x, y) for x, y in zip(a, b)):
        raise SystemExit(f"gen-transformer-fixtures: {what}: torch's output is not reproducible")


def bert_fixtures(out):
    torch.manual_seed(SEED)
    model = Bert()
    init_weights(model)
    model.eval()
    g = torch.Generator().manual_seed(SEED + 1)
    S, valid = 16, 11
    ids = torch.randint(1000, BertConfig.vocab_size, (2, S), generator=g)
    ids[:, 0] = 101  # [CLS]
    ids[0, S - 1] = 102  # [SEP]
    ids[1, valid - 1] = 102
    ids[1, valid:] = 0  # [PAD]
    mask = torch.ones(2, S, dtype=torch.long)
    mask[1, valid:] = 0
    types = torch.zeros(2, S, dtype=torch.long)
    types[:, S // 2:] = 1
    types[1, valid:] = 0
    with torch.no_grad():
        h = model(ids, mask, types)
        same([h], [model(ids, mask, types)], "bert")
        pooled = mean_pool(h, mask)
    names = []
    dyn = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
           "token_type_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"}}
    for opset in OPSETS:
        base = f"bert-op{opset}"
        b, ops = export(model, (ids, mask, types), opset, ["input_ids", "attention_mask", "token_type_ids"],
                        ["last_hidden_state"], dyn)
        write(os.path.join(out, base + ".onnx"), b)
        meta = {
            "name": base, "model": "bert", "opset": opset, "file": base + ".onnx",
            "sha256": hashlib.sha256(b).hexdigest(), "ops": ops,
            "config": {k: getattr(BertConfig, k) for k in ("vocab_size", "hidden", "layers", "heads", "intermediate")},
            "tensors": {
                "input_ids": tensor_file(out, base, "input_ids", ids),
                "attention_mask": tensor_file(out, base, "attention_mask", mask),
                "token_type_ids": tensor_file(out, base, "token_type_ids", types),
                "last_hidden_state": tensor_file(out, base, "last_hidden_state", h),
                "pooled": tensor_file(out, base, "pooled", pooled),
            },
        }
        write(os.path.join(out, base + ".json"), (json.dumps(meta, indent=1) + "\n").encode())
        names.append(base)
    return names


def gpt2_fixtures(out):
    c = GPT2Config
    torch.manual_seed(SEED + 2)
    model = GPT2()
    init_weights(model)
    # GPT-2 scales the residual projections by 1/sqrt(2·layers).
    with torch.no_grad():
        for blk in model.h:
            blk.attn.c_proj.weight.mul_(1 / math.sqrt(2 * c.layers))
            blk.mlp.c_proj.weight.mul_(1 / math.sqrt(2 * c.layers))
    model.eval()
    flat = GPT2Flat(model).eval()
    g = torch.Generator().manual_seed(SEED + 3)
    P, STEPS = 16, 32
    prompt = torch.randint(0, c.vocab_size, (1, P), generator=g)
    with torch.no_grad():
        logits, presents = model(prompt, torch.ones(1, P, dtype=torch.long), empty_past(c, 1))
        logits2, _ = model(prompt, torch.ones(1, P, dtype=torch.long), empty_past(c, 1))
        same([logits], [logits2], "gpt2")
        # One decoding step with the prompt's cache.
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        step_logits, _ = model(nxt, torch.ones(1, P + 1, dtype=torch.long), presents)
        # Greedy generation, each step fed the previous cache; the smallest
        # gap between the best and second-best logit says how robust the
        # ids are to float32 rounding.
        ids, past, cur, gaps = [], presents, logits[:, -1], []
        for i in range(STEPS):
            top = cur.topk(2, dim=-1).values[0]
            gaps.append(float(top[0] - top[1]))
            t = cur.argmax(-1, keepdim=True)
            ids.append(int(t))
            if i == STEPS - 1:
                break
            n = P + len(ids)
            lg, past = model(t, torch.ones(1, n, dtype=torch.long), past)
            cur = lg[:, -1]
        generated = torch.tensor([ids], dtype=torch.long)
    input_names = ["input_ids", "attention_mask"]
    output_names = ["logits"]
    dyn = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "past_sequence+sequence"},
           "logits": {0: "batch", 1: "sequence"}}
    for i in range(c.layers):
        for kv in ("key", "value"):
            input_names.append(f"past_key_values.{i}.{kv}")
            output_names.append(f"present.{i}.{kv}")
            dyn[f"past_key_values.{i}.{kv}"] = {0: "batch", 2: "past_sequence"}
            dyn[f"present.{i}.{kv}"] = {0: "batch", 2: "past_sequence+sequence"}
    # Traced with a non-empty past (so no shape is specialised to 0).
    ex_past = [t for kv in presents for t in (kv[0][:, :, :3], kv[1][:, :, :3])]
    ex_args = (prompt[:, :4], torch.ones(1, 7, dtype=torch.long), *ex_past)
    names = []
    for opset in OPSETS:
        base = f"gpt2-op{opset}"
        b, ops = export(flat, ex_args, opset, input_names, output_names, dyn)
        write(os.path.join(out, base + ".onnx"), b)
        meta = {
            "name": base, "model": "gpt2", "opset": opset, "file": base + ".onnx",
            "sha256": hashlib.sha256(b).hexdigest(), "ops": ops,
            "config": {k: getattr(c, k) for k in ("vocab_size", "hidden", "layers", "heads")},
            "min_greedy_gap": min(gaps),
            "tensors": {
                "prompt": tensor_file(out, base, "prompt", prompt),
                "prompt_logits": tensor_file(out, base, "prompt_logits", logits),
                "next_id": tensor_file(out, base, "next_id", nxt),
                "step_logits": tensor_file(out, base, "step_logits", step_logits),
                "generated": tensor_file(out, base, "generated", generated),
            },
        }
        write(os.path.join(out, base + ".json"), (json.dumps(meta, indent=1) + "\n").encode())
        names.append(base)
    return names


def main():
    if len(sys.argv) != 2:
        print("usage: gen-transformer-fixtures.py OUTDIR", file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    only = os.environ.get("AIAAS_TRANSFORMER_ONLY", "")
    index = []
    if only in ("", "bert"):
        index += bert_fixtures(out)
    if only in ("", "gpt2"):
        index += gpt2_fixtures(out)
    meta = {
        "generator": "scripts/gen-transformer-fixtures.py",
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "seed": SEED,
        "fixtures": index,
    }
    write(os.path.join(out, "fixtures.json"), (json.dumps(meta, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
