"""Checks for notebook 07 (interactive prompting): a drag to a box, the cached embedding, a box from a mask."""

import numpy as np

from mimo_edu.exercises.registry import NotYet, call, register

QUESTIONS = ("What is the marked region?", "Is the marked region abnormal?", "What is this?")
DRAGS = ({"x": 100, "y": 60, "width": 180, "height": 220, "label": "box"},
         {"x": 0, "y": 0, "width": 508, "height": 508, "label": "box"},
         {"x": 33, "y": 250, "width": 41, "height": 7, "label": "box"})  # display pixels of a 512 px picture


def _app():
    """An App on a synthetic CT, with the shipped model (the course checkpoint) behind it."""
    from mimo_edu.data import generate_sample, split_seed
    from mimo_edu.interactive import App, Predictor

    app = App(Predictor.from_pretrained())
    app.set_image(generate_sample(split_seed("test"), 0).image, "exercise")
    return app


@register("07.1", "from a mouse drag to a box",
          "Write `to_image_box(bbox, scale)`: the drag as a box (x0, y0, x1, y1) in image pixels.")
def verify_to_image_box(to_image_box, app=None) -> str:
    app = app if app is not None else _app()
    before = list(app.boxes.bboxes)
    try:
        for drag in DRAGS:
            app.boxes.bboxes = [dict(drag)]  # exactly what a mouse drag sends from the browser
            want = app.prompts()[0].box
            got = call(to_image_box, dict(drag), app.scale)
            if not np.allclose(np.asarray(got, np.float64), want):
                raise NotYet(f"the drag {drag} at scale {app.scale} is the box {want.tolist()} in image pixels; you have "
                             f"{list(got)}. Divide every display coordinate by the scale; x1 = (x + width) / scale.")
    finally:
        app.boxes.bboxes = before
    return f"the app reads a drag the same way (scale {app.scale:g} display pixels per image pixel)."


@register("07.2", "see the cache at work",
          "Write `count_encoder_runs(encoder, ask, questions)`: hook the encoder, ask each question, remove the hook, return the count.")
def verify_encoder_runs(count_encoder_runs, app=None) -> str:
    app = app if app is not None else _app()
    predictor = app.predictor
    encoder = predictor.model.segmenter.sam.image_encoder
    hooks = len(encoder._forward_hooks)
    cached = call(count_encoder_runs, encoder, app.ask, QUESTIONS)
    if len(encoder._forward_hooks) != hooks:
        raise NotYet("your hook is still registered after the function returns: call hook.remove() at the end.")
    image, prompts = predictor.image, app.prompts()
    uncached = call(count_encoder_runs, encoder, lambda q: predictor.model.generate(image, q, prompts), QUESTIONS)
    if (cached, uncached) != (0, len(QUESTIONS)):
        raise NotYet(f"you counted {cached} encoder runs for three app.ask calls and {uncached} for three "
                     f"model.generate calls; the truth is 0 and {len(QUESTIONS)}. Count the hook's calls while ask runs.")
    return (f"app.ask ran the SAM image encoder 0 times, model.generate {uncached} times: every answer came from "
            "the embedding that set_image cached.")


def _masks(target=None) -> list[np.ndarray]:
    rng = np.random.default_rng(9)
    masks = [] if target is None else [np.asarray(target, bool)]
    for h, w in ((128, 128), (40, 90), (7, 5)):
        m = np.zeros((h, w), bool)
        y, x = rng.integers(0, h - 3), rng.integers(0, w - 3)
        m[y:y + rng.integers(1, h - y), x:x + rng.integers(1, w - x)] = True
        m &= rng.random((h, w)) > 0.2
        m[y, x] = True
        masks.append(m)
    return masks


@register("07.3", "a box from a mask",
          "Write `mask_box(mask)`: the tightest (x0, y0, x1, y1) round the mask.")
def verify_mask_box(mask_box, target=None) -> str:
    for mask in _masks(target):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        want = (int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1]))
        got = tuple(int(v) for v in call(mask_box, mask.copy()))
        if got != want:
            swapped = got == (want[1], want[0], want[3], want[2])
            raise NotYet(("x comes from the columns (np.nonzero's second array), y from the rows. " if swapped else "")
                         + f"For a {mask.shape[0]} x {mask.shape[1]} mask you have {got}; the box must hold the whole "
                         "mask and touch it on all four sides, its edges on the outermost mask pixels.")
    return "the box holds the whole mask and touches it on all four sides."
