"""Every notebook opens the same way, holds no stale outputs, and runs headless under papermill."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from mimo_edu.course import NBVAL_MARK, find_notebooks, run_notebook, summary
from mimo_edu.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = find_notebooks(ROOT / "notebooks")
IDS = [p.stem for p in NOTEBOOKS]
WITH_EXERCISES = [p for p in NOTEBOOKS if any(e.notebook == p.stem[:2] for e in EXERCISES.values())]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def verdicts(executed: nbformat.NotebookNode) -> tuple[dict[str, list[str]], int]:
    """Exercise id -> the lines starting "Correct" or "Not yet" that its check cell printed, and how many such
    lines the whole notebook printed."""
    by_id, total = {}, 0
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        lines = [line for line in text.splitlines() if line.startswith(("Correct", "Not yet"))]
        total += len(lines)
        for exercise_id in re.findall(r'check\("(\d\d\.\d+)"', cell.source):
            by_id[exercise_id] = lines
    return by_id, total


def ran_to_the_end(run, executed: nbformat.NotebookNode) -> None:
    assert run.ok, run.error
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code" and c.source.strip())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_standard_opening(path):
    cells = read(path).cells
    title = cells[0]
    assert title.cell_type == "markdown" and title.source.startswith(f"# {path.stem[:2]} ")
    assert "mybinder.org/badge_logo.svg" in title.source and f"labpath=notebooks%2F{path.name}" in title.source
    assert "colab-badge.svg" in title.source and f"notebooks/{path.name}" in title.source
    assert "## What you will learn" in title.source
    code = [c for c in cells if c.cell_type == "code"]
    setup, imports, params, seed = code[:4]
    assert 'find_spec("mimo_edu") is None' in setup.source, "the setup cell installs only when mimo_edu is missing"
    assert "import mimo_edu" in imports.source or "from mimo_edu" in imports.source
    assert "parameters" in params.metadata.get("tags", []), "the fourth code cell is the parameters cell"
    assert "seed =" in params.source and "smoke =" in params.source
    assert "\nsolutions = False" in params.source, "every notebook takes the `solutions` parameter, off by default"
    assert "seed_everything(seed)" in seed.source
    assert any(c.cell_type == "markdown" and "## Summary" in c.source for c in cells)


# arXiv id -> a word the reference's line must hold: catches a mistyped id (checked against arxiv.org).
ARXIV = {
    "2510.10011": "MIMO", "2308.00692": "LISA", "2311.03356": "GLaMM", "2412.09278": "MedPLIB", "2304.02643": "Segment anything",
    "2103.00020": "CLIP", "2304.08485": "LLaVA", "2310.03744": "LLaVA-1.5", "2306.00890": "LLaVA-Med",
    "2106.09685": "LoRA", "2307.09288": "Llama 2", "2310.09478": "MiniGPT-v2", "2304.12306": "MedSAM",
    "2204.14198": "Flamingo", "2312.10032": "Osprey", "1711.05101": "AdamW", "1606.04797": "V-Net",
    "2205.05198": "activation recomputation", "1910.02054": "ZeRO", "1604.06174": "checkpointing",
    "2001.08361": "Scaling laws", "2204.02311": "PaLM",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_study_time_and_references(path):
    """The header says how long the notebook takes to study; the last cell cites its papers with arXiv ids."""
    cells = read(path).cells
    assert re.search(r"\*\*Study time:\*\* about \d+ minutes", cells[0].source), "no study time in the header"
    last = cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## References"), "the last cell is the references"
    lines = [line for line in last.source.splitlines() if line.startswith("- ")]
    ids = [i for line in lines for i in re.findall(r"arXiv:(\d{4}\.\d{4,5})", line)]
    assert ids, "cite at least one paper by its arXiv id"
    assert len(ids) == len(set(ids)), "a paper is cited twice"
    for line in lines:
        for arxiv_id in re.findall(r"arXiv:(\d{4}\.\d{4,5})", line):
            assert arxiv_id in ARXIV, f"unknown arXiv id {arxiv_id}: add it to ARXIV once checked"
            assert ARXIV[arxiv_id] in line, f"arXiv:{arxiv_id} is {ARXIV[arxiv_id]}, not: {line}"
            assert f"(https://arxiv.org/abs/{arxiv_id})" in line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_only_checked_cells_keep_outputs(path):
    nb = read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.startswith(NBVAL_MARK):
            assert not cell.outputs, f"stale output in {path.name}: run `python -m mimo_edu refresh-notebooks`"
            assert cell.execution_count is None


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_runs_under_papermill_with_smoke_parameters_and_solutions(path, tmp_path):
    run = run_notebook(path, tmp_path, {"smoke": True, "seed": 1, "solutions": True})
    executed = read(tmp_path / path.name)
    ran_to_the_end(run, executed)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "smoke = True" in injected[0].source and "solutions = True" in injected[0].source
    assert 0 < run.peak_mb < 2048, f"{path.name} peaked at {run.peak_mb:.0f} MB, above mybinder's 2 GB"
    assert path.stem in summary([run])
    by_id, total = verdicts(executed)
    assert set(by_id) == {i for i, e in EXERCISES.items() if e.notebook == path.stem[:2]}
    for exercise_id, lines in by_id.items():  # with the solutions, every check passes
        assert len(lines) == 1 and lines[0].startswith("Correct"), (exercise_id, lines)
    assert total == len(by_id)


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_runs_to_the_end_with_the_exercises_open(path, tmp_path):
    """As a learner meets it: every exercise still `...`; each check gives a hint, and Run All goes on."""
    run = run_notebook(path, tmp_path, {"smoke": True, "seed": 1})
    executed = read(tmp_path / path.name)
    ran_to_the_end(run, executed)
    by_id, total = verdicts(executed)
    assert set(by_id) == {i for i, e in EXERCISES.items() if e.notebook == path.stem[:2]}
    for exercise_id, lines in by_id.items():
        assert len(lines) == 1 and lines[0].startswith("Not yet"), (exercise_id, lines)
    assert total == len(by_id)


def test_course_command_reports_each_notebook(tmp_path):
    from mimo_edu.cli import main

    assert main(["course", "--only", "00", "--out", str(tmp_path), "-p", "smoke", "true"]) == 0
    report = json.loads((tmp_path / "summary.json").read_text())
    assert [r["name"] for r in report] == ["00_welcome"] and report[0]["ok"]
    assert report[0]["seconds"] > 0 and report[0]["peak_mb"] > 0
