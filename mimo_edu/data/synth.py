"""MIMOSeg-synth: deterministic samples of the four MIMO task perspectives over eight modalities.

Sample i of a seed depends on (seed, i) only, so samples can be drawn alone and
in any order. Consecutive samples share an image, one sample per task (as
MIMOSeg asks several questions about one image): sample i asks task
`tasks[i % len(tasks)]` about image j = i // len(tasks), whose modality is
`modalities[j % len(modalities)]`. Image j is drawn from the random stream
`default_rng([seed, j, 0])`, the question and prompt from `default_rng([seed, i, 1])`.
With the defaults, any 32 consecutive samples cover every task on every modality.
Samples of one image share its read-only array; copy it before drawing in place.
"""

from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache

import numpy as np
from torch.utils.data import Dataset

from mimo_edu.data import optical, radiology
from mimo_edu.data.scenes import Scene, min_area
from mimo_edu.data.schema import MODALITIES, TASKS, Sample
from mimo_edu.data.tasks import make_sample
from mimo_edu.errors import DataError

RENDERERS: dict[str, Callable[[np.random.Generator, int], Scene]] = {
    "ct": radiology.ct,
    "mri": radiology.mri,
    "xray": radiology.xray,
    "ultrasound": radiology.ultrasound,
    "fundus": optical.fundus,
    "dermoscopy": optical.dermoscopy,
    "endoscopy": optical.endoscopy,
    "histopathology": optical.histopathology,
}
MIN_IMAGE_SIZE = 64
SPLITS = {"train": 0, "val": 1, "test": 2}


def split_seed(split: str, seed: int = 0) -> int:
    """The generator seed of a split: train, val and test never share a seed (for seeds >= 0).

    split_seed("train") == 0, split_seed("val") == 1, split_seed("test") == 2;
    with a base `seed` s they are 3 s, 3 s + 1 and 3 s + 2.
    """
    if split not in SPLITS:
        raise DataError(f"split {split!r} is unknown; use one of {tuple(SPLITS)}")
    return 3 * seed + SPLITS[split]


def render_scene(modality: str, rng: np.random.Generator, image_size: int = 128) -> Scene:
    """One procedural image of `modality` with its structures (anatomy too small to see is dropped).

    The image and masks are read-only: samples share them.
    """
    scene = RENDERERS[modality](rng, image_size)
    scene.instances = [inst for inst in scene.instances if inst.mask.sum() >= min_area(image_size)]
    for array in (scene.image, *(inst.mask for inst in scene.instances)):
        array.flags.writeable = False
    return scene


def _check(image_size: int, tasks: Sequence[str], modalities: Sequence[str]) -> None:
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise DataError(f"image_size {image_size!r} is too small; use an integer of at least {MIN_IMAGE_SIZE} px")
    for name, given, known in (("task", tasks, TASKS), ("modality", modalities, MODALITIES)):
        unknown = [x for x in given if x not in known]
        if unknown or not given:
            raise DataError(f"{name} list {list(given)} is empty or has unknown entries {unknown}; pick from {known}")


def generate_sample(
    seed: int,
    index: int,
    image_size: int = 128,
    tasks: Sequence[str] = TASKS,
    modalities: Sequence[str] = MODALITIES,
) -> Sample:
    """Sample `index` of the stream `seed`: the same arguments always give the same sample."""
    _check(image_size, tasks, modalities)
    image_index, task_index = divmod(index, len(tasks))
    scene = _scene(seed, image_index, image_size, modalities[image_index % len(modalities)])
    rng = np.random.default_rng([seed, index, 1])
    return make_sample(scene, tasks[task_index], rng, f"synth-{seed}-{index:06d}")


@lru_cache(maxsize=16)
def _scene(seed: int, image_index: int, image_size: int, modality: str) -> Scene:
    """Image `image_index` of the stream `seed`, cached so the samples that share it render it once."""
    return render_scene(modality, np.random.default_rng([seed, image_index, 0]), image_size)


def iter_samples(
    num: int,
    seed: int,
    image_size: int = 128,
    tasks: Sequence[str] = TASKS,
    modalities: Sequence[str] = MODALITIES,
) -> Iterator[Sample]:
    """Samples 0 .. num - 1 of the stream `seed`, one at a time."""
    for index in range(num):
        yield generate_sample(seed, index, image_size, tasks, modalities)


def generate_samples(
    num: int,
    seed: int,
    image_size: int = 128,
    tasks: Sequence[str] = TASKS,
    modalities: Sequence[str] = MODALITIES,
) -> list[Sample]:
    """`num` samples of the stream `seed` as a list (see `iter_samples` for a lazy form)."""
    return list(iter_samples(num, seed, image_size, tasks, modalities))


class MIMOSegSynth(Dataset):
    """A torch Dataset that renders sample i from (seed, i) on demand: no disk, no memory, any length."""

    def __init__(
        self,
        num: int,
        seed: int = 0,
        image_size: int = 128,
        tasks: Sequence[str] = TASKS,
        modalities: Sequence[str] = MODALITIES,
    ) -> None:
        _check(image_size, tasks, modalities)
        self.num, self.seed, self.image_size = num, seed, image_size
        self.tasks, self.modalities = tuple(tasks), tuple(modalities)

    def __len__(self) -> int:
        return self.num

    @property
    def samples_per_image(self) -> int:
        """Consecutive samples that share one image (one per task)."""
        return len(self.tasks)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.num:
            raise IndexError(f"sample {index} is outside this {self.num}-sample dataset")
        return generate_sample(self.seed, index, self.image_size, self.tasks, self.modalities)
