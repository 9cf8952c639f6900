"""The exercise registry: one check per exercise id, and the verdict line it prints.

A check (`verify`) receives the learner's answer (nearly always a function) and whatever the notebook
passes along (a model, a list of samples), runs the answer on test inputs and either returns the text
that follows "Correct! " or raises `NotYet` with a hint. `verdict` turns every other outcome into a
"Not yet" line too, so a check never stops Run All.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

ID_PATTERN = re.compile(r"^\d\d\.\d+$")  # "03.1": notebook 03, exercise 1


class NotYet(Exception):
    """A wrong answer; the message is the hint the learner sees after "Not yet: "."""


class Placeholder(NotYet):
    """The answer is still the exercise's placeholder (`...`, None, or `raise NotImplementedError`)."""


@dataclass(frozen=True)
class Exercise:
    id: str  # "NN.k": notebook NN, k-th exercise in it
    title: str  # the notebook heading reads "### Exercise {id}: {title}"
    hint: str  # what to do, shown while the answer is still a placeholder
    verify: Callable[..., str]  # (answer, *context) -> the text after "Correct! "; raises NotYet

    @property
    def notebook(self) -> str:
        return self.id.split(".")[0]

    @property
    def heading(self) -> str:
        return f"### Exercise {self.id}: {self.title}"


EXERCISES: dict[str, Exercise] = {}


def register(exercise_id: str, title: str, hint: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Decorator: register `verify` as the check of exercise `exercise_id`."""
    if not ID_PATTERN.match(exercise_id):
        raise ValueError(f"exercise id {exercise_id!r} must look like '03.1' (notebook, number)")
    if exercise_id in EXERCISES:
        raise ValueError(f"exercise id {exercise_id!r} is registered twice")
    if any(e.title == title for e in EXERCISES.values()):
        raise ValueError(f"exercise title {title!r} is used twice")

    def wrap(verify: Callable[..., str]) -> Callable[..., str]:
        EXERCISES[exercise_id] = Exercise(exercise_id, title, hint, verify)
        return verify

    return wrap


def get(exercise_id: str) -> Exercise:
    if exercise_id not in EXERCISES:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(sorted(EXERCISES))}")
    return EXERCISES[exercise_id]


def is_placeholder(value: object) -> bool:
    return value is None or value is Ellipsis


def call(fn: object, *args, **kwargs):
    """The learner's `fn(*args, **kwargs)`; a placeholder result (None or `...`) raises Placeholder."""
    if is_placeholder(fn):
        raise Placeholder("the answer is still `...`.")
    if not callable(fn):
        raise NotYet(f"expected a function, got a {type(fn).__name__}.")
    out = fn(*args, **kwargs)
    if is_placeholder(out):
        name = getattr(fn, "__name__", "your function")
        raise Placeholder(f"`{name}` returned {out!r}: replace the `...` in its body with your code.")
    return out


def verdict(exercise_id: str, answer: object, *context) -> tuple[bool, str]:
    """(passed, the line to print) for `answer`; never raises, whatever the learner's code does."""
    ex = get(exercise_id)
    try:
        if is_placeholder(answer):
            raise Placeholder("the answer is still `...`.")
        message = ex.verify(answer, *context)
    except Placeholder as err:
        return False, f"Not yet: {err} {ex.hint}"
    except NotYet as err:
        return False, f"Not yet: {err}"
    except NotImplementedError:
        return False, f"Not yet: your code still raises NotImplementedError; write it in its place. {ex.hint}"
    except Exception as err:  # the learner's code failed: report it, so Run All goes on
        return False, f"Not yet: your code raised {type(err).__name__}: {err}"
    return True, f"Correct! {message}"
