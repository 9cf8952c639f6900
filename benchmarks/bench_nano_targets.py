"""The MIMO stage's targets, measured end to end with the CLI a learner types.

    python benchmarks/bench_nano_targets.py --out build/bench-nano            # default run + no-prompt ablation
    python benchmarks/bench_nano_targets.py --out build/bench-nano --ablate-aligner --ablate-scratch

1. `python -m mimo_edu train --preset nano --out OUT/default` from the shipped foundations, timed (wall
   clock, whole process, pretraining not included);
2. `python -m mimo_edu evaluate --checkpoint OUT/default --num N --json` on the test split (a seed training
   never draws; N = 1600 gives 400 samples per task), each number with its 95 % interval;
3. the same evaluation with the visual prompts dropped (`--no-prompts`);
4. with --ablate-aligner: a second run `train --no-aligner`, evaluated the same way;
5. with --ablate-scratch: a run `train --from-scratch` (every part random and trained, same budget);
6. with --objects K: a run `train --object-tokens K` (K object tokens after the patch tokens).

Prints a table against the targets and writes OUT/report.json. Runs are resumed, not
repeated, when OUT already holds them (the training time is then the first run's).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from mimo_edu.recap import MIMO_STAGE_TARGETS, mimo_stage_table

TIME_LIMIT_S = 600
CLI = [sys.executable, "-m", "mimo_edu"]


def train(out: Path, *flags: str) -> float:
    """Train into `out` unless it is already there; seconds of wall clock (from its timing file)."""
    timing = out / "bench_wall_s.txt"
    if not timing.is_file():
        t0 = time.perf_counter()
        subprocess.run([*CLI, "train", "--preset", "nano", "--out", str(out), "--no-progress", *flags], check=True)
        timing.write_text(f"{time.perf_counter() - t0:.1f}\n")
    return float(timing.read_text())


def evaluate(checkpoint: Path, num: int, *flags: str) -> dict:
    run = subprocess.run([*CLI, "evaluate", "--checkpoint", str(checkpoint), "--num", str(num), "--json", *flags],
                         check=True, capture_output=True, text=True)
    return json.loads(run.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("build/bench-nano"))
    ap.add_argument("--num", type=int, default=1600, help="test samples (a quarter per task)")
    ap.add_argument("--ablate-aligner", action="store_true", help="also train and score MIMO without the aligner")
    ap.add_argument("--ablate-scratch", action="store_true", help="also train and score MIMO from random weights")
    ap.add_argument("--objects", type=int, default=0, help="also train and score MIMO with this many object tokens")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    report: dict = {"train_wall_s": train(args.out / "default")}
    report["test"] = evaluate(args.out / "default", args.num)
    report["test_no_prompts"] = evaluate(args.out / "default", args.num, "--no-prompts")
    if args.ablate_aligner:
        report["no_aligner_train_wall_s"] = train(args.out / "no-aligner", "--no-aligner")
        report["test_no_aligner"] = evaluate(args.out / "no-aligner", args.num)
    if args.ablate_scratch:
        report["from_scratch_train_wall_s"] = train(args.out / "from-scratch", "--from-scratch")
        report["test_from_scratch"] = evaluate(args.out / "from-scratch", args.num)
    if args.objects:
        report["objects_train_wall_s"] = train(args.out / f"objects-{args.objects}", "--object-tokens", str(args.objects))
        report["test_objects"] = evaluate(args.out / f"objects-{args.objects}", args.num)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))

    wall = report["train_wall_s"]
    print(f"train --preset nano: {wall:.0f} s wall (target <= {TIME_LIMIT_S} s): {'met' if wall <= TIME_LIMIT_S else 'NOT met'}")
    runs = [k for k in ("test", "test_no_prompts", "test_no_aligner", "test_from_scratch", "test_objects") if k in report]
    print(f"\n{'task':<11} {'metric':<11} {'n':>4} {'target':>7} " + " ".join(f"{k[5:] or 'default':>20}" for k in runs))
    for task in ("seg", "perception", "qa_seg", "prompt_qa"):
        for metric in ("answer_acc", "dice"):
            cells = []
            for k in runs:
                m = report[k]["per_task"][task]
                low, high = m[f"{metric}_ci95"] or (float("nan"), float("nan"))
                cells.append(f"{m[metric]:.2f} [{low:.2f}, {high:.2f}]")
            target = MIMO_STAGE_TARGETS.get((task, metric))
            value = report["test"]["per_task"][task][metric]
            mark = "" if target is None else ("  met" if value >= target else "  NOT met")
            print(f"{task:<11} {metric:<11} {report['test']['per_task'][task]['n']:>4} "
                  f"{'' if target is None else f'>= {target:.2f}':>7} " + " ".join(f"{c:>20}" for c in cells) + mark)
    print(f"\nREADME table:\n{mimo_stage_table(report)}\n\nreport: {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
