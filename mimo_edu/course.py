"""Run the course headless: every notebook through papermill, with time and peak memory.

`python -m mimo_edu course --out build/course` executes `notebooks/*.ipynb` in
order, each in a fresh kernel, and prints one line per notebook. Peak memory is
the largest resident set of the notebook's kernel process (mybinder restarts a
kernel above 2 GB).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mimo_edu.errors import MimoError

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
BINDER_LIMIT_MB = 2048
NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"

COURSE_MAP = (
    ("00_welcome", "Welcome", "what MIMO is, how the course runs, your environment"),
    ("01_data", "MIMOSeg-synth", "the four task perspectives over eight modalities"),
    ("02_foundations", "Foundations", "nano-CLIP, nano-SAM and nano-LLM: pretraining each part before MIMO"),
    ("03_model", "The MIMO model", "vision tower, LLM with [SEG], grounding head, SAM decoder"),
    ("04_prompts_aligner", "Visual prompts and the aligner", "points, boxes, scribbles, instruction-guided fusion"),
    ("05_training", "Training", "loss curves, masks sharpening, what LoRA trains"),
    ("06_evaluation", "Evaluation", "Dice, IoU, accuracy per task and modality, ablations"),
    ("07_interactive", "Interactive prompting", "click, box and scribble in JupyterLab"),
    ("08_scaling", "Scaling to the paper", "memory, compute and launch commands for 4x A800"),
    ("09_recap", "Recap and self-check", "what you built, your numbers beside the paper's setting, a quiz"),
)
"""(notebook stem, title, what you learn), in course order."""

# Runs in a child process: execute one notebook, then report the kernel's peak RSS.
# The kernel is that child's own child, so RUSAGE_CHILDREN measures it alone.
_WORKER = """
import json, resource, sys, papermill
src, dst, cwd, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
papermill.execute_notebook(src, dst, parameters=params, kernel_name="python3", progress_bar=False, cwd=cwd)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


@dataclass
class NotebookRun:
    name: str
    seconds: float
    peak_mb: float
    ok: bool
    error: str = ""


def run_notebook(src: Path, out_dir: Path, parameters: dict | None = None) -> NotebookRun:
    """Execute `src` with papermill in a fresh kernel; write the result into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, str(src), str(out_dir / src.name), str(src.parent),
         json.dumps(parameters or {})],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return NotebookRun(src.stem, seconds, float("nan"), False, "\n".join(lines[-15:]))
    peak = json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"]
    return NotebookRun(src.stem, seconds, peak, True)


def find_notebooks(notebooks_dir: Path, only: list[str] | None = None) -> list[Path]:
    if not notebooks_dir.is_dir():
        raise MimoError(f"notebooks folder {notebooks_dir} does not exist; pass --notebooks DIR")
    paths = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
    if not paths:
        raise MimoError(f"no notebooks matched in {notebooks_dir}; expected files like 00_welcome.ipynb")
    return paths


def summary(runs: list[NotebookRun]) -> str:
    rows = [f"{'notebook':<24}{'status':>8}{'time (s)':>10}{'peak (MB)':>11}"]
    for r in runs:
        flag = "ok" if r.ok else "FAILED"
        peak = f"{r.peak_mb:.0f}" + (" !" if r.peak_mb > BINDER_LIMIT_MB else "")
        rows.append(f"{r.name:<24}{flag:>8}{r.seconds:>10.1f}{peak:>11}")
    total = sum(r.seconds for r in runs)
    rows.append(f"{'total':<24}{sum(r.ok for r in runs):>5}/{len(runs):<2}{total:>10.1f}")
    return "\n".join(rows)


def refresh_notebook(path: Path) -> None:
    """Execute `path` with its defaults and keep only the outputs nbval checks.

    Cells that start with `# NBVAL_CHECK_OUTPUT` keep their fresh outputs (nbval
    --nbval-lax compares those); every other cell is cleared, so the repository
    never holds stale figures or machine paths.
    """
    with tempfile.TemporaryDirectory() as tmp:
        run = run_notebook(path, Path(tmp))
        if not run.ok:
            raise MimoError(f"{path.name} failed while refreshing outputs:\n{run.error}")
        executed = {cell.get("id"): cell for cell in nbformat.read(Path(tmp) / path.name, as_version=4).cells}
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        checked = cell.source.startswith(NBVAL_MARK)
        cell.outputs = executed[cell.id].outputs if checked else []
        cell.execution_count = executed[cell.id].execution_count if checked else None  # nbval wants both
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)


def cmd_refresh(args: argparse.Namespace) -> int:
    for path in find_notebooks(Path(args.notebooks or NOTEBOOKS_DIR), args.only):
        print(f"refreshing {path.name} ...", flush=True)
        refresh_notebook(path)
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    params = {key: json.loads(value) for key, value in args.parameter}
    runs = []
    for path in find_notebooks(Path(args.notebooks or NOTEBOOKS_DIR), args.only):
        print(f"running {path.name} ...", flush=True)
        run = run_notebook(path, Path(args.out), params)
        runs.append(run)
        if not run.ok:
            print(run.error, file=sys.stderr)
    print(summary(runs))
    (Path(args.out) / "summary.json").write_text(json.dumps([r.__dict__ for r in runs], indent=1))
    return 0 if all(r.ok for r in runs) else 1
