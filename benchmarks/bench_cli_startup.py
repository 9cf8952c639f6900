"""Startup of the CLI: wall seconds of `python -m mimo_edu [COMMAND] --help`, each in a fresh process.

    python benchmarks/bench_cli_startup.py [--runs 5]

Prints the median of --runs subprocess runs for the top level and for each command (read from the top
level's own --help), beside two baselines measured in the same run: a bare interpreter and `import torch`.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

PYTHON = sys.executable


def wall(argv: list[str], runs: int) -> float:
    """Median wall seconds of `argv` over `runs` fresh processes; stops with its stderr if one fails."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr}")
    return statistics.median(times)


def commands() -> list[str]:
    """The sub-commands `python -m mimo_edu --help` lists, e.g. {course,generate,...}."""
    text = subprocess.run([PYTHON, "-m", "mimo_edu", "--help"], capture_output=True, text=True, check=True).stdout
    return re.search(r"\{([\w,-]+)\}", text).group(1).split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per row; the median is printed")
    args = parser.parse_args()

    rows = {
        "baseline: python -c pass": [PYTHON, "-c", "pass"],
        "baseline: python -c 'import torch'": [PYTHON, "-c", "import torch"],
        "python -m mimo_edu --help": [PYTHON, "-m", "mimo_edu", "--help"],
    }
    rows |= {f"python -m mimo_edu {c} --help": [PYTHON, "-m", "mimo_edu", c, "--help"] for c in commands()}
    print(f"median wall seconds of {args.runs} runs, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    torch_s = None
    for name, argv in rows.items():
        seconds = wall(argv, args.runs)
        torch_s = seconds if "import torch" in name else torch_s
        ratio = f"  ({seconds / torch_s:.2f} x import torch)" if torch_s and "import torch" not in name else ""
        print(f"{name:<48}{seconds:6.2f} s{ratio}")


if __name__ == "__main__":
    main()
