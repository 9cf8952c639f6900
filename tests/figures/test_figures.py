"""Figures that show the truth and can be read: the data-flow diagram colours what nano trains, and the course's
figures keep their text at 9 pt or more when shown 1000 px wide."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mimo_edu.figures import smallest_text_pt  # noqa: E402
from mimo_edu.figures.welcome import DATA_FLOW_PARTS, box_kinds, draw_data_flow  # noqa: E402


def _kind(total: int, trainable: int) -> str:
    return "frozen" if trainable == 0 else "trained" if trainable == total else "partly"


def test_data_flow_colours_each_part_as_nano_trains_it():
    from mimo_edu.model import build_mimo

    model = build_mimo("nano", device="meta")
    counts = model.parameter_counts()  # part -> (total, trainable); LoRA has its own row
    kinds = box_kinds()
    drawn = {part for parts in DATA_FLOW_PARTS.values() for part in parts}
    assert set(counts) <= drawn, f"parts missing from the diagram: {sorted(set(counts) - drawn)}"
    for box, parts in DATA_FLOW_PARTS.items():
        if parts == ("llm.embed_tokens",):  # the token embeddings: a part of "llm" with its own box
            embeddings = model.llm.get_input_embeddings().weight
            assert kinds[box] == ("trained" if embeddings.requires_grad else "frozen"), box
            continue
        total = sum(counts[p][0] for p in parts if p in counts)
        trainable = sum(counts[p][1] for p in parts if p in counts)
        assert kinds[box] == _kind(total, trainable), (box, parts, total, trainable)


def test_data_flow_draws_the_prompt_into_the_mask_decoder_as_nano_does():
    from mimo_edu.model.config import nano_config

    assert nano_config().prompt_masks, "nano no longer decodes [SEG] with the prompt: drop PROMPT_TO_DECODER"


def test_data_flow_text_is_readable_at_1000_px():
    fig, ax = plt.subplots(figsize=(10, 5.8))
    draw_data_flow(ax)
    assert smallest_text_pt(fig) >= 9
    plt.close(fig)


def test_smallest_text_scales_with_the_figure_width():
    fig, ax = plt.subplots(figsize=(20, 4), dpi=100)
    ax.set_title("title", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    assert smallest_text_pt(fig) == pytest.approx(6.0)  # 2000 px shown at 1000 px: half size
    plt.close(fig)


# ---- evaluation and training figures: n stated, colorbars, the truth beside the prediction -----------


class _Model:
    """Stands in for MIMO in the gallery: answers every sample with its own reference (or one wrong word)."""

    def __init__(self, dataset, wrong: bool = False):
        self.by_question = {s.question: s for s in dataset}
        self.wrong = wrong

    def generate(self, image, question, prompts):
        from mimo_edu.model.mimo import GroundedAnswer

        s = self.by_question[question]
        text = s.answer.replace(s.terms[0], "spleen") if self.wrong and s.terms else s.answer
        return GroundedAnswer(text, list(s.terms), s.masks, s.masks.astype("float32"))


@pytest.fixture(scope="module")
def samples():
    from mimo_edu.data import generate_samples, split_seed

    return generate_samples(12, split_seed("test"))


def test_heat_map_has_a_colorbar_and_the_n_of_each_cell(samples):
    from mimo_edu.figures.evaluation import modality_task_counts, modality_task_grid, plot_modality_task_grid

    scores = [{"modality": s.modality, "task": s.task, "exact": 1.0, "dice": 0.5} for s in samples]
    grid, modalities = modality_task_grid(scores, "dice")
    counts = modality_task_counts(scores, "dice")
    assert counts.sum() == len(samples) and counts.shape == grid.shape
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
    plot_modality_task_grid(axes[0], grid, modalities, "mean Dice", counts)
    assert len(fig.axes) == 3, "a colorbar beside the map"
    assert f"{len(samples)} samples" in axes[0].get_title()
    assert sum(t.get_text().endswith("n=1") for t in axes[0].texts) == (counts == 1).sum()
    assert smallest_text_pt(fig) >= 9
    plt.close(fig)


def test_validation_curves_state_the_samples_per_task():
    from mimo_edu.data.schema import TASKS
    from mimo_edu.figures.training import plot_val_metrics, samples_per_task

    assert samples_per_task(24) == dict.fromkeys(TASKS, 6)
    assert samples_per_task(6) == {"seg": 2, "perception": 2, "qa_seg": 1, "prompt_qa": 1}
    records = [{"kind": "eval", "step": s, **{f"{t}/{m}": 0.5 for t in TASKS for m in ("answer_acc", "dice")}}
               for s in (10, 20)]
    fig, ax = plt.subplots(figsize=(5, 4))
    plot_val_metrics(ax, records, 24)
    assert "n = 6" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()][:4] == [f"{t} (n = 6)" for t in TASKS]
    assert smallest_text_pt(fig) >= 9
    plt.close(fig)


def test_galleries_draw_the_truth_beside_the_answer_and_grade_it(samples, monkeypatch):
    import mimo_edu.figures.evaluation as ft

    monkeypatch.setattr(ft.plt, "show", lambda: None)
    scores = [{"index": i} for i in range(3)]
    right = ft.graded_gallery(_Model(samples), samples, {"right": scores, "also right": scores})
    assert right == {"right": 3, "also right": 3}
    fig = plt.gcf()
    titles = [ax.get_title() for ax in fig.axes]
    assert sum(t.startswith("truth") for t in titles) == 6 and sum(t.startswith("model: RIGHT") for t in titles) == 6
    assert fig.get_figwidth() == 10 and smallest_text_pt(fig) >= 9
    plt.close(fig)
    wrong = ft.graded_gallery(_Model(samples, wrong=True), samples, {"wrong": [{"index": 1}]})
    assert wrong == {"wrong": 0}
    plt.close("all")


def test_ablation_bars_state_n():
    from mimo_edu.data.schema import TASKS
    from mimo_edu.figures.evaluation import plot_ablations

    report = {"num_samples": 40, "per_task": {t: {"n": 10, "answer_acc": 0.5, "answer_acc_ci95": [0.2, 0.8]} for t in TASKS}}
    fig, ax = plt.subplots(figsize=(10, 3.6))
    plot_ablations(ax, {"MIMO": report, "no aligner": report})
    assert "n = 10 per task" in ax.get_title() and "40 test samples" in ax.get_title()
    fig.tight_layout()
    assert smallest_text_pt(fig) >= 9
    plt.close(fig)


def test_aligner_attention_of_a_model_fresh_or_trained():
    import numpy as np

    from mimo_edu.data import generate_sample, prompt_from_mask, split_seed
    from mimo_edu.figures.model import plot_attention_heads, plot_question_attention, question_attention
    from mimo_edu.model import build_mimo

    model = build_mimo("nano").eval()
    sample = generate_sample(split_seed("train"), 34)
    box = prompt_from_mask(sample.masks[0], "box", np.random.default_rng(0))
    att = question_attention(model, sample.image, "Is there a cyst in the marked region?", [box])
    heads, questions, visual = att["attn"].shape
    assert heads == model.config.aligner_heads and questions == len(att["labels"]) and "cyst" in att["labels"]
    assert visual == att["n_image"] + model.config.tokens_per_prompt
    assert np.allclose(att["attn"].sum(-1), 1, atol=1e-5) and att["gate"] == 0.0  # a fresh aligner's gate is shut
    fig = plt.figure(figsize=(10, 4.2), layout="constrained")
    plot_question_attention(fig, att, sample.image, "random aligner")
    assert len(fig.axes) == 3 and "1/22" in fig.axes[-1].get_ylabel()  # the colorbar says what uniform is
    assert smallest_text_pt(fig) >= 9
    plt.close(fig)
    fig = plt.figure(figsize=(10, 4.8), layout="constrained")
    plot_attention_heads(fig, {"random": att, "again": att}, 4)
    assert smallest_text_pt(fig) >= 9
    plt.close(fig)


def test_trace_forward_runs_the_model_own_stages():
    """The trace's hidden states and mask logits are those `MIMO.forward` computes on the same batch."""
    import torch

    from mimo_edu.data import collate, generate_samples, split_seed
    from mimo_edu.figures.model import trace_forward
    from mimo_edu.model import build_mimo

    torch.manual_seed(0)
    model = build_mimo("nano").eval()
    batch = collate(generate_samples(2, split_seed("train")))
    seen = {}
    model.llm.model.register_forward_hook(lambda m, i, out: seen.update(hidden=out.last_hidden_state))
    with torch.no_grad():
        out = model(batch)
    trace = trace_forward(model, batch)
    torch.testing.assert_close(trace["LLM hidden states (B, L, H)"], seen["hidden"])
    masks = trace["mask logits of sample 0 (K_0, S, S)"]  # decoded alone, not batched with sample 1's: float noise
    torch.testing.assert_close(masks, out.pred_masks[0], atol=1e-4, rtol=1e-4)
    assert trace["<region> tokens (P * T, H)"].shape[0] == model.config.tokens_per_prompt * len(batch["visual_prompts"][1])


# ---- matplotlib only in mimo_edu/figures -----------------------------------------------------------------------


def test_only_the_figures_package_imports_matplotlib():
    import ast
    from pathlib import Path

    import mimo_edu

    root = Path(mimo_edu.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.parent == root / "figures":
            continue
        for node in ast.walk(ast.parse(path.read_text())):  # module level or inside a function: both count
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names if n.split(".")[0] == "matplotlib"]
    assert not offenders, offenders


def test_the_estimates_load_without_matplotlib():
    import subprocess
    import sys

    code = "import sys, mimo_edu.scaling, mimo_edu.recap, mimo_edu.data; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
