"""The recap (notebook 09) prints the model's numbers from its report and the setting from the presets."""

import json
from pathlib import Path

from mimo_edu.data.schema import TASKS
from mimo_edu.recap import (
    mimo_stage_table,
    model_report,
    results_table,
    setting_rows,
    setting_table,
    training_seconds,
)


def _report(n=10):
    per_task = {t: {"n": n, "answer_acc": 0.5, "answer_acc_ci95": [0.2, 0.8], "dice": 0.7, "dice_ci95": [0.6, 0.8]}
                for t in TASKS}
    per_task["seg"]["dice_ci95"] = None
    return {"num_samples": 4 * n, "per_task": per_task}


def test_results_table_gives_n_and_intervals_per_task():
    lines = results_table(_report()).splitlines()
    assert len(lines) == 1 + len(TASKS) and "answer accuracy [95 %]" in lines[0]
    by_task = {line.split()[0]: line for line in lines[1:]}
    assert by_task["perception"].split()[1] == "10" and "[0.20, 0.80]" in by_task["perception"]
    assert "[0.60, 0.80]" in by_task["qa_seg"] and "0.70" in by_task["seg"] and "[0.60" not in by_task["seg"]


def test_mimo_stage_table_gives_each_run_per_task():
    runs = {"test": _report(), "test_no_prompts": _report(20)}
    runs["test"]["per_task"]["seg"]["dice_ci95"] = [0.5, 0.9]
    runs["test_no_prompts"]["per_task"]["seg"]["dice_ci95"] = [0.5, 0.9]
    lines = mimo_stage_table(runs).splitlines()
    assert lines[0] == "| task | n | target | from foundations | no visual prompt |" and len(lines) == 2 + len(TASKS)
    assert lines[2].startswith("| language-guided segmentation | 10 | Dice >= 0.80 | 0.50 [0.20, 0.80] / 0.70 [0.50, 0.90] |")


def test_readme_shows_the_shipped_models_mimo_stage_table():
    """The README's table is the one `mimo_stage_table` makes from the shipped report.json, not typed by hand."""
    root = Path(__file__).resolve().parents[2]
    shipped = json.loads((root / "data" / "mimo-nano" / "report.json").read_text())
    assert mimo_stage_table(shipped) in (root / "README.md").read_text(encoding="utf-8")


def test_shipped_report_and_training_time_are_read_from_the_checkpoint(tmp_path):
    from mimo_edu.train import course_checkpoint

    report, source = model_report()
    shipped = json.loads((course_checkpoint() / "report.json").read_text())
    assert report == shipped["test"] and "report.json" in source
    assert training_seconds() == shipped["train_wall_s"]
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 3, "elapsed_s": 12.5}) + "\n")
    assert training_seconds(tmp_path) == 12.5


def test_setting_rows_come_from_the_presets():
    from mimo_edu.scaling import paper_model_counts

    rows = {what: (nano, paper) for what, nano, paper in setting_rows(_report(), 600.0)}
    counts, _ = paper_model_counts()
    assert rows["parameters, trained"][1] == f"{counts.trainable():,}"
    assert rows["hardware, time"][0] == "a CPU, 10.0 min" and rows["test"][0] == "40 synthetic test samples"
    text = setting_table(list(zip(rows, *zip(*rows.values(), strict=True), strict=True)))
    assert max(len(line) for line in text.splitlines()) < 100, "narrow enough for a notebook column"
