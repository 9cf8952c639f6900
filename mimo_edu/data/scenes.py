"""What a procedural scene is: named structures per modality, instances with masks, lesion placement.

A modality renderer (in `radiology.py` and `optical.py`) draws one image and
returns a `Scene`: the uint8 image and one `Instance` per structure it drew.
Anatomy appears once per image (its mask may have several parts, like
vessels); lesions appear 0 to `max_count` times, each instance inside one of
its `hosts`.
"""

from dataclasses import dataclass

import numpy as np

from mimo_edu.data.shapes import blob, wobble


@dataclass(frozen=True)
class Structure:
    """A named structure class of one modality.

    Lesion radii are fractions of the image size: small lesions have radii in
    `small`, large ones in `large`, and a lesion is called large when its area
    exceeds pi * (size_split * image_size) ** 2.
    """

    name: str
    plural: str = ""
    hosts: tuple[str, ...] = ()  # anatomy a lesion lies in; empty for anatomy
    max_count: int = 0
    small: tuple[float, float] = (0.0, 0.0)
    large: tuple[float, float] = (0.0, 0.0)

    @property
    def lesion(self) -> bool:
        return bool(self.hosts)

    @property
    def size_split(self) -> float:
        return (self.small[1] + self.large[0]) / 2.0


def _lesion(name: str, plural: str, hosts: tuple[str, ...], small, large, max_count: int = 3) -> Structure:
    return Structure(name, plural, hosts, max_count, small, large)


STRUCTURES: dict[str, tuple[Structure, ...]] = {
    "ct": (
        Structure("liver"), Structure("spleen"), Structure("left kidney"), Structure("right kidney"),
        Structure("spine"), _lesion("cyst", "cysts", ("liver",), (0.035, 0.05), (0.075, 0.095)),
    ),
    "mri": (
        Structure("skull"), Structure("brain"), Structure("ventricles"),
        _lesion("tumour", "tumours", ("brain",), (0.04, 0.055), (0.085, 0.11), max_count=2),
    ),
    "xray": (
        Structure("left lung"), Structure("right lung"), Structure("heart"),
        _lesion("nodule", "nodules", ("left lung", "right lung"), (0.035, 0.045), (0.065, 0.08)),
    ),
    "ultrasound": (
        Structure("liver"), Structure("gallbladder"), Structure("vessel"),
        _lesion("stone", "stones", ("gallbladder",), (0.03, 0.038), (0.05, 0.06), max_count=2),
    ),
    "fundus": (
        Structure("retina"), Structure("optic disc"), Structure("macula"), Structure("vessels"),
        _lesion("haemorrhage", "haemorrhages", ("retina",), (0.035, 0.045), (0.065, 0.085)),
        _lesion("exudate", "exudates", ("retina",), (0.03, 0.04), (0.055, 0.07)),
    ),
    "dermoscopy": (
        Structure("skin"), Structure("naevus"), Structure("hair"),
        _lesion("melanoma", "melanomas", ("skin",), (0.05, 0.065), (0.1, 0.13), max_count=2),
    ),
    "endoscopy": (
        Structure("mucosa"), Structure("lumen"), Structure("folds"),
        _lesion("polyp", "polyps", ("mucosa",), (0.04, 0.055), (0.08, 0.1), max_count=2),
        _lesion("ulcer", "ulcers", ("mucosa",), (0.04, 0.055), (0.08, 0.1), max_count=2),
    ),
    "histopathology": (
        Structure("stroma"), Structure("glands"), Structure("fat"),
        _lesion("carcinoma", "carcinomas", ("stroma",), (0.045, 0.06), (0.09, 0.115), max_count=2),
    ),
}

MODALITY_NAMES = {
    "ct": "CT", "mri": "MRI", "xray": "X-ray", "ultrasound": "ultrasound", "fundus": "fundus",
    "dermoscopy": "dermoscopy", "endoscopy": "endoscopy", "histopathology": "histopathology",
}
"""How questions name each modality ("this CT image")."""

MIN_AREA_128 = 40
"""Smallest instance mask, in pixels at 128 px (scaled by area for other sizes)."""
INSIDE_HOST = 0.9
"""Share of a lesion's drawn blob that lies inside its host; the instance keeps only that part."""


def structure(modality: str, term: str) -> Structure:
    """The `Structure` of `modality` that `term` names, in the singular or the plural."""
    return next(s for s in STRUCTURES[modality] if term in (s.name, s.plural))


def lesion_named(term: str) -> Structure | None:
    """The lesion class `term` names, singular or plural, in any modality (lesion names are unique); else None."""
    return next((s for specs in STRUCTURES.values() for s in specs if s.lesion and term in (s.name, s.plural)), None)


def structure_names(modality: str) -> list[str]:
    """The structure classes a modality's images contain, anatomy first, then lesions."""
    return [s.name for s in STRUCTURES[modality]]


@dataclass
class Instance:
    """One drawn structure: its class name, pixel mask and, for lesions, the host it lies in."""

    name: str
    mask: np.ndarray  # (H, W) bool
    host: str = ""


@dataclass
class Scene:
    """One rendered image with every structure it contains."""

    modality: str
    image: np.ndarray  # (H, W, 3) uint8
    instances: list[Instance]

    def of(self, name: str) -> list[Instance]:
        """The instances of class `name` (empty when absent)."""
        return [inst for inst in self.instances if inst.name == name]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1], grey (H, W) or channels-first colour (3, H, W), to (H, W, 3) uint8."""
    out = np.clip(img * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2) if out.ndim == 2 else np.ascontiguousarray(out.transpose(1, 2, 0))


def min_area(size: int) -> int:
    return max(int(MIN_AREA_128 * (size / 128) ** 2), 4)


def place_lesions(
    rng: np.random.Generator,
    spec: Structure,
    hosts: dict[str, np.ndarray],
    occupied: np.ndarray,
    roundness: float = 0.15,
) -> list[Instance]:
    """Draw 0..max_count non-overlapping instances of lesion `spec` inside its host masks.

    `occupied` (H, W) bool marks pixels lesions must avoid; it is updated in place, with a
    2 px margin round each new lesion so that no two lesions touch (counts stay visible).
    """
    h, w = occupied.shape
    count = int(rng.choice(spec.max_count + 1, p=_count_probs(spec.max_count)))
    placed: list[Instance] = []
    for _ in range(count):
        radius = rng.uniform(*(spec.large if rng.random() < 0.5 else spec.small)) * h
        free = {host: np.flatnonzero(hosts[host] & ~occupied) for host in spec.hosts}
        for _attempt in range(12):
            host = spec.hosts[rng.integers(len(spec.hosts))]
            if len(free[host]) == 0:
                continue
            cy, cx = divmod(int(free[host][rng.integers(len(free[host]))]), w)
            rx = radius * rng.uniform(0.85, 1.15)
            ry, angle, waves = radius * radius / rx, rng.uniform(0, np.pi), wobble(rng, roundness)
            mask = blob(h, w, cx, cy, rx, ry, angle, waves)
            area = int(mask.sum())
            inside = mask & hosts[host]
            if area >= min_area(h) and inside.sum() >= INSIDE_HOST * area and not (mask & occupied).any():
                occupied |= blob(h, w, cx, cy, rx + 2, ry + 2, angle, waves)  # a margin keeps lesions apart
                placed.append(Instance(spec.name, inside, host))
                break
    return placed

def _count_probs(max_count: int) -> np.ndarray:
    """Probability of 0, 1, ... max_count lesions: a third absent, the rest spread evenly."""
    return np.array([1 / 3] + [2 / 3 / max_count] * max_count)
