"""Foundations: nano-CLIP, nano-SAM and nano-LLM, each pretrained in miniature before the MIMO stage.

The MIMO paper starts from pretrained CLIP ViT-H/14, Vicuna-7B and SAM ViT-H. The course makes nano
versions of them from MIMOSeg-synth's train split, each with its own objective and evaluation:

    python -m mimo_edu pretrain clip --out runs/clip          # region- and image-text contrastive
    python -m mimo_edu foundation-eval clip --checkpoint runs/clip/model --split test --json

They are saved in the formats of the paper's checkpoints (a Hugging Face CLIP folder, a Hugging Face
Llama folder with its tokenizer, a SAM `.pth` state dict), so the nano preset loads them through the
same code as the paper preset; `make foundations` remakes the shipped ones in `data/foundations/`.
"""

from mimo_edu.foundations.paths import FOUNDATIONS_DIR, FOUNDATIONS_ENV, KINDS, foundation_paths

__all__ = ["FOUNDATIONS_DIR", "FOUNDATIONS_ENV", "KINDS", "foundation_paths"]
