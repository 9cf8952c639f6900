"""The exercises: unique ids and titles, a solution for each, checks that pass the solution and hint at
everything else, and notebooks that show a placeholder where the answer goes."""

import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from mimo_edu.data.scenes import STRUCTURES
from mimo_edu.exercises import EXERCISES, QUESTIONS, check, exercise, quiz_answer, solution, verdict
from mimo_edu.exercises.quiz import LETTERS, quiz_markdown
from mimo_edu.exercises.registry import ID_PATTERN
from mimo_edu.solutions import SOLUTIONS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {p.stem[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
IDS = sorted(EXERCISES)
WRITTEN = sorted(set(EXERCISES) - set(QUESTIONS))  # exercises answered with a function; QUESTIONS with a letter
BUILD_IT = {"03": "03.1", "04": "04.2", "05": "05.3", "06": "06.2"}  # a piece of MIMO, checked against the package


# ---- the registry ------------------------------------------------------------------------------------


def test_ids_and_titles_are_unique_and_every_exercise_has_one_solution():
    assert len(IDS) >= 20
    assert all(ID_PATTERN.match(i) for i in IDS)
    titles = [e.title for e in EXERCISES.values()]
    assert len(set(titles)) == len(titles)
    assert set(SOLUTIONS) == set(EXERCISES)
    for notebook in {e.notebook for e in EXERCISES.values()}:  # numbered 1, 2, ... within each notebook
        numbers = sorted(int(i.split(".")[1]) for i in IDS if i.startswith(notebook + "."))
        assert numbers == list(range(1, len(numbers) + 1)), notebook


def test_the_build_it_exercises_compare_with_the_package():
    for notebook, exercise_id in BUILD_IT.items():
        assert EXERCISES[exercise_id].notebook == notebook
    assert "seg_features" in verdict("03.1", solution("03.1"))[1]
    assert "InputAligner" in verdict("04.2", solution("04.2"))[1]
    assert "peft" in verdict("05.3", solution("05.3"))[1]
    assert "wilson_interval" in verdict("06.2", solution("06.2"))[1]


def test_exercise_decorator_keeps_the_learners_function_unless_solutions():
    def mine(j):
        ...

    assert exercise("06.1", False)(mine) is mine
    assert exercise("06.1", True)(mine) is solution("06.1")
    with pytest.raises(KeyError, match="no exercise '99.9'"):
        exercise("99.9", False)


def test_check_prints_one_line_and_returns_whether_it_passed(capsys):
    assert check("06.1", solution("06.1")) is True
    assert check("06.1", ...) is False
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Correct! ") and lines[1].startswith("Not yet: ")


# ---- every check, on its solution, on placeholders and on wrong answers -----------------------------


@pytest.fixture(scope="module")
def contexts():
    """What the notebooks pass to the slower checks, built once (the others build their own inputs)."""
    from mimo_edu.data import generate_sample, split_seed
    from mimo_edu.foundations.paths import foundations_root
    from mimo_edu.foundations.run import load_objective
    from mimo_edu.interactive import App, Predictor
    from mimo_edu.model import build_mimo
    from mimo_edu.scaling import paper_model_counts, paper_setup

    counts, shape = paper_model_counts()
    paper = (counts, shape, paper_setup())
    paper_counts = build_mimo("paper", device="meta").parameter_counts()
    app = App(Predictor.from_pretrained())
    sample = generate_sample(split_seed("test"), 0)
    app.set_image(sample.image, "exercise")
    app.boxes.bboxes = [{"x": 100, "y": 60, "width": 180, "height": 220, "label": "box"}]
    return {"02.1": (load_objective("clip", foundations_root() / "clip"),), "03.2": (paper_counts,),
            "03.3": (paper_counts,), "07.1": (app,), "07.2": (app,), "07.3": (sample.masks[0],),
            "08.1": paper, "08.2": paper, "08.3": paper}


def _lisa_seg(hidden, ids, seg_id, open_id, close_id):
    return hidden[torch.nonzero(ids[1:] == seg_id).flatten()]


def _square_points(points, labels, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.logical_or.reduce([(abs(xx - x) <= 2) & (abs(yy - y) <= 2) for (x, y), lab in zip(points, labels, strict=True)
                                 if lab == 1])


def _wald(hits, n, z):
    p = hits / n
    half = z * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def _dice_of_logits(logits, targets):
    from mimo_edu.exercises.training import _dice

    return _dice(logits, targets)


def _unscaled_aligner(aligner, embeds, visual_mask, instruction_mask):
    from mimo_edu.exercises.prompts import _reference

    return _reference(aligner, embeds, visual_mask, instruction_mask, scale=False)


WRONG = {  # a plausible mistake for each exercise, and (optionally) words its hint must contain
    "01.1": (lambda answer: 1, ""),
    "01.2": (lambda name: solution("01.2")(name)[:1], "MODALITIES order"),
    "01.3": (_square_points, "2.5"),
    "02.1": (lambda patches, coverage: patches.mean(0), "coverage"),
    "03.1": (_lisa_seg, "LISA's rule"),
    "03.2": (lambda r: 32 * 2 * r * 4096, "r * in"),
    "03.3": (lambda counts: [p for p, (t, tr) in counts.items() if tr < t], "trainable"),
    "04.1": (lambda x0, y0, x1, y1: [(r, c) for r in range(y0 // 8, y1 // 8) for c in range(x0 // 8, x1 // 8)], "y // 8"),
    "04.2": (_unscaled_aligner, "1 / sqrt(d)"),
    "04.3": (lambda H, dim: solution("04.3")(H, dim) - 1, "LayerNorm"),
    "05.1": (lambda step, cfg: cfg.lr * (1 + math.cos(math.pi * step / cfg.max_steps)) / 2, "warmup"),
    "05.2": (_dice_of_logits, "sigmoid"),
    "05.3": (lambda W, A, B, alpha, r: W + B @ A, "alpha / r"),
    "05.4": (lambda bs, accum, gpus, samples: (bs * accum * gpus, samples // (bs * accum * gpus)), "round up"),
    "06.1": (lambda j: j, "I + U"),
    "06.2": (_wald, "Wald"),
    "06.3": (lambda ms: 1 / np.mean([len(STRUCTURES[m]) for m in ms]), "average"),
    "07.1": (lambda b, s: (b["x"] / s, b["y"] / s, b["x"] / s + b["width"], b["y"] / s + b["height"]), "scale"),
    "07.2": (lambda encoder, ask, questions: 0, "0 and 3"),
    "07.3": (lambda mask: solution("07.3")(mask.T), "columns"),
    "08.1": (lambda size, patch, prompts, text: (size // patch) ** 2 + text, "6 per prompt"),
    "08.2": (lambda trainable, gpus: 8 * trainable / 2**30, "number of GPUs"),
    "08.3": (lambda mfu, days, target: mfu * target / days, "MFU"),
}


@pytest.mark.parametrize("exercise_id", WRITTEN)
def test_check_passes_the_solution_and_hints_at_anything_else(exercise_id, contexts):
    context = contexts.get(exercise_id, ())
    passed, line = verdict(exercise_id, solution(exercise_id), *context)
    assert passed and line.startswith("Correct! ") and "\n" not in line, line

    def placeholder(*args):
        ...  # your code here

    def unwritten(*args):
        raise NotImplementedError

    def broken(*args):
        return 1 / 0

    for answer, words in ((..., "still `...`"), (None, "still `...`"), (placeholder, "returned None"),
                          (unwritten, "NotImplementedError"), (broken, "ZeroDivisionError")):
        passed, line = verdict(exercise_id, answer, *context)
        assert not passed and line.startswith("Not yet: ") and words in line, (answer, line)
    wrong, words = WRONG[exercise_id]
    passed, line = verdict(exercise_id, wrong, *context)
    assert not passed and line.startswith("Not yet: ") and words in line, line


# ---- the notebooks show the exercises, with placeholders --------------------------------------------


@pytest.mark.parametrize("exercise_id", WRITTEN)
def test_notebook_shows_the_exercise_with_a_placeholder(exercise_id):
    ex = EXERCISES[exercise_id]
    cells = nbformat.read(NOTEBOOKS[ex.notebook], as_version=4).cells
    heading = [c for c in cells if c.cell_type == "markdown" and ex.heading in c.source]
    assert len(heading) == 1, f"{ex.heading!r} missing from {NOTEBOOKS[ex.notebook].name}"
    code = [c.source for c in cells if c.cell_type == "code"]
    learner = [s for s in code if f'@exercise("{exercise_id}", solutions)' in s]
    assert len(learner) == 1
    body = learner[0].split(f'@exercise("{exercise_id}", solutions)')[1]
    assert re.search(r'\n    """[^\n]*"""\n    \.\.\.  # your code here$', body), body  # the answer is not there
    assert sum(f'check("{exercise_id}",' in s for s in code) == 1


def test_every_exercise_in_the_notebooks_is_registered():
    found = set()
    for path in NOTEBOOKS.values():
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        found |= set(re.findall(r'(?:@exercise|check)\("(\d\d\.\d+)"', text))
        assert "### Exercise:" not in text and not re.search(r"### Exercise \d+:", text), path.name
    assert found == set(EXERCISES)


# ---- the recap's self-check: one letter per question, derived from the package ------------------------


@pytest.mark.parametrize("question_id", sorted(QUESTIONS))
def test_quiz_accepts_its_letter_only_and_explains_every_other(question_id):
    right = solution(question_id)
    assert QUESTIONS[question_id].fact()[0] == right, "solutions.py and the package disagree"
    assert set(QUESTIONS[question_id].options) == set(LETTERS)
    for letter in LETTERS:
        passed, line = verdict(question_id, letter.upper() if letter == right else letter)
        assert passed == (letter == right), (letter, line)
        assert line.startswith("Correct! " if passed else f"Not yet: ({letter}) ") and "\n" not in line
    for answer, words in ((..., "still `...`"), (None, "still `...`"), ("e", "one of the letters"), (2, "not 2")):
        passed, line = verdict(question_id, answer)
        assert not passed and line.startswith("Not yet: ") and words in line, line
    assert quiz_answer(question_id, ..., True) == right and quiz_answer(question_id, "a") == "a"


@pytest.mark.parametrize("question_id", sorted(QUESTIONS))
def test_notebook_shows_the_question_with_an_open_answer(question_id):
    cells = nbformat.read(NOTEBOOKS[QUESTIONS[question_id].id[:2]], as_version=4).cells
    assert sum(c.cell_type == "markdown" and c.source == quiz_markdown(question_id) for c in cells) == 1
    k = question_id.split(".")[1]
    code = [c.source for c in cells if c.cell_type == "code" and f'check("{question_id}",' in c.source]
    assert code == [f'q{k} = ...  # your answer: "a", "b", "c" or "d"\n'
                    f'check("{question_id}", quiz_answer("{question_id}", q{k}, solutions))']
