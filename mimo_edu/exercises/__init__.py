"""The course's exercises: each is a function the learner writes, and a check that runs it.

In a notebook an exercise is two cells:

    @exercise("03.1", solutions)
    def seg_feature(hidden, ids, seg_id, open_id, close_id):
        ...  # your code here

    check("03.1", seg_feature)

`check` runs the learner's function on test inputs (for the build-it exercises: random inputs, compared
with the package's own implementation) and prints one line, `Correct! ...` or `Not yet: <hint>`. It
never raises, so Run All reaches the end of a notebook whose exercises are still open, and it returns
whether the answer passed.

`exercise(id, solutions)` leaves the learner's function alone unless `solutions` is true; then it puts
the course's solution (`mimo_edu/solutions.py`) in its place. Every notebook's parameters cell has
`solutions = False`; `papermill -p solutions True` (and the tests) run the course solved.

Ids are "NN.k", the k-th exercise of notebook NN; the notebook's heading is "### Exercise NN.k: title".
"""

from collections.abc import Callable

# Importing the topic modules registers their checks, in course order.
from mimo_edu.exercises import (  # noqa: F401
    data,
    evaluation,
    foundations,
    interactive,
    model,
    prompts,
    quiz,
    scaling,
    training,
)
from mimo_edu.exercises.quiz import QUESTIONS, quiz_answer
from mimo_edu.exercises.registry import EXERCISES, Exercise, NotYet, get, verdict

__all__ = ["EXERCISES", "QUESTIONS", "Exercise", "NotYet", "check", "exercise", "quiz_answer", "solution", "verdict"]


def check(exercise_id: str, answer: object, *context) -> bool:
    """Print the verdict on `answer` ("Correct! ..." or "Not yet: ...") and return whether it passed."""
    passed, line = verdict(exercise_id, answer, *context)
    print(line)
    return passed


def solution(exercise_id: str) -> Callable:
    """The course's solution of exercise `exercise_id` (a function with the exercise's signature)."""
    from mimo_edu.solutions import SOLUTIONS

    get(exercise_id)
    return SOLUTIONS[exercise_id]


def exercise(exercise_id: str, use_solution: bool = False) -> Callable[[Callable], Callable]:
    """Decorator for the learner's function: kept as written, or replaced by the solution when `use_solution`."""
    get(exercise_id)  # an unknown id fails here, where it is written

    def wrap(fn: Callable) -> Callable:
        return solution(exercise_id) if use_solution else fn

    return wrap
