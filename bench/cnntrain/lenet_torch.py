"""The reference MNIST CNN (examples/mnist/cnn.json) in PyTorch, for
bench/cnntrain: same layers, initialisation family (Glorot uniform, zero
biases, as Keras and aiaas), Adam 1e-3 with Keras' epsilon, batch size,
epochs and data order policy (a fresh shuffle every epoch).

    python3 lenet_torch.py MNIST_DIR --threads 1 --batch 64 --epochs 1

Prints one JSON line per epoch ({"epoch", "seconds", "loss", "accuracy"})
and a last one with the test accuracy. Timing covers the training loop of
each epoch only (data already in tensors), as aiaas' EpochMetrics.seconds.
"""
import argparse, gzip, json, os, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit("no %s in %s" % (stem, d))


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3)
        self.c2 = nn.Conv2d(32, 64, 3)
        self.d1 = nn.Linear(64 * 5 * 5, 128)
        self.d2 = nn.Linear(128, 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.dropout(F.relu(self.d1(x)), 0.5, self.training)
        return self.d2(x)  # logits; cross_entropy applies the softmax


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x = torch.from_numpy(idx(find(a.mnist, "train-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(idx(find(a.mnist, "train-labels-idx1-ubyte")).astype(np.int64))
    tx = torch.from_numpy(idx(find(a.mnist, "t10k-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
    ty = torch.from_numpy(idx(find(a.mnist, "t10k-labels-idx1-ubyte")).astype(np.int64))
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    n = x.shape[0]
    for epoch in range(1, a.epochs + 1):
        model.train()
        perm = torch.randperm(n)
        start = time.perf_counter()
        loss_sum, hits = 0.0, 0
        for lo in range(0, n, a.batch):
            idxs = perm[lo:lo + a.batch]
            xb, yb = x[idxs], y[idxs]
            opt.zero_grad()
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idxs)
            hits += (out.argmax(1) == yb).sum().item()
        secs = time.perf_counter() - start
        print(json.dumps({"epoch": epoch, "seconds": secs, "loss": loss_sum / n, "accuracy": hits / n}), flush=True)
    model.eval()
    with torch.no_grad():
        acc = (model(tx).argmax(1) == ty).float().mean().item()
    print(json.dumps({"test_accuracy": acc, "threads": a.threads, "batch": a.batch, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
