"""MIMOSeg-synth and the data contract: generate, write, load, batch and draw samples.

    samples = generate_samples(64, seed=split_seed("train"))   # list[Sample]
    write_dataset(samples, "data/synth")                       # annotations.json, images/, masks/
    batch = collate(load_dataset("data/synth")[:8])            # dict with schema.BATCH_KEYS
"""

from mimo_edu.data.collate import collate, resize_sample
from mimo_edu.data.disk import MIMOSegDataset, load_dataset, write_dataset
from mimo_edu.data.draw import draw_prompt, overlay_masks
from mimo_edu.data.prompts import prompt_from_mask, prompt_region, scribble_mask, validate_prompt
from mimo_edu.data.real import load_image, read_dicom, real_images
from mimo_edu.data.scenes import STRUCTURES, structure_names
from mimo_edu.data.schema import (
    BATCH_KEYS,
    IMAGE_TOKEN,
    MODALITIES,
    PHRASE_END,
    PHRASE_START,
    REGION_TOKEN,
    SEG_TOKEN,
    SPECIAL_TOKENS,
    TASKS,
    Sample,
    VisualPrompt,
)
from mimo_edu.data.synth import MIMOSegSynth, generate_sample, generate_samples, iter_samples, split_seed
from mimo_edu.data.templates import corpus_texts, grounded_terms

__all__ = [
    "BATCH_KEYS", "IMAGE_TOKEN", "MODALITIES", "PHRASE_END", "PHRASE_START", "REGION_TOKEN", "SEG_TOKEN",
    "SPECIAL_TOKENS", "STRUCTURES", "TASKS", "MIMOSegDataset", "MIMOSegSynth", "Sample", "VisualPrompt",
    "collate", "corpus_texts", "draw_prompt", "generate_sample", "generate_samples", "grounded_terms",
    "iter_samples", "load_dataset", "load_image", "overlay_masks", "prompt_from_mask", "prompt_region",
    "read_dicom", "real_images", "resize_sample", "scribble_mask", "split_seed", "structure_names",
    "validate_prompt", "write_dataset",
]
