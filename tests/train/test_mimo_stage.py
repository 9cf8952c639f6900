"""The MIMO stage on the nano foundations: what it freezes stays bit-identical, what it trains moves, and
the from-scratch ablation is what it says."""

import pytest
import torch

from mimo_edu.data import MIMOSegSynth, collate
from mimo_edu.errors import CheckpointError
from mimo_edu.foundations.data import image_tensor
from mimo_edu.model import PARTS, build_mimo
from mimo_edu.train.config import get_preset
from mimo_edu.train.run import train_run
from mimo_edu.utils import seed_everything

FROZEN = ("vision_tower", "sam_image_encoder", "sam_prompt_encoder", "region_decoder")


def frozen_state(model) -> dict[str, torch.Tensor]:
    """Every weight the MIMO stage must not change: frozen parts and the LLM's base weights under LoRA."""
    parts = model.part_modules()
    state = {f"{p}.{k}": v.clone() for p in FROZEN for k, v in parts[p].state_dict().items()}
    state.update({f"llm.{n}": v.detach().clone() for n, v in model.llm.named_parameters() if not v.requires_grad})
    return state


def test_frozen_parts_stay_bit_identical_through_training(tmp_path):
    seed_everything(0)
    before = frozen_state(build_mimo("nano"))
    assert any(".base_layer." in k for k in before)  # LoRA's frozen base weights are among them
    cfg = get_preset("nano", max_steps=3, batch_size=4, eval_samples=0, progress=False, ckpt_every=0)
    trainer = train_run(cfg, tmp_path / "run")
    after = frozen_state(trainer.raw_model)
    assert set(before) == set(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    moved = [n for n, p in trainer.raw_model.named_parameters() if p.requires_grad]
    start = dict(build_mimo("nano").named_parameters())
    assert any(not torch.equal(start[n], dict(trainer.raw_model.named_parameters())[n]) for n in moved)


def test_nano_freezes_what_the_paper_freezes():
    model = build_mimo("nano")
    counts = model.parameter_counts()
    for part in FROZEN:
        assert counts[part][1] == 0, part
    assert counts["lora"][0] == counts["lora"][1] > 0
    assert 0 < counts["llm"][1] < counts["llm"][0]  # token embeddings and LM head train, the base does not
    assert model.config.lora_alpha == 8 and model.config.region_source == "sam"


def test_from_scratch_builds_random_weights_that_all_train():
    seed_everything(0)
    pretrained = build_mimo("nano")
    seed_everything(0)
    scratch = build_mimo("nano", from_scratch=True)
    seed_everything(0)
    again = build_mimo("nano", from_scratch=True)
    a, b = pretrained.vision.clip.state_dict(), scratch.vision.clip.state_dict()
    assert all(not torch.equal(a[k], b[k]) for k in a if a[k].numel() > 1 and a[k].float().std() > 0)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in scratch.state_dict().items())  # seeded random init
    counts = scratch.parameter_counts()
    assert set(counts) == set(PARTS) - {"region_decoder"} and all(t == n for n, t in counts.values())
    assert scratch.config.lora_rank == 0 and scratch.config.region_source == "prompt"
    batch = collate([MIMOSegSynth(2, seed=0)[i] for i in range(2)])
    assert torch.isfinite(scratch(batch).loss)


def test_nano_refuses_to_build_without_foundations(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMO_EDU_FOUNDATIONS", str(tmp_path))
    with pytest.raises(CheckpointError, match="make foundations") as err:
        build_mimo("nano")
    assert "--from-scratch" in str(err.value)
    assert build_mimo("nano", from_scratch=True).config.preset == "nano"


def test_train_cli_from_scratch_records_the_ablation(tmp_path):
    from mimo_edu.checkpoints import load_model, read_trainer_state
    from mimo_edu.cli import main

    assert main(["train", "--preset", "nano", "--out", str(tmp_path), "--max-steps", "1", "--batch-size", "2",
                 "--eval-samples", "0", "--no-progress", "--from-scratch"]) == 0
    state = read_trainer_state(tmp_path / (tmp_path / "latest").read_text().strip())
    assert state["config"]["from_scratch"] is True
    assert load_model(tmp_path).config.lora_rank == 0


@pytest.fixture
def prompted_sample():
    """The nano model, the first train-split sample with a visual prompt, and its SAM image embedding."""
    model = build_mimo("nano").eval()
    sample = next(s for s in MIMOSegSynth(8, seed=0) if s.visual_prompts)
    with torch.no_grad():
        embedding = model.image_embeddings(image_tensor(sample.image)[None])
    return model, sample, embedding


def test_regions_pool_over_the_pretrained_decoders_masks_whatever_the_trained_decoder_learns(prompted_sample):
    """The [SEG] decoder trains; the region masks come from the frozen copy of SAM's pretrained decoder."""
    model, sample, embedding = prompted_sample
    with torch.no_grad():
        before = model.sam_region_weights(embedding, [sample.visual_prompts])
        for p in model.segmenter.sam.mask_decoder.parameters():
            p.add_(torch.randn_like(p))
        assert torch.equal(model.sam_region_weights(embedding, [sample.visual_prompts]), before)
        for p in model.region_decoder.parameters():
            p.add_(torch.randn_like(p))
        assert not torch.equal(model.sam_region_weights(embedding, [sample.visual_prompts]), before)


def test_a_prompted_seg_is_decoded_with_its_prompt_and_an_unprompted_one_alone(prompted_sample):
    model, sample, embedding = prompted_sample
    with torch.no_grad():
        seg = torch.randn(2, 1, model.config.segmenter.prompt_dim)
        both = model.decode_masks(embedding, seg, [sample.visual_prompts, []], 128)
        alone = model.segmenter.decode(embedding, seg, 128)
    assert torch.allclose(both[1], alone[1], atol=1e-5)  # no visual prompt: the [SEG] alone, as without prompt_masks
    assert not torch.allclose(both[0], alone[0])  # the box or points join the first [SEG]


def test_the_guided_tour_on_the_shipped_model():
    """The tour's rule (first test image of CT and MRI; box, clicks, scribble; "What is this?"): at least 5 of
    the 6 answers name the true structure with Dice >= 0.7 (the MIMO-stage issue's target for notebook 07)."""
    from mimo_edu.interactive import MIN_DICE, Predictor, run_tour

    stops = run_tour(Predictor.from_pretrained())
    assert [s.prompt.kind for s in stops] == ["box", "point", "scribble"] * 2
    assert [s.sample.modality for s in stops] == ["ct"] * 3 + ["mri"] * 3
    assert all(s.right == (s.structure in s.answer.terms and s.dice >= MIN_DICE) for s in stops)
    assert sum(s.right for s in stops) >= 5, [(s.structure, s.answer.text, round(s.dice, 2)) for s in stops]
