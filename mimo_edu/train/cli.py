"""`python -m mimo_edu train` and `python -m mimo_edu evaluate`.

    python -m mimo_edu train --preset nano --out runs/nano            # resumes if runs/nano has a checkpoint
    torchrun --standalone --nproc_per_node=2 -m mimo_edu train --preset nano --out runs/nano2
    python -m mimo_edu evaluate --checkpoint runs/nano --num 200 --json
    python -m mimo_edu export --checkpoint runs/nano --out data/mimo-nano
    python -m mimo_edu plan --preset paper --gpus 4 --gpu-memory-gb 80     # memory and time, estimated

Training reads MIMOSeg-synth's train split (or --data DIR) and evaluates on its
val split; `evaluate` defaults to the test split, whose seed training never sees.
"""

import argparse
import json
from dataclasses import replace

from mimo_edu.train.config import TrainConfig, get_preset


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of `train` with these arguments; `plan` estimates the same object."""
    given = {"max_steps": args.max_steps, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
             "eval_samples": args.eval_samples, "strategy": args.strategy}
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.no_progress:
        overrides["progress"] = False
    if args.from_scratch:
        overrides["from_scratch"] = True
    if args.task_mix:
        overrides["task_mix"] = tuple(args.task_mix)
    model = {"use_aligner": False} if args.no_aligner else {}
    if args.frozen_dtype is not None:
        model["frozen_dtype"] = args.frozen_dtype
    if args.checkpointing is not None:
        model["gradient_checkpointing"] = args.checkpointing
    if args.sam_chunk is not None:
        model["sam_chunk"] = args.sam_chunk
    if args.object_tokens is not None:
        model["object_tokens"] = args.object_tokens
    if model:
        overrides["model_overrides"] = {**get_preset(args.preset).model_overrides, **model}
    return get_preset(args.preset, **overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from mimo_edu.train.distributed import cleanup
    from mimo_edu.train.run import train_run

    trainer = train_run(train_config(args), args.out, args.data)
    if trainer.env.is_main:
        print(f"trained {trainer.step} steps in {trainer.elapsed:.0f} s; checkpoint and metrics.jsonl in {args.out}")
    cleanup()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mimo_edu.checkpoints import load_model
    from mimo_edu.data import MIMOSegDataset, MIMOSegSynth, split_seed
    from mimo_edu.eval.evaluate import evaluate
    from mimo_edu.utils import seed_everything

    seed_everything(0)
    model = load_model(args.checkpoint)
    if args.data:
        dataset = MIMOSegDataset(args.data)
    else:
        seed = split_seed("test") if args.seed is None else args.seed
        dataset = MIMOSegSynth(args.num, seed=seed, image_size=model.config.image_size)
    report = evaluate(model, dataset, progress=not args.json, use_prompts=not args.no_prompts)
    report["checkpoint"] = str(args.checkpoint)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['num_samples']} samples, checkpoint {args.checkpoint}")
    for group in ("per_task", "per_modality"):
        print(f"\n{group.replace('_', ' ')}: {'n':>5} {'acc':>6} {'F1':>6} {'Dice':>6} {'gIoU':>6} {'cIoU':>6} {'ground':>6}")
        for name, m in {**report[group], "overall": report["overall"]}.items():
            cells = [m[k] for k in ("answer_acc", "token_f1", "dice", "giou", "ciou", "grounding_acc")]
            print(f"  {name:<16}{m['n']:>5} " + " ".join("     -" if c is None else f"{c:6.3f}" for c in cells))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from mimo_edu.checkpoints import load_model
    from mimo_edu.train.snapshots import SNAPSHOT_DIR

    model = load_model(args.checkpoint)
    out = Path(args.out)
    model.save_pretrained(out)
    run = Path(args.checkpoint)
    if (run / "metrics.jsonl").is_file():
        shutil.copyfile(run / "metrics.jsonl", out / "metrics.jsonl")
    if (run / SNAPSHOT_DIR).is_dir():
        shutil.copytree(run / SNAPSHOT_DIR, out / SNAPSHOT_DIR, dirs_exist_ok=True)
    print(f"exported {run} to {out}: the model as a save_pretrained folder, with the run's metrics and snapshots")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from mimo_edu.errors import MimoError
    from mimo_edu.scaling import GPUS, plan_launch

    if args.gpus < 1 or args.gpu_memory_gb <= 0:
        raise MimoError(f"plan: --gpus {args.gpus} and --gpu-memory-gb {args.gpu_memory_gb} must be positive, "
                        "e.g. --gpus 4 --gpu-memory-gb 80.")
    gpu = replace(GPUS[args.gpu], memory_gib=args.gpu_memory_gb)
    plan = plan_launch(train_config(args), args.gpus, gpu, args.mfu)
    print(json.dumps(plan.to_dict(), indent=1) if args.json else plan.format())
    return 0
