"""Bad input to the data side ends in a project error that names the input, what is wrong and how to fix it.

Image files, image arrays and dataset folders (issue 8); each case checks the message, not only the
exception type. The model side: tests/model/test_requests.py and tests/model/test_load_checks.py;
training checkpoints: tests/train/test_checkpoint_checks.py and tests/train/test_resume.py.
"""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hostile import rgb
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mimo_edu.data import generate_samples, load_dataset, write_dataset
from mimo_edu.data import real as real_module
from mimo_edu.data.real import load_image, read_dicom, to_rgb
from mimo_edu.errors import DataError, ImageError

# ---------------------------------------------------------------------------------------------- image files


def _damaged(path: Path, how: str) -> Path:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # flip 40 bytes in the compressed pixels
        start = len(data) // 3
        data[start : start + 40] = bytes(b ^ 0xFF for b in data[start : start + 40])
    out = path.with_name(f"{how}{path.suffix}")
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize(
    ("suffix", "how", "reason"),
    [(".png", "truncated", "truncated"), (".jpg", "truncated", "truncated"), (".png", "corrupt", "broken data stream")],
)  # a JPEG damaged inside has no checksum to fail: it may decode to wrong pixels, as in every viewer
def test_damaged_png_and_jpeg(tmp_path, suffix, how, reason):
    Image.fromarray(rgb(64, 64)).save(tmp_path / f"ok{suffix}")
    bad = _damaged(tmp_path / f"ok{suffix}", how)
    with pytest.raises(ImageError, match=rf"cannot read image .*{bad.name}: .*{reason}.*damaged or not an image"):
        load_image(bad)


def test_unsupported_missing_and_empty_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not pixels")
    with pytest.raises(ImageError, match=r"notes\.txt: cannot identify image file.*give a 2-D PNG, JPEG, TIFF or DICOM"):
        load_image(tmp_path / "notes.txt")
    (tmp_path / "ct.nii.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(ImageError, match=r"ct\.nii\.gz: volumes and raw arrays are not read.*one slice as an array"):
        load_image(tmp_path / "ct.nii.gz")
    with pytest.raises(ImageError, match=r"nowhere\.png does not exist.*check the path"):
        load_image(tmp_path / "nowhere.png")
    # a PNG whose header says 0 pixels wide (PIL cannot even write one)
    Image.fromarray(rgb()).save(tmp_path / "a.png")
    data = bytearray((tmp_path / "a.png").read_bytes())
    data[16:20] = struct.pack(">I", 0)  # IHDR width
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "zero.png").write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"cannot read image .*zero\.png"):
        load_image(tmp_path / "zero.png")


def _dicom(path: Path, pixels: np.ndarray | None, frames: int = 1) -> Path:
    """A DICOM file: no pixel data (a structured report), grey uint16 (H, W) or RGB uint8 (H, W, 3) pixels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    if pixels is not None:
        colour = pixels.ndim == 3
        ds.Rows, ds.Columns = pixels.shape[:2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = (3, "RGB") if colour else (1, "MONOCHROME2")
        ds.BitsAllocated = ds.BitsStored = 8 if colour else 16
        ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
        if colour:
            ds.PlanarConfiguration = 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PixelData = np.stack([pixels] * frames).astype(np.uint8 if colour else np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_without_pixel_data_and_without_suffix(tmp_path):
    report = _dicom(tmp_path / "report.dcm", None)
    with pytest.raises(ImageError, match=r"cannot read DICOM .*report\.dcm: .*no pixel data.*file with pixel data"):
        load_image(report)
    ramp = np.arange(20 * 30).reshape(20, 30)
    _dicom(tmp_path / "IM0001", ramp)  # many scanners write DICOM files without a suffix
    image = load_image(tmp_path / "IM0001")
    assert image.shape == (20, 30, 3) and np.array_equal(image, read_dicom(tmp_path / "IM0001"))
    assert image[0, 0, 0] < image[-1, -1, 0]
    colour = rgb(20, 30)
    assert np.array_equal(load_image(_dicom(tmp_path / "us.dcm", colour)), colour)  # e.g. ultrasound, as RGB
    with pytest.raises(ImageError, match=r"cine\.dcm has pixel shape \(2, 20, 30\) \(several frames\); save one"):
        load_image(_dicom(tmp_path / "cine.dcm", ramp, frames=2))


def test_grey_rgba_palette_16_bit_and_float_files_are_normalised(tmp_path):
    grey = rgb()[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.array_equal(load_image(tmp_path / "grey.png"), np.repeat(grey[..., None], 3, axis=2))

    rgba = np.dstack([rgb(), np.full((32, 48), 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert np.array_equal(load_image(tmp_path / "rgba.png"), rgba[..., :3])  # alpha dropped

    Image.fromarray(rgb()).convert("P").save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png").shape == (32, 48, 3)

    ramp = (np.arange(32 * 48).reshape(32, 48) * 20 + 1000).astype(np.uint16)  # 1000 .. 31700: 16-bit
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    image = load_image(tmp_path / "ramp16.png")
    assert image.dtype == np.uint8 and image[0, 0, 0] == 0 and image[-1, -1, 0] == 255  # stretched min..max
    assert (np.diff(image[..., 0].ravel().astype(int)) >= 0).all()

    unit = np.linspace(0, 1, 32 * 48, dtype=np.float32).reshape(32, 48)
    Image.fromarray(unit).save(tmp_path / "unit.tif")
    assert np.array_equal(load_image(tmp_path / "unit.tif")[..., 0], (unit * 255 + 0.5).astype(np.uint8))
    Image.fromarray(unit * 3000 - 1000).save(tmp_path / "hu.tif")  # floats outside [0, 1]: stretched
    assert load_image(tmp_path / "hu.tif")[..., 0].tolist() == load_image(tmp_path / "unit.tif")[..., 0].tolist()


def test_nan_or_inf_pixels_are_refused(tmp_path):
    values = np.ones((8, 8), np.float32)
    values[2, 3], values[4, 4] = np.nan, np.inf
    Image.fromarray(values).save(tmp_path / "nan.tif")
    with pytest.raises(ImageError, match=r"nan\.tif holds 2 NaN or infinite values.*np\.nan_to_num"):
        load_image(tmp_path / "nan.tif")


def test_too_large_images_are_refused_before_decoding(tmp_path, monkeypatch):
    Image.fromarray(rgb(64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(real_module, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=r"big\.png is 64x64 pixels .*above the .*downsample it first"):
        load_image(tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"image is 64x64 pixels .*crop the region"):
        to_rgb(rgb(64, 64), "image")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL's own decompression-bomb guard
    with pytest.raises(ImageError, match=r"big\.png: .*decompression bomb.*downsample"):
        load_image(tmp_path / "big.png")


# ----------------------------------------------------------------------------------------- image arrays


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0, 255]], np.uint8), [[0, 255]]),  # (H, W) grey
        (np.array([[[0], [255]]], np.uint8), [[0, 255]]),  # (H, W, 1)
        (np.array([[[9, 0], [200, 0]]], np.uint8), [[9, 200]]),  # grey + alpha
        (np.array([[True, False]]), [[255, 0]]),
        (np.array([[100, 300]], np.uint16), [[0, 255]]),  # 16-bit: stretched
        (np.array([[0.0, 0.5]], np.float64), [[0, 128]]),  # floats in [0, 1]: times 255
        (np.array([[-1000.0, 1000.0]], np.float32), [[0, 255]]),  # other floats: stretched
        (np.array([[5, 5]], np.int16), [[0, 0]]),  # constant: black
    ],
)
def test_to_rgb_accepts_and_normalises(array, expected):
    out = to_rgb(array)
    assert out.dtype == np.uint8 and out.shape == (*array.shape[:2], 3)
    assert out[..., 0].tolist() == expected and (out == out[..., :1]).all()


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((0, 5, 3), np.uint8), r"image array is 5x0 pixels, so it holds no image"),
        (np.zeros((4, 4, 5), np.uint8), r"shape \(4, 4, 5\).*expected \(H, W, 3\) uint8 RGB"),
        (np.zeros((3, 4, 4, 3), np.uint8), r"for a volume .* pass one 2-D slice"),
        (np.full((4, 4), np.inf), r"holds 16 NaN or infinite values"),
        (np.zeros((4, 4), complex), r"dtype complex128; give numbers"),
        ([[0, 1], [1, 0]], r"is a list; pass a numpy array.*load_image"),
    ],
)
def test_to_rgb_refuses_with_reason(array, message):
    with pytest.raises(ImageError, match=message):
        to_rgb(array)


# ------------------------------------------------------------------------------------------- dataset folders


@pytest.fixture()
def dataset(tmp_path) -> Path:
    return write_dataset(generate_samples(3, seed=0), tmp_path / "ds")


def _edit(folder: Path, change) -> None:
    records = json.loads((folder / "annotations.json").read_text())
    change(records)
    (folder / "annotations.json").write_text(json.dumps(records))


def test_missing_or_unreadable_dataset_folders(dataset, tmp_path):
    with pytest.raises(DataError, match=r"dataset folder .*nowhere does not exist.*mimo_edu generate --out"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"annotations\.json does not exist or is not a folder"):
        load_dataset(dataset / "annotations.json")
    (dataset / "annotations.json").write_bytes(b"\xff\xfe[\x00")
    with pytest.raises(DataError, match=r"not valid JSON in UTF-8.*fix or rewrite it"):
        load_dataset(dataset)
    for content, shown in (("[]", r"\[\]"), ('{"id": 1}', r"\{'id': 1\}")):
        (dataset / "annotations.json").write_text(content)
        with pytest.raises(DataError, match=rf"holds {shown}; it must be a non-empty JSON list of records"):
            load_dataset(dataset)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r[0]["conversations"][0].__setitem__("value", "<image>\n "), r"record 0 .*the human turn is empty"),
        (lambda r: r[0]["conversations"][1].__setitem__("value", ""), r"the gpt turn is empty"),
        (lambda r: r[1].__setitem__("image", None), r"record 1 .*'image' and 'masks' must be file paths"),
        (lambda r: r[0].__setitem__("terms", "liver"), r"'terms' is 'liver', not a list"),
        (lambda r: r[2].__setitem__("conversations", "hello"), r"record 2 .*one human turn then one gpt turn"),
    ],
)
def test_malformed_annotation_records(dataset, change, message):
    _edit(dataset, change)
    with pytest.raises(DataError, match=message):
        load_dataset(dataset)
