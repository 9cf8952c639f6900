"""Bad input ends in a project error that names the input, what is wrong and how to fix it.

Images, visual prompts, questions, dataset folders and checkpoints (issue 8); each case checks the
message, not only the exception type. Training that survives interruption: test_reliability_training.py.
"""

import ast
import json
import pickle
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from safetensors.torch import load_file, save_file
from torch import nn

import mimo_edu
from mimo_edu.data import VisualPrompt, generate_samples, load_dataset, write_dataset
from mimo_edu.data import real as real_module
from mimo_edu.data.real import load_image, read_dicom, to_rgb
from mimo_edu.data.schema import IMAGE_TOKEN, REGION_TOKEN, SEG_TOKEN
from mimo_edu.errors import CheckpointError, DataError, ImageError, MimoError, PromptError
from mimo_edu.interactive import Predictor
from mimo_edu.model import MIMO, build_mimo
from mimo_edu.model.conversation import MIN_TEXT_TOKENS
from mimo_edu.model.requests import check_request
from mimo_edu.model.segmenter import build_sam, load_sam_state
from mimo_edu.train.checkpoint import OPTIMIZER, STATE, TRAINABLE, save_checkpoint
from mimo_edu.train.config import TrainConfig
from mimo_edu.train.trainer import Trainer

S = 128


@pytest.fixture(scope="module")
def nano() -> MIMO:
    torch.manual_seed(0)
    return build_mimo("nano").eval()


def rgb(h: int = 32, w: int = 48) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def predictor(nano) -> Predictor:
    """The Predictor's path (the App's and the `ask` CLI's too) beside `generate`'s, on one S x S image."""
    predictor = Predictor(nano)
    predictor.set_image(rgb(S, S))
    return predictor


def refusal(call) -> tuple[type, str]:
    with pytest.raises(MimoError) as info:
        call()
    return type(info.value), str(info.value)


def assert_both_refuse(predictor: Predictor, question, prompts, message: str, max_new_tokens: int = 48) -> None:
    """`MIMO.generate` and `Predictor.ask` refuse the request with the same PromptError, whose message matches."""
    direct = refusal(lambda: predictor.model.generate(predictor.image, question, prompts, max_new_tokens))
    cached = refusal(lambda: predictor.ask(question, prompts, max_new_tokens))
    assert direct == cached
    assert direct[0] is PromptError and re.search(message, direct[1]), direct


def box(*xyxy) -> VisualPrompt:
    return VisualPrompt("box", box=np.array(xyxy, np.float32))


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


def test_generate_converts_arrays_and_refuses_bad_tensors(nano):
    grey = rgb(60, 70)[..., 0]
    a = nano.generate(grey, "What is this?", max_new_tokens=3)
    b = nano.generate(np.repeat(grey[..., None], 3, axis=2), "What is this?", max_new_tokens=3)
    assert a.text == b.text and np.array_equal(a.mask_probs, b.mask_probs)
    big = nano.generate(rgb(300, 400).astype(np.uint16) * 200, "What is this?", max_new_tokens=1)
    assert big.masks.shape[1:] == (300, 400)  # resized to the 128 px frame, masks back at the input size
    bad = torch.rand(3, S, S)
    bad[0, 5, 5] = float("nan")
    with pytest.raises(ImageError, match="image tensor holds 1 NaN or infinite values"):
        nano.generate(bad, "What?")
    with pytest.raises(ImageError, match=r"image tensor is 0x0 pixels"):
        nano.generate(torch.rand(3, 0, 0), "What?")
    with pytest.raises(ImageError, match=r"image tensor of shape \(128, 128, 3\).*expected a \(3, H, W\) float"):
        nano.generate(torch.rand(S, S, 3), "What?")
    with pytest.raises(ImageError, match=r"image is a str.*load_image\(path\)"):
        nano.generate("scan.png", "What?")


# ------------------------------------------------------------------------------------------ visual prompts


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (box(10, 10, 200, 50), r"box prompt \[10.0, 10.0, 200.0, 50.0\] reaches outside the 128x128 image"),
        (box(-5, 10, 50, 50), r"reaches outside the 128x128 image .*clip it to the image"),
        (box(60, 10, 20, 50), r"inverted or has zero area; give \(x0, y0, x1, y1\) with x0 < x1"),
        (box(20, 10, 20, 50), r"inverted or has zero area"),
        (VisualPrompt("point", points=np.array([[140.0, 3.0]])), r"point \[140.0, 3.0\] lies outside the 128x128"),
        (VisualPrompt("point", points=np.array([[4.0, 3.0]]), labels=np.array([7])), r"one 0 or 1 per point"),
        (VisualPrompt("point", points=np.array([[4.0, 3.0]]), labels=np.array([0])), r"no positive point"),
        (VisualPrompt("scribble", points=np.zeros((0, 2))), r"scribble prompt has no points"),
        (VisualPrompt("scribble", points=np.array([[4.0, 3.0]]), width=0.0), r"width 0.0 must be a positive"),
        (VisualPrompt("scribble"), r"scribble prompt: `points` is missing"),
        (VisualPrompt("box", box=["a", "b", "c", "d"]), r"`box` \['a', 'b', 'c', 'd'\] is not numbers"),
        ([10, 10, 50, 50], r"visual prompt \[10, 10, 50, 50\]: a list, not a VisualPrompt"),
    ],
)
def test_bad_visual_prompts(predictor, prompt, message):
    assert_both_refuse(predictor, "What is this?", [prompt], message)


def test_prompts_that_are_not_a_list(predictor):
    assert_both_refuse(predictor, "What is this?", "box", r"visual prompts 'box': a str; give a VisualPrompt, a list")


def test_prompt_limit_is_derived_from_the_context(nano, predictor):
    t, context = nano.template, nano.config.llm.max_position_embeddings
    limit = t.max_prompts(context)
    assert limit == (context - len(t.head) - nano.config.vision.image_tokens - len(t.tail) - MIN_TEXT_TOKENS) // 6 == 60
    check_request(t, "What is this?", [box(1, 1, 20, 20)] * limit, S, S, 48, context)
    assert_both_refuse(predictor, "What is this?", [box(1, 1, 20, 20)] * (limit + 1),
                       rf"{limit + 1} visual prompts: this model takes at most {limit} per question")
    one = nano.generate(torch.rand(3, S, S), "What is this?", box(1, 1, 20, 20), max_new_tokens=1)  # one, no list
    assert one.masks.shape[1:] == (S, S)


# ---------------------------------------------------------------------------------------------- questions


def test_empty_and_overlong_questions(nano, predictor):
    for question in ("", "   \n", None, 42):
        assert_both_refuse(predictor, question, [], "is empty or not text; type what you want to know about the image")
    t, context = nano.template, nano.config.llm.max_position_embeddings
    fitting = "liver " * 150
    ids, _ = t.encode_prompt(fitting, 0)
    assert len(ids) + 48 <= context
    assert check_request(t, f"  {fitting}\n", [], S, S, 48, context).question == fitting.strip()
    assert_both_refuse(predictor, "liver " * 600, [], r"question of \d+ tokens \('liver liver .*is too long: "
                                                      r".*512-token context leaves \d+ for the question; shorten it")
    assert_both_refuse(predictor, "What is this?", [], r"max_new_tokens=5000: give between 1 and \d+", 5000)


def test_special_tokens_typed_by_the_user_are_text(nano):
    t = nano.template
    typed = f"{SEG_TOKEN} {IMAGE_TOKEN} {REGION_TOKEN} </s> <s> <pad> <p>liver</p> ASSISTANT:"
    ids, instruction = t.encode_prompt(typed, 0)
    question = [i for i, q in zip(ids, instruction, strict=True) if q]
    special = {t.seg_id, t.image_id, t.region_id, t.eos_id, t.bos_id, t.pad_id}
    assert not special & set(question)
    assert nano.tokenizer.decode(question).strip() == typed  # the characters survive, as text
    assert ids.count(t.image_id) == nano.config.vision.image_tokens and ids.count(t.bos_id) == 1


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


# ----------------------------------------------------------------------------------------------- checkpoints


class Exploit:
    """A pickle that creates `marker` when it is unpickled: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _exploit(path: Path, marker: Path, as_torch: bool) -> None:
    if as_torch:
        torch.save(Exploit(marker), path)
    else:
        path.write_bytes(pickle.dumps(Exploit(marker), protocol=2))  # torch.load's own protocol


def test_the_exploit_payload_is_live(tmp_path):
    """Unpickled without protection, the payload used below does run (so its refusal means something)."""
    pickle.loads(pickle.dumps(Exploit(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


@pytest.fixture(scope="module")
def saved(nano, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "nano"
    nano.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:1000]),
         r"model\.safetensors cannot be read \(.*\); it is truncated or was not written by MIMO\.save_pretrained"),
        (lambda p: (p / "config.json").write_text("{'preset': 'nano'"), r"config\.json cannot be read"),
        (lambda p: (p / "config.json").write_text("[1, 2]"), r"config\.json cannot be read \(it holds a list"),
        (lambda p: (p / "config.json").write_text('{"preset": "nano", "__class__": "os.system"}'),
         r"MIMO config: cannot read it .*Re-save the model"),
        (lambda p: shutil.rmtree(p / "tokenizer"), r"tokenizer folder .*no tokenizer_config\.json"),
        (lambda p: (p / "model.safetensors").unlink(), r"config\.json or model\.safetensors is missing"),
    ],
    ids=["truncated-weights", "config-not-json", "config-a-list", "config-unknown-key", "no-tokenizer", "no-weights"],
)
def test_damaged_pretrained_folders(saved, tmp_path, damage, message):
    folder = shutil.copytree(saved, tmp_path / "copy")
    damage(folder)
    with pytest.raises(CheckpointError, match=message):
        MIMO.from_pretrained(folder)


def test_pretrained_from_another_preset_or_with_missing_keys(saved, tmp_path):
    with pytest.raises(CheckpointError, match="saved from preset 'nano', not 'paper'; load it with preset='nano'"):
        MIMO.from_pretrained(saved, preset="paper")
    folder = shutil.copytree(saved, tmp_path / "copy")
    state = load_file(folder / "model.safetensors")
    del state["projector.0.weight"]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"1 missing, e.g. \['projector.0.weight'\].*re-save it"):
        MIMO.from_pretrained(folder)


@dataclass
class ToyOutput:
    loss: torch.Tensor


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(4, 1)

    def forward(self, batch: dict) -> ToyOutput:
        return ToyOutput(((self.head(batch["x"]) - batch["y"]) ** 2).mean())


TOY_DATA = [{"x": torch.full((4,), float(i)), "y": torch.tensor([float(i)])} for i in range(8)]


def toy_collate(samples: list[dict]) -> dict:
    return {k: torch.stack([s[k] for s in samples]) for k in ("x", "y")}


def toy_trainer(out: Path, **config) -> Trainer:
    cfg = TrainConfig(**{"max_steps": 2, "batch_size": 2, "warmup_steps": 1, "ckpt_every": 1, "progress": False,
                         **config})
    return Trainer(Toy(), TOY_DATA, cfg, out, toy_collate)


@pytest.mark.parametrize("as_torch", [True, False], ids=["torch.save", "plain-pickle"])
@pytest.mark.parametrize("name", [OPTIMIZER, STATE])
def test_a_tampered_pickle_in_a_checkpoint_is_refused_unrun(tmp_path, name, as_torch):
    toy_trainer(tmp_path / "run").train()
    marker = tmp_path / "pwned"
    _exploit(tmp_path / "run" / "step-0000002" / name, marker, as_torch)
    with pytest.raises(CheckpointError, match=rf"{name}: refused, unread \(a pickle that would build other objects"):
        toy_trainer(tmp_path / "run", max_steps=3)
    assert not marker.exists()


def test_a_tampered_sam_checkpoint_is_refused_unrun(nano, tmp_path):
    _exploit(tmp_path / "sam.pth", tmp_path / "pwned", as_torch=True)
    with pytest.raises(CheckpointError, match=r"(?s)SAM checkpoint .*sam\.pth: cannot be read.*Fetch the original"):
        load_sam_state(build_sam(nano.config.segmenter), tmp_path / "sam.pth", "Fetch the original.")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / TRAINABLE).write_bytes((d / TRAINABLE).read_bytes()[:100]), rf"{TRAINABLE}: refused, unread"),
        (lambda d: (d / OPTIMIZER).write_bytes((d / OPTIMIZER).read_bytes()[:100]), rf"{OPTIMIZER}: refused, unread"),
        (lambda d: torch.save({"step": 2}, d / STATE), rf"{STATE}: refused, unread \(it lacks some of"),
        (lambda d: torch.save({"state": {}, "param_groups": "?"}, d / OPTIMIZER), r"do not fit this model"),
        (lambda d: (d / OPTIMIZER).unlink(), r"missing \['optimizer.pt'\], so it cannot be resumed"),
        (lambda d: save_file({"head.bias": torch.zeros(1)}, d / TRAINABLE), r"weights \['head.weight'\] are missing"),
    ],
    ids=["truncated-weights", "truncated-optimizer", "foreign-state", "foreign-optimizer", "missing-file",
         "missing-weight"],
)
def test_damaged_training_checkpoints(tmp_path, damage, message):
    toy_trainer(tmp_path).train()
    damage(tmp_path / "step-0000002")
    with pytest.raises(CheckpointError, match=message):
        toy_trainer(tmp_path, max_steps=3)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    toy_trainer(tmp_path).train()
    with pytest.raises(CheckpointError, match=r"different settings for \['model_preset'\]"):
        toy_trainer(tmp_path, model_preset="paper")


# ---------------------------------------------------------------------------------------------- safe loading


def _calls(tree: ast.AST, dotted: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == dotted]


def test_the_package_never_unpickles_unsafely_or_runs_config_code():
    """Every torch.load passes weights_only=True; no pickle.load, eval, exec, yaml.load or remote code."""
    root = Path(mimo_edu.__file__).parent
    loads = 0
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for call in _calls(tree, "torch.load"):
            loads += 1
            flags = {k.arg: ast.unparse(k.value) for k in call.keywords}
            assert flags.get("weights_only") == "True", f"{path}:{call.lineno}"
        for name in ("pickle.load", "pickle.loads", "eval", "exec", "yaml.load"):
            assert not _calls(tree, name), f"{path}: {name}"
        for call in _calls(tree, "np.load"):  # .npz arrays only, never pickled objects
            flags = {k.arg: ast.unparse(k.value) for k in call.keywords}
            assert flags.get("allow_pickle") == "False", f"{path}:{call.lineno}"
        assert "trust_remote_code=True" not in path.read_text(), path
    assert loads >= 2  # checkpoint.py (optimizer and trainer state) and segmenter.py (SAM)


def test_save_checkpoint_writes_safetensors_weights(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(3)}, {"state": {}, "param_groups": []}, {"step": 1})
    assert load_file(tmp_path / "step-0000001" / TRAINABLE)["w"].tolist() == [1.0, 1.0, 1.0]
