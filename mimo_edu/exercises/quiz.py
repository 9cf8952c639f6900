"""The course's self-check (notebook 09): multiple-choice questions, checked like the exercises.

A question is answered by setting a variable to a letter; the check prints `Correct! <why>` or
`Not yet: <why that choice is wrong>`, and never raises:

    q1 = ...  # "a", "b", "c" or "d"
    check("09.1", quiz_answer("09.1", q1, solutions))

Each question's right letter is not typed here but derived from the package (`Question.fact`), so a
question stays true when the code changes; `mimo_edu/solutions.py` holds the letters, and a test checks
that both agree. `quiz_markdown(id)` is the question as the notebook shows it.
"""

from collections.abc import Callable
from dataclasses import dataclass

from mimo_edu.exercises.registry import NotYet, register

LETTERS = ("a", "b", "c", "d")


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    text: str
    options: dict[str, str]  # letter -> option, as the notebook shows it
    feedback: dict[str, str]  # letter -> why that option is wrong (the right one's entry is unused)
    fact: Callable[[], tuple[str, str]]  # () -> (the right letter, why it is right), computed from the package


QUESTIONS: dict[str, Question] = {}


def _add(question: Question) -> None:
    hint = f'Set `q{question.id.split(".")[1]}` to one letter, "a", "b", "c" or "d", and run the cell again.'

    def verify(answer) -> str:
        letter = answer.strip().lower() if isinstance(answer, str) else None
        if letter not in question.options:
            raise NotYet(f'answer with one of the letters "a", "b", "c" or "d" (a string), not {answer!r}.')
        right, why = question.fact()
        if letter != right:
            raise NotYet(f"({letter}) {question.feedback[letter]} Try another letter.")
        return why

    register(question.id, question.title, hint)(verify)
    QUESTIONS[question.id] = question


def quiz_answer(exercise_id: str, value: object, use_solution: bool = False) -> object:
    """The learner's `value`, or the course's answer when `use_solution` (the notebook's `solutions` parameter)."""
    from mimo_edu.exercises import solution

    return solution(exercise_id) if use_solution else value


def quiz_markdown(exercise_id: str) -> str:
    """The question as notebook 09 shows it: heading, text and the lettered options."""
    q = QUESTIONS[exercise_id]
    options = "\n".join(f"- **{letter})** {text}" for letter, text in q.options.items())
    return f"### Question {q.id}: {q.title}\n\n{q.text}\n\n{options}"


def _letter(question_id: str, matches: Callable[[str], bool]) -> str:
    found = [letter for letter, text in QUESTIONS[question_id].options.items() if matches(text)]
    if len(found) != 1:  # a config or a formula changed: the question's options must follow
        raise RuntimeError(f"question {question_id}: {len(found)} options match the package, not 1")
    return found[0]


# ---- the questions ------------------------------------------------------------------------------------

_TRAINED_OPTIONS = {
    "a": ("vision_tower", "projector", "prompt_encoder", "aligner", "llm", "sam_image_encoder", "sam_prompt_encoder",
          "mask_decoder", "seg_head"),
    "b": ("projector", "prompt_encoder", "aligner", "llm", "mask_decoder", "seg_head"),
    "c": ("llm",),
    "d": ("vision_tower", "sam_image_encoder"),
}


def _what_trains() -> tuple[str, str]:
    from mimo_edu.model.config import nano_config, paper_config

    nano, paper = set(nano_config().trainable), set(paper_config().trainable)
    letter = next(k for k, parts in _TRAINED_OPTIONS.items() if set(parts) == nano)
    same = "nano and the paper list the same parts" if nano == paper else "the paper lists other parts"
    return letter, (f"`MIMOConfig.trainable` is {sorted(nano)} ({same}); with LoRA on, \"llm\" trains only the "
                    "adapters, the token embeddings and the LM head. The foundations stay frozen.")


_add(Question(
    "09.1", "what the MIMO stage trains",
    "Nano, like the paper, starts the MIMO stage from pretrained foundations. Which parts does that stage train?",
    {"a": "every part, from random weights",
     "b": "the projector, the visual prompt encoder, the aligner, the `[SEG]` MLP, SAM's mask decoder, and the LLM "
          "through LoRA (with its token embeddings and LM head)",
     "c": "only the LoRA adapters",
     "d": "CLIP's vision tower and SAM's image encoder"},
    {"a": "That is the `from_scratch=True` ablation (notebook 06 shows what the foundations buy), not the MIMO stage.",
     "c": "LoRA adapts the LLM, but the modules that join the foundations (projector, prompt encoder, aligner, "
          "`[SEG]` MLP) start from random weights and must train too.",
     "d": "Those are frozen foundations: training them would cost their activations and optimiser state "
          "(notebook 08's memory bars) for little gain."},
    _what_trains,
))


def _seg_prompt() -> tuple[str, str]:
    import torch

    from mimo_edu.model.config import nano_config
    from mimo_edu.model.grounding import seg_features

    hidden = torch.arange(5, dtype=torch.float32)[None, :, None]  # (1, L, 1): states 0..4
    ids = torch.tensor([[7, 1, 9, 2, 3]])  # <s>-like, <p>=1, term, </p>=2, [SEG]=3
    mode = nano_config().seg_feature
    mean = float(seg_features(hidden, ids, seg_id=3, open_id=1, close_id=2, mode=mode)[0, 0])  # (1+2+3)/3
    letter = "b" if mean == 2.0 else "a" if mean == 3.0 else "?"
    return letter, (f"In nano (`seg_feature=\"{mode}\"`), `mimo_edu.model.grounding.seg_features` averages the hidden "
                    "states from `<p>` to the `</p>` that predicts `[SEG]`, and the grounding MLP maps that mean to a "
                    "prompt for SAM's mask decoder. The paper preset reads the single state that predicts `[SEG]`, as LISA.")


_add(Question(
    "09.2", "what prompts SAM's mask decoder",
    "The nano model answers `The <p>cyst</p> [SEG].` What does its `[SEG]` MLP turn into the prompt of SAM's mask "
    "decoder?",
    {"a": "the hidden state that predicts `[SEG]`, alone",
     "b": "the mean of the LLM's hidden states over the grounded phrase `<p> cyst </p>`",
     "c": "the CLIP patch tokens under the cyst",
     "d": "the token embedding of the word cyst"},
    {"a": "That is LISA's rule, and the paper preset's; nano keeps it only for a bare `[SEG]` (\"Sure, [SEG].\"). "
          "After a phrase `<p> term </p>` nano averages more than one state (notebook 03, exercise 03.1).",
     "c": "CLIP patches under a region feed the region token of a visual prompt (notebook 04); the mask decoder's "
          "prompt comes from the language model.",
     "d": "An embedding is the same in every image; the prompt must carry what the model read in this image, so it "
          "comes from the LLM's hidden states."},
    _seg_prompt,
))


def _tokens_per_prompt() -> tuple[str, str]:
    from mimo_edu.model.config import nano_config

    c = nano_config()
    letter = _letter("09.3", lambda text: text == str(c.tokens_per_prompt))
    return letter, (f"1 pooled region token (what is there) + {c.prompt_points} point slots + 1 padding slot of SAM's "
                    f"prompt encoder (where it is) = `config.tokens_per_prompt` = {c.tokens_per_prompt}.")


_add(Question(
    "09.3", "tokens per visual prompt",
    "How many `<region>` tokens does one visual prompt (a point, a box or a scribble) become in nano's LLM input?",
    {"a": "1", "b": "4", "c": "6", "d": "16"},
    {"a": "One of them is the pooled region token (what is there); SAM's sparse tokens (where it is) come with it.",
     "b": "That is `prompt_points`, the point slots alone; count the region token and SAM's padding slot too.",
     "d": "That is how many image tokens nano's LLM reads per image (4 x 4 blocks of CLIP patches), not a prompt's."},
    _tokens_per_prompt,
))


def _gate() -> tuple[str, str]:
    import torch

    from mimo_edu.model.aligner import InputAligner

    torch.manual_seed(0)
    aligner = InputAligner(16, 8, 2)
    embeds = torch.randn(1, 5, 16)
    visual = torch.tensor([[True, True, False, False, False]])
    question = torch.tensor([[False, False, True, True, False]])
    with torch.no_grad():
        same = torch.equal(aligner(embeds, visual, question), embeds)
    return ("b" if same else "a"), ("at initialisation `InputAligner` returns its input unchanged (tanh(0) = 0), so "
                                    "the pretrained LLM is undisturbed; training opens the gate only as far as it "
                                    "helps (Flamingo's gated cross-attention). Notebook 04 prints how far the shipped "
                                    "model opened it.")


_add(Question(
    "09.4", "the aligner's gate at the start",
    "The aligner adds `tanh(gate) * attention output` to the question tokens, and its gate starts at 0. What does the "
    "pretrained LLM see before training?",
    {"a": "random noise added to the question tokens",
     "b": "exactly the embeddings it would see without the aligner: the block starts as the identity",
     "c": "only the image tokens",
     "d": "nothing ever changes: a gate at 0 gets no gradient"},
    {"a": "The attention output is random at first, but tanh(0) = 0 multiplies it away.",
     "c": "The aligner changes question tokens only, and at the start not even those; image and region tokens reach "
          "the LLM either way.",
     "d": "The derivative of tanh at 0 is 1, so the gate gets a gradient at the first step; it is the attention's own "
          "weights that get none while the gate is 0."},
    _gate,
))


def _interval() -> tuple[str, str]:
    from mimo_edu.eval.metrics import wilson_interval

    lo, hi = wilson_interval(52, 100)
    letter = _letter("09.5", lambda text: text == f"[{lo:.2f}, {hi:.2f}]")
    return letter, (f"`wilson_interval(52, 100)` is [{lo:.2f}, {hi:.2f}]: another 100 test samples could well give a "
                    "rate anywhere in it, so compare models by their intervals, not by the second decimal.")


_add(Question(
    "09.5", "how sure a measured rate is",
    "A task's answer accuracy is 0.52 on n = 100 test samples. What is its 95 % Wilson interval?",
    {"a": "[0.51, 0.53]", "b": "[0.42, 0.62]", "c": "[0.32, 0.72]", "d": "[0.00, 1.00]"},
    {"a": "Far too narrow: with 100 samples the standard error of a rate near one half is about 0.05.",
     "c": "About twice too wide: the half-width is near 1.96 x sqrt(p (1 - p) / n), about 0.10 here.",
     "d": "100 samples do say something: the interval's half-width is about 0.10."},
    _interval,
))
