"""Object tokens (model/objects.py): region proposals, their patch coverage, and where the tokens go."""

import numpy as np
import torch

from mimo_edu.data import MIMOSegSynth, collate, split_seed
from mimo_edu.model import build_mimo
from mimo_edu.model.objects import object_weights, propose_regions
from mimo_edu.model.prompts import VisualPromptEncoder


def disc_image(size: int = 128) -> tuple[np.ndarray, list[np.ndarray]]:
    """A grey image with two discs of other colours; the discs' masks."""
    y, x = np.mgrid[:size, :size]
    image = np.full((size, size, 3), 90, np.uint8)
    discs = [(x - 40) ** 2 + (y - 40) ** 2 <= 12**2, (x - 90) ** 2 + (y - 80) ** 2 <= 8**2]
    image[discs[0]] = (200, 60, 60)
    image[discs[1]] = (40, 40, 220)
    return image, discs


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_proposals_find_the_objects_and_not_the_background():
    image, discs = disc_image()
    regions = propose_regions(image, max_regions=8)
    assert regions.dtype == bool and regions.shape[1:] == image.shape[:2]
    assert len(regions) == 2  # the background is too large to be an object
    for disc in discs:
        assert max(iou(disc, r) for r in regions) >= 0.6  # its rim, blurred by sigma 0.8, falls outside
    assert len(propose_regions(image, max_regions=1)) == 1
    assert len(propose_regions(np.full((128, 128, 3), 90, np.uint8), max_regions=8)) == 0


def test_object_weights_are_the_patch_coverage_of_each_region_zero_padded():
    image, discs = disc_image()
    images = torch.from_numpy(np.stack([image, np.full_like(image, 90)])).permute(0, 3, 1, 2).float() / 255
    w = object_weights(images, grid=16, max_regions=4)  # (2, 4, 256)
    assert w.shape == (2, 4, 256)
    assert w[0, 2:].abs().sum() == 0 and w[1].abs().sum() == 0  # free slots
    assert ((w[0, :2] >= 0) & (w[0, :2] <= 1)).all()
    covered = sorted(float(r.sum()) * 64 for r in w[0, :2])  # patch coverage back to pixels (8 x 8 per patch)
    assert np.allclose(covered, sorted(float(d.sum()) for d in discs), rtol=0.35)


def test_object_tokens_pool_like_region_tokens_through_their_own_projector():
    torch.manual_seed(0)
    enc = VisualPromptEncoder(8, 16, 64, 4, 4, objects=3)
    with torch.no_grad():
        enc.no_object.fill_(0.5)
    patches = torch.randn(2, 16, 8)
    weights = torch.zeros(2, 3, 16)
    weights[0, 0, :4] = 1.0
    weights[1, 1, 5] = 0.25
    tokens = enc.objects(patches, weights)  # (2, 3, 16)
    assert tokens.shape == (2, 3, 16)
    assert torch.allclose(tokens[0, 0], enc.region_tokens(patches[0], weights[0, 0], enc.object_proj))
    assert torch.allclose(tokens[1, 1], enc.region_tokens(patches[1], weights[1, 1], enc.object_proj))
    for b, k in [(0, 1), (0, 2), (1, 0), (1, 2)]:
        assert torch.equal(tokens[b, k], enc.no_object)


def test_object_tokens_follow_the_patch_tokens_at_the_image_positions():
    torch.manual_seed(0)
    model = build_mimo("nano", object_tokens=5).eval()
    c = model.config
    assert c.image_tokens == c.vision.image_tokens + 5 == model.template.num_image_tokens
    samples = [MIMOSegSynth(4, seed=split_seed("val"))[i] for i in range(2)]
    batch = collate(samples)
    images, prompts = model.to_frame(batch["images"], batch["visual_prompts"])
    with torch.no_grad():
        visual = model.visual_tokens(images, prompts)
        expected = model.prompt_encoder.objects(visual.patches, visual.object_weights)
    assert visual.image_tokens.shape == (2, c.image_tokens, c.llm.hidden_size)
    assert visual.object_weights.shape == (2, 5, c.vision.num_patches)
    assert torch.equal(visual.image_tokens[:, c.vision.image_tokens :], expected)
    enc = model.template.encode_batch(batch["questions"], batch["answers"], [len(p) for p in prompts])
    assert (enc.input_ids == model.template.image_id).sum(1).tolist() == [c.image_tokens] * 2
    out = model(batch)  # the whole forward reads them
    assert torch.isfinite(out.loss)


def test_train_object_tokens_flag_reaches_the_model_config():
    from mimo_edu.cli import build_parser
    from mimo_edu.train.cli import train_config

    parse = build_parser().parse_args
    cfg = train_config(parse(["train", "--preset", "nano", "--out", "runs/x", "--object-tokens", "12", "--no-aligner"]))
    assert cfg.model_overrides == {"use_aligner": False, "object_tokens": 12}
    assert "object_tokens" not in train_config(parse(["train", "--preset", "nano", "--out", "runs/x"])).model_overrides
