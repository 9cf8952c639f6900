"""`python -m mimo_edu pretrain {clip,sam,llm}` and `python -m mimo_edu foundation-eval {clip,sam,llm}`.

    python -m mimo_edu pretrain sam --out runs/sam --seed 0 --max-steps 200   # resumes if runs/sam has a checkpoint
    python -m mimo_edu foundation-eval sam --checkpoint data/foundations/sam --split test --json
"""

import argparse
import json

KINDS = ("clip", "sam", "llm")  # as mimo_edu.foundations.paths.KINDS; repeated so --help imports nothing heavy
DEFAULT_NUM = {"clip": 200, "sam": 100, "llm": 1000}  # test images (clip, sam) or texts (llm) with --split


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
    num = args.num or DEFAULT_NUM[args.kind]
    report = evaluate_foundation(args.kind, args.checkpoint, num, stream)
    report["checkpoint"] = str(args.checkpoint)
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pretrain", help="pretrain a nano foundation on the train split (resumes from --out)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--out", required=True, help="folder for checkpoints and metrics.jsonl")
    p.add_argument("--seed", type=int, help="seeds the initial weights and the data order")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")
    p.set_defaults(func=cmd_pretrain)

    p = subparsers.add_parser("foundation-eval", help="score a nano foundation with its own metrics")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--checkpoint", required=True, help="a pretrain --out folder or a data/foundations/KIND folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--seed", type=int, help="MIMOSeg-synth stream to score on (0 is the train split's)")
    source.add_argument("--split", choices=("train", "val", "test"), help="a split's stream")
    p.add_argument("--num", type=int, help=f"images (clip, sam) or texts (llm); default with --split: {DEFAULT_NUM}")
    p.add_argument("--json", action="store_true", help="print one JSON object on one line")
    p.set_defaults(func=cmd_foundation_eval)
