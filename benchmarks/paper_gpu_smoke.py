"""A few bf16 LoRA training steps of the full-size `paper` model on one GPU, with random weights, held and
run with the paper launch's own switches: frozen weights in bf16 (trained ones fp32), gradient checkpointing
of the LLM, SAM's image encoder one image at a time (`paper_config()`'s frozen_dtype, gradient_checkpointing,
sam_chunk, which `python -m mimo_edu plan` reads too).

Measures what the 08_scaling calculator predicts: weight memory, peak memory of a training step and step time
at a per-GPU batch of 10. Random weights stand in for the checkpoints (no download); the nano tokenizer stands in
for Vicuna's (prompts are short either way, so sequence lengths are close). Writes one JSON report.

    python benchmarks/paper_gpu_smoke.py --batch 10 --steps 4 --json benchmarks/results/paper_gpu_smoke.json
    python benchmarks/paper_gpu_smoke.py --preset nano --device cpu --batch 2   # a dry run of the script
"""

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from mimo_edu.data import collate, generate_samples
from mimo_edu.model import MIMO
from mimo_edu.model.config import PRESETS, paper_config
from mimo_edu.model.tokenizer import load_tokenizer
from mimo_edu.train.config import get_preset

GIB = 2**30
SWITCHES = ("frozen_dtype", "gradient_checkpointing", "sam_chunk")


def build(preset: str, device: torch.device) -> MIMO:
    """The preset's sizes with the paper launch's switches, random weights built in bf16 on `device`;
    MIMO.hold_weights turns the trained ones into fp32 masters."""
    tokenizer = load_tokenizer()
    config = PRESETS[preset].config().with_overrides(lora_rank=8, **{k: getattr(paper_config(), k) for k in SWITCHES})
    if PRESETS[preset].weights != "checkpoints":  # as build_mimo: the vocabulary of the tokenizer it runs with
        config = replace(config, llm=replace(config.llm, vocab_size=len(tokenizer)))
    torch.set_default_dtype(torch.bfloat16)
    try:
        with device:
            model = MIMO(config, tokenizer)
        return model.to(device)  # buffers made by the legacy torch.Tensor(...) constructor (SAM's pixel mean) stay on the CPU
    finally:
        torch.set_default_dtype(torch.float32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_steps(model: MIMO, batch: dict, steps: int) -> dict:
    """`steps` optimiser steps as the Trainer takes them (bf16 autocast, clipping, AdamW at the paper's lr)."""
    train = get_preset("paper")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train.lr, betas=train.betas, weight_decay=train.weight_decay)
    device = model.device
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - start)
        losses.append(out.loss.item())
    return {
        "gradient_checkpointing": model.config.gradient_checkpointing,
        "peak_gib": torch.cuda.max_memory_allocated() / GIB if device.type == "cuda" else None,
        "step_s_median": statistics.median(times[1:] or times),  # the first step warms up kernels
        "step_s_all": times,
        "losses": losses,
        "sequence_length": int(out.logits.shape[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=10, help="samples per GPU (the paper's: 10)")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps; the first is not timed")
    parser.add_argument("--json", default=None, help="write the report here as well")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = build(args.preset, device)
    counts = model.parameter_counts()
    cuda = device.type == "cuda"
    report = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name(device) if cuda else str(device),
        "torch": torch.__version__,
        "build_s": time.perf_counter() - start,
        "weights_gib": torch.cuda.memory_allocated() / GIB if cuda else None,
        "params_total": sum(t for t, _ in counts.values()),
        "params_trainable": sum(tr for _, tr in counts.values()),
        "per_gpu_batch": args.batch,
        **{k: getattr(model.config, k) for k in SWITCHES},
        "runs": [],
    }
    batch = collate(generate_samples(args.batch, seed=0))
    report["runs"].append(train_steps(model, batch, args.steps))
    report["total_s"] = time.perf_counter() - start
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
