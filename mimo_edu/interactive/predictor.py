"""`Predictor`: set an image once, then answer each new prompt from its cached SAM embedding.

In the manner of segment-anything's `SamPredictor`:

    predictor = Predictor.from_pretrained()                 # data/mimo-nano by default
    predictor.set_image(image)                              # (H, W, 3) uint8; the SAM image encoder runs once
    answer = predictor.ask("What is this?", [box])          # MIMO: text + one mask per grounded term
    mask = predictor.segment(box=[x0, y0, x1, y1])          # SAM alone: box and/or points -> one mask

Prompts are in the pixels of the image given to `set_image`. `ask` gives exactly what
`model.generate(image, question, prompts)` gives, without running the SAM image encoder again.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mimo_edu.data.prompts import validate_prompt
from mimo_edu.data.real import to_rgb
from mimo_edu.data.schema import VisualPrompt
from mimo_edu.errors import ImageError, PromptError
from mimo_edu.model import MIMO, GroundedAnswer
from mimo_edu.train import course_checkpoint, load_model


def check_question(question: str) -> str:
    """The question without surrounding spaces; PromptError when it is empty."""
    if not isinstance(question, str) or not question.strip():
        raise PromptError(
            f"question {question!r} is empty; type what you want to know, e.g. 'What is this?' with a prompt "
            "drawn, or 'Segment the liver.'"
        )
    return question.strip()


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

    @torch.no_grad()
    def set_image(self, image: np.ndarray) -> None:
        """Cache `image` and its SAM embedding, computed as `MIMO.generate` would.

        image: (H, W, 3) uint8 RGB; grey, RGBA, 16-bit and float arrays are converted (see `to_rgb`).
        """
        image = to_rgb(image, "image")
        frame, _ = self.model._to_frame(self.model._image_tensor(image), [[]])  # (1, 3, S, S)
        with self.model.autocast():
            self.embedding = self.model.image_embeddings(frame)  # (1, D, h, w)
        self.image = image

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image set."""
        self._require_image()
        return self.image.shape[:2]

    def check_prompts(self, prompts: Sequence[VisualPrompt]) -> None:
        """PromptError unless every prompt is well formed and inside the image set."""
        for prompt in prompts:
            if not isinstance(prompt, VisualPrompt):
                raise PromptError(
                    f"prompt {prompt!r}: expected a mimo_edu.data.VisualPrompt (kind 'point', 'box' or 'scribble')."
                )
            validate_prompt(prompt, *self.size)

    def ask(self, question: str, prompts: Sequence[VisualPrompt] = (), max_new_tokens: int = 48) -> GroundedAnswer:
        """MIMO's answer to `question` about the image set, with prompts in its pixels; masks (K, H, W)."""
        self._require_image()
        question = check_question(question)
        self.check_prompts(prompts)
        return self.model.generate(self.image, question, list(prompts), max_new_tokens, image_embedding=self.embedding)

    @torch.no_grad()
    def segment(
        self, box: Sequence[float] | None = None, points: np.ndarray | None = None, labels: np.ndarray | None = None
    ) -> np.ndarray:
        """SAM alone, as `SamPredictor.predict(multimask_output=False)`: mask probabilities (H, W) float32.

        box: (x0, y0, x1, y1); points: (N, 2) as (x, y) with labels (N,), 1 positive and 0 negative.
        """
        if box is None and points is None:
            raise PromptError("segment: give a box (x0, y0, x1, y1) and/or points with labels; both are missing.")
        h, w = self.size
        if box is not None:
            validate_prompt(VisualPrompt("box", box=np.asarray(box, np.float32)), h, w)
        if points is not None:
            labels = np.ones(len(points), np.int64) if labels is None else labels
            validate_prompt(VisualPrompt("point", points=np.asarray(points, np.float32), labels=np.asarray(labels)), h, w)
        sam = self.model.segmenter.sam
        fh, fw = self.model.frame_size(h, w)  # the image's part of the model's S x S frame
        side_ratio = self.model.segmenter.config.image_size / self.model.config.image_size  # frame -> SAM's input
        scale = torch.tensor([fw / w * side_ratio, fh / h * side_ratio], device=self.model.device)
        sam_points = sam_box = None
        if points is not None:
            coords = torch.as_tensor(np.asarray(points, np.float32), device=scale.device)[None] * scale  # (1, N, 2)
            sam_points = (coords, torch.as_tensor(np.asarray(labels), device=scale.device)[None])  # (1, N)
        if box is not None:
            sam_box = torch.as_tensor(np.asarray(box, np.float32), device=scale.device).view(1, 2, 2) * scale
            sam_box = sam_box.view(1, 4)  # (1, 4) in SAM's frame
        with self.model.autocast():
            sparse, dense = sam.prompt_encoder(points=sam_points, boxes=sam_box, masks=None)
            low_res, _ = sam.mask_decoder(
                image_embeddings=self.embedding,
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )  # (1, 1, 4h, 4w) over the frame
        return self.model.frame_to_image(low_res[0].float(), h, w)[0].sigmoid().cpu().numpy()

    def _require_image(self) -> None:
        if self.image is None:
            raise ImageError("no image is set: call predictor.set_image(image) with an (H, W, 3) uint8 array first.")
