"""Figures that show the truth and can be read: the data-flow diagram colours what nano trains, and the course's
figures keep their text at 9 pt or more when shown 1000 px wide."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mimo_edu.figures import DATA_FLOW_PARTS, box_kinds, draw_data_flow, smallest_text_pt  # noqa: E402


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
