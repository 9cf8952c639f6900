"""Is "which side / how big is the marked region" in the region tokens, and can the shipped model learn to say it?

    python benchmarks/bench_region_decisions.py --out benchmarks/results/region_decisions.json

Prompt-assisted QA asks four kinds of question about the marked structure: is it abnormal, which structure
holds it, is it large or small, is it on the left or the right. The shipped model answers the last two at
about chance. This script separates the two possible causes on the shipped `data/mimo-nano`:

1. **Probe** (is the side in the tokens?): a logistic regression on the `<region>` token and SAM's sparse
   prompt tokens the LLM receives, fitted on half of the test-split prompt-QA samples whose prompt centre
   lies clear of the midline (more than 12 % of the width from it), scored on the other half.
2. **Continue training** (can the LoRA-adapted LLM learn to read it?): the shipped model trained on, for
   `--steps` more steps of 8 samples at lr `--lr`, either side questions alone (`side`) or all prompt-QA
   questions as they come (`all`); accuracy per question kind on 300 test-split prompt-QA samples every
   third of the way. Training samples come from the train split's stream beyond what the shipped run read.
"""

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mimo_edu.checkpoints import load_model
from mimo_edu.data import MIMOSegSynth, collate, split_seed
from mimo_edu.data.templates import ABNORMAL, HOST, MARKED_SIDE, MARKED_SIZE
from mimo_edu.eval.metrics import exact_match
from mimo_edu.train.config import get_preset
from mimo_edu.train.trainer import Trainer
from mimo_edu.utils import seed_everything

KINDS = {p.question: kind for kind, group in (("abnormal", ABNORMAL), ("host", HOST), ("size", MARKED_SIZE),
                                              ("side", MARKED_SIDE)) for p in group}
FRESH = 200_000  # first train-split index read here: the shipped run read 1300 x 8 = 10,400 samples


def kind_of(question: str) -> str:
    """The prompt-QA question kind of `question` ({m} is the only field a prompt-QA question holds)."""
    for template, kind in KINDS.items():
        if question == template or ("{m}" in template and question.startswith(template.split("{m}")[0])):
            return kind
    raise ValueError(f"not a prompt-QA question: {question!r}")


def prompt_centre_x(sample) -> float:
    """x of the prompt's centre as a fraction of the width: the box's centre or the positive points' mean."""
    p = sample.visual_prompts[0]
    if p.kind == "box":
        x = (p.box[0] + p.box[2]) / 2
    else:
        pts = np.asarray(p.points)
        keep = np.asarray(p.labels) == 1 if p.kind == "point" and p.labels is not None else slice(None)
        x = pts[keep, 0].mean()
    return float(x) / sample.image.shape[1]


def held_out_accuracy(X: torch.Tensor, y: torch.Tensor) -> float:
    """A logistic regression (L2 1e-3, LBFGS) on standardised features: fit on the first half of (X (N, D),
    y (N,) in {0, 1}), accuracy on the second half."""
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    half = len(y) // 2
    w = torch.zeros(X.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(X[:half] @ w + b, y[:half])
        loss = loss + 1e-3 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)  # LBFGS runs the closure with gradients on, also under no_grad
    return float(((X[half:] @ w + b > 0).float() == y[half:]).float().mean())


@torch.no_grad()
def probe(model, num: int) -> dict:
    """Held-out accuracy of a logistic regression telling left from right on the LLM's prompt tokens."""
    test = MIMOSegSynth(num, seed=split_seed("test"), tasks=("prompt_qa",))
    feats, labels = [], []
    for i in range(num):
        s = test[i]
        x = prompt_centre_x(s)
        if abs(x - 0.5) < 0.12:
            continue
        batch = collate([s])
        images, prompts = model.to_frame(batch["images"], batch["visual_prompts"])
        feats.append(model.visual_tokens(images, prompts).region_tokens.flatten().float())  # (6 * H,)
        labels.append(float(x > 0.5))
    X, y = torch.stack(feats), torch.tensor(labels)
    half = len(y) // 2
    H = model.config.llm.hidden_size
    out = {"n_fit": half, "n_scored": len(y) - half, "right_share": round(float(y.mean()), 3)}
    for name, cols in (("region_and_sparse", slice(None)), ("region_token", slice(0, H)), ("sparse_tokens", slice(H, None))):
        out[name] = round(held_out_accuracy(X[:, cols], y), 3)
    return out


class Questions(Dataset):
    """Train-split prompt-QA samples from index FRESH on, all of them or one kind only."""

    def __init__(self, num: int, kind: str) -> None:
        stream = MIMOSegSynth(FRESH + 40 * num, seed=split_seed("train"), tasks=("prompt_qa",))
        self.items, i = [], FRESH
        while len(self.items) < num:
            s = stream[i]
            i += 1
            if kind == "all" or kind_of(s.question) == kind:
                self.items.append(s)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


@torch.no_grad()
def score(model, test: list) -> dict:
    model.eval()
    hits = defaultdict(list)
    for s in test:
        ok = exact_match(model.generate(s.image, s.question, s.visual_prompts).text, s.answer)
        hits[kind_of(s.question)].append(ok)
        hits["all"].append(ok)
    model.train()
    return {k: {"n": len(v), "acc": round(float(np.mean(v)), 3)} for k, v in sorted(hits.items())}


def continue_training(checkpoint: str, kind: str, steps: int, lr: float) -> list[dict]:
    seed_everything(0)
    model = load_model(checkpoint)
    stream = MIMOSegSynth(300, seed=split_seed("test"), tasks=("prompt_qa",))
    test = [stream[i] for i in range(300)]
    curve = [{"step": 0, **score(model, test)}]
    cfg = get_preset("nano", max_steps=steps, lr=lr, warmup_steps=10, same_image=1, eval_samples=0, ckpt_every=0,
                     progress=False)
    trainer = Trainer(model, Questions(steps * cfg.batch_size, kind), cfg, None, collate, None)
    for _ in range(3):
        t0 = time.perf_counter()
        trainer.train(steps // 3)
        curve.append({"step": trainer.step, "train_s": round(time.perf_counter() - t0, 1), **score(model, test)})
        print(kind, curve[-1], flush=True)
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/mimo-nano")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/region_decisions.json"))
    ap.add_argument("--probe-num", type=int, default=800, help="test-split prompt-QA samples for the probe")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kinds", nargs="+", default=["side", "all"], choices=["side", "all"])
    args = ap.parse_args()
    seed_everything(0)
    report = {"checkpoint": args.checkpoint, "probe": probe(load_model(args.checkpoint).eval(), args.probe_num)}
    print("probe", report["probe"], flush=True)
    report["continue"] = {k: continue_training(args.checkpoint, k, args.steps, args.lr) for k in args.kinds}
    report["settings"] = {"steps": args.steps, "lr": args.lr, "batch": 8, "threads": torch.get_num_threads()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
