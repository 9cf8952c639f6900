"""`Predictor`: set an image once, then answer each new prompt from its cached SAM embedding.

In the manner of segment-anything's `SamPredictor`:

    predictor = Predictor.from_pretrained()                 # data/mimo-nano by default
    predictor.set_image(image)                              # (H, W, 3) uint8; the SAM image encoder runs once
    answer = predictor.ask("What is this?", [box])          # MIMO: text + one mask per grounded term
    mask = predictor.segment(box=[x0, y0, x1, y1])          # SAM alone: box and/or points -> one mask

Prompts are in the pixels of the image given to `set_image`. `ask` gives exactly what
`model.generate(image, question, prompts)` gives, errors included (both pass the request gate,
mimo_edu/model/requests.py), without running the SAM image encoder again.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mimo_edu.checkpoints import load_model
from mimo_edu.data.real import to_rgb
from mimo_edu.data.schema import VisualPrompt
from mimo_edu.errors import ImageError
from mimo_edu.model import MIMO, GroundedAnswer
from mimo_edu.shipped import course_checkpoint


class Predictor:
    """MIMO with one image's SAM embedding cached: each prompt runs only CLIP, the LLM and the mask decoder."""

    def __init__(self, model: MIMO) -> None:
        self.model = model.eval()
        self.reset_image()

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> "Predictor":
        """A predictor for a save_pretrained folder or a `train` output folder (default: `course_checkpoint()`)."""
        return cls(load_model(path if path is not None else course_checkpoint()))

    @property
    def segmenter_name(self) -> str:
        """What answers `segment`: LiteMedSAM (pretrained) or the preset's own SAM."""
        return "LiteMedSAM" if self.model.config.segmenter.encoder == "tiny_vit" else f"{self.model.config.preset} SAM"

    @property
    def is_image_set(self) -> bool:
        return self.image is not None

    def reset_image(self) -> None:
        """Forget the image and its embedding."""
        self.image: np.ndarray | None = None  # (H, W, 3) uint8
        self.embedding: torch.Tensor | None = None  # (1, D, h, w)

    def set_image(self, image: np.ndarray) -> None:
        """Cache `image` and its SAM embedding, computed as `MIMO.generate` would.

        image: (H, W, 3) uint8 RGB; grey, RGBA, 16-bit and float arrays are converted (see `to_rgb`).
        """
        image = to_rgb(image, "image")
        self.embedding = self.model.embed_image(image)  # (1, D, h, w)
        self.image = image

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image set."""
        self._require_image()
        return self.image.shape[:2]

    def ask(
        self, question: str, prompts: VisualPrompt | Sequence[VisualPrompt] = (), max_new_tokens: int = 48
    ) -> GroundedAnswer:
        """MIMO's answer to `question` about the image set, with prompts in its pixels; masks (K, H, W)."""
        self._require_image()
        return self.model.generate(self.image, question, prompts, max_new_tokens, image_embedding=self.embedding)

    def segment(
        self, box: Sequence[float] | None = None, points: np.ndarray | None = None, labels: np.ndarray | None = None
    ) -> np.ndarray:
        """SAM alone, as `SamPredictor.predict(multimask_output=False)`: mask probabilities (H, W) float32.

        box: (x0, y0, x1, y1); points: (N, 2) as (x, y) with labels (N,), 1 positive and 0 negative (see `MIMO.sam_mask`).
        """
        h, w = self.size
        return self.model.sam_mask(self.embedding, h, w, box, points, labels).sigmoid().cpu().numpy()

    def _require_image(self) -> None:
        if self.image is None:
            raise ImageError("no image is set: call predictor.set_image(image) with an (H, W, 3) uint8 array first.")
