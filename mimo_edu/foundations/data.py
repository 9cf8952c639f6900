"""What the foundations learn from: MIMOSeg-synth scenes of the train split, their names and texts.

Scene j of a stream is image j of MIMOSeg-synth's samples from that seed (`scene`): pretraining sees the
same train images as the MIMO stage and never an image of the val or test seeds. Each item draws its
own random choices from `default_rng([seed, index, 3])`, so an item depends on (seed, index) only and
a resumed run replays it exactly.
"""

import numpy as np
import torch
from torch.utils.data import Dataset

from mimo_edu.data.scenes import MODALITY_NAMES, STRUCTURES, Scene
from mimo_edu.data.schema import MODALITIES
from mimo_edu.data.synth import _scene, split_seed

STRUCTURE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.name for m in MODALITIES for s in STRUCTURES[m]))
"""Every structure class name, once (liver is both a CT and an ultrasound structure)."""


def modality_caption(modality: str) -> str:
    """The text nano-CLIP pairs with a whole image, e.g. "a CT image" [course choice]."""
    return f"a {MODALITY_NAMES[modality]} image"


def structure_caption(name: str) -> str:
    """The text nano-CLIP pairs with a structure's region, e.g. "the left kidney" [course choice]."""
    return f"the {name}"


def scene(stream: int, index: int, image_size: int = 128) -> Scene:
    """Image `index` of the MIMOSeg-synth stream `stream` (e.g. `split_seed("train")`), exactly as the
    samples draw it; its modality is MODALITIES[index % 8]."""
    return _scene(stream, index, image_size, MODALITIES[index % len(MODALITIES)])


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255


class SceneDataset(Dataset):
    """`num` scenes of a stream (default: the train split's); `item(scene, rng)` makes scene i an item."""

    def __init__(self, num: int, item=None, image_size: int = 128, stream: int | None = None) -> None:
        self.num, self.item, self.image_size = num, item, image_size
        self.stream = split_seed("train") if stream is None else stream

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int):
        if not 0 <= index < self.num:
            raise IndexError(f"scene {index} is outside this {self.num}-scene dataset")
        s = scene(self.stream, index, self.image_size)
        return s if self.item is None else self.item(s, np.random.default_rng([self.stream, index, 3]))
