"""Tiny CLIP and Llama Hugging Face folders and a tiny SAM .pth in the paper's formats, laid out as
$MIMO_CHECKPOINTS expects, so the paper preset's loading code runs offline (test_model_presets, test_scaling)."""

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from mimo_edu.model import SegmenterConfig
from mimo_edu.model.segmenter import build_sam

TINY_SAM = SegmenterConfig(
    image_size=64, patch_size=8, encoder_dim=32, encoder_depth=2, encoder_heads=2, decoder_mlp_dim=64
)


def save_tiny_paper_checkpoints(root: Path, clip_width: int = 32, llm_width: int = 64, llm_layers: int = 2,
                                sam: SegmenterConfig = TINY_SAM) -> Path:
    """clip-vit-huge-patch14/ (64 px, patch 16), vicuna-7b-v1.5/ (fp16, with a byte-level BPE tokenizer) and
    sam_vit_h_4b8939.pth under `root`, with random weights (seed 0); returns `root`."""
    torch.manual_seed(0)
    clip_cfg = CLIPVisionConfig(hidden_size=clip_width, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=2 * clip_width, patch_size=16, image_size=64)
    CLIPVisionModel(clip_cfg).save_pretrained(root / "clip-vit-huge-patch14")

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ["What is this?", "The liver.", "USER: ASSISTANT:"],
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False),
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>")  # no pad, like Llama
    llm_cfg = LlamaConfig(hidden_size=llm_width, num_hidden_layers=llm_layers, num_attention_heads=4,
                          num_key_value_heads=4, intermediate_size=2 * llm_width, vocab_size=len(tok))
    LlamaForCausalLM(llm_cfg).half().save_pretrained(root / "vicuna-7b-v1.5")  # Vicuna ships fp16
    tok.save_pretrained(root / "vicuna-7b-v1.5")

    torch.save(build_sam(sam).state_dict(), root / "sam_vit_h_4b8939.pth")
    return root
