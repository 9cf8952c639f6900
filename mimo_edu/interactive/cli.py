"""`python -m mimo_edu ask`: one question about one image, with optional visual prompts, from a shell.

    python -m mimo_edu ask --image scan.dcm --question "What is this?" --box 30 40 90 100 --json
"""

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mimo_edu.data import VisualPrompt, load_image, overlay_masks
from mimo_edu.data.prompts import SCRIBBLE_WIDTH
from mimo_edu.errors import PromptError
from mimo_edu.interactive.predictor import Predictor


def read_scribble(path: str | Path, width: float = SCRIBBLE_WIDTH) -> VisualPrompt:
    """A scribble from a file of (x, y) image pixels: JSON `[[x, y], ...]` or text with one "x y" / "x,y" per line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise PromptError(f"scribble file {path}: cannot be read ({err.strerror}); give a file of x y pairs.") from err
    try:
        points = json.loads(text) if path.suffix.lower() == ".json" else [
            [float(v) for v in line.replace(",", " ").split()] for line in text.splitlines() if line.strip()
        ]
        xy = np.asarray(points, np.float32).reshape(-1, 2) if len(points) else np.zeros((0, 2), np.float32)
    except (ValueError, TypeError) as err:
        raise PromptError(
            f"scribble file {path}: not a list of (x, y) pairs ({err}); write JSON [[x, y], ...] or one 'x y' per line."
        ) from err
    return VisualPrompt("scribble", points=xy, width=width)


def prompts_from_args(args: argparse.Namespace) -> list[VisualPrompt]:
    """Boxes, then the points (positive and negative) as one prompt, then scribbles, in image pixels."""
    prompts = [VisualPrompt("box", box=np.array(b, np.float32)) for b in args.box]
    points = [(x, y, 1) for x, y in args.point] + [(x, y, 0) for x, y in args.negative_point]
    if points:
        xyl = np.array(points, np.float32)
        prompts.append(VisualPrompt("point", points=xyl[:, :2], labels=xyl[:, 2].astype(np.int64)))
    return prompts + [read_scribble(path) for path in args.scribble]


def save_masks(folder: Path, image: np.ndarray, masks: np.ndarray, terms: list[str]) -> list[str]:
    """mask_KK_<term>.png (0 / 255) per mask and overlay.png; the mask paths, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (mask, term) in enumerate(zip(masks, terms, strict=True)):
        slug = re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-") or "term"
        path = folder / f"mask_{k:02d}_{slug}.png"
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
        paths.append(str(path))
    Image.fromarray(overlay_masks(image, masks)).save(folder / "overlay.png")
    return paths


def cmd_ask(args: argparse.Namespace) -> int:
    timings = {}
    start = time.perf_counter()
    image = load_image(args.image)
    prompts = prompts_from_args(args)
    predictor = Predictor.from_pretrained(args.checkpoint)
    timings["load_ms"] = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    predictor.set_image(image)
    timings["image_embedding_ms"] = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    answer = predictor.ask(args.question, prompts)
    timings["answer_ms"] = (time.perf_counter() - start) * 1e3
    paths = save_masks(Path(args.save_masks), image, answer.masks, answer.terms) if args.save_masks else []
    masks = [
        {"term": term, "pixels": int(mask.sum()), **({"path": paths[k]} if paths else {})}
        for k, (term, mask) in enumerate(zip(answer.terms, answer.masks, strict=True))
    ]
    if args.json:
        print(json.dumps({
            "image": str(args.image),
            "size": [image.shape[1], image.shape[0]],
            "question": args.question,
            "prompts": [p.to_dict() for p in prompts],
            "answer": answer.plain_text,
            "text": answer.text,
            "terms": answer.terms,
            "masks": masks,
            "timings": {k: round(v, 1) for k, v in timings.items()},
        }))
        return 0
    print(f"answer: {answer.plain_text}")
    for k, m in enumerate(masks):
        where = f" -> {m['path']}" if paths else ""
        print(f"  [{k}] {m['term'] or '(no term)'}: {m['pixels']} pixels{where}")
    if not masks:
        print("  (no grounded terms)")
    if paths:
        print(f"overlay: {Path(args.save_masks) / 'overlay.png'}")
    return 0
