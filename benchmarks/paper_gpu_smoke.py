"""A few bf16 LoRA training steps of the full-size `paper` preset on one GPU, with random weights.

Measures what the 08_scaling calculator predicts: weight memory, peak memory per training step
and step time at a per-GPU batch of 10, with and without gradient checkpointing of the LLM.
Random weights stand in for the checkpoints (no download); the nano tokenizer stands in for
Vicuna's (prompts are short either way, so sequence lengths are close). Needs a CUDA GPU.

    python benchmarks/paper_gpu_smoke.py --batch 10 --steps 4 --json out.json
    python benchmarks/paper_gpu_smoke.py --preset nano --device cpu --batch 2   # a dry run of the script
"""

import argparse
import json
import statistics
import time

import torch

from mimo_edu.data import collate, generate_samples
from mimo_edu.model import MIMO
from mimo_edu.model.config import PRESETS
from mimo_edu.model.tokenizer import load_tokenizer

GIB = 2**30


def build(preset: str, device: torch.device) -> MIMO:
    """MIMO with random weights: frozen parts in bf16, trained parts as fp32 masters."""
    torch.set_default_dtype(torch.bfloat16)
    with device:
        model = MIMO(PRESETS[preset]().with_overrides(lora_rank=8), load_tokenizer())
    torch.set_default_dtype(torch.float32)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    return model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_steps(model: MIMO, batch: dict, steps: int, checkpointing: bool) -> dict:
    if checkpointing:
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.llm.enable_input_require_grads()
    else:
        model.llm.gradient_checkpointing_disable()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0)
    device = model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - start)
        losses.append(out.loss.item())
    del optimizer
    return {
        "gradient_checkpointing": checkpointing,
        "peak_gib": torch.cuda.max_memory_allocated() / GIB if device.type == "cuda" else None,
        "step_s_median": statistics.median(times[1:]),  # the first step warms up kernels
        "step_s_all": times,
        "losses": losses,
        "sequence_length": int(out.logits.shape[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", default=None, help="write the results here as well")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = build(args.preset, device)
    counts = model.parameter_counts()
    cuda = device.type == "cuda"
    report = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name(0) if cuda else str(device),
        "torch": torch.__version__,
        "build_s": time.perf_counter() - start,
        "weights_gib": torch.cuda.memory_allocated() / GIB if cuda else None,
        "params_total": sum(t for t, _ in counts.values()),
        "params_trainable": sum(tr for _, tr in counts.values()),
        "per_gpu_batch": args.batch,
        "runs": [],
    }
    batch = collate(generate_samples(args.batch, seed=0))
    for checkpointing in (False, True):
        report["runs"].append(train_steps(model, batch, args.steps, checkpointing))
        print(json.dumps(report["runs"][-1]), flush=True)
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
