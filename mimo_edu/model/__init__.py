"""The MIMO model: vision tower, visual prompt encoder, input aligner, Llama, SAM grounding."""

from mimo_edu.model.build import PaperPaths, build_mimo
from mimo_edu.model.config import PARTS, PRESETS, LLMConfig, MIMOConfig, SegmenterConfig, VisionConfig
from mimo_edu.model.mimo import MIMO, GroundedAnswer, MIMOOutput

__all__ = [
    "MIMO",
    "PARTS",
    "PRESETS",
    "GroundedAnswer",
    "LLMConfig",
    "MIMOConfig",
    "MIMOOutput",
    "PaperPaths",
    "SegmenterConfig",
    "VisionConfig",
    "build_mimo",
]
