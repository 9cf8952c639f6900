"""How fast can nano's SAM learn masks when each prompt is ideal? No LLM: one learned embedding per term.

    python benchmarks/bench_seg_probe.py --steps 300               # prompt_to_mask_token off and on
    python benchmarks/bench_seg_probe.py --steps 1000 --only-on

The segmenter is nano's (random init, `prompt_dim` 128). Every (modality, term) pair gets its own
learned prompt, standing in for a perfect [SEG] feature; training uses nano's mask losses (0.5 BCE +
2.0 Dice), AdamW at 1e-3 with warmup and cosine decay, batch 8 of MIMOSeg-synth's train split. Dice is
the mean over the masks of the first --test samples of the test split. This bounds what the whole model
can reach in the same number of steps, and shows what `prompt_to_mask_token` changes.
"""

import argparse
import json
import math
import time
from dataclasses import replace

import numpy as np
import torch

from mimo_edu.data import MIMOSegSynth, collate, split_seed
from mimo_edu.eval.metrics import dice
from mimo_edu.model.config import nano_config
from mimo_edu.model.grounding import mask_bce_loss, mask_dice_loss
from mimo_edu.model.segmenter import Segmenter


def probe(steps: int, to_mask_token: bool, num_test: int, batch: int = 8, lr: float = 1e-3) -> dict:
    torch.manual_seed(0)
    config = nano_config()
    seg = Segmenter(replace(config.segmenter, prompt_to_mask_token=to_mask_token))
    terms: dict[tuple[str, str], int] = {}
    prompts = torch.nn.Embedding(256, config.segmenter.prompt_dim)
    params = [*seg.parameters(), *prompts.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    train = MIMOSegSynth(steps * batch, seed=split_seed("train"))

    def prompt_ids(samples) -> torch.Tensor:
        return torch.tensor([terms.setdefault((s.modality, t), len(terms)) for s in samples for t in s.terms])

    t0 = time.perf_counter()
    for step in range(steps):
        samples = [train[i] for i in range(step * batch, (step + 1) * batch)]
        b = collate(samples)
        ids = prompt_ids(samples)
        image_index = torch.arange(batch).repeat_interleave(torch.tensor([len(s.terms) for s in samples]))
        for group in opt.param_groups:
            warm = min(1.0, (step + 1) / 30)
            group["lr"] = lr * warm * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))
        pred = seg.decode(seg.image_embeddings(b["images"]), prompts(ids)[:, None], 128, image_index)
        target = torch.cat(b["masks"]).float()
        loss = (0.5 * mask_bce_loss(pred, target) + 2.0 * mask_dice_loss(pred, target)) / len(pred)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    train_s = time.perf_counter() - t0

    per_task: dict[str, list[float]] = {}
    test = MIMOSegSynth(num_test, seed=split_seed("test"))
    with torch.no_grad():
        for i in range(num_test):
            s = test[i]
            ids = torch.tensor([terms.get((s.modality, t), 0) for t in s.terms])
            pred = seg.decode(seg.image_embeddings(collate([s])["images"]), prompts(ids)[:, None], 128)
            per_task.setdefault(s.task, []).extend(dice(p.numpy() > 0, m) for p, m in zip(pred, s.masks, strict=True))
    every = [d for v in per_task.values() for d in v]
    return {
        "prompt_to_mask_token": to_mask_token,
        "steps": steps,
        "train_s": round(train_s, 1),
        "dice": round(float(np.mean(every)), 3),
        "per_task": {k: round(float(np.mean(v)), 3) for k, v in sorted(per_task.items())},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--test", type=int, default=200, help="test samples")
    ap.add_argument("--only-on", action="store_true", help="only with prompt_to_mask_token on")
    args = ap.parse_args()
    for on in (True,) if args.only_on else (False, True):
        print(json.dumps(probe(args.steps, on, args.test)), flush=True)


if __name__ == "__main__":
    main()
