"""The on-disk format, the loader's errors, batching, drawing, real images and the generate command."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mimo_edu.cli import main as cli_main
from mimo_edu.data import (
    BATCH_KEYS,
    MIMOSegDataset,
    VisualPrompt,
    collate,
    draw_prompt,
    generate_samples,
    load_dataset,
    overlay_masks,
    real_images,
    resize_sample,
    split_seed,
    write_dataset,
)
from mimo_edu.errors import DataError, ImageError, PromptError


@pytest.fixture(scope="module")
def samples():
    return generate_samples(40, seed=3)


@pytest.fixture()
def written(samples, tmp_path) -> Path:
    return write_dataset(samples[:8], tmp_path / "ds")


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _edit(folder: Path, change) -> None:
    """Apply `change(records)` to the folder's annotations.json."""
    path = folder / "annotations.json"
    records = json.loads(path.read_text())
    change(records)
    path.write_text(json.dumps(records))


def test_disk_round_trip_is_lossless(samples, tmp_path):
    out = write_dataset(iter(samples), tmp_path / "ds")
    assert sorted(p.name for p in out.iterdir()) == ["annotations.json", "images", "masks"]
    record = json.loads((out / "annotations.json").read_text())[1]
    assert record["conversations"][0] == {"from": "human", "value": f"<image>\n{samples[1].question}"}
    assert record["masks"] == [f"masks/{samples[1].id}_{k}.png" for k in range(len(samples[1].masks))]
    back = load_dataset(out)
    assert len(back) == len(samples)
    for a, b in zip(samples, back, strict=True):
        assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.masks, b.masks)
        assert (a.id, a.modality, a.task, a.question, a.answer, a.terms) == (
            b.id, b.modality, b.task, b.question, b.answer, b.terms,
        )
        assert [p.to_dict() for p in a.visual_prompts] == [p.to_dict() for p in b.visual_prompts]
    assert MIMOSegDataset(out)[5].answer == samples[5].answer


def test_same_seed_gives_byte_identical_files(tmp_path):
    write_dataset(generate_samples(8, seed=1), tmp_path / "a")
    write_dataset(generate_samples(8, seed=1), tmp_path / "b")
    write_dataset(generate_samples(8, seed=2), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_collate_gives_the_documented_batch(samples):
    batch = collate(samples[:6])
    assert tuple(batch) == BATCH_KEYS
    assert batch["images"].shape == (6, 3, 128, 128) and batch["images"].dtype == torch.float32
    assert 0.0 <= batch["images"].min() and batch["images"].max() <= 1.0
    assert torch.equal(batch["images"][2], torch.tensor(samples[2].image).permute(2, 0, 1) / 255.0)
    for masks, s in zip(batch["masks"], samples[:6], strict=True):
        assert masks.dtype == torch.bool and masks.shape == (len(s.terms), 128, 128)
    assert batch["questions"] == [s.question for s in samples[:6]]
    assert all(isinstance(p, VisualPrompt) for ps in batch["visual_prompts"] for p in ps)
    loader = torch.utils.data.DataLoader(samples, batch_size=4, collate_fn=collate)
    assert next(iter(loader))["images"].shape == (4, 3, 128, 128)


def test_collate_needs_one_size_and_resize_sample_gives_it(samples):
    small = resize_sample(samples[1], 64)
    with pytest.raises(DataError, match="resize_sample"):
        collate([samples[0], small])
    assert small.image.shape == (64, 64, 3) and small.masks.shape[1:] == (64, 64)
    box = small.visual_prompts[0]
    assert collate([resize_sample(samples[0], 64), small])["images"].shape == (2, 3, 64, 64)
    assert all(0 <= v <= 63 for v in np.ravel(box.box if box.box is not None else box.points))


def test_missing_annotations_image_or_mask_file(written, tmp_path):
    with pytest.raises(DataError, match="annotations.json is missing"):
        load_dataset(tmp_path / "nowhere")
    image = sorted((written / "images").iterdir())[2]
    image.unlink()
    with pytest.raises(DataError, match=rf"record 2 .*{image.name} is missing"):
        MIMOSegDataset(written)
    write_dataset(generate_samples(2, seed=0), written)
    sorted((written / "masks").iterdir())[0].unlink()
    with pytest.raises(DataError, match=r"_0\.png is missing"):
        load_dataset(written)


def test_mask_count_must_match_seg_count(written):
    _edit(written, lambda records: records[3]["masks"].append(records[3]["masks"][0]))
    with pytest.raises(DataError, match=r"record 3 .*has 1 \[SEG\] but 'masks' lists 2"):
        load_dataset(written)


def test_prompt_outside_the_image(written, samples):
    index = next(i for i, s in enumerate(samples[:8]) if s.visual_prompts)

    def push_out(records):
        records[index]["visual_prompt"] = [{"kind": "point", "points": [[200, 5]], "labels": [1]}]

    _edit(written, push_out)
    dataset = MIMOSegDataset(written)  # the record itself is well formed
    with pytest.raises(PromptError, match=r"\[200.0, 5.0\] lies outside the 128x128 image"):
        dataset[index]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.__setitem__(0, "an image"), "record 0 .* is a str"),
        (lambda r: r[0].pop("conversations"), r"lacks \['conversations'\]"),
        (lambda r: r[0]["conversations"].pop(), "one human turn then one gpt turn"),
        (lambda r: r[0]["conversations"].reverse(), "one human turn then one gpt turn"),
        (lambda r: r[0].__setitem__("task", "vqa"), "task 'vqa' is unknown"),
        (lambda r: r[1].__setitem__("visual_prompt", [{"points": [[1, 2]]}]), "needs a 'kind'"),
        (lambda r: r[1].__setitem__("visual_prompt", {"kind": "box", "box": "wide"}), "is malformed"),
        (lambda r: r[0].__setitem__("terms", ["a", "b", "c"]), "'terms' has 3 entries"),
        (lambda r: r.append(dict(r[0])), "repeats the id"),
    ],
)
def test_malformed_records(written, change, message):
    _edit(written, change)
    with pytest.raises(DataError, match=message):
        load_dataset(written)


def test_unreadable_files(written):
    (written / "annotations.json").write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_dataset(written)
    write_dataset(generate_samples(2, seed=0), written)
    (written / "images" / "synth-0-000001.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match="cannot read image .*synth-0-000001.png"):
        load_dataset(written)


def test_a_learners_own_minimal_records_load(tmp_path):
    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(tmp_path / "img.png")
    mask = np.zeros((32, 48), np.uint8)
    mask[5:9, 10:20] = 1  # 0/1 masks are accepted as well as 0/255
    Image.fromarray(mask).save(tmp_path / "m.png")
    records = [{"id": "x", "image": "img.png", "conversations": [
        {"from": "human", "value": "<image>\nWhere is the lesion?"},
        {"from": "gpt", "value": "Here is the <p>lesion</p> [SEG]."}], "masks": ["m.png"]}]
    (tmp_path / "annotations.json").write_text(json.dumps(records))
    (sample,) = load_dataset(tmp_path)
    assert sample.question == "Where is the lesion?" and sample.terms == ["lesion"]
    assert sample.task == "qa_seg" and sample.masks.sum() == 40 and sample.image.shape == (32, 48, 3)


def test_drawing_helpers(samples):
    s = next(s for s in samples if s.visual_prompts and s.visual_prompts[0].kind == "box")
    drawn = draw_prompt(s.image, s.visual_prompts[0])
    x0, y0, x1, y1 = s.visual_prompts[0].box.astype(int)
    assert (drawn[y0, x0:x1 + 1] == (0, 200, 0)).all() and drawn[y0 + 2, x0 + 2].tolist() == s.image[y0 + 2, x0 + 2].tolist()
    over = overlay_masks(s.image, s.masks)
    changed = (over != s.image).any(axis=2)
    assert changed.any() and not (changed & ~s.masks.any(axis=0)).any()
    with pytest.raises(PromptError):
        draw_prompt(s.image[:10, :10], s.visual_prompts[0])

    import matplotlib.pyplot as plt

    from mimo_edu.figures.data import show_prompt

    fig, ax = plt.subplots()
    for kind in ("point", "box", "scribble"):
        prompt = next(s.visual_prompts[0] for s in samples if s.visual_prompts and s.visual_prompts[0].kind == kind)
        assert show_prompt(ax, prompt) is ax
    assert ax.patches and ax.lines and ax.collections
    plt.close(fig)


def test_real_images_from_installed_packages():
    images = real_images()
    assert set(images) == {"fundus", "histopathology", "ct", "mri"}
    for name, image in images.items():
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, name
        assert image.min() < 60 and image.max() > 200, name  # windowed to use the range
    assert images["ct"].shape == (128, 128, 3) and images["mri"].shape == (64, 64, 3)


def test_generate_command(tmp_path):
    assert cli_main(["generate", "--out", str(tmp_path / "val"), "--num", "6", "--split", "val",
                     "--image-size", "64"]) == 0
    loaded = load_dataset(tmp_path / "val")
    assert len(loaded) == 6 and loaded[0].image.shape == (64, 64, 3)
    assert loaded[0].id == f"synth-{split_seed('val')}-000000"
