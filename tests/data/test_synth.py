"""MIMOSeg-synth generation: coverage, grounding, prompts, answers that follow from the image, determinism."""

import re

import numpy as np
import pytest
from scipy import ndimage

from mimo_edu.data import (
    MODALITIES,
    SEG_TOKEN,
    STRUCTURES,
    TASKS,
    MIMOSegSynth,
    VisualPrompt,
    corpus_texts,
    generate_sample,
    generate_samples,
    prompt_from_mask,
    prompt_region,
    scribble_mask,
    split_seed,
    structure_names,
    validate_prompt,
)
from mimo_edu.data.scenes import min_area, structure
from mimo_edu.data.synth import render_scene
from mimo_edu.data.templates import (
    ABNORMAL,
    COUNT,
    LOCATION,
    MARKED_SIDE,
    MARKED_SIZE,
    PRESENCE,
    SIZE,
    TASK_PHRASINGS,
    Phrasing,
    a_an,
)
from mimo_edu.errors import DataError, PromptError


@pytest.fixture(scope="module")
def samples():
    return generate_samples(320, seed=11)


def _plurals(modality: str) -> set[str]:
    return {s.plural for s in STRUCTURES[modality] if s.lesion}


def _names(modality: str) -> set[str]:
    return {s.name for s in STRUCTURES[modality]} | {s.plural for s in STRUCTURES[modality] if s.lesion}


def test_every_modality_and_task_is_produced(samples):
    assert {(s.modality, s.task) for s in samples[:32]} == {(m, t) for m in MODALITIES for t in TASKS}
    for modality in MODALITIES:
        assert len(structure_names(modality)) >= 4
        lesions = [s for s in STRUCTURES[modality] if s.lesion]
        assert lesions and len(lesions) < len(STRUCTURES[modality])  # anatomy and lesions
        seen = {t for s in samples if s.modality == modality for t in s.terms}
        assert seen <= _names(modality)
        assert len(seen & set(structure_names(modality))) >= 4


def test_every_seg_token_has_its_mask(samples):
    for s in samples:
        k = s.answer.count(SEG_TOKEN)
        assert k >= 1 and s.masks.shape == (k, 128, 128) and s.masks.dtype == bool
        assert len(s.terms) == k
        assert s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8
        areas = s.masks.sum(axis=(1, 2))
        found_none = [s.task == "qa_seg" and t in _plurals(s.modality) for t in s.terms]  # "cysts [SEG]: none"
        assert all(a >= min_area(128) or (a == 0 and none) for a, none in zip(areas, found_none, strict=True))
        assert "<image>" not in s.question and "<image>" not in s.answer
        # every phrase is grounded right after it, and names the term its mask belongs to
        assert s.answer.count("</p>") == len(re.findall(r"</p> \[SEG\]", s.answer))
        for term in re.findall(r"<p>(.*?)</p>", s.answer):
            assert term in s.terms
    assert any(len(s.terms) >= 2 for s in samples if s.task == "seg")
    assert any(len(s.terms) >= 2 for s in samples if s.task == "qa_seg")


def _phrasing(question: str, groups: dict) -> tuple[str, Phrasing] | None:
    """The phrasing group and phrasing whose question wording produced `question`."""
    for name, group in groups.items():
        for phrasing in group:
            pattern = re.escape(phrasing.question).replace(r"\{", "{").replace(r"\}", "}")
            if re.fullmatch(re.sub(r"{\w+}", ".+", pattern), question):
                return name, phrasing
    return None


def test_answers_follow_from_the_image(samples):
    """Re-derive side, size, count and abnormality answers from the masks alone."""
    groups = {"side": LOCATION + MARKED_SIDE, "size": SIZE + MARKED_SIZE, "count": COUNT, "abnormal": ABNORMAL}
    checked = dict.fromkeys(groups, 0)
    for s in samples:
        found = _phrasing(s.question, groups)
        if found is None:
            continue
        kind, phrasing = found
        checked[kind] += 1
        term, mask = s.terms[0], s.masks[0]
        spec = structure(s.modality, term)
        if kind == "side":
            cx = np.nonzero(mask)[1].mean()
            assert re.search(rf"\b{'left' if cx < 63.5 else 'right'}\b", s.answer.replace(term, "")), s.answer
            assert abs(cx - 63.5) > 8
        elif kind == "size":
            large = mask.sum() > np.pi * (spec.size_split * 128) ** 2
            assert re.search(rf"\b{'large' if large else 'small'}\b", s.answer), s.answer
        elif kind == "count":
            lesions = [m for m, t in zip(s.masks, s.terms, strict=True) if structure(s.modality, t).lesion]
            n = ndimage.label(lesions[0], np.ones((3, 3)))[1] if lesions else 0
            said = re.search(r"\b[1-3]\b", s.answer)
            assert (int(said.group(0)) if said else 0) == n, s.answer
        else:
            assert s.answer == phrasing.fill(spec.lesion, t=term, art=a_an(term))[1], s.answer
    assert min(checked.values()) >= 3, checked


def test_visual_prompts_lie_inside_their_structure(samples):
    prompted = [s for s in samples if s.task in ("perception", "prompt_qa")]
    assert {p.kind for s in prompted for p in s.visual_prompts} == {"point", "box", "scribble"}
    for s in samples:
        assert bool(s.visual_prompts) == (s.task in ("perception", "prompt_qa"))
    for s in prompted:
        (prompt,) = s.visual_prompts
        validate_prompt(prompt, 128, 128)
        # the marked structure is the mask of the first term of perception answers; any mask for prompt QA
        candidates = [s.masks[0]] if s.task == "perception" else list(s.masks)
        assert any(_inside(prompt, mask) for mask in candidates), (s.id, prompt)


def _inside(prompt: VisualPrompt, mask: np.ndarray) -> bool:
    if prompt.kind == "point":
        x, y = prompt.points.astype(int).T
        return bool(mask[y[0], x[0]] and not mask[y[1:], x[1:]].any() and prompt.labels[0] == 1)
    if prompt.kind == "scribble":
        stroke = scribble_mask(prompt, *mask.shape)
        return bool(stroke.any() and not (stroke & ~mask).any())
    # the tight bounding box with each edge moved by at most 10% of the side (+1 px), its centre kept inside
    ys, xs = np.nonzero(mask)
    tight = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    slack = np.ceil(0.1 * (tight[2:] - tight[:2] + 1)) + 1  # (x, y)
    centre = prompt_region(prompt, *mask.shape)[(ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2]
    return bool(centre and (np.abs(prompt.box - tight) <= np.tile(slack, 2)).all())


def test_prompts_from_masks_of_every_structure():
    rng = np.random.default_rng(0)
    for modality in MODALITIES:
        scene = render_scene(modality, np.random.default_rng(5), 96)
        for inst in scene.instances:
            for kind in ("point", "box", "scribble"):
                assert _inside(prompt_from_mask(inst.mask, kind, rng), inst.mask), (modality, inst.name, kind)


def test_same_seed_same_samples_and_random_access():
    a, b = generate_samples(12, seed=4), generate_samples(12, seed=4)
    for x, y in zip(a, b, strict=True):
        assert x.image.tobytes() == y.image.tobytes() and x.masks.tobytes() == y.masks.tobytes()
        assert (x.question, x.answer, x.terms) == (y.question, y.answer, y.terms)
        assert [p.to_dict() for p in x.visual_prompts] == [p.to_dict() for p in y.visual_prompts]
    for i in (0, 7, 11):
        alone = generate_sample(4, i)
        assert alone.image.tobytes() == a[i].image.tobytes() and alone.answer == a[i].answer
        assert MIMOSegSynth(12, seed=4)[i].answer == a[i].answer
    c = generate_samples(12, seed=5)
    assert all(x.image.tobytes() != z.image.tobytes() for x, z in zip(a, c, strict=True))


def test_images_vary_within_a_modality():
    ct = [s for s in generate_samples(96, seed=2, tasks=("seg",), modalities=("ct",))]
    livers = np.stack([s.masks[0] for s in ct if s.terms == ["liver"]])
    assert len(livers) >= 5
    centroids = np.array([np.argwhere(m).mean(axis=0) for m in livers])
    assert centroids.std(axis=0).min() > 1.0  # the liver moves
    assert len({int(m.sum()) for m in livers}) == len(livers)  # and changes size
    assert len({s.answer for s in ct}) >= 5  # answers vary


def test_image_sizes_and_subsets():
    for size in (64, 96, 160):
        s = generate_sample(0, 5, image_size=size)
        assert s.image.shape == (size, size, 3) and s.masks.shape[1:] == (size, size)
    only = generate_samples(8, 0, tasks=("perception",), modalities=("fundus", "xray"))
    assert {s.task for s in only} == {"perception"} and {s.modality for s in only} == {"fundus", "xray"}
    with pytest.raises(DataError, match="at least 64"):
        generate_samples(1, 0, image_size=32)
    with pytest.raises(DataError, match="unknown entries"):
        MIMOSegSynth(4, tasks=("vqa",))
    with pytest.raises(IndexError):
        MIMOSegSynth(4)[4]


def test_split_seeds_differ():
    seeds = {split: split_seed(split) for split in ("train", "val", "test")}
    assert len(set(seeds.values())) == 3
    assert split_seed("val", 1) not in seeds.values()
    with pytest.raises(DataError, match="unknown"):
        split_seed("dev")


def test_abnormality_answers_name_the_structure_before_the_verdict():
    """Lesion and normal answers agree word for word up to the term's [SEG]: nothing before it gives the verdict."""
    for phrasing in ABNORMAL:
        lesion, normal = phrasing.answer.split("[SEG]"), phrasing.negative.split("[SEG]")
        assert lesion[0] == normal[0] and "{t}" in lesion[0], phrasing
        assert "lesion" in lesion[1] and "normal" in normal[1], phrasing
        polarity = "Yes" if re.search(r"abnormal|lesion|disease", phrasing.question) else "No"
        assert polarity in lesion[1] and ({"Yes": "No", "No": "Yes"}[polarity]) in normal[1], phrasing


def test_what_a_mask_shows_is_said_after_its_seg(samples):
    """Counts, yes/no, sides and sizes of lesions follow the [SEG] whose mask shows them (the model reads that
    mask back first); the lesion is named in the question's plural whatever the count, its mask empty at 0."""
    for phrasing in PRESENCE + COUNT + LOCATION + SIZE + MARKED_SIZE + MARKED_SIDE:
        for answer in {phrasing.answer, phrasing.negative} - {""}:
            head, _, tail = answer.rpartition("[SEG]")
            assert not re.search(r"\{(n|side|size)\}|\b(Yes|No|none)\b", head), answer
            assert re.search(r"\{(n|side|size)\}|\b(Yes|No|none)\b", tail), answer
            if phrasing in PRESENCE + COUNT:
                assert "<p>{ls}</p> [SEG]" in answer and "{al}" not in answer and "{l}" not in answer, answer
    qa = [s for s in samples if s.task == "qa_seg" and "how many" in s.question.lower()]
    assert qa
    for s in qa:
        lesion = next(i for i, t in enumerate(s.terms) if t in _plurals(s.modality))
        count = int(re.findall(r"\d+", s.answer)[-1])
        assert ndimage.label(s.masks[lesion], structure=np.ones((3, 3)))[1] == count, s.answer
    assert any(not s.masks[next(i for i, t in enumerate(s.terms) if t in _plurals(s.modality))].any() for s in qa)


def test_phrasings_are_varied():
    for task in TASKS:
        phrasings = TASK_PHRASINGS[task]
        assert len({p.question for p in phrasings}) >= 5 and len({p.answer for p in phrasings}) >= 5


def test_corpus_covers_every_generated_word(samples):
    corpus = corpus_texts()
    vocab = {w for text in corpus for w in re.findall(r"\w+|[^\w\s]", text)}
    assert len(vocab) < 300
    for s in samples:
        assert s.question in corpus and s.answer in corpus
    for modality in MODALITIES:
        assert all(name.split()[-1] in vocab for name in structure_names(modality))


def test_validate_prompt_rejects_bad_prompts():
    good = VisualPrompt("point", points=np.array([[3, 4]], np.float32), labels=np.array([1]))
    validate_prompt(good, 10, 10)
    bad = [
        (VisualPrompt("point", points=np.array([[12, 4]], np.float32), labels=np.array([1])), "outside"),
        (VisualPrompt("point", points=np.array([[3, 4]], np.float32), labels=np.array([0])), "no positive"),
        (VisualPrompt("box", box=np.array([5, 5, 2, 8], np.float32)), "inverted or has zero area"),
        (VisualPrompt("box", box=np.array([2, 5, 2, 8], np.float32)), "inverted or has zero area"),
        (VisualPrompt("box", box=np.array([2, 5, 4, 10], np.float32)), "outside"),
        (VisualPrompt("scribble", points=np.zeros((0, 2), np.float32)), "no points"),
        (VisualPrompt("scribble", points=np.array([[1.5, 1.5]], np.float32), width=0.5), "covers no pixel"),
        (VisualPrompt("lasso", points=np.array([[1, 1]], np.float32)), "unknown"),
    ]
    for prompt, message in bad:
        with pytest.raises(PromptError, match=message):
            validate_prompt(prompt, 10, 10)
    with pytest.raises(PromptError, match="empty mask"):
        prompt_from_mask(np.zeros((10, 10), bool), "box", np.random.default_rng(0))
