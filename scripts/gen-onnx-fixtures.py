#!/usr/bin/python3
"""gen-onnx-fixtures.py OUTDIR — whole-network fixtures for nn/graph.

Builds, with fixed seeds and random weights (no downloads), in eval mode:

  convrelu     a small residual network whose file has only Conv, Relu and
               Add (its BatchNorms are folded by the exporter): the
               harness's own check, which the runtime's first operators run,
  resnet18     torchvision's, BatchNorm running stats calibrated on random
               data and then perturbed, affine parameters random,
  resnet18_bn  the same weights exported with its BatchNormalization nodes
               kept (TrainingMode.PRESERVE, as other exporters and older
               files have them), so the runtime's own BatchNormalization, or
               its folding into Conv, meets non-trivial statistics; opset 13
               only,
  mobilenet_v2 torchvision's, BatchNorm randomised the same way,
  unet         a small U-Net: Conv/BatchNorm/ReLU blocks, MaxPool, a
               ConvTranspose2d (k 4, s 2, p 1) followed by a BatchNorm that
               PyTorch does not fold, bilinear (align_corners=False) and
               nearest upsampling, skip connections through torch.cat,

and exports each with torch.onnx.export (do_constant_folding) at opsets 9,
11 and 13 (13 with a dynamic batch dimension "N", the others static). Next to each NAME.onnx it
writes NAME.input.bin and NAME.output.bin (little-endian float32, row-major:
a fixed random input and PyTorch's output for it), for the dynamic exports
also NAME.batch2.input.bin/.output.bin (row 0 of the batch is the batch-1
input), and NAME.json (shapes, opset, the output's max |value|, the
operators in the file). fixtures.json, the list of models, is written last:
its presence means the folder is complete.

Opset 9 has no way to say align_corners=False for a bilinear Upsample: its
Upsample maps output x to input x/scale (ONNX Runtime's reading too), not
(x+0.5)/scale-0.5 as PyTorch does. PyTorch warns and exports it anyway. The
opset-9 U-Net's reference output is therefore computed by the same PyTorch
model with that one layer computed as the file specifies (asymmetric
linear); its NAME.json says so under "reference".

Everything runs on one thread with deterministic algorithms, so the files
are identical from run to run; each reference output is computed twice and
must match bit for bit. Prints one line per file written, nothing else.
Exit status 3: torch, torchvision or onnx is missing.
"""

import hashlib
import json
import os
import sys
import warnings

try:
    import numpy  # noqa: F401  (Tensor.numpy)
    import onnx
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
except ImportError as e:  # the Go test tells this apart from a failure
    print(f"gen-onnx-fixtures: {sys.executable} lacks a Python module: {e} "
          "(Debian: apt-get install python3-torch python3-torchvision python3-onnx; "
          "scripts/deps.sh does)", file=sys.stderr)
    sys.exit(3)

SEED = 20240601
OPSETS = (9, 11, 13)
DYNAMIC_OPSET = 13


def upsample_linear_asymmetric(x, scale):
    """ONNX Upsample (opset 7-9) mode=linear on the last two axes: output
    coordinate o reads input coordinate o/scale, clamped at the edge."""
    for axis in (2, 3):
        n = x.shape[axis]
        m = int(n * scale)
        src = torch.arange(m, dtype=torch.float64) / scale
        i0 = torch.clamp(torch.floor(src).long(), max=n - 1)
        i1 = torch.clamp(i0 + 1, max=n - 1)
        w = (src - i0.double()).to(x.dtype)
        shape = [1] * x.dim()
        shape[axis] = m
        w = w.reshape(shape)
        x = x.index_select(axis, i0) * (1 - w) + x.index_select(axis, i1) * w
    return x


def conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))


class ConvRelu(nn.Module):
    """A stem and three stages (stride 2, then a residual block), 16 → 64
    channels: ten convolutions, each followed by a BatchNorm that the
    exporter folds into it, Relu, and the residual Adds."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.down = nn.ModuleList([conv_bn(a, b, 2) for a, b in ((16, 16), (16, 32), (32, 64))])
        self.res = nn.ModuleList([nn.ModuleList([conv_bn(c, c), conv_bn(c, c)]) for c in (16, 32, 64)])

    def forward(self, x):
        x = F.relu(self.stem(x))
        for down, (a, b) in zip(self.down, self.res):
            x = F.relu(down(x))
            x = F.relu(b(F.relu(a(x))) + x)
        return x


def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A three-level U-Net, 3 → 4 channels at the input's resolution."""

    def __init__(self):
        super().__init__()
        self.enc1, self.enc2, self.enc3 = block(3, 16), block(16, 32), block(32, 64)
        self.pool = nn.MaxPool2d(2)
        self.bottom = block(64, 64)
        # ConvTranspose then BatchNorm: PyTorch folds Conv+BN on export,
        # never ConvTranspose+BN, so a BatchNormalization node remains.
        self.up3 = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)
        self.up3_bn = nn.BatchNorm2d(32)
        self.dec3 = block(32 + 64, 32)
        self.dec2 = block(32 + 32, 16)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec1 = block(16 + 16, 16)
        self.head = nn.Conv2d(16, 4, 1)
        self.onnx9_linear = False  # see upsample_linear_asymmetric

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        b = self.bottom(self.pool(e3))
        d3 = self.dec3(torch.cat([F.relu(self.up3_bn(self.up3(b))), e3], 1))
        if self.onnx9_linear:
            u2 = upsample_linear_asymmetric(d3, 2)
        else:
            u2 = F.interpolate(d3, scale_factor=2, mode="bilinear", align_corners=False)
        d2 = self.dec2(torch.cat([u2, e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)


def randomise_batchnorm(model, shape, gen):
    """Calibrate every BatchNorm's running stats on random batches (as
    training would: cumulative averages of batch statistics), then perturb
    them and draw random affine parameters, so that folding BatchNorm into
    the weights really changes them."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn((4,) + shape[1:], generator=gen))
        for bn in bns:
            c = bn.num_features
            bn.running_mean.add_(0.1 * torch.randn(c, generator=gen))
            bn.running_var.mul_(torch.empty(c).uniform_(0.75, 1.5, generator=gen))
            bn.weight.copy_(torch.empty(c).uniform_(0.6, 1.4, generator=gen))
            bn.bias.copy_(0.1 * torch.randn(c, generator=gen))
    model.eval()


def models():
    """(name, seed, constructor, input shape, opsets, training mode), in
    the order they are written. The seed draws the weights, BatchNorm's
    statistics and the inputs: resnet18_bn is resnet18 exported otherwise."""
    resnet18 = lambda: torchvision.models.resnet18(weights=None)  # noqa: E731
    mobilenet_v2 = lambda: torchvision.models.mobilenet_v2(weights=None)  # noqa: E731
    EVAL, PRESERVE = torch.onnx.TrainingMode.EVAL, torch.onnx.TrainingMode.PRESERVE
    return [
        ("convrelu", 0, ConvRelu, (1, 3, 64, 64), OPSETS, EVAL),
        ("resnet18", 1, resnet18, (1, 3, 224, 224), OPSETS, EVAL),
        ("resnet18_bn", 1, resnet18, (1, 3, 224, 224), (DYNAMIC_OPSET,), PRESERVE),
        ("mobilenet_v2", 2, mobilenet_v2, (1, 3, 224, 224), OPSETS, EVAL),
        ("unet", 3, UNet, (1, 3, 128, 128), OPSETS, EVAL),
    ]


def reference(model, x):
    with torch.no_grad():
        a = model(x)
        b = model(x)
    if not torch.equal(a, b):
        raise SystemExit("gen-onnx-fixtures: PyTorch's output is not reproducible")
    return a


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print(path)


def f32(t):
    return t.detach().numpy().astype("<f4").tobytes()


def export(model, x, opset, dynamic, training):
    import io
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, x, buf, opset_version=opset, do_constant_folding=True,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "N"}, "output": {0: "N"}} if dynamic else None,
            training=training,
        )
    b = buf.getvalue()
    mp = onnx.load_from_string(b)
    onnx.checker.check_model(mp)
    out_dim0 = mp.graph.output[0].type.tensor_type.shape.dim[0]
    if dynamic and out_dim0.dim_param != "N":
        raise SystemExit(f"gen-onnx-fixtures: the output's batch dimension is not dynamic at opset {opset}")
    ops = sorted({n.op_type for n in mp.graph.node})
    return b, ops


def main():
    if len(sys.argv) != 2:
        print("usage: gen-onnx-fixtures.py OUTDIR", file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    index = []
    for name, seed, ctor, shape, opsets, training in models():
        torch.manual_seed(SEED + seed)
        gen = torch.Generator().manual_seed(SEED + 1000 + seed)
        model = ctor()
        randomise_batchnorm(model, shape, gen)
        model.eval()
        x1 = torch.randn(shape, generator=gen)
        x2 = torch.cat([x1, torch.randn(shape, generator=gen)], 0)
        for opset in opsets:
            dynamic = opset == DYNAMIC_OPSET
            base = f"{name}-op{opset}"
            b, ops = export(model, x1, opset, dynamic, training)
            if training == torch.onnx.TrainingMode.PRESERVE and "BatchNormalization" not in ops:
                raise SystemExit(f"gen-onnx-fixtures: {name}: the export has no BatchNormalization left")
            note = "PyTorch"
            if isinstance(model, UNet) and opset < 11:
                model.onnx9_linear = True
                note = ("PyTorch, with the bilinear layer computed as opset-9 Upsample(linear) "
                        "specifies (asymmetric: input x = output x / scale), which is what the file says")
            y1 = reference(model, x1)
            y2 = reference(model, x2) if dynamic else None
            if isinstance(model, UNet):
                model.onnx9_linear = False
            meta = {
                "name": base,
                "model": name,
                "opset": opset,
                "file": base + ".onnx",
                "sha256": hashlib.sha256(b).hexdigest(),
                "dynamic_batch": dynamic,
                "batchnorm_folded_by_exporter": training == torch.onnx.TrainingMode.EVAL,
                "ops": ops,
                "reference": note,
                "input": {"name": "input", "file": base + ".input.bin", "shape": list(x1.shape)},
                "output": {"name": "output", "file": base + ".output.bin", "shape": list(y1.shape),
                           "max_abs": float(y1.abs().max())},
            }
            write(os.path.join(out, base + ".onnx"), b)
            write(os.path.join(out, base + ".input.bin"), f32(x1))
            write(os.path.join(out, base + ".output.bin"), f32(y1))
            if dynamic:
                meta["batch2"] = {
                    "input": {"file": base + ".batch2.input.bin", "shape": list(x2.shape)},
                    "output": {"file": base + ".batch2.output.bin", "shape": list(y2.shape),
                               "max_abs": float(y2.abs().max())},
                }
                write(os.path.join(out, base + ".batch2.input.bin"), f32(x2))
                write(os.path.join(out, base + ".batch2.output.bin"), f32(y2))
            p = os.path.join(out, base + ".json")
            write(p, (json.dumps(meta, indent=1) + "\n").encode())
            index.append(base)
    meta = {
        "generator": "scripts/gen-onnx-fixtures.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnx": onnx.__version__,
        "seed": SEED,
        "fixtures": index,
    }
    write(os.path.join(out, "fixtures.json"), (json.dumps(meta, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
