"""Visual prompts derived from masks: points, boxes and scribbles, plus checks and rasterisation.

Coordinates are pixel positions (x = column, y = row), each in [0, W - 1] and
[0, H - 1]. A box is (x0, y0, x1, y1) with x0 < x1 and y0 < y1, its edges on
the outermost pixels (MedSAM's convention). All generated coordinates are
whole numbers, so prompts survive the JSON round trip exactly.
"""

import numpy as np
from scipy import ndimage

from mimo_edu.data.schema import PromptKind, VisualPrompt
from mimo_edu.data.shapes import stroke
from mimo_edu.errors import PromptError

PROMPT_KINDS: tuple[PromptKind, ...] = ("point", "box", "scribble")
SCRIBBLE_WIDTH = 3.0


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Inclusive (x0, y0, x1, y1) of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _interior(mask: np.ndarray, depth: int) -> np.ndarray:
    """Pixels at least `depth` pixels inside `mask` (8-connected erosion), computed on its box; (H, W) bool."""
    x0, y0, x1, y1 = _bbox(mask)
    rows, cols = slice(max(y0 - 1, 0), y1 + 2), slice(max(x0 - 1, 0), x1 + 2)
    out = np.zeros_like(mask)
    out[rows, cols] = ndimage.binary_erosion(mask[rows, cols], np.ones((3, 3), bool), depth, border_value=0)
    return out


def _pick(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A random pixel of a non-empty mask as (x, y) float32."""
    idx = np.flatnonzero(mask)
    y, x = divmod(int(idx[rng.integers(len(idx))]), mask.shape[1])
    return np.array([x, y], np.float32)


def point_prompt(mask: np.ndarray, rng: np.random.Generator, max_negatives: int = 2) -> VisualPrompt:
    """One positive point well inside `mask`, plus 0..max_negatives negative points near it."""
    inner = _interior(mask, 2)
    points = [_pick(rng, inner if inner.any() else mask)]
    x0, y0, x1, y1 = _bbox(mask)
    mx, my = (x1 - x0) // 2 + 2, (y1 - y0) // 2 + 2
    near = np.zeros_like(mask)
    near[max(y0 - my, 0):y1 + my + 1, max(x0 - mx, 0):x1 + mx + 1] = True
    near &= ~mask
    if near.any():
        points += [_pick(rng, near) for _ in range(rng.integers(0, max_negatives + 1))]
    labels = np.array([1] + [0] * (len(points) - 1), np.int64)
    return VisualPrompt("point", points=np.stack(points), labels=labels)


def box_prompt(mask: np.ndarray, rng: np.random.Generator, jitter: float = 0.1) -> VisualPrompt:
    """The mask's bounding box with each edge moved by up to `jitter` of the side, kept in the image.

    The jittered box always keeps the mask's centre inside it.
    """
    h, w = mask.shape
    x0, y0, x1, y1 = _bbox(mask)
    cx, cy = min((x0 + x1) // 2, w - 2), min((y0 + y1) // 2, h - 2)
    jx, jy = max(round(jitter * (x1 - x0 + 1)), 1), max(round(jitter * (y1 - y0 + 1)), 1)
    dx0, dx1 = rng.integers(-jx, jx + 1, 2).tolist()
    dy0, dy1 = rng.integers(-jy, jy + 1, 2).tolist()
    box = [min(max(x0 + dx0, 0), cx), min(max(y0 + dy0, 0), cy),
           max(min(x1 + dx1, w - 1), cx + 1), max(min(y1 + dy1, h - 1), cy + 1)]
    return VisualPrompt("box", box=np.array(box, np.float32))


def _walk(mask: np.ndarray, start_in: np.ndarray, width: float, rng: np.random.Generator) -> np.ndarray:
    """A random walk of up to 5 steps from a pixel of `start_in` whose stroke stays in `mask`; (N, 2)."""
    h, w = mask.shape
    step = float(np.clip(0.25 * np.sqrt(mask.sum()), 2.0, 0.08 * max(h, w)))
    points = [_pick(rng, start_in)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(rng.integers(2, 6)):
        heading += rng.normal(0, 0.5)
        for attempt in range(8):  # a step that would leave the mask turns and shortens
            angle = heading + attempt * np.pi / 4
            length = max(step * 0.8**attempt, 1.5)
            nxt = np.round(points[-1] + length * np.array([np.cos(angle), np.sin(angle)])).astype(np.float32)
            x, y = int(nxt[0]), int(nxt[1])
            if 0 <= x < w and 0 <= y < h and start_in[y, x]:
                if not (stroke(h, w, np.stack([points[-1], nxt]), width) & ~mask).any():
                    points.append(nxt)
                    heading = angle
                    break
    return np.stack(points)


def scribble_prompt(mask: np.ndarray, rng: np.random.Generator, width: float = SCRIBBLE_WIDTH) -> VisualPrompt:
    """A short free-hand stroke of `width` px that lies entirely inside the non-empty `mask`.

    Structures too thin for a `width` stroke (vessels, hairs) get a 1 px one.
    """
    for stroke_width in (width, 1.0):
        start_in = _interior(mask, int(stroke_width // 2)) if stroke_width >= 2 else mask
        if start_in.any():
            points = _walk(mask, start_in, stroke_width, rng)
            if len(points) > 1:
                break
    return VisualPrompt("scribble", points=points, width=stroke_width)


def prompt_from_mask(mask: np.ndarray, kind: PromptKind, rng: np.random.Generator) -> VisualPrompt:
    """A visual prompt of `kind` ("point", "box" or "scribble") for a non-empty (H, W) mask."""
    makers = {"point": point_prompt, "box": box_prompt, "scribble": scribble_prompt}
    if kind not in makers:
        raise PromptError(f"prompt kind {kind!r} is unknown; use one of {PROMPT_KINDS}")
    if not mask.any():
        raise PromptError("cannot derive a prompt from an empty mask; pass a mask with at least one pixel")
    return makers[kind](mask, rng)


def scribble_mask(prompt: VisualPrompt, h: int, w: int) -> np.ndarray:
    """Rasterise a scribble: pixels within width / 2 of its polyline; (H, W) bool."""
    return stroke(h, w, np.asarray(prompt.points, np.float32).reshape(-1, 2), prompt.width)


def prompt_region(prompt: VisualPrompt, h: int, w: int) -> np.ndarray:
    """The pixels a prompt marks, as a (H, W) bool mask (MedPLIB reads region features there).

    point: a 5 px disc round each positive point; box: the filled box; scribble: its stroke.
    """
    validate_prompt(prompt, h, w)
    if prompt.kind == "box":
        x0, y0, x1, y1 = np.round(prompt.box).astype(int)
        region = np.zeros((h, w), bool)
        region[y0:y1 + 1, x0:x1 + 1] = True
        return region
    if prompt.kind == "scribble":
        return scribble_mask(prompt, h, w)
    positives = np.asarray(prompt.points, np.float32)[np.asarray(prompt.labels) == 1]
    return np.logical_or.reduce([stroke(h, w, p[None], 5.0) for p in positives])


def _coords(prompt: VisualPrompt) -> np.ndarray:
    """The prompt's box or points as float64, or PromptError when they are missing or not numbers."""
    name = "box" if prompt.kind == "box" else "points"
    value = prompt.box if prompt.kind == "box" else prompt.points
    if value is None:
        raise PromptError(f"{prompt.kind} prompt: `{name}` is missing; set it in image pixels (x, y)")
    try:
        return np.asarray(value, np.float64)
    except (TypeError, ValueError) as err:
        raise PromptError(
            f"{prompt.kind} prompt: `{name}` {value!r} is not numbers ({err}); give numbers in image pixels"
        ) from err


def validate_prompt(prompt: VisualPrompt, h: int, w: int, *, edge: bool = False) -> None:
    """Raise PromptError unless `prompt` is well formed and lies inside an H x W image.

    Coordinates are pixel positions in [0, W - 1] x [0, H - 1]; `edge=True` also accepts the image's far
    edge (x = W, y = H), as drawing widgets report it.
    """
    if prompt.kind not in PROMPT_KINDS:
        raise PromptError(f"visual prompt kind {prompt.kind!r} is unknown; use one of {PROMPT_KINDS}")
    max_x, max_y = (w, h) if edge else (w - 1, h - 1)
    where = f"the {w}x{h} image (x in [0, {max_x}], y in [0, {max_y}], in pixels)"
    coords = _coords(prompt)
    if prompt.kind == "box":
        _check_box(coords.ravel(), max_x, max_y, where)
        return
    _check_points(prompt.kind, coords, max_x, max_y, where)
    if prompt.kind == "scribble":
        _check_scribble(prompt, h, w)
    if prompt.kind == "point":
        _check_labels(prompt.labels, len(coords))


def _check_box(box: np.ndarray, max_x: float, max_y: float, where: str) -> None:
    if box.shape != (4,) or not np.isfinite(box).all():
        raise PromptError(f"box prompt {box.tolist()} must be 4 finite numbers (x0, y0, x1, y1)")
    x0, y0, x1, y1 = box.tolist()
    if x1 <= x0 or y1 <= y0:
        raise PromptError(
            f"box prompt {box.tolist()} is inverted or has zero area; give (x0, y0, x1, y1) with x0 < x1, y0 < y1"
        )
    if x0 < 0 or y0 < 0 or x1 > max_x or y1 > max_y:
        raise PromptError(f"box prompt {box.tolist()} reaches outside {where}; clip it to the image")


def _check_points(kind: str, pts: np.ndarray, max_x: float, max_y: float, where: str) -> None:
    if pts.size == 0:
        raise PromptError(f"{kind} prompt has no points; a {kind} needs at least one (x, y)")
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise PromptError(f"{kind} prompt points must be an (N, 2) array of finite (x, y), got {pts.tolist()}")
    outside = (pts[:, 0] < 0) | (pts[:, 0] > max_x) | (pts[:, 1] < 0) | (pts[:, 1] > max_y)
    if outside.any():
        raise PromptError(f"{kind} prompt point {pts[outside][0].tolist()} lies outside {where}")


def _check_scribble(prompt: VisualPrompt, h: int, w: int) -> None:
    if not 0 < prompt.width < np.inf:
        raise PromptError(f"scribble width {prompt.width} must be a positive, finite number of pixels, e.g. 3")
    if not scribble_mask(prompt, h, w).any():
        raise PromptError(
            f"scribble of width {prompt.width} covers no pixel; give points on pixels and a width of at least 1"
        )


def _check_labels(labels: np.ndarray | None, n: int) -> None:
    labels = np.asarray(labels if labels is not None else [])
    if labels.shape != (n,) or not np.isin(labels, (0, 1)).all():
        raise PromptError(f"point prompt labels {labels.tolist()} must hold one 0 or 1 per point ({n} points)")
    if not (labels == 1).any():
        raise PromptError("point prompt has no positive point; label at least one point 1 (0 marks background)")
