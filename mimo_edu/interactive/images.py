"""Images to prompt: a gallery of MIMOSeg-synth and bundled real images, and uploaded files."""

import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path, PurePath

import numpy as np

from mimo_edu.data import MODALITIES, TASKS, generate_sample, load_image, real_images, split_seed
from mimo_edu.errors import ImageError

UPLOAD_TYPES = (".png", ".jpg", ".jpeg", ".dcm")


def synth_image(modality: str, seed: int = 0) -> np.ndarray:
    """The first MIMOSeg-synth test image of `modality` (128 px), as the model saw such images in training."""
    if modality not in MODALITIES:
        raise ImageError(f"modality {modality!r} is unknown; pick one of {MODALITIES}.")
    image_index = MODALITIES.index(modality)  # image j of a stream has modality j (of 8)
    return generate_sample(split_seed("test", seed), len(TASKS) * image_index).image


@cache
def _real() -> dict[str, np.ndarray]:
    return real_images()


def gallery() -> dict[str, Callable[[], np.ndarray]]:
    """Picker label -> function returning (H, W, 3) uint8: one synthetic image per modality, then the real ones."""
    images: dict[str, Callable[[], np.ndarray]] = {
        f"synthetic {m}": (lambda m=m: synth_image(m)) for m in MODALITIES
    }
    sources = {"fundus": "scikit-image", "histopathology": "scikit-image", "ct": "pydicom", "mri": "pydicom"}
    for name, package in sources.items():
        images[f"real {name} ({package})"] = lambda name=name: _real()[name]
    return images


def read_upload(name: str, content: bytes) -> np.ndarray:
    """An uploaded PNG, JPEG or DICOM file's bytes as (H, W, 3) uint8, read and checked by `load_image`."""
    suffix = PurePath(name).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        raise ImageError(f"uploaded file {name!r}: type {suffix or '(none)'} is not supported; upload one of {UPLOAD_TYPES}.")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PurePath(name).name
        path.write_bytes(content)
        return load_image(path)
