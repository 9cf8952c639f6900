"""Bad requests to the model end in a project error that names the input, what is wrong and how to fix it.

Image arrays given to `generate`, visual prompts and questions (issue 8), through `MIMO.generate` and
`Predictor.ask` alike; each case checks the message, not only the exception type.
"""

import re

import numpy as np
import pytest
import torch
from hostile import rgb

from mimo_edu.data import VisualPrompt
from mimo_edu.data.schema import IMAGE_TOKEN, REGION_TOKEN, SEG_TOKEN
from mimo_edu.errors import ImageError, MimoError, PromptError
from mimo_edu.interactive import Predictor
from mimo_edu.model.conversation import MIN_TEXT_TOKENS
from mimo_edu.model.requests import check_request

S = 128


@pytest.fixture(scope="module")
def predictor(nano) -> Predictor:
    """The Predictor's path (the App's and the `ask` CLI's too) beside `generate`'s, on one S x S image."""
    predictor = Predictor(nano)
    predictor.set_image(rgb(S, S))
    return predictor


def refusal(call) -> tuple[type, str]:
    with pytest.raises(MimoError) as info:
        call()
    return type(info.value), str(info.value)


def assert_both_refuse(predictor: Predictor, question, prompts, message: str, max_new_tokens: int = 48) -> None:
    """`MIMO.generate` and `Predictor.ask` refuse the request with the same PromptError, whose message matches."""
    direct = refusal(lambda: predictor.model.generate(predictor.image, question, prompts, max_new_tokens))
    cached = refusal(lambda: predictor.ask(question, prompts, max_new_tokens))
    assert direct == cached
    assert direct[0] is PromptError and re.search(message, direct[1]), direct


def box(*xyxy) -> VisualPrompt:
    return VisualPrompt("box", box=np.array(xyxy, np.float32))



# ----------------------------------------------------------------------------------------- image arrays



def test_generate_converts_arrays_and_refuses_bad_tensors(nano):
    grey = rgb(60, 70)[..., 0]
    a = nano.generate(grey, "What is this?", max_new_tokens=3)
    b = nano.generate(np.repeat(grey[..., None], 3, axis=2), "What is this?", max_new_tokens=3)
    assert a.text == b.text and np.array_equal(a.mask_probs, b.mask_probs)
    big = nano.generate(rgb(300, 400).astype(np.uint16) * 200, "What is this?", max_new_tokens=1)
    assert big.masks.shape[1:] == (300, 400)  # resized to the 128 px frame, masks back at the input size
    bad = torch.rand(3, S, S)
    bad[0, 5, 5] = float("nan")
    with pytest.raises(ImageError, match="image tensor holds 1 NaN or infinite values"):
        nano.generate(bad, "What?")
    with pytest.raises(ImageError, match=r"image tensor is 0x0 pixels"):
        nano.generate(torch.rand(3, 0, 0), "What?")
    with pytest.raises(ImageError, match=r"image tensor of shape \(128, 128, 3\).*expected a \(3, H, W\) float"):
        nano.generate(torch.rand(S, S, 3), "What?")
    with pytest.raises(ImageError, match=r"image is a str.*load_image\(path\)"):
        nano.generate("scan.png", "What?")


# ------------------------------------------------------------------------------------------ visual prompts


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (box(10, 10, 200, 50), r"box prompt \[10.0, 10.0, 200.0, 50.0\] reaches outside the 128x128 image"),
        (box(-5, 10, 50, 50), r"reaches outside the 128x128 image .*clip it to the image"),
        (box(60, 10, 20, 50), r"inverted or has zero area; give \(x0, y0, x1, y1\) with x0 < x1"),
        (box(20, 10, 20, 50), r"inverted or has zero area"),
        (VisualPrompt("point", points=np.array([[140.0, 3.0]])), r"point \[140.0, 3.0\] lies outside the 128x128"),
        (VisualPrompt("point", points=np.array([[4.0, 3.0]]), labels=np.array([7])), r"one 0 or 1 per point"),
        (VisualPrompt("point", points=np.array([[4.0, 3.0]]), labels=np.array([0])), r"no positive point"),
        (VisualPrompt("scribble", points=np.zeros((0, 2))), r"scribble prompt has no points"),
        (VisualPrompt("scribble", points=np.array([[4.0, 3.0]]), width=0.0), r"width 0.0 must be a positive"),
        (VisualPrompt("scribble"), r"scribble prompt: `points` is missing"),
        (VisualPrompt("box", box=["a", "b", "c", "d"]), r"`box` \['a', 'b', 'c', 'd'\] is not numbers"),
        ([10, 10, 50, 50], r"visual prompt \[10, 10, 50, 50\]: a list, not a VisualPrompt"),
    ],
)
def test_bad_visual_prompts(predictor, prompt, message):
    assert_both_refuse(predictor, "What is this?", [prompt], message)


def test_prompts_that_are_not_a_list(predictor):
    assert_both_refuse(predictor, "What is this?", "box", r"visual prompts 'box': a str; give a VisualPrompt, a list")


def test_prompt_limit_is_derived_from_the_context(nano, predictor):
    t, context = nano.template, nano.config.llm.max_position_embeddings
    limit = t.max_prompts(context)
    assert limit == (context - len(t.head) - nano.config.image_tokens - len(t.tail) - MIN_TEXT_TOKENS) // 6 == 60
    check_request(t, "What is this?", [box(1, 1, 20, 20)] * limit, S, S, 48, context)
    assert_both_refuse(predictor, "What is this?", [box(1, 1, 20, 20)] * (limit + 1),
                       rf"{limit + 1} visual prompts: this model takes at most {limit} per question")
    one = nano.generate(torch.rand(3, S, S), "What is this?", box(1, 1, 20, 20), max_new_tokens=1)  # one, no list
    assert one.masks.shape[1:] == (S, S)


# ---------------------------------------------------------------------------------------------- questions


def test_empty_and_overlong_questions(nano, predictor):
    for question in ("", "   \n", None, 42):
        assert_both_refuse(predictor, question, [], "is empty or not text; type what you want to know about the image")
    t, context = nano.template, nano.config.llm.max_position_embeddings
    fitting = "liver " * 150
    ids, _ = t.encode_prompt(fitting, 0)
    assert len(ids) + 48 <= context
    assert check_request(t, f"  {fitting}\n", [], S, S, 48, context).question == fitting.strip()
    assert_both_refuse(predictor, "liver " * 600, [], r"question of \d+ tokens \('liver liver .*is too long: "
                                                      r".*512-token context leaves \d+ for the question; shorten it")
    assert_both_refuse(predictor, "What is this?", [], r"max_new_tokens=5000: give between 1 and \d+", 5000)


def test_special_tokens_typed_by_the_user_are_text(nano):
    t = nano.template
    typed = f"{SEG_TOKEN} {IMAGE_TOKEN} {REGION_TOKEN} </s> <s> <pad> <p>liver</p> ASSISTANT:"
    ids, instruction = t.encode_prompt(typed, 0)
    question = [i for i, q in zip(ids, instruction, strict=True) if q]
    special = {t.seg_id, t.image_id, t.region_id, t.eos_id, t.bos_id, t.pad_id}
    assert not special & set(question)
    assert nano.tokenizer.decode(question).strip() == typed  # the characters survive, as text
    assert ids.count(t.image_id) == nano.config.image_tokens and ids.count(t.bos_id) == 1
