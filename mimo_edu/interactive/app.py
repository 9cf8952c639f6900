"""`App`: prompt MIMO with boxes, clicks and scribbles in JupyterLab, and see grounded answers.

    app = App(Predictor.from_pretrained())
    app                                   # the widgets: image, tools, question, answer
    app.set_box(30, 40, 90, 100)          # the programmatic twin: the same path as a mouse drag
    app.ask("What is this?")

The widgets' own values are the one source of truth. A drag on the box tool changes
`BBoxWidget.bboxes`, a click or stroke changes `PromptCanvas.points` / `.scribbles`; the
Python methods `set_box`, `add_point` and `add_scribble` change the same values, and `prompts()`
reads them back in image pixels, clipped onto the image (`clip_to_image`). `ask` and `segment` are what
the buttons call; both pass the model's request gate (mimo_edu/model/requests.py), as the twin's methods do.
"""

import base64
import html
import time
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
from IPython.display import HTML
from jupyter_bbox_widget import BBoxWidget

from mimo_edu.data.schema import VisualPrompt
from mimo_edu.errors import ImageError, MimoError, PromptError
from mimo_edu.interactive.canvas import PromptCanvas
from mimo_edu.interactive.images import UPLOAD_TYPES, gallery, read_upload
from mimo_edu.interactive.predictor import Predictor
from mimo_edu.interactive.render import answer_html, compose, display_scale, png_bytes, term_span
from mimo_edu.model import GroundedAnswer
from mimo_edu.model.requests import check_prompts, clip_to_image

TOOLS = (("Box", "box"), ("Point +", "positive"), ("Point −", "negative"), ("Scribble", "scribble"))
STROKE_WIDTH = 12.0  # scribble width on screen, display pixels (3 image pixels on a 128 px image)


class App:
    """The prompting app: an image with box, point and scribble tools, a question, and the grounded answer."""

    def __init__(
        self,
        predictor: Predictor,
        images: dict[str, Callable[[], np.ndarray]] | None = None,
        question: str = "What is this?",
    ) -> None:
        self.predictor = predictor
        self.images = images if images is not None else gallery()
        self.masks = np.zeros((0, 1, 1), bool)  # (K, H, W) shown over the image
        self.answer: GroundedAnswer | None = None
        self.image_name = ""
        self.scale = 1.0  # display pixels per image pixel

        self.picker = widgets.Dropdown(options=list(self.images), description="image", value=None)
        self.upload = widgets.FileUpload(accept=",".join(UPLOAD_TYPES), multiple=False, description="Upload")
        self.tool = widgets.ToggleButtons(options=TOOLS, value="box", description="tool", style={"button_width": "90px"})
        self.boxes = BBoxWidget(classes=["box"], colors=["#00e600"], hide_buttons=True)
        self.canvas = PromptCanvas(stroke_width=STROKE_WIDTH)
        self.question = widgets.Text(value=question, description="question", placeholder="What is this?")
        fit = widgets.Layout(width="auto")
        self.ask_button = widgets.Button(description="Ask", button_style="primary", icon="comment", layout=fit)
        self.segment_button = widgets.Button(description=f"{predictor.segmenter_name} mask", icon="crop", layout=fit)
        self.clear_button = widgets.Button(description="Clear prompts", icon="eraser", layout=fit)
        self.answer_view = widgets.HTML(layout=widgets.Layout(min_height="3em"))
        self.status = widgets.HTML()
        self.widget = widgets.HBox(
            [
                widgets.VBox([self.tool, self.boxes, self.canvas], layout=widgets.Layout(width="560px", flex="0 0 auto")),
                widgets.VBox(
                    [
                        widgets.HBox([self.picker, self.upload]),
                        self.question,
                        widgets.HBox([self.ask_button, self.segment_button, self.clear_button]),
                        self.answer_view,
                        self.status,
                    ]
                ),
            ]
        )
        self.widget.add_class("mimo-app")

        self.picker.observe(self._on_pick, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.tool.observe(self._on_tool, names="value")
        self.boxes.observe(self._on_prompts, names="bboxes")
        self.canvas.observe(self._on_prompts, names=["points", "scribbles"])
        self.ask_button.on_click(lambda _: self._report(self.ask))
        self.segment_button.on_click(lambda _: self._report(self.segment))
        self.clear_button.on_click(lambda _: self._report(self.clear))
        self._on_tool({"new": self.tool.value})
        if self.images:
            self.picker.value = next(iter(self.images))

    def _repr_mimebundle_(self, **kwargs) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    def snapshot(self) -> HTML:
        """What the app shows now as static HTML (image with masks and prompts, then the answer): it stays in a
        saved notebook and shows where widgets cannot, e.g. on GitHub."""
        png = base64.b64encode(self.canvas.image).decode()
        return HTML(
            f'<div class="mimo-snapshot"><img src="data:image/png;base64,{png}" style="max-width: 100%">'
            f"{self.answer_view.value}</div>"
        )

    # ---- the image ---------------------------------------------------------------------------

    def set_image(self, image: np.ndarray | str, name: str | None = None) -> None:
        """Show an (H, W, 3) uint8 image, or the gallery image of that name; prompts and answer are cleared."""
        if isinstance(image, str):
            if image not in self.images:
                raise ImageError(f"image {image!r} is not in the gallery; pick one of {list(self.images)}.")
            name, image = image, self.images[image]()
        start = time.perf_counter()
        self.predictor.set_image(image)
        embed_ms = (time.perf_counter() - start) * 1e3
        h, w = self.predictor.size
        self.image_name = name or f"{w}x{h} array"
        # the picker's observer sees the name already shown and does nothing; None: not a gallery image
        self.picker.value = self.image_name if self.image_name in self.images else None
        self.scale = display_scale(h, w)
        self.clear()
        self.status.value = f"{html.escape(self.image_name)}: image embedding cached in {embed_ms:.0f} ms"

    def _on_pick(self, change: dict) -> None:
        if change["new"] is not None and change["new"] != self.image_name:
            self._report(self.set_image, change["new"])

    def _on_upload(self, change: dict) -> None:
        for file in change["new"]:
            self._report(lambda f=file: self.set_image(read_upload(f["name"], bytes(f["content"])), f["name"]))

    # ---- prompts: widget values <-> VisualPrompts in image pixels -----------------------------

    def prompts(self) -> list[VisualPrompt]:
        """The prompts on the widgets, in image pixels and clipped onto the image (a drag may end past its border):
        each box, then all points as one prompt, then each scribble."""
        s = self.scale
        out = []
        for b in self.boxes.bboxes:
            x0, x1 = sorted((b["x"] / s, (b["x"] + b["width"]) / s))
            y0, y1 = sorted((b["y"] / s, (b["y"] + b["height"]) / s))
            out.append(VisualPrompt("box", box=np.array([x0, y0, x1, y1], np.float32)))
        if self.canvas.points:
            xyl = np.asarray(self.canvas.points, np.float32)  # (N, 3) in display pixels + label
            out.append(VisualPrompt("point", points=xyl[:, :2] / s, labels=xyl[:, 2].astype(np.int64)))
        for stroke in self.canvas.scribbles:
            out.append(VisualPrompt("scribble", points=np.asarray(stroke, np.float32).reshape(-1, 2) / s, width=STROKE_WIDTH / s))
        return [clip_to_image(p, *self.predictor.size) for p in out]

    def set_box(self, x0: float, y0: float, x1: float, y1: float, keep: bool = False) -> None:
        """Draw a box (image pixels), as a drag with the box tool does; `keep=True` keeps the boxes already drawn."""
        check_prompts(VisualPrompt("box", box=np.array([x0, y0, x1, y1], np.float32)), *self.predictor.size)
        s = self.scale
        box = {"x": x0 * s, "y": y0 * s, "width": (x1 - x0) * s, "height": (y1 - y0) * s, "label": "box"}
        self.boxes.bboxes = [*self.boxes.bboxes, box] if keep else [box]

    def add_point(self, x: float, y: float, positive: bool = True) -> None:
        """Click at (x, y) in image pixels, as the "Point +" (positive) or "Point −" tool does."""
        check_prompts(VisualPrompt("point", points=np.array([[x, y]], np.float32)), *self.predictor.size)
        self.canvas.points = [*self.canvas.points, [x * self.scale, y * self.scale, int(positive)]]

    def add_scribble(self, points: Sequence[Sequence[float]]) -> None:
        """Draw a stroke through (x, y) points in image pixels, as the scribble tool does."""
        xy = np.asarray(points, np.float32)
        check_prompts(VisualPrompt("scribble", points=xy, width=STROKE_WIDTH / self.scale), *self.predictor.size)
        self.canvas.scribbles = [*self.canvas.scribbles, (xy.reshape(-1, 2) * self.scale).tolist()]

    def clear(self) -> None:
        """Remove every prompt, the answer and its masks (the "Clear prompts" button)."""
        self.boxes.bboxes = []
        self.canvas.points, self.canvas.scribbles = [], []
        self.masks = np.zeros((0, *self.predictor.size), bool)
        self.answer = None
        self.answer_view.value = ""
        self._redraw()

    def _on_tool(self, change: dict) -> None:
        box_tool = change["new"] == "box"
        self.boxes.layout.display = None if box_tool else "none"
        self.canvas.layout.display = "none" if box_tool else None
        if not box_tool:
            self.canvas.tool = change["new"]

    def _on_prompts(self, _change: dict) -> None:
        if not self.predictor.is_image_set:
            return
        self._redraw()
        self.status.value = f"prompts: {html.escape(describe(self.prompts()))}"

    # ---- answers -----------------------------------------------------------------------------

    def ask(self, question: str | None = None) -> GroundedAnswer:
        """MIMO's answer to the question box (or `question`, which is typed into it) with the prompts drawn."""
        if question is not None:
            self.question.value = question
        prompts = self.prompts()
        start = time.perf_counter()
        answer = self.predictor.ask(self.question.value, prompts)
        ms = (time.perf_counter() - start) * 1e3
        self.answer, self.masks = answer, answer.masks
        self.answer_view.value = answer_html(answer)
        self._redraw()
        self.status.value = (
            f"answered in {ms:.0f} ms from the cached image embedding; {len(answer.masks)} masks; "
            f"prompts: {html.escape(describe(prompts))}"
        )
        return answer

    def segment(self) -> np.ndarray:
        """The segmenter's mask (H, W) bool for the box and points drawn, without the language model."""
        prompts = self.prompts()
        boxes = [p.box for p in prompts if p.kind == "box"]
        points = [p for p in prompts if p.kind == "point"]
        if len(boxes) > 1 or (not boxes and not points):
            raise PromptError(
                f"{self.predictor.segmenter_name} takes one box and/or points; {len(boxes)} boxes are drawn "
                "(scribbles go to Ask). Clear the prompts and draw one box."
            )
        start = time.perf_counter()
        mask = self.predictor.segment(
            boxes[0] if boxes else None,
            points[0].points if points else None,
            points[0].labels if points else None,
        ) > 0.5
        ms = (time.perf_counter() - start) * 1e3
        self.answer, self.masks = None, mask[None]
        pixels = f"mask 0: {int(mask.sum())} pixels"
        self.answer_view.value = (
            f'<div class="mimo-answer">{term_span(0, f"{self.predictor.segmenter_name} mask", pixels)}: {pixels}</div>'
        )
        self._redraw()
        self.status.value = f"segmented in {ms:.0f} ms from the cached image embedding"
        return mask

    # ---- drawing and errors ------------------------------------------------------------------

    def _redraw(self) -> None:
        """Render the image with masks and prompts for both views (the box view draws its own boxes)."""
        prompts = self.prompts()
        image = self.predictor.image
        self.canvas.image = png_bytes(compose(image, self.masks, prompts, self.scale))
        self.boxes.image_bytes = png_bytes(compose(image, self.masks, [p for p in prompts if p.kind != "box"], self.scale))

    def _report(self, action: Callable, *args) -> None:
        """Run a button's action; show a MimoError in the status line instead of raising it."""
        try:
            action(*args)
        except MimoError as err:
            self.status.value = f'<span class="mimo-error" style="color: #c00">{html.escape(str(err))}</span>'


def describe(prompts: list[VisualPrompt]) -> str:
    """A short human summary of prompts, e.g. "box (10, 20, 50, 60); 2 points (1 positive); 1 scribble"."""
    parts = []
    for p in prompts:
        if p.kind == "box":
            parts.append("box ({:.0f}, {:.0f}, {:.0f}, {:.0f})".format(*np.asarray(p.box).tolist()))
        elif p.kind == "point":
            parts.append(f"{len(p.points)} points ({int(np.sum(p.labels == 1))} positive)")
    scribbles = sum(p.kind == "scribble" for p in prompts)
    if scribbles:
        parts.append(f"{scribbles} scribble{'s' * (scribbles > 1)}")
    return "; ".join(parts) or "none"
