"""`python -m mimo_edu COMMAND ...`: one entry point for every stage, quick to start.

Every command's arguments are declared here with argparse alone, so `--help` of any command imports no
stage module. Each command names the function that runs it as "module:function", e.g.
"mimo_edu.train.cli:cmd_train"; that module (and torch with it) is imported only when the command runs.
`python benchmarks/bench_cli_startup.py` measures the startup.
"""

import argparse
import importlib
import sys
from collections.abc import Callable

from mimo_edu.errors import MimoError

# The names argparse offers as choices, repeated here so that --help imports nothing heavy;
# tests/course/test_cli.py checks each against the registry it repeats.
MODEL_PRESETS = ("lite", "nano", "paper")  # mimo_edu.model.config.PRESETS
TRAIN_PRESETS = ("nano", "paper")  # mimo_edu.train.config.PRESETS
SPLITS = ("train", "val", "test")  # mimo_edu.data.synth.SPLITS
TASKS = ("seg", "perception", "qa_seg", "prompt_qa")  # mimo_edu.data.schema.TASKS
FOUNDATIONS = ("clip", "sam", "llm")  # mimo_edu.foundations.paths.KINDS
FOUNDATION_EVAL_NUM = {"clip": 200, "sam": 100, "llm": 1000}  # images or texts `foundation-eval` scores by default (report.json)
GPUS = ("A800", "H100", "H200")  # mimo_edu.scaling.GPUS


def course_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: notebooks/ of the clone)")
    p.add_argument("--out", default="build/course", help="where executed notebooks go")
    p.add_argument("--only", nargs="*", help="run only notebooks whose name starts with these prefixes")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "JSON"),
                   help="override a parameters-cell value, e.g. -p smoke true")


def refresh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: notebooks/ of the clone)")
    p.add_argument("--only", nargs="*", help="refresh only notebooks whose name starts with these prefixes")


def generate_args(p: argparse.ArgumentParser) -> None:
    p.description = "Write MIMOSeg-synth samples to a dataset folder; the same seed gives byte-identical files."
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, required=True, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="generator seed (with --split: the base seed of the splits)")
    p.add_argument("--split", choices=SPLITS, help="use the split's own seed, split_seed(split, seed)")
    p.add_argument("--image-size", type=int, default=128, help="image side in pixels, at least 64")


def params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=MODEL_PRESETS, default="nano")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def run_args(p: argparse.ArgumentParser) -> None:
    """The arguments `train` and `plan` share: both describe one launch (mimo_edu.train.cli.train_config)."""
    p.add_argument("--preset", choices=TRAIN_PRESETS, default="nano")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--seed", type=int, help="seeds the model's init and the data order")
    p.add_argument("--batch-size", type=int, help="samples per process (GPU) and micro-step")
    p.add_argument("--lr", type=float)
    p.add_argument("--eval-samples", type=int, help="validation samples per evaluation (0: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")
    p.add_argument("--no-aligner", action="store_true", help="ablation: build MIMO without the Multi-modal Input Aligner")
    p.add_argument("--from-scratch", action="store_true",
                   help="ablation (nano): every part random and trained, instead of the pretrained foundations")
    p.add_argument("--object-tokens", type=int,
                   help="object tokens after the image's patch tokens, one per proposed region (mimo_edu/model/objects.py)")
    p.add_argument("--task-mix", nargs="+", choices=TASKS, metavar="TASK",
                   help="the questions asked of each training image (repeat a task to ask it more often)")
    p.add_argument("--strategy", choices=("ddp", "fsdp"), help="multi-GPU: DDP or FSDP2 with ZeRO-2 sharding")
    p.add_argument("--frozen-dtype", choices=("bf16", "fp32"), help="how the frozen weights are held")
    p.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="gradient checkpointing of the LLM's layers (paper: on; nano: off)")
    p.add_argument("--sam-chunk", type=int, help="images per SAM image-encoder call, 0: the whole batch (paper: 1)")


def train_args(p: argparse.ArgumentParser) -> None:
    run_args(p)
    p.add_argument("--out", required=True, help="folder for checkpoints and metrics.jsonl")
    p.add_argument("--data", help="a MIMOSeg-format folder (default: MIMOSeg-synth's train split)")


def plan_args(p: argparse.ArgumentParser) -> None:
    run_args(p)
    p.add_argument("--gpus", type=int, default=4, help="GPUs the launch runs on (torchrun --nproc_per_node)")
    p.add_argument("--gpu", choices=GPUS, default="A800", help="sets the bf16 peak FLOPs")
    p.add_argument("--gpu-memory-gb", type=float, default=80.0, help="memory of one GPU, in GiB")
    p.add_argument("--mfu", type=float, default=0.35, help="ASSUMED model-FLOPs utilisation (achieved / peak)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a train --out folder, a step-* folder or a save_pretrained folder")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="a MIMOSeg-format folder")
    source.add_argument("--seed", type=int, help="MIMOSeg-synth seed (default: the test split's)")
    p.add_argument("--num", type=int, default=200, help="MIMOSeg-synth samples to generate")
    p.add_argument("--no-prompts", action="store_true", help="ablation: answer without the visual prompts")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a train --out folder or one of its step-* folders")
    p.add_argument("--out", required=True, help="the folder to write (config.json, model.safetensors, tokenizer/)")


def pretrain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=FOUNDATIONS)
    p.add_argument("--out", required=True, help="folder for checkpoints and metrics.jsonl")
    p.add_argument("--seed", type=int, help="seeds the initial weights and the data order")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")


def foundation_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=FOUNDATIONS)
    p.add_argument("--checkpoint", required=True, help="a pretrain --out folder or a data/foundations/KIND folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--seed", type=int, help="MIMOSeg-synth stream to score on (0 is the train split's)")
    source.add_argument("--split", choices=SPLITS, help="a split's stream")
    p.add_argument("--num", type=int,
                   help=f"images (clip, sam) or texts (llm); default with --split: {FOUNDATION_EVAL_NUM}")
    p.add_argument("--json", action="store_true", help="print one JSON object on one line")


def ask_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None,
                   help="save_pretrained folder or `train` --out folder (default: data/mimo-nano or $MIMO_EDU_CHECKPOINT)")
    p.add_argument("--image", required=True, help="PNG, JPEG or DICOM (.dcm) file")
    p.add_argument("--question", required=True)
    p.add_argument("--box", nargs=4, type=float, action="append", default=[], metavar=("X0", "Y0", "X1", "Y1"),
                   help="a box in image pixels; repeat for several")
    p.add_argument("--point", nargs=2, type=float, action="append", default=[], metavar=("X", "Y"),
                   help="a positive point in image pixels; repeat for several")
    p.add_argument("--negative-point", nargs=2, type=float, action="append", default=[], metavar=("X", "Y"),
                   help="a negative (background) point; needs a positive one too")
    p.add_argument("--scribble", action="append", default=[], metavar="FILE",
                   help='a stroke: JSON [[x, y], ...] or one "x y" per line; repeat for several')
    p.add_argument("--json", action="store_true", help="print one JSON object (answer, terms, masks, timings)")
    p.add_argument("--save-masks", metavar="DIR", help="write one PNG per mask and overlay.png here")


COMMANDS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "course": ("mimo_edu.course:cmd_course", "execute every notebook headless and report time and memory", course_args),
    "refresh-notebooks": ("mimo_edu.course:cmd_refresh", "re-execute notebooks, keep only nbval-checked outputs",
                          refresh_args),
    "generate": ("mimo_edu.data.cli:cmd_generate",
                 "write MIMOSeg-synth samples (annotations.json, images/, masks/)", generate_args),
    "params": ("mimo_edu.model.cli:cmd_params",
               "print MIMO's parameter counts per part (total, trainable, frozen)", params_args),
    "train": ("mimo_edu.train.cli:cmd_train", "train MIMO (resumes from the latest checkpoint in --out)", train_args),
    "plan": ("mimo_edu.train.cli:cmd_plan", "estimate per-GPU memory and training time of a `train` launch", plan_args),
    "evaluate": ("mimo_edu.train.cli:cmd_evaluate", "score a checkpoint per task and per modality", evaluate_args),
    "export": ("mimo_edu.train.cli:cmd_export", "write a training run's latest model as a save_pretrained folder",
               export_args),
    "pretrain": ("mimo_edu.foundations.cli:cmd_pretrain",
                 "pretrain a nano foundation on the train split (resumes from --out)", pretrain_args),
    "foundation-eval": ("mimo_edu.foundations.cli:cmd_foundation_eval",
                        "score a nano foundation with its own metrics", foundation_eval_args),
    "ask": ("mimo_edu.interactive.cli:cmd_ask",
            "ask MIMO about an image (PNG, JPEG, DICOM), optionally with visual prompts", ask_args),
}
"""Command -> ("module:function" that runs it, one-line help, the function adding its arguments)."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; it imports nothing but argparse."""
    parser = argparse.ArgumentParser(prog="python -m mimo_edu", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (run, help_line, add_arguments) in COMMANDS.items():
        p = subparsers.add_parser(name, help=help_line, description=help_line[0].upper() + help_line[1:] + ".")
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def command_function(run: str) -> Callable[[argparse.Namespace], int]:
    """The function "module:function" names, imported now."""
    module, _, function = run.partition(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(command_function(args.run)(args) or 0)
    except MimoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
