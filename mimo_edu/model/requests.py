"""The request gate: one check of a question and its visual prompts before MIMO answers.

`MIMO.generate` calls `check_request`, and every other way of asking goes through `generate` (the
`Predictor`, the `App`, `python -m mimo_edu ask`), so a request meets the same rules and the same
errors wherever it comes from. The policy:

- **question**: text with something besides spaces; surrounding whitespace is removed.
- **visual prompts**: one `VisualPrompt` or a list of them, each well formed (`validate_prompt`) and
  inside the image, its far edge included: x in [0, W], y in [0, H] (a drag to the image's border
  ends on x = W). Point labels may be left out: every point is then foreground (label 1).
- **context**: the question, the image and prompt tokens and `max_new_tokens` must fit the LLM's
  context (at most `ConversationTemplate.max_prompts` prompts); nothing is truncated.
- **drawing widgets**: coordinates a widget reports beyond the image are clipped onto its pixels
  [0, W - 1] x [0, H - 1] (`clip_to_image`, used by the App), so a drag past the border stays on the image.

Images are checked where they are converted (`to_rgb`, `check_image_tensor`). Training data is checked
once, when it is loaded (`data/disk.py`), with the datasets' stricter rule (labels given, coordinates
in [0, W - 1]); `MIMO.forward` does not check it again.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mimo_edu.data.prompts import validate_prompt
from mimo_edu.data.schema import VisualPrompt
from mimo_edu.errors import PromptError
from mimo_edu.model.conversation import MIN_TEXT_TOKENS, ConversationTemplate


@dataclass(frozen=True)
class Request:
    """A request that passed the gate: the question stripped, the prompts as a list with every point labelled."""

    question: str
    prompts: list[VisualPrompt]


def check_question(question: object) -> str:
    """The question without surrounding whitespace; PromptError when it is not text or only spaces."""
    if not isinstance(question, str) or not question.strip():
        raise PromptError(
            f"question {question!r} is empty or not text; type what you want to know about the image, "
            "e.g. 'What is this?' with a prompt drawn, or 'Segment the liver.'"
        )
    return question.strip()


def check_prompts(prompts: VisualPrompt | Sequence[VisualPrompt], height: int, width: int) -> list[VisualPrompt]:
    """The prompts as a list, unlabelled points labelled 1; PromptError unless each lies in a (height, width) image
    (far edge included) and is well formed."""
    if isinstance(prompts, VisualPrompt):
        prompts = [prompts]
    elif not isinstance(prompts, (list, tuple)):
        raise PromptError(
            f"visual prompts {prompts!r:.60}: a {type(prompts).__name__}; give a VisualPrompt, a list of them or none"
        )
    checked = []
    for prompt in prompts:
        if not isinstance(prompt, VisualPrompt):
            raise PromptError(
                f"visual prompt {prompt!r:.60}: a {type(prompt).__name__}, not a VisualPrompt; build one, "
                "e.g. VisualPrompt('box', box=np.array([x0, y0, x1, y1]))"
            )
        if prompt.kind == "point" and prompt.labels is None and prompt.points is not None:
            count = len(np.atleast_1d(np.asarray(prompt.points, dtype=object)))  # never fails, even on ragged lists
            prompt = replace(prompt, labels=np.ones(count, np.int64))
        validate_prompt(prompt, height, width, edge=True)
        checked.append(prompt)
    return checked


def check_request(
    template: ConversationTemplate,
    question: object,
    prompts: VisualPrompt | Sequence[VisualPrompt],
    height: int,
    width: int,
    max_new_tokens: int,
    context: int,
) -> Request:
    """The gate: the question, then each prompt (on a (height, width) image), then the fit in a `context`-token
    LLM with `max_new_tokens` kept for the answer. Raises PromptError saying what to change."""
    request = Request(check_question(question), check_prompts(prompts, height, width))
    _check_fits(template, request, context, max_new_tokens)
    return request


def _check_fits(template: ConversationTemplate, request: Request, context: int, answer_tokens: int) -> None:
    """PromptError unless the request's prompts, question and `answer_tokens` fit a `context`-token LLM."""
    limit = template.max_prompts(context)
    num_prompts = len(request.prompts)
    if num_prompts > limit:
        raise PromptError(
            f"{num_prompts} visual prompts: this model takes at most {limit} per question "
            f"({template.tokens_per_prompt} tokens each, beside {template.num_image_tokens} image tokens and "
            f"{MIN_TEXT_TOKENS} of text in its {context}-token context); ask about fewer regions at a time"
        )
    ids, instruction = template.encode_prompt(request.question, num_prompts)
    question_tokens = sum(instruction)
    others = len(ids) - question_tokens  # template, image and prompt tokens
    if not 0 < answer_tokens < context - others:
        raise PromptError(
            f"max_new_tokens={answer_tokens}: give between 1 and {context - others - 1}, so that the answer and "
            f"the question fit the model's {context}-token context beside {others} template, image and prompt tokens"
        )
    room = context - answer_tokens - others
    if question_tokens > room:
        raise PromptError(
            f"question of {question_tokens} tokens ({request.question[:40]!r}...) is too long: with {num_prompts} "
            f"visual prompts and {answer_tokens} tokens kept for the answer, the model's {context}-token context "
            f"leaves {room} for the question; shorten it or ask for fewer new tokens (max_new_tokens)"
        )


def clip_to_image(prompt: VisualPrompt, height: int, width: int) -> VisualPrompt:
    """The prompt with its box or points clipped onto the image's pixels [0, W - 1] x [0, H - 1], for coordinates
    a drawing widget reports (a drag may end past the border)."""
    low, high = np.zeros(2, np.float32), np.array([width - 1, height - 1], np.float32)
    if prompt.kind == "box":
        return replace(prompt, box=np.clip(np.asarray(prompt.box, np.float32), np.tile(low, 2), np.tile(high, 2)))
    return replace(prompt, points=np.clip(np.asarray(prompt.points, np.float32).reshape(-1, 2), low, high))
