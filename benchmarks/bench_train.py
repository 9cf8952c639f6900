"""Training throughput of the nano MIMO with 1 and 2 processes, and the 10-minute target run.

    python benchmarks/bench_train.py                 # samples/s, 1 process vs torchrun x2 (gloo), same run
    python benchmarks/bench_train.py --full          # also: default `train --preset nano`, timed, then
                                                     # `evaluate` on the unseen test split vs the targets

Throughput counts whole optimiser steps (data generation, forward, backward,
all-reduce, AdamW) after a few warm-up steps; the CPU's cores are shared out
between the processes (2 threads for 1 process, 1 thread each for 2).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {  # (task, metric): minimum, from the issue
    ("seg", "dice"): 0.80,
    ("perception", "answer_acc"): 0.90,
    ("qa_seg", "answer_acc"): 0.85,
    ("qa_seg", "dice"): 0.75,
    ("prompt_qa", "answer_acc"): 0.85,
}


def worker(steps: int, warmup: int, batch_size: int) -> None:
    """Train the nano model for warmup + steps steps; rank 0 prints {"samples_per_s": ...}."""
    from mimo_edu.data import MIMOSegSynth, collate, split_seed
    from mimo_edu.model import build_mimo
    from mimo_edu.train.config import get_preset
    from mimo_edu.train.distributed import cleanup
    from mimo_edu.train.trainer import Trainer
    from mimo_edu.utils import seed_everything

    cfg = get_preset("nano", max_steps=warmup + steps, batch_size=batch_size, progress=False)
    seed_everything(cfg.seed)
    model = build_mimo(cfg.model_preset)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    data = MIMOSegSynth(cfg.max_steps * cfg.samples_per_step * world, seed=split_seed("train"))
    trainer = Trainer(model, data, cfg, None, collate)
    trainer.train(steps=warmup)
    t0 = time.perf_counter()
    trainer.train(steps=steps)
    seconds = time.perf_counter() - t0
    if trainer.env.is_main:
        print(json.dumps({"processes": world, "samples_per_s": steps * cfg.samples_per_step * world / seconds}))
    cleanup()


def run_worker(processes: int, args: argparse.Namespace) -> dict:
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes)), "HF_HUB_OFFLINE": "1"}
    worker_args = [__file__, "--worker", "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--batch-size", str(args.batch_size)]
    if processes == 1:
        cmd = [sys.executable, *worker_args]
    else:
        cmd = [str(Path(sys.executable).with_name("torchrun")), "--standalone", f"--nproc_per_node={processes}",
               *worker_args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def full_run(out: Path) -> None:
    """Default nano training from nothing, timed, then the test-split evaluation against the targets."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mimo_edu", "train", "--preset", "nano", "--out", str(out), "--no-progress"],
                   env=env, check=True)
    minutes = (time.perf_counter() - t0) / 60
    report = json.loads(subprocess.run(
        [sys.executable, "-m", "mimo_edu", "evaluate", "--checkpoint", str(out), "--num", "400", "--json"],
        env=env, check=True, capture_output=True, text=True).stdout)
    print(f"\ntrain --preset nano: {minutes:.1f} min from nothing to checkpoint (target <= 10)")
    print(f"{'task':<12}{'metric':<12}{'value':>8}{'target':>8}")
    for (task, metric), target in TARGETS.items():
        value = report["per_task"].get(task, {}).get(metric)
        shown = "-" if value is None else f"{value:.3f}"
        verdict = "ok" if value is not None and value >= target else "MISS"
        print(f"{task:<12}{metric:<12}{shown:>8}{target:>8.2f}  {verdict}")
    print(json.dumps(report["per_task"], indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=8, help="per process")
    parser.add_argument("--full", action="store_true", help="also time the default nano run and evaluate it")
    parser.add_argument("--out", type=Path, help="output folder of the --full run (default: a temp folder)")
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.warmup, args.batch_size)
        return
    results = [run_worker(n, args) for n in (1, 2)]
    for r in results:
        print(f"{r['processes']} process(es): {r['samples_per_s']:.1f} training samples/s "
              f"(batch {args.batch_size} per process, {args.steps} timed steps)")
    print(f"2 processes / 1 process: {results[1]['samples_per_s'] / results[0]['samples_per_s']:.2f}x")
    if args.full:
        full_run(args.out or Path(tempfile.mkdtemp(prefix="nano-bench-")))


if __name__ == "__main__":
    main()
