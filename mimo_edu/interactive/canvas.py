"""`PromptCanvas`: an anywidget that shows an image and records clicks and free-hand strokes on it.

The browser only records: each click appends `[x, y, label]` to `points` (label 1 in
"positive" mode, 0 in "negative" mode), each stroke appends `[[x, y], ...]` to `scribbles`,
in the pixels of `image` (the PNG on screen). Python draws everything else into `image`.
"""

import anywidget
import traitlets

ESM = """
function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "mimo-canvas";
  canvas.style.maxWidth = "100%";
  canvas.style.cursor = "crosshair";
  canvas.style.touchAction = "none";
  el.appendChild(canvas);
  const ctx = canvas.getContext("2d");
  const picture = new Image();
  let url = null;
  let stroke = null;  // the stroke being drawn, in image pixels

  function draw() {
    if (picture.naturalWidth) ctx.drawImage(picture, 0, 0);
    if (stroke && stroke.length > 1) {
      ctx.strokeStyle = "rgb(255, 220, 0)";
      ctx.lineWidth = model.get("stroke_width");
      ctx.lineCap = ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(stroke[0][0], stroke[0][1]);
      for (const [x, y] of stroke.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
  }
  function load() {
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([model.get("image")], { type: "image/png" }));
    picture.src = url;
  }
  picture.onload = () => {
    canvas.width = picture.naturalWidth;
    canvas.height = picture.naturalHeight;
    draw();
  };
  function at(event) {  // the event's position in image pixels
    const rect = canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * canvas.width / rect.width;
    const y = (event.clientY - rect.top) * canvas.height / rect.height;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }
  canvas.addEventListener("pointerdown", (event) => {
    const tool = model.get("tool");
    if (tool === "scribble") {
      stroke = [at(event)];
      canvas.setPointerCapture(event.pointerId);
    } else if (tool === "positive" || tool === "negative") {
      const [x, y] = at(event);
      model.set("points", [...model.get("points"), [x, y, tool === "positive" ? 1 : 0]]);
      model.save_changes();
    }
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    stroke.push(at(event));
    draw();
  });
  canvas.addEventListener("pointerup", () => {
    if (!stroke) return;
    model.set("scribbles", [...model.get("scribbles"), stroke]);
    model.save_changes();
    stroke = null;
  });
  function showTool() { canvas.dataset.tool = model.get("tool"); }  // the tool in use, for pages and tests
  model.on("change:image", load);
  model.on("change:tool", showTool);
  load();
  showTool();
  return () => { if (url) URL.revokeObjectURL(url); };
}
export default { render };
"""


class PromptCanvas(anywidget.AnyWidget):
    """An image (PNG bytes) to click on ("positive" / "negative" tool) or scribble on ("scribble" tool)."""

    _esm = ESM
    image = traitlets.Bytes(b"").tag(sync=True)  # PNG shown at its own pixel size
    tool = traitlets.Unicode("positive").tag(sync=True)  # "positive" | "negative" | "scribble"
    points = traitlets.List([]).tag(sync=True)  # [[x, y, label], ...] in image-PNG pixels
    scribbles = traitlets.List([]).tag(sync=True)  # [[[x, y], ...], ...] in image-PNG pixels
    stroke_width = traitlets.Float(6.0).tag(sync=True)  # width of the stroke preview, in PNG pixels
