"""Metrics against values computed by hand on small arrays, empty masks included."""

import numpy as np
import pytest
import torch

from mimo_edu.data.schema import Sample
from mimo_edu.errors import DataError
from mimo_edu.eval.evaluate import aggregate, named_without_prompts, score_sample
from mimo_edu.eval.metrics import (
    ciou,
    dice,
    exact_match,
    giou,
    grounding_hits,
    iou,
    normalize_answer,
    token_f1,
)

A = np.array([[1, 1, 0, 0]] * 2, dtype=bool)  # 4 pixels
B = np.array([[0, 1, 1, 0]] * 2, dtype=bool)  # 4 pixels, 2 shared with A
EMPTY = np.zeros((2, 4), dtype=bool)


def test_mask_metrics_by_hand():
    assert iou(A, B) == pytest.approx(2 / 6)
    assert dice(A, B) == pytest.approx(2 * 2 / 8)
    assert iou(A, A) == dice(A, A) == 1.0
    assert iou(EMPTY, EMPTY) == dice(EMPTY, EMPTY) == 1.0  # nothing to find, nothing found
    assert iou(EMPTY, A) == dice(A, EMPTY) == 0.0
    assert dice(torch.tensor(A), torch.tensor(B).int()) == pytest.approx(0.5)  # tensors and 0/1 ints work


def test_giou_averages_samples_and_ciou_pools_pixels():
    big = np.ones((2, 4), dtype=bool)  # 8 pixels
    preds, refs = [A, EMPTY, big], [B, EMPTY, A]
    assert giou(preds, refs) == pytest.approx((2 / 6 + 1.0 + 4 / 8) / 3)
    assert ciou(preds, refs) == pytest.approx((2 + 0 + 4) / (6 + 0 + 8))
    assert ciou([EMPTY], [EMPTY]) == 1.0


def test_mask_metrics_refuse_bad_input():
    with pytest.raises(DataError, match=r"shape \(2, 4\).*\(4, 2\)"):
        iou(A, A.T)
    with pytest.raises(DataError, match="0/1"):
        dice(A * 0.7, A)


def test_answer_metrics_ignore_markers_case_and_punctuation():
    ref = "Yes, a <p>cyst</p> [SEG] in the <p>liver</p> [SEG]."
    assert normalize_answer(ref) == "yes a cyst in the liver"
    assert normalize_answer("Sure, [SEG].") == "sure"
    assert exact_match("yes a CYST in the liver", ref) == 1.0
    assert exact_match("Yes, a cyst in the kidney.", ref) == 0.0
    # pred: yes a cyst in the kidney (6 words), 5 shared with the reference's 6
    assert token_f1("Yes, a cyst in the kidney.", ref) == pytest.approx(5 / 6)
    assert token_f1("the the", "the cat") == pytest.approx(2 * 0.5 * 0.5 / 1.0)  # multiset counts
    assert token_f1("", "") == 1.0 and token_f1("no", "") == 0.0


def test_grounding_needs_the_right_term_on_the_right_structure():
    hits = grounding_hits(["cyst", "liver", "", "spleen"], [A, B, A, A], ["liver", "cyst"], [B, EMPTY])
    # cyst -> reference cyst is EMPTY, IoU 0; liver -> B, IoU 1; "" skipped; spleen not in the reference
    assert hits == [False, True, False]
    assert grounding_hits(["liver"], [A], ["liver"], [B], min_iou=0.3) == [True]  # IoU 1/3


def _sample(task: str, answer: str, masks: np.ndarray, terms: list[str]) -> Sample:
    return Sample(id=task, image=np.zeros((2, 4, 3), np.uint8), modality="ct", task=task, question="q",
                  answer=answer, masks=masks, terms=terms)


def test_score_and_aggregate_a_small_set():
    seg = _sample("seg", "Sure, [SEG].", A[None], [""])
    qa = _sample("qa_seg", "Yes, a <p>cyst</p> [SEG] in the <p>liver</p> [SEG].", np.stack([B, A]), ["cyst", "liver"])
    text = _sample("prompt_qa", "No.", np.zeros((0, 2, 4), bool), [])
    scores = [
        score_sample(seg, "Sure, [SEG].", [""], A[None]),  # perfect
        score_sample(qa, "Yes, a <p>cyst</p> [SEG].", ["cyst"], B[None]),  # one mask missing
        score_sample(text, "Yes.", [], np.zeros((0, 2, 4), bool)),
    ]
    m = aggregate(scores)
    assert m["n"] == 3 and m["answer_acc"] == pytest.approx(1 / 3)
    assert m["dice"] == pytest.approx((1 + 1 + 0) / 3)  # the missing mask counts as empty
    assert m["giou"] == pytest.approx((1 + 0.5) / 2)  # text-only samples have no masks to score
    assert m["ciou"] == pytest.approx((4 + 4 + 0) / (4 + 4 + 4))
    assert m["grounding_acc"] == 1.0 and m["mask_count_acc"] == pytest.approx(2 / 3)
    only_text = aggregate(scores[2:])
    assert only_text["dice"] is None and only_text["ciou"] is None and only_text["grounding_acc"] is None


def test_predicted_masks_at_another_size_are_resized():
    seg = _sample("seg", "Sure, [SEG].", A[None], [""])
    upscaled = np.repeat(np.repeat(A, 2, 0), 2, 1)[None]  # (1, 4, 8)
    assert score_sample(seg, "Sure, [SEG].", [""], upscaled).dices == [1.0]


def test_named_without_prompts_drops_the_prompts_and_counts_right_and_foreign_terms():
    from types import SimpleNamespace

    from mimo_edu.data import TASKS, MIMOSegSynth, split_seed

    data = MIMOSegSynth(16, seed=split_seed("test"))
    samples = [data[i] for i in range(TASKS.index("perception"), 16, len(TASKS))]  # 4 perception samples
    replies = iter([samples[0].terms[0], "fat", "fat", None])  # right, then "fat" (histopathology) x2, no [SEG]

    class Scripted(torch.nn.Module):
        def generate(self, image, question, prompts):
            assert prompts == ()
            term = next(replies)
            return SimpleNamespace(terms=[] if term is None else [term])

    model = Scripted().train()
    found = named_without_prompts(model, samples)
    foreign = sum(s.modality != "histopathology" for s in samples[1:3]) + 1  # "(none)" is no structure
    assert (found["n"], found["right"], found["not_in_modality"]) == (4, 1, foreign)
    assert found["named"]["fat"] == 2 and found["named"]["(none)"] == 1
    assert model.training  # the model's mode is given back
