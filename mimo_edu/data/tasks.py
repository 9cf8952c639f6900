"""Turn a rendered scene into one sample of a task perspective: question, answer, masks, prompt.

Every answer follows from the image, the prompt and the question's wording:
sides compare the structure's centroid with the image centre (structures near
the centre are never asked about), sizes compare its area with its class's
`size_split`, counts are instances inside the named host.
"""

from dataclasses import dataclass

import numpy as np

from mimo_edu.data.prompts import PROMPT_KINDS, prompt_from_mask
from mimo_edu.data.scenes import MODALITY_NAMES, STRUCTURES, Instance, Scene, Structure, structure
from mimo_edu.data.schema import Sample, VisualPrompt
from mimo_edu.data.templates import (
    ABNORMAL,
    COUNT,
    HOST,
    LOCATION,
    MARKED_SIDE,
    MARKED_SIZE,
    PERCEPTION,
    PRESENCE,
    SEG_ONE,
    SEG_TWO,
    SIZE,
    Phrasing,
    a_an,
    grounded_terms,
    lesion_fields,
)

SIDE_MARGIN = 0.08
"""Centroids within this fraction of the width from the centre have no side."""


def side_of(mask: np.ndarray) -> str | None:
    """'left' or 'right' (of the image) for the mask's centroid, None near the vertical midline."""
    w = mask.shape[1]
    offset = (np.flatnonzero(mask) % w).mean() - (w - 1) / 2
    return None if abs(offset) < SIDE_MARGIN * w else ("left" if offset < 0 else "right")


def size_of(mask: np.ndarray, spec: Structure) -> str:
    """'large' when the lesion's area exceeds pi * (size_split * image size) ** 2, else 'small'."""
    return "large" if mask.sum() > np.pi * (spec.size_split * mask.shape[0]) ** 2 else "small"


@dataclass
class _Draft:
    """What a task builder decides: the wording, the facts and the masks its terms ground."""

    phrasing: Phrasing
    fields: dict[str, str]
    masks: dict[str, np.ndarray]  # term -> (H, W) bool
    present: bool = True  # False picks the phrasing's negative answer
    marked: Instance | None = None  # the instance a visual prompt points at


def _union(instances: list[Instance]) -> np.ndarray:
    return np.logical_or.reduce([inst.mask for inst in instances])


def _pick(rng: np.random.Generator, items: list | tuple):
    return items[int(rng.integers(len(items)))]


def _choose(rng: np.random.Generator, weights: dict[str, float], allowed: set[str]) -> str:
    names = [k for k in weights if k in allowed]
    p = np.array([weights[k] for k in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _marked(rng: np.random.Generator, scene: Scene) -> Instance:
    """The structure a visual prompt marks: a lesion half the time when the image has one."""
    lesions = [inst for inst in scene.instances if inst.host]
    anatomy = [inst for inst in scene.instances if not inst.host]
    return _pick(rng, lesions if lesions and rng.random() < 0.5 else anatomy)


def _seg(rng: np.random.Generator, scene: Scene) -> _Draft:
    """Name one structure class (a third of the time two) to segment; several lesions make a plural."""
    names = list(dict.fromkeys(inst.name for inst in scene.instances))
    chosen = [_pick(rng, names)]
    if len(names) > 1 and rng.random() < 0.3:
        chosen.append(_pick(rng, [n for n in names if n != chosen[0]]))
    masks = {}
    for name in chosen:
        found = scene.of(name)
        masks[structure(scene.modality, name).plural if len(found) > 1 else name] = _union(found)
    terms = list(masks)
    if len(terms) == 1:
        return _Draft(_pick(rng, SEG_ONE), {"t": terms[0]}, masks)
    return _Draft(_pick(rng, SEG_TWO), {"t1": terms[0], "t2": terms[1]}, masks)


def _perception(rng: np.random.Generator, scene: Scene) -> _Draft:
    inst = _marked(rng, scene)
    return _Draft(_pick(rng, PERCEPTION), {"t": inst.name}, {inst.name: inst.mask}, marked=inst)


def _qa_seg(rng: np.random.Generator, scene: Scene) -> _Draft:
    """Ask whether a lesion class is in a host, how many, or, when there is just one, its side or size."""
    spec = _pick(rng, [s for s in STRUCTURES[scene.modality] if s.lesion])
    host = _pick(rng, spec.hosts)
    everywhere = scene.of(spec.name)
    found = [inst for inst in everywhere if inst.host == host]
    allowed = {"presence", "count"}
    if len(everywhere) == 1:
        allowed |= {"size"} | ({"side"} if side_of(everywhere[0].mask) else set())
    kind = _choose(rng, {"presence": 0.35, "count": 0.35, "side": 0.15, "size": 0.15}, allowed)
    if kind in ("side", "size"):
        mask = everywhere[0].mask
        fields = {**lesion_fields(spec, 1), "side": side_of(mask) or "", "size": size_of(mask, spec)}
        return _Draft(_pick(rng, LOCATION if kind == "side" else SIZE), fields, {spec.name: mask})
    host_mask = scene.of(host)[0].mask
    masks = {host: host_mask, spec.plural: _union(found) if found else np.zeros_like(host_mask)}
    fields = {"o": host, **lesion_fields(spec, len(found))}
    return _Draft(_pick(rng, PRESENCE if kind == "presence" else COUNT), fields, masks, present=bool(found))


def _prompt_qa(rng: np.random.Generator, scene: Scene) -> _Draft:
    """Ask whether the marked structure is abnormal, or, for a lesion, where it lies and how big it is."""
    inst = _marked(rng, scene)
    spec = structure(scene.modality, inst.name)
    side = side_of(inst.mask)
    allowed = {"abnormal"} | ({"host", "size"} if spec.lesion else set()) | ({"side"} if side else set())
    kind = _choose(rng, {"abnormal": 0.4, "host": 0.2, "size": 0.2, "side": 0.2}, allowed)
    fields = {"t": inst.name, "art": a_an(inst.name), "side": side or "", "size": size_of(inst.mask, spec)}
    masks = {inst.name: inst.mask}
    if kind == "host":
        fields["o"] = inst.host
        masks[inst.host] = scene.of(inst.host)[0].mask
    group = {"abnormal": ABNORMAL, "host": HOST, "size": MARKED_SIZE, "side": MARKED_SIDE}[kind]
    return _Draft(_pick(rng, group), fields, masks, present=kind != "abnormal" or spec.lesion, marked=inst)


BUILDERS = {"seg": _seg, "perception": _perception, "qa_seg": _qa_seg, "prompt_qa": _prompt_qa}


def make_sample(scene: Scene, task: str, rng: np.random.Generator, sample_id: str) -> Sample:
    """One sample of `task` about `scene`; prompt tasks mark one instance with a random prompt kind."""
    draft = BUILDERS[task](rng, scene)
    question, answer = draft.phrasing.fill(draft.present, m=MODALITY_NAMES[scene.modality], **draft.fields)
    terms = grounded_terms(answer)
    prompts: list[VisualPrompt] = []
    if draft.marked is not None:
        prompts.append(prompt_from_mask(draft.marked.mask, _pick(rng, PROMPT_KINDS), rng))
    return Sample(
        id=sample_id,
        image=scene.image,
        modality=scene.modality,
        task=task,
        question=question,
        answer=answer,
        masks=np.stack([draft.masks[term] for term in terms]),  # (K, H, W)
        visual_prompts=prompts,
        terms=terms,
    )
