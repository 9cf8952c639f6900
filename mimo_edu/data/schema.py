"""The data contract between MIMOSeg-synth, the loader and the model.

A `Sample` is one conversation turn about one image. Coordinates are in image
pixels, x to the right and y down. `masks[k]` grounds the k-th `[SEG]` of the
answer, in order.
"""

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TASKS = ("seg", "perception", "qa_seg", "prompt_qa")
"""The four MIMO task perspectives: language-guided segmentation,
visual-prompt perception, QA with segmentation, visual-prompt-assisted QA."""

MODALITIES = ("ct", "mri", "xray", "ultrasound", "fundus", "dermoscopy", "endoscopy", "histopathology")

SEG_TOKEN = "[SEG]"
IMAGE_TOKEN = "<image>"
REGION_TOKEN = "<region>"
PHRASE_START, PHRASE_END = "<p>", "</p>"
SPECIAL_TOKENS = (IMAGE_TOKEN, REGION_TOKEN, SEG_TOKEN, PHRASE_START, PHRASE_END)

PromptKind = Literal["point", "box", "scribble"]


@dataclass
class VisualPrompt:
    """A point set, a box or a scribble drawn on the image.

    point:    `points` (N, 2) with `labels` (N,), 1 positive and 0 negative.
    box:      `box` (x0, y0, x1, y1).
    scribble: `points` (N, 2), a polyline stroke; rasterise with `width`.
    """

    kind: PromptKind
    points: np.ndarray | None = None  # (N, 2) float32
    labels: np.ndarray | None = None  # (N,) int64
    box: np.ndarray | None = None  # (4,) float32 XYXY
    width: float = 3.0  # scribble stroke width in pixels

    def to_dict(self) -> dict:
        d: dict = {"kind": self.kind}
        if self.points is not None:
            d["points"] = np.asarray(self.points).round(2).tolist()
        if self.labels is not None:
            d["labels"] = np.asarray(self.labels).astype(int).tolist()
        if self.box is not None:
            d["box"] = np.asarray(self.box).round(2).tolist()
        if self.kind == "scribble":
            d["width"] = float(self.width)
        return d


@dataclass
class Sample:
    """One image, one question, one answer with a mask per `[SEG]`."""

    id: str
    image: np.ndarray  # (H, W, 3) uint8
    modality: str
    task: str  # one of TASKS
    question: str  # the human turn, without the <image> placeholder
    answer: str  # the gpt turn, with a [SEG] after every grounded term
    masks: np.ndarray  # (K, H, W) bool, K = answer.count("[SEG]")
    visual_prompts: list[VisualPrompt] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)  # grounded term per [SEG]


BATCH_KEYS = ("ids", "images", "modalities", "tasks", "questions", "answers", "masks", "visual_prompts", "terms")
"""A collated batch is a dict with these keys:

ids, modalities, tasks, questions, answers: list[str] of length B
images:          FloatTensor (B, 3, H, W) with values in [0, 1]
masks:           list of B BoolTensors (K_i, H, W), one mask per [SEG]
visual_prompts:  list of B lists of VisualPrompt
terms:           list of B lists of str
"""
