"""`python -m mimo_edu pretrain {clip,sam,llm}` and `python -m mimo_edu foundation-eval {clip,sam,llm}`.

    python -m mimo_edu pretrain sam --out runs/sam --seed 0 --max-steps 200   # resumes if runs/sam has a checkpoint
    python -m mimo_edu foundation-eval sam --checkpoint data/foundations/sam --split test --json
"""

import argparse
import json

from mimo_edu.cli import FOUNDATION_EVAL_NUM


def cmd_pretrain(args: argparse.Namespace) -> int:
    from mimo_edu.foundations.run import pretrain, pretrain_config

    overrides = {k: v for k, v in {"seed": args.seed, "max_steps": args.max_steps}.items() if v is not None}
    if args.no_progress:
        overrides["progress"] = False
    trainer = pretrain(args.kind, args.out, pretrain_config(args.kind, **overrides))
    print(f"pretrained nano-{args.kind} {trainer.step} steps in {trainer.elapsed:.0f} s; "
          f"checkpoint and metrics.jsonl in {args.out}")
    return 0


def cmd_foundation_eval(args: argparse.Namespace) -> int:
    from mimo_edu.data.synth import split_seed
    from mimo_edu.foundations.run import evaluate_foundation

    stream = split_seed(args.split) if args.split else args.seed
    num = args.num or FOUNDATION_EVAL_NUM[args.kind]
    report = evaluate_foundation(args.kind, args.checkpoint, num, stream)
    report["checkpoint"] = str(args.checkpoint)
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0
