"""Real medical images that ship inside installed packages, and readers for a learner's own files.

scikit-image bundles a fundus photograph and an immunohistochemistry slide;
pydicom bundles small CT and MR slices. Nothing is downloaded.

Every image the course reads ends as (H, W, 3) uint8 RGB. `to_rgb` accepts and
normalises grey, grey + alpha and RGBA pixels (alpha is dropped), booleans,
16-bit and other integers, and floats; it refuses NaN or infinite values, an
image with no pixels and one above `MAX_IMAGE_PIXELS`, each with an ImageError
that says how to fix the input.
"""

from pathlib import Path

import numpy as np
import pydicom
import torch
from PIL import Image
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from mimo_edu.errors import ImageError

CT_SOFT_TISSUE = (40.0, 400.0)
"""Window (centre, width) in Hounsfield units for abdominal soft tissue."""

MAX_IMAGE_PIXELS = 8192 * 8192
"""The largest image read (64 megapixels); a larger one is refused before it is decoded.
Smaller images are resized to the model's frame (128 px for nano and lite, 1024 px for paper)."""

DICOM_SUFFIXES = (".dcm", ".dicom")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".npy", ".npz")
"""Formats the course does not read: 3-D volumes and raw arrays (slice them and pass the 2-D array)."""


def window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Map [centre - width / 2, centre + width / 2] linearly to 0..255; (H, W) uint8."""
    low = centre - width / 2.0
    return (np.clip((values - low) / width, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_image_size(height: int, width: int, source: str) -> None:
    """Raise ImageError for an image with no pixels or with more than MAX_IMAGE_PIXELS."""
    if height < 1 or width < 1:
        raise ImageError(f"{source} is {width}x{height} pixels, so it holds no image; give one of at least 1x1 pixels")
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"{source} is {width}x{height} pixels ({height * width / 2**20:.0f} MP), above the "
            f"{MAX_IMAGE_PIXELS / 2**20:.0f} MP the course reads; the model sees every image resized to its frame "
            "(128 px for nano, 1024 px for paper), so downsample it first (PIL: img.thumbnail((2048, 2048))) "
            "or crop the region you ask about (for a whole-slide image, one tile)"
        )


def _stretch(values: np.ndarray) -> np.ndarray:
    """Rescale values linearly from their own min..max to 0..255 (a constant image becomes 0); uint8."""
    values = values.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if high == low:
        return np.zeros(values.shape, np.uint8)
    return ((values - low) * (255.0 / (high - low)) + 0.5).astype(np.uint8)


def _to_uint8(values: np.ndarray, source: str) -> np.ndarray:
    """Intensities as uint8: uint8 as is, bool as 0 / 255, floats in [0, 1] times 255, anything else stretched."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.bool_:
        return values.astype(np.uint8) * 255
    if np.issubdtype(values.dtype, np.integer):
        return _stretch(values)
    if not np.issubdtype(values.dtype, np.floating):
        raise ImageError(f"{source} has dtype {values.dtype}; give numbers (uint8, uint16, float, ...)")
    bad = int(np.size(values) - np.isfinite(values).sum())
    if bad:
        raise ImageError(
            f"{source} holds {bad} NaN or infinite values, which have no grey level; replace them "
            "(np.nan_to_num(pixels, nan=0.0)) or fix the step that produced them"
        )
    if values.min() >= 0.0 and values.max() <= 1.0:
        return (values.astype(np.float32) * 255.0 + 0.5).astype(np.uint8)
    return _stretch(values)


def to_rgb(pixels: np.ndarray, source: str = "image array") -> np.ndarray:
    """Any single 2-D image as (H, W, 3) uint8 RGB; `source` names it in errors.

    Shapes: (H, W) and (H, W, 1) grey, (H, W, 2) grey + alpha, (H, W, 3) RGB, (H, W, 4) RGBA (alpha dropped).
    Values: see `_to_uint8` (16-bit and other integers, and floats outside [0, 1], are stretched from
    their own min..max to 0..255).
    """
    if not isinstance(pixels, np.ndarray):
        raise ImageError(
            f"{source} is a {type(pixels).__name__}; pass a numpy array of pixels "
            "(read a file with mimo_edu.data.load_image(path))"
        )
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ImageError(
            f"{source} of shape {pixels.shape} and dtype {pixels.dtype}: expected (H, W, 3) uint8 RGB "
            "(grey (H, W), grey + alpha (H, W, 2) and RGBA (H, W, 4) are converted); for a volume or a "
            "channels-first array pass one 2-D slice, channels last"
        )
    check_image_size(pixels.shape[0], pixels.shape[1], source)
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]  # drop alpha
    rgb = _to_uint8(colour, source)
    return rgb if rgb.shape[2] == 3 else np.repeat(rgb, 3, axis=2)


def check_image_tensor(image: torch.Tensor) -> None:
    """Raise ImageError unless `image` is a (3, H, W) float tensor of finite values in [0, 1]."""
    if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise ImageError(
            f"image tensor of shape {tuple(image.shape)} and dtype {image.dtype}: expected a (3, H, W) float "
            "tensor in [0, 1]; pass an (H, W, 3) uint8 picture as a numpy array instead"
        )
    check_image_size(image.shape[1], image.shape[2], "image tensor")
    bad = int((~torch.isfinite(image)).sum())
    if bad:
        raise ImageError(
            f"image tensor holds {bad} NaN or infinite values; replace them (torch.nan_to_num) or fix their source"
        )
    if image.min() < 0 or image.max() > 1:
        raise ImageError(
            f"image tensor: values outside [0, 1] (min {float(image.min()):.3g}, max {float(image.max()):.3g}); "
            "divide uint8 pixels by 255"
        )


def read_dicom(source: str | Path | pydicom.Dataset, centre_width: tuple[float, float] | None = None) -> np.ndarray:
    """A DICOM slice as (H, W, 3) uint8: rescaled by its slope and intercept (to HU for CT), then windowed.

    The window is `centre_width`, else the file's own WindowCenter / WindowWidth,
    else the 1st to 99th percentile of the slice. Colour DICOM (e.g. ultrasound) is returned as RGB.
    """
    is_dataset = isinstance(source, pydicom.Dataset)
    name = (getattr(source, "filename", None) or "dataset") if is_dataset else source
    try:
        ds = source if is_dataset else pydicom.dcmread(source)
        pixels = ds.pixel_array
    except (InvalidDicomError, AttributeError, OSError, ValueError, RuntimeError) as err:
        raise ImageError(f"cannot read DICOM {name}: {err}; give a single-frame DICOM file with pixel data") from err
    if pixels.ndim == 3 and pixels.shape[2] == 3 and int(getattr(ds, "SamplesPerPixel", 1)) == 3:
        return to_rgb(pixels, f"DICOM {name}")
    if pixels.ndim != 2:
        raise ImageError(
            f"DICOM {name} has pixel shape {pixels.shape} (several frames); save one frame as its own file "
            "or pass one 2-D slice as an array"
        )
    check_image_size(*pixels.shape, f"DICOM {name}")
    values = pixels.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1.0)) + float(
        getattr(ds, "RescaleIntercept", 0.0)
    )
    if not np.isfinite(values).all():
        raise ImageError(f"DICOM {name} holds NaN or infinite pixel values; fix the file that produced it")
    grey = window(values, *(centre_width or _dicom_window(ds, values)))
    return np.repeat(grey[..., None], 3, axis=2)


def _dicom_window(ds: pydicom.Dataset, values: np.ndarray) -> tuple[float, float]:
    """The file's own (WindowCenter, WindowWidth), else the 1st to 99th percentile of its values."""
    if "WindowCenter" in ds and "WindowWidth" in ds:
        first = [v[0] if isinstance(v, MultiValue) else v for v in (ds.WindowCenter, ds.WindowWidth)]
        return float(first[0]), float(first[1])
    low, high = np.percentile(values, [1, 99])
    return (low + high) / 2.0, max(high - low, 1.0)


def _is_dicom(path: Path) -> bool:
    """A .dcm/.dicom name, or the 'DICM' marker at byte 128 (many DICOM files have no suffix)."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    with open(path, "rb") as f:
        return f.read(132)[128:] == b"DICM"


def _pil_pixels(img: Image.Image) -> np.ndarray:
    """The decoded pixels: 16-bit, 32-bit integer and float modes as they are, every other mode as RGB."""
    if img.mode.startswith(("I", "F")):
        return np.asarray(img)
    return np.asarray(img.convert("RGB"))


def load_image(path: str | Path) -> np.ndarray:
    """An image file (PNG, JPEG, TIFF, BMP, ... or DICOM) as (H, W, 3) uint8; see `to_rgb` for what is converted."""
    path = Path(path)
    hint = "give a 2-D PNG, JPEG, TIFF or DICOM file"
    if not path.is_file():
        raise ImageError(f"image {path} does not exist or is not a file; check the path")
    if path.name.lower().endswith(VOLUME_SUFFIXES):
        raise ImageError(f"image {path}: volumes and raw arrays are not read; {hint} (or pass one slice as an array)")
    if _is_dicom(path):
        return read_dicom(path)
    try:
        with Image.open(path) as img:
            check_image_size(img.height, img.width, f"image {path}")
            if getattr(img, "n_frames", 1) > 1:
                raise ImageError(f"image {path} holds {img.n_frames} frames; save the one you mean as its own file")
            pixels = _pil_pixels(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(f"image {path}: {err}; downsample it or crop the region you ask about") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # PIL's errors for truncated or unknown files
        raise ImageError(f"cannot read image {path}: {err}; the file is damaged or not an image, {hint}") from err
    return to_rgb(pixels, f"image {path}")


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
