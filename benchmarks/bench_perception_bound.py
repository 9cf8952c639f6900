"""How many perception samples does even an ideal reader need? A yardstick for the nano perception target.

    python benchmarks/bench_perception_bound.py            # about 5 minutes on 2 cores
    python benchmarks/bench_perception_bound.py --json

Visual-prompt perception asks "What is this?" about a marked region. Here the region is read by hand,
not by a model: mean and spread of its colour, its centroid, its area, the modality and the prompt kind
(9 numbers, then the modality and the prompt kind one-hot: 20 in all). A small MLP (two hidden layers of 256, Adam at 1e-3, batch 8) learns the term from
these features. Trained in one pass over N fresh samples, as the nano trainer sees them, its test
accuracy is a yardstick for what the whole model can reach from N perception samples: the model must
also learn to see, to locate the prompt and to spell the term. The last row trains 200 passes (batch 256)
over the largest N and shows how far the features themselves separate the terms.

A nano run of S steps x batch 8 sees 2 x S perception samples (a quarter of its samples).
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from mimo_edu.data import MIMOSegSynth, split_seed
from mimo_edu.data.schema import MODALITIES
from mimo_edu.model.prompts import rasterize_prompt

KINDS = ("point", "box", "scribble")
GRID = 64  # the prompt's region is rasterised on a 64 x 64 grid over the 128 px image


def region_features(num: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """(num, 20) hand-made features of the marked region and the (modality, term) each sample names."""
    data = MIMOSegSynth(num, seed=seed, tasks=("perception",))
    rows, labels = [], []
    for sample in data:
        prompt = sample.visual_prompts[0]
        region = rasterize_prompt(prompt, GRID, sample.image.shape[0], point_radius=8).numpy()  # (G, G) bool
        small = sample.image.reshape(GRID, sample.image.shape[0] // GRID, GRID, -1, 3).mean((1, 3)) / 255
        pixels = small[region]  # (n, 3)
        ys, xs = np.nonzero(region)
        rows.append(np.concatenate([
            pixels.mean(0), pixels.std(0), [xs.mean() / GRID, ys.mean() / GRID, region.mean()],
            np.eye(len(MODALITIES))[MODALITIES.index(sample.modality)], np.eye(len(KINDS))[KINDS.index(prompt.kind)],
        ]))
        labels.append(f"{sample.modality}:{sample.terms[0]}")
    return np.asarray(rows, np.float32), labels


def train_reader(x: torch.Tensor, y: torch.Tensor, classes: int, passes: int = 1, batch: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, classes),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(passes):
        order = torch.randperm(len(x)) if passes > 1 else torch.arange(len(x))
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1200, 2400, 4800, 9600, 19200])
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    t0 = time.perf_counter()
    x_train, y_train = region_features(max(args.sizes), split_seed("train"))
    x_test, y_test = region_features(args.test, split_seed("test"))
    names = sorted(set(y_train) | set(y_test))
    index = {name: i for i, name in enumerate(names)}
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xs, xt = (torch.from_numpy((x - mean) / std) for x in (x_train, x_test))
    ys, yt = (torch.tensor([index[v] for v in y]) for y in (y_train, y_test))

    def accuracy(net: torch.nn.Module) -> float:
        with torch.no_grad():
            return round(float((net(xt).argmax(1) == yt).float().mean()), 3)

    rows = [{"samples": n, "passes": 1, "test_acc": accuracy(train_reader(xs[:n], ys[:n], len(names)))}
            for n in args.sizes]
    n = max(args.sizes)
    many = train_reader(xs, ys, len(names), passes=200, batch=256)
    rows.append({"samples": n, "passes": 200, "test_acc": accuracy(many)})
    report = {"classes": len(names), "test_samples": args.test, "rows": rows,
              "seconds": round(time.perf_counter() - t0)}
    if args.json:
        print(json.dumps(report))
        return
    print(f"ideal region reader, {len(names)} (modality, term) classes, {args.test} test samples")
    print(f"{'perception samples':>20} {'passes':>7} {'test acc':>9}")
    for row in rows:
        print(f"{row['samples']:>20} {row['passes']:>7} {row['test_acc']:>9.3f}")
    print(f"({report['seconds']} s)")


if __name__ == "__main__":
    main()
