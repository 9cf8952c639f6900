"""What the app shows: the image at display size with mask overlays and prompts, and the answer as HTML.

Term k of an answer and mask k share `mimo_edu.data.draw.PALETTE[k]`, so a reader
matches each word with the region that grounds it.
"""

import html
import io
import re

import numpy as np
from PIL import Image, ImageDraw

from mimo_edu.data.draw import PALETTE, overlay_masks
from mimo_edu.data.schema import PHRASE_END, PHRASE_START, SEG_TOKEN, VisualPrompt
from mimo_edu.model import GroundedAnswer

DISPLAY_SIDE = 512  # longer side of the image on screen, in CSS pixels
MASK_ALPHA = 0.45
POINT_RADIUS = 6
GROUNDED = re.compile(rf"(?:{re.escape(PHRASE_START)}(.*?){re.escape(PHRASE_END)}\s*)?{re.escape(SEG_TOKEN)}")
MARKERS = re.compile(f"{re.escape(PHRASE_START)}|{re.escape(PHRASE_END)}")


def display_scale(height: int, width: int, side: int = DISPLAY_SIDE) -> float:
    """Display pixels per image pixel, so that the longer side is `side` pixels on screen."""
    return side / max(height, width)


def colour(k: int) -> str:
    """CSS colour of mask k, as overlay_masks paints it."""
    r, g, b = PALETTE[k % len(PALETTE)].astype(int).tolist()
    return f"rgb({r}, {g}, {b})"


def compose(
    image: np.ndarray, masks: np.ndarray, prompts: list[VisualPrompt], scale: float
) -> np.ndarray:
    """The image resized by `scale`, masks (K, H, W) tinted in PALETTE order, prompts drawn; (h, w, 3) uint8."""
    h, w = image.shape[:2]
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    resample = Image.NEAREST if scale >= 1 else Image.LANCZOS  # show pixels as pixels; shrink without aliasing
    shown = np.asarray(Image.fromarray(image).resize(size, resample))
    if len(masks):
        small = [np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127 for m in masks]
        shown = overlay_masks(shown, np.stack(small), MASK_ALPHA)
    canvas = Image.fromarray(shown)
    draw = ImageDraw.Draw(canvas)
    for prompt in prompts:
        if prompt.kind == "box":
            x0, y0, x1, y1 = (float(v) * scale for v in prompt.box)
            draw.rectangle((x0, y0, x1, y1), outline=(0, 230, 0), width=3)
        elif prompt.kind == "scribble":
            xy = [(float(x) * scale, float(y) * scale) for x, y in np.asarray(prompt.points)]
            draw.line(xy + xy[-1:], fill=(255, 220, 0), width=max(round(prompt.width * scale), 3), joint="curve")
        else:
            for (x, y), label in zip(np.asarray(prompt.points), np.asarray(prompt.labels), strict=True):
                cx, cy, r = float(x) * scale, float(y) * scale, POINT_RADIUS
                fill = (0, 200, 0) if label == 1 else (230, 20, 20)
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=(255, 255, 255), width=2)
    return np.asarray(canvas)


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def term_span(k: int, text: str, title: str = "") -> str:
    """HTML of term k: its (escaped) text on the colour of mask k."""
    return (
        f'<span class="mimo-term" data-mask="{k}" title="{html.escape(title)}" '
        f'style="background: {colour(k)}; color: white; padding: 0 4px; border-radius: 3px">{html.escape(text)}</span>'
    )


def answer_html(answer: GroundedAnswer) -> str:
    """The answer as HTML: each grounded term on its mask's colour, markers removed, everything escaped."""
    parts, end, k = [], 0, 0
    for match in GROUNDED.finditer(answer.text):
        parts.append(html.escape(MARKERS.sub("", answer.text[end:match.start()])))
        term = (match.group(1) or "").strip() or "▮"  # a [SEG] without a phrase still has a mask
        pixels = int(answer.masks[k].sum()) if k < len(answer.masks) else 0
        parts.append(term_span(k, term, f"mask {k}: {pixels} pixels"))
        end, k = match.end(), k + 1
    parts.append(html.escape(MARKERS.sub("", answer.text[end:])))
    text = " ".join("".join(parts).split()).replace(" .", ".").replace(" ,", ",")
    return f'<div class="mimo-answer" style="font-size: 1.15em; line-height: 1.8">{text or "(empty answer)"}</div>'
