"""The nano foundations' targets, measured end to end with the commands a learner types.

    python benchmarks/bench_foundations.py --out build/foundations     # what `make foundations` runs

For each of clip, sam and llm, from a fixed seed:
1. `python -m mimo_edu pretrain KIND --out OUT/KIND --seed 0`, timed (wall clock, whole process);
2. `python -m mimo_edu foundation-eval KIND --checkpoint OUT/KIND --split test --json` (a seed never trained on).

Prints a table against the targets and writes OUT/report.json. Runs are resumed, not repeated, when OUT
already holds them (the time is then the first run's).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TARGETS = {  # (kind, metric) -> minimum, from the foundations issue
    ("sam", "dice/box"): 0.85,
    ("sam", "dice/point"): 0.75,
    ("sam", "dice/scribble"): 0.80,
    ("clip", "modality_acc"): 0.95,
    ("clip", "structure_acc"): 0.85,
}
TIME_LIMIT_S = 45 * 60
CLI = [sys.executable, "-m", "mimo_edu"]


def pretrain(kind: str, out: Path, seed: int) -> float:
    """Pretrain into `out` unless it is already there; seconds of wall clock (from its timing file)."""
    timing = out / "bench_wall_s.txt"
    if not timing.is_file():
        t0 = time.perf_counter()
        subprocess.run([*CLI, "pretrain", kind, "--out", str(out), "--seed", str(seed), "--no-progress"], check=True)
        timing.write_text(f"{time.perf_counter() - t0:.1f}\n")
    return float(timing.read_text())


def evaluate(kind: str, checkpoint: Path) -> dict:
    run = subprocess.run([*CLI, "foundation-eval", kind, "--checkpoint", str(checkpoint), "--split", "test", "--json"],
                         check=True, capture_output=True, text=True)
    return json.loads(run.stdout)


def flat(report: dict) -> dict[str, float]:
    """The scalar metrics of a foundation report, nested ones as "group/key"."""
    out = {}
    for key, value in report.items():
        if isinstance(value, float):
            out[key] = value
        elif isinstance(value, dict) and key in ("dice",):
            out.update({f"{key}/{k}": v for k, v in value.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("build/foundations"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", nargs="+", default=["clip", "sam", "llm"])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    report: dict = {}
    for kind in args.kinds:
        wall = pretrain(kind, args.out / kind, args.seed)
        report[kind] = {"pretrain_wall_s": wall, "test": evaluate(kind, args.out / kind)}
    report["total_wall_s"] = sum(r["pretrain_wall_s"] for r in report.values())
    (args.out / "report.json").write_text(json.dumps(report, indent=1))

    total = report["total_wall_s"]
    print(f"pretraining {', '.join(args.kinds)}: {total:.0f} s wall (target <= {TIME_LIMIT_S} s): "
          f"{'met' if total <= TIME_LIMIT_S else 'NOT met'}")
    for kind in args.kinds:
        r = report[kind]
        print(f"\n{kind}: {r['pretrain_wall_s']:.0f} s")
        for metric, value in flat(r["test"]).items():
            target = TARGETS.get((kind, metric))
            mark = "" if target is None else (f"  (target >= {target:.2f}: " + ("met)" if value >= target else "NOT met)"))
            print(f"  {metric:<22} {value:8.3f}{mark}")
    print(f"\nreport: {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
