"""The course recap (notebook 09): your model's numbers beside the setting of the paper.

Every number comes from a file or from the package: the model's test report (the benchmark's
`report.json` beside the checkpoint, or a fresh evaluation when there is none), its training log, the
`nano` and `paper` presets and `mimo_edu.scaling`. Nothing here trains or loads more than one model.
"""

import gc
import json
from pathlib import Path

from mimo_edu.data.schema import TASKS


def model_report(checkpoint: str | Path | None = None, num_test: int = 40) -> tuple[dict, str]:
    """(test report, where it comes from) for a checkpoint folder (default: the course's, `course_checkpoint()`).

    The benchmark's `report.json` beside the checkpoint when there is one (the shipped model has it); otherwise
    the checkpoint is loaded and evaluated on the first `num_test` samples of the test split.
    """
    from mimo_edu.shipped import course_checkpoint

    path = Path(checkpoint) if checkpoint else course_checkpoint()
    bench = path / "report.json"
    if bench.is_file():
        return json.loads(bench.read_text())["test"], f"the benchmark report {bench.name} beside {path.name}"
    from mimo_edu.checkpoints import load_model
    from mimo_edu.data import MIMOSegSynth, split_seed
    from mimo_edu.eval.evaluate import evaluate

    model = load_model(path)
    report = evaluate(model, MIMOSegSynth(num_test, seed=split_seed("test")))
    del model
    gc.collect()
    return report, f"a fresh evaluation of {path.name} on {num_test} test samples"


def training_seconds(checkpoint: str | Path | None = None) -> float | None:
    """Wall-clock seconds of the checkpoint's training run, from its report or its metrics.jsonl (None if unknown)."""
    from mimo_edu.train import course_checkpoint, read_metrics

    path = Path(checkpoint) if checkpoint else course_checkpoint()
    bench = path / "report.json"
    if bench.is_file() and "train_wall_s" in (runs := json.loads(bench.read_text())):
        return float(runs["train_wall_s"])
    try:
        train = [r for r in read_metrics(path) if r.get("kind") == "train"]
    except Exception:  # no log: a checkpoint copied without it
        return None
    return float(train[-1]["elapsed_s"]) if train and "elapsed_s" in train[-1] else None


def results_table(report: dict) -> str:
    """Per task: n, answer accuracy and mean Dice, each with its 95 % interval (when the report has one)."""
    def rate(value, ci) -> str:
        if value is None:
            return f"{'-':>22}"
        interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
        return f"{value:.2f}{interval:>14}".rjust(22)

    lines = [f"{'task':<12}{'n':>5}{'answer accuracy [95 %]':>24}{'mean Dice [95 %]':>24}"]
    for task in TASKS:
        r = report["per_task"].get(task)
        if r is None:
            continue
        lines.append(f"{task:<12}{r['n']:>5}  {rate(r['answer_acc'], r.get('answer_acc_ci95'))}  "
                     f"{rate(r.get('dice'), r.get('dice_ci95'))}")
    return "\n".join(lines)


MIMO_STAGE_TARGETS = {  # (task, metric) -> minimum, from the MIMO-stage issue
    ("seg", "dice"): 0.80,
    ("perception", "answer_acc"): 0.90,
    ("qa_seg", "answer_acc"): 0.85,
    ("qa_seg", "dice"): 0.75,
    ("prompt_qa", "answer_acc"): 0.85,
}
RUNS = {"test": "from foundations", "test_from_scratch": "from scratch", "test_no_prompts": "no visual prompt",
        "test_no_aligner": "no aligner (retrained)"}


def mimo_stage_table(runs: dict) -> str:
    """The README's MIMO-stage table (markdown) from `bench_nano_targets.py`'s report.json: per task and run,
    answer accuracy [95 %] / mean Dice [95 %]."""
    def cell(r: dict) -> str:
        acc, dice = r["answer_acc_ci95"], r["dice_ci95"]
        return f"{r['answer_acc']:.2f} [{acc[0]:.2f}, {acc[1]:.2f}] / {r['dice']:.2f} [{dice[0]:.2f}, {dice[1]:.2f}]"

    from mimo_edu.figures.data import TASK_TITLES  # "1 · language-guided segmentation", ...

    keys = [k for k in RUNS if k in runs]
    lines = ["| task | n | target | " + " | ".join(RUNS[k] for k in keys) + " |", "|---" * (3 + len(keys)) + "|"]
    for task, title in TASK_TITLES.items():
        target = ", ".join(f"{'accuracy' if metric == 'answer_acc' else 'Dice'} >= {minimum:.2f}"
                           for (t, metric), minimum in MIMO_STAGE_TARGETS.items() if t == task)
        cells = [cell(runs[k]["per_task"][task]) for k in keys]
        lines.append(f"| {title.split(' · ')[1]} | {runs['test']['per_task'][task]['n']} | {target} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def setting_rows(report: dict | None = None, train_s: float | None = None) -> list[tuple[str, str, str]]:
    """(what, nano, paper) rows: data, the three foundations, parameters, training, hardware and time, test."""
    from mimo_edu.data import MODALITIES
    from mimo_edu.model import build_mimo
    from mimo_edu.model.config import nano_config, paper_config
    from mimo_edu.scaling import A800, MIMOSEG_SAMPLES, PAPER_DAYS, ParamCounts, paper_model_counts
    from mimo_edu.train.config import get_preset

    nano, paper = nano_config(), paper_config()
    nano_model = build_mimo("nano", device="meta")  # shapes only: no memory for weights
    nano_counts, vocab = ParamCounts.from_model(nano_model), len(nano_model.tokenizer)
    del nano_model
    paper_counts, _ = paper_model_counts()
    nt, pt = get_preset("nano"), get_preset("paper")
    gpus = 4
    v, pv, lm, pl, s, ps = nano.vision, paper.vision, nano.llm, paper.llm, nano.segmenter, paper.segmenter
    rows = [
        ("images", f"MIMOSeg-synth: {len(MODALITIES)} procedural modalities, {nano.image_size} px",
         f"MIMOSeg: {MIMOSEG_SAMPLES:,} samples of real images, {paper.image_size} px (SAM), {pv.image_size} px (CLIP)"),
        ("vision tower", f"nano-CLIP: {v.num_layers} layers, width {v.hidden_size}",
         f"CLIP ViT-H/14: {pv.num_layers} layers, width {pv.hidden_size}"),
        ("language model", f"nano-LLM: {lm.num_layers} layers, width {lm.hidden_size}, {vocab:,} tokens",
         f"Vicuna-7B: {pl.num_layers} layers, width {pl.hidden_size}, {pl.vocab_size:,} tokens"),
        ("segmenter", f"nano-SAM: encoder {s.encoder_depth} layers, width {s.encoder_dim}",
         f"SAM ViT-H: encoder {ps.encoder_depth} layers, width {ps.encoder_dim}"),
        ("parameters, total", f"{nano_counts.total():,}", f"{paper_counts.total():,}"),
        ("parameters, trained", f"{nano_counts.trainable():,}", f"{paper_counts.trainable():,}"),
        ("MIMO stage", f"{nt.max_steps:,} steps x {nt.samples_per_step} = {nt.max_steps * nt.samples_per_step:,} samples",
         f"{pt.max_steps:,} steps x {pt.samples_per_step} x {gpus} GPUs = "
         f"{pt.max_steps * pt.samples_per_step * gpus:,} samples (the course's one-pass guess)"),
        ("hardware, time", f"a CPU, {train_s / 60:.1f} min" if train_s else "a CPU",
         f"{gpus} x {A800.name}, {PAPER_DAYS[0]:.0f}-{PAPER_DAYS[1]:.0f} days (the paper)"),
    ]
    if report is not None:
        rows.append(("test", f"{report['num_samples']} synthetic test samples", "MIMOSeg's test split, medical benchmarks"))
    return rows


def setting_table(rows: list[tuple[str, str, str]]) -> str:
    """The (what, nano, paper) rows as a narrow text block: each row's two settings one under the other."""
    return "\n".join(f"{what}\n  nano   {nano}\n  paper  {paper}" for what, nano, paper in rows)
