"""`python -m mimo_edu train` and `python -m mimo_edu evaluate`.

    python -m mimo_edu train --preset nano --out runs/nano            # resumes if runs/nano has a checkpoint
    torchrun --standalone --nproc_per_node=2 -m mimo_edu train --preset nano --out runs/nano2
    python -m mimo_edu evaluate --checkpoint runs/nano --num 200 --json
    python -m mimo_edu export --checkpoint runs/nano --out data/mimo-nano

Training reads MIMOSeg-synth's train split (or --data DIR) and evaluates on its
val split; `evaluate` defaults to the test split, whose seed training never sees.
"""

import argparse
import json

from mimo_edu.train.config import PRESETS, get_preset


def cmd_train(args: argparse.Namespace) -> int:
    from mimo_edu.train.distributed import cleanup
    from mimo_edu.train.run import train_run

    given = {"max_steps": args.max_steps, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
             "eval_samples": args.eval_samples}
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.no_progress:
        overrides["progress"] = False
    if args.no_aligner:
        overrides["model_overrides"] = {"use_aligner": False}
    if args.from_scratch:
        overrides["from_scratch"] = True
    trainer = train_run(get_preset(args.preset, **overrides), args.out, args.data)
    if trainer.env.is_main:
        print(f"trained {trainer.step} steps in {trainer.elapsed:.0f} s; checkpoint and metrics.jsonl in {args.out}")
    cleanup()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mimo_edu.data import MIMOSegDataset, MIMOSegSynth, split_seed
    from mimo_edu.eval.evaluate import evaluate
    from mimo_edu.train.checkpoint import load_model
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

    from mimo_edu.train.checkpoint import load_model
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


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train MIMO (resumes from the latest checkpoint in --out)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="nano")
    p.add_argument("--out", required=True, help="folder for checkpoints and metrics.jsonl")
    p.add_argument("--data", help="a MIMOSeg-format folder (default: MIMOSeg-synth's train split)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--seed", type=int, help="seeds the model's init and the data order")
    p.add_argument("--batch-size", type=int, help="per process and micro-step")
    p.add_argument("--lr", type=float)
    p.add_argument("--eval-samples", type=int, help="validation samples per evaluation (0: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")
    p.add_argument("--no-aligner", action="store_true", help="ablation: build MIMO without the Multi-modal Input Aligner")
    p.add_argument("--from-scratch", action="store_true",
                   help="ablation (nano): every part random and trained, instead of the pretrained foundations")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("evaluate", help="score a checkpoint per task and per modality")
    p.add_argument("--checkpoint", required=True, help="a train --out folder, a step-* folder or a save_pretrained folder")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="a MIMOSeg-format folder")
    source.add_argument("--seed", type=int, help="MIMOSeg-synth seed (default: the test split's)")
    p.add_argument("--num", type=int, default=200, help="MIMOSeg-synth samples to generate")
    p.add_argument("--no-prompts", action="store_true", help="ablation: answer without the visual prompts")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("export", help="write a training run's latest model as a save_pretrained folder")
    p.add_argument("--checkpoint", required=True, help="a train --out folder or one of its step-* folders")
    p.add_argument("--out", required=True, help="the folder to write (config.json, model.safetensors, tokenizer/)")
    p.set_defaults(func=cmd_export)
