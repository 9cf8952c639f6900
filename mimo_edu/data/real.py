"""Real medical images that ship inside installed packages, and readers for a learner's own files.

scikit-image bundles a fundus photograph and an immunohistochemistry slide;
pydicom bundles small CT and MR slices. Nothing is downloaded.
"""

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from mimo_edu.errors import ImageError

CT_SOFT_TISSUE = (40.0, 400.0)
"""Window (centre, width) in Hounsfield units for abdominal soft tissue."""


def window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Map [centre - width / 2, centre + width / 2] linearly to 0..255; (H, W) uint8."""
    low = centre - width / 2.0
    return (np.clip((values - low) / width, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def read_dicom(source: str | Path | pydicom.Dataset, centre_width: tuple[float, float] | None = None) -> np.ndarray:
    """A DICOM slice as (H, W, 3) uint8: rescaled by its slope and intercept (to HU for CT), then windowed.

    The window is `centre_width`, else the file's own WindowCenter / WindowWidth,
    else the 1st to 99th percentile of the slice.
    """
    try:
        ds = source if isinstance(source, pydicom.Dataset) else pydicom.dcmread(source)
        pixels = ds.pixel_array.astype(np.float32)
    except (InvalidDicomError, AttributeError, OSError, ValueError, RuntimeError) as err:
        raise ImageError(f"cannot read DICOM {source}: {err}; give a single-frame DICOM file with pixel data") from err
    if pixels.ndim != 2:
        raise ImageError(f"DICOM {source} has pixel shape {pixels.shape}; pass one 2-D slice")
    values = pixels * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
    if centre_width is None and "WindowCenter" in ds and "WindowWidth" in ds:
        first = [v[0] if isinstance(v, MultiValue) else v for v in (ds.WindowCenter, ds.WindowWidth)]
        centre_width = (float(first[0]), float(first[1]))
    if centre_width is None:
        low, high = np.percentile(values, [1, 99])
        centre_width = ((low + high) / 2.0, max(high - low, 1.0))
    grey = window(values, *centre_width)
    return np.repeat(grey[..., None], 3, axis=2)


def load_image(path: str | Path) -> np.ndarray:
    """An image file (PNG, JPEG, ... or DICOM .dcm) as (H, W, 3) uint8."""
    path = Path(path)
    if path.suffix.lower() in (".dcm", ".dicom"):
        return read_dicom(path)
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise ImageError(f"cannot read image {path}: {err}; give a PNG, JPEG or DICOM file") from err


def real_images() -> dict[str, np.ndarray]:
    """Bundled real images, name -> (H, W, 3) uint8: 'fundus', 'histopathology', 'ct' and 'mri'.

    fundus: skimage.data.retina() (1411 px); histopathology: skimage.data.immunohistochemistry()
    (512 px); ct: pydicom's CT_small.dcm (128 px) at a soft-tissue window; mri: pydicom's
    MR_small.dcm (64 px) at its own window.
    """
    from pydicom import examples
    from skimage import data

    return {
        "fundus": data.retina(),
        "histopathology": data.immunohistochemistry(),
        "ct": read_dicom(examples.ct, CT_SOFT_TISSUE),
        "mri": read_dicom(examples.mr),
    }
