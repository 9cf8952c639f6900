"""The nano MIMO: shapes through the whole flow, what trains, generation, save/load, safety of user text."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scripted import script_answer

import mimo_edu
from mimo_edu.data.scenes import lesion_named
from mimo_edu.data.schema import IMAGE_TOKEN, PHRASE_END, PHRASE_START, REGION_TOKEN, SEG_TOKEN, VisualPrompt
from mimo_edu.errors import CheckpointError, DataError, ImageError, MimoError, PromptError
from mimo_edu.model import MIMO, PARTS, build_mimo
from mimo_edu.model.aligner import InputAligner
from mimo_edu.model.cli import params_table
from mimo_edu.model.config import SegmenterConfig, VisionConfig, nano_config, paper_config, scratch_config
from mimo_edu.model.grounding import (
    MAX_COUNT,
    READ_PROBABILITY,
    SIDES,
    SIZES,
    carry_readout,
    mask_summary,
)
from mimo_edu.model.segmenter import Segmenter
from mimo_edu.model.tokenizer import (
    NANO_TOKENIZER_DIR,
    decode_answer,
    encode_answer,
    encode_user_text,
    load_tokenizer,
    train_nano_tokenizer,
)
from mimo_edu.model.vision import merge_patches

S = 128


def box(x0, y0, x1, y1):
    return VisualPrompt("box", box=np.array([x0, y0, x1, y1], np.float32))


def point(*xy, labels=None):
    return VisualPrompt(
        "point", points=np.array(xy, np.float32), labels=None if labels is None else np.array(labels)
    )


def scribble(*xy):
    return VisualPrompt("scribble", points=np.array(xy, np.float32), width=3.0)


def make_batch(answers, prompts, size=S, questions=None):
    g = torch.Generator().manual_seed(0)
    masks = []
    for a in answers:
        m = torch.zeros(a.count(SEG_TOKEN), size, size, dtype=torch.bool)
        for k in range(len(m)):
            m[k, 10 + 8 * k : 60 + 8 * k, 20:70] = True
        masks.append(m)
    n = len(answers)
    return {
        "ids": [f"s{i}" for i in range(n)],
        "images": torch.rand(n, 3, size, size, generator=g),
        "modalities": ["ct"] * n,
        "tasks": ["perception"] * n,
        "questions": questions or ["What is this?"] * n,
        "answers": answers,
        "masks": masks,
        "visual_prompts": prompts,
        "terms": [[] for _ in answers],
    }


@pytest.fixture
def nano():
    torch.manual_seed(0)
    return build_mimo("nano")


def test_nano_is_small_and_trains_the_joining_parts(nano):
    counts = nano.parameter_counts()
    assert set(counts) == set(PARTS) | {"lora"}
    total = sum(t for t, _ in counts.values())
    assert 5e6 < total <= 10e6
    for part in ("projector", "prompt_encoder", "aligner", "mask_decoder", "seg_head", "lora"):
        assert counts[part][1] == counts[part][0] > 0, part
    for part in ("vision_tower", "sam_image_encoder", "sam_prompt_encoder", "region_decoder"):
        assert counts[part][1] == 0, part
    pixel = sum(p.numel() for p in nano.segmenter.pixel_features.parameters())  # trained with the mask decoder
    assert counts["region_decoder"][0] == counts["mask_decoder"][0] - pixel  # a frozen copy of the pretrained decoder
    with pytest.raises(MimoError, match="region_decoder"):
        build_mimo("nano", trainable=("mask_decoder", "region_decoder"))
    assert nano.config.llm.vocab_size == len(nano.tokenizer) == nano.llm.get_input_embeddings().num_embeddings


@pytest.mark.parametrize(
    "prompts",
    [
        [box(10, 10, 60, 70)],
        [point((30, 40), (50, 50), labels=[1, 0])],
        [scribble((10, 10), (40, 50), (80, 90), (100, 95), (110, 100), (120, 120))],
        [
            box(5, 5, 40, 40),
            point((100, 100)),
            scribble((60, 60), (70, 80)),
        ],  # several prompts in one question
    ],
    ids=["box", "point", "scribble", "three"],
)
def test_forward_shapes_for_each_prompt_kind(nano, prompts):
    answers = ["The <p>liver</p> [SEG].", "Yes, a <p>cyst</p> [SEG] in the <p>liver</p> [SEG].", "No."]
    batch = make_batch(answers, [prompts, [], prompts[:1]])
    out = nano(batch)
    assert torch.isfinite(out.loss) and out.ce_loss > 0 and out.bce_loss > 0 and out.dice_loss > 0
    c = nano.config
    assert (c.ce_weight, c.bce_weight, c.dice_weight) == (1.0, 0.5, 2.0)  # nano weights Dice up (config.py)
    expected = out.ce_loss + 0.5 * out.bce_loss + 2.0 * out.dice_loss
    assert torch.allclose(out.loss, expected)
    assert [tuple(m.shape) for m in out.pred_masks] == [(1, S, S), (2, S, S), (0, S, S)]  # one mask per [SEG]
    assert out.logits.shape[:2] == (3, out.logits.shape[1]) and out.logits.shape[2] == len(nano.tokenizer)
    # the LLM input holds the image's patch tokens and one group of <region> tokens per prompt
    enc = nano.template.encode_batch(batch["questions"], answers, [len(prompts), 0, 1])
    per_prompt = nano.config.tokens_per_prompt
    region_id, image_id = nano.template.region_id, nano.template.image_id
    assert (enc.input_ids == region_id).sum(1).tolist() == [per_prompt * len(prompts), 0, per_prompt]
    assert (enc.input_ids == image_id).sum(1).tolist() == [nano.config.image_tokens] * 3


def test_region_tokens_depend_on_where_the_prompt_is(nano):
    patches = nano.vision(torch.rand(1, 3, S, S))
    a = nano.prompt_encoder(patches, [[box(0, 0, 30, 30)]])
    b = nano.prompt_encoder(patches, [[box(90, 90, 127, 127)]])
    assert a.shape == (nano.config.tokens_per_prompt, nano.config.llm.hidden_size)
    assert not torch.allclose(a[0], b[0])  # pooled region feature
    assert not torch.allclose(a[1:], b[1:])  # segment-anything's positional sparse tokens


def test_real_generator_batch_flows_through(nano):
    from mimo_edu.data import collate, generate_samples

    batch = collate(generate_samples(4, seed=1, image_size=S))
    out = nano(batch)
    assert torch.isfinite(out.loss)
    assert [len(m) for m in out.pred_masks] == [len(m) for m in batch["masks"]]


def test_samples_that_share_an_image_encode_it_once(nano, monkeypatch):
    from mimo_edu.data import collate, generate_samples
    from mimo_edu.model import mimo as mimo_module

    batch = collate(generate_samples(8, seed=1, image_size=S))  # 2 images x 4 tasks
    images, index = mimo_module.unique_images(torch.stack([batch["images"][0], batch["images"][4], batch["images"][0]]))
    assert len(images) == 2 and index.tolist() == [0, 1, 0]
    encoded = []
    hook = nano.segmenter.sam.image_encoder.register_forward_hook(lambda m, i, o: encoded.append(len(o)))
    with torch.no_grad():
        shared = nano(batch)
        monkeypatch.setattr(mimo_module, "unique_images", lambda x: (x, torch.arange(len(x))))
        separate = nano(batch)
    hook.remove()
    assert encoded == [2, 8]
    torch.testing.assert_close(shared.loss, separate.loss)
    torch.testing.assert_close(shared.logits, separate.logits)


def test_mask_count_mismatch_is_a_data_error(nano):
    batch = make_batch(["The <p>liver</p> [SEG]."], [[]])
    batch["masks"] = [torch.zeros(2, S, S, dtype=torch.bool)]
    with pytest.raises(DataError, match="1 \\[SEG\\] but 2 masks"):
        nano(batch)


def test_gradients_reach_exactly_the_trainable_parts():
    torch.manual_seed(0)
    trainable = ("projector", "prompt_encoder", "aligner", "llm", "mask_decoder", "seg_head")
    model = build_mimo("nano", lora_rank=4, trainable=trainable)
    batch = make_batch(
        ["The <p>liver</p> [SEG].", "Sure, [SEG]."], [[box(10, 10, 50, 50)], [scribble((5, 5), (60, 60))]]
    )
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    opt = torch.optim.SGD([p for p in params.values() if p.requires_grad], lr=0.1)
    model(batch).loss.backward()

    for part, module in model.part_modules().items():
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if part in trainable:
            assert any(g.abs().sum() > 0 for g in grads), f"{part} gets no gradient"
        else:
            assert not grads, f"frozen {part} got gradients"
    # with LoRA on, the LLM trains only its adapters, token embeddings and LM head
    lora_b = [n for n in params if "lora_B" in n]
    assert lora_b and all(params[n].grad.abs().sum() > 0 for n in lora_b)
    assert params["llm.model.layers.0.self_attn.q_proj.base_layer.weight"].grad is None
    assert params["llm.model.layers.0.mlp.up_proj.weight"].grad is None
    assert params["llm.lm_head.weight"].grad.abs().sum() > 0

    opt.step()
    after = model.state_dict()
    for name, p in params.items():
        changed = not torch.equal(before[name], after[name])
        if not p.requires_grad:
            assert not changed, f"frozen {name} changed"
    assert not torch.equal(
        before["segmenter.sam.mask_decoder.iou_token.weight"],
        after["segmenter.sam.mask_decoder.iou_token.weight"],
    )


def test_generate_gives_one_mask_per_seg_from_the_training_hidden_state(nano):
    nano.eval()
    answer = "Yes, a <p>cyst</p> [SEG] in the <p>left kidney</p> [SEG]."
    prompts = [box(20, 20, 90, 100)]
    batch = make_batch([answer], [prompts])
    image = batch["images"][0]
    script_answer(nano, answer)
    result = nano.generate(image, "Is there a lesion?", prompts)
    assert result.text == answer
    assert result.terms == ["cyst", "left kidney"]
    assert result.plain_text == "Yes, a cyst in the left kidney."
    assert result.masks.shape == (2, S, S) and result.masks.dtype == bool
    assert result.mask_probs.shape == (2, S, S)
    # the KV-cached decoding reads the same hidden states as teacher forcing (given the masks it read back)
    with torch.no_grad():
        batch["questions"] = ["Is there a lesion?"]
        out = nano({**batch, "masks": [torch.from_numpy(result.mask_probs >= READ_PROBABILITY)]})
    np.testing.assert_allclose(result.mask_probs, out.pred_masks[0].sigmoid().numpy(), atol=1e-4)


def test_generate_resizes_masks_back_to_the_input_image(nano):
    nano.eval()
    script_answer(nano, "Sure, [SEG].")
    image = np.random.default_rng(0).integers(0, 255, (100, 90, 3), dtype=np.uint8)
    result = nano.generate(image, "Segment the liver.", [point((45, 50))])
    assert result.masks.shape == (1, 100, 90) and result.terms == [""]


def test_precomputed_embeddings_give_the_same_result(nano):
    nano.eval()
    batch = make_batch(["The <p>liver</p> [SEG]."], [[box(10, 10, 60, 60)]])
    with torch.no_grad():
        direct = nano(batch)
        cached = nano(batch, image_embeddings=nano.image_embeddings(batch["images"]))
    assert torch.equal(direct.pred_masks[0], cached.pred_masks[0])


def test_user_typed_special_tokens_are_text(nano):
    t = nano.template
    ids, _ = t.encode_prompt(f"Segment {SEG_TOKEN} {IMAGE_TOKEN} {REGION_TOKEN} <p>x</p>", num_prompts=0)
    assert ids.count(t.seg_id) == 0
    assert ids.count(t.image_id) == nano.config.image_tokens  # only the template's own
    assert ids.count(t.region_id) == 0
    # a question full of [SEG] with an answer without one needs no mask
    batch = make_batch(["No."], [[]], questions=[f"Is there a [SEG]? {SEG_TOKEN}{SEG_TOKEN}"])
    assert nano(batch).pred_masks[0].shape[0] == 0
    # generate never emits <image>/<region>, and the user's [SEG] never becomes a mask by itself
    nano.eval()
    result = nano.generate(batch["images"][0], f"{SEG_TOKEN} {SEG_TOKEN}", max_new_tokens=4)
    assert len(result.masks) == result.text.count(SEG_TOKEN)


def test_save_load_round_trip_and_refusals(nano, tmp_path):
    nano.eval()
    batch = make_batch(["The <p>liver</p> [SEG]."], [[point((40, 40))]])
    nano.save_pretrained(tmp_path / "ckpt")
    loaded = MIMO.from_pretrained(tmp_path / "ckpt", preset="nano").eval()
    with torch.no_grad():
        a, b = nano(batch), loaded(batch)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.pred_masks[0], b.pred_masks[0])
    assert loaded.config == nano.config

    with pytest.raises(CheckpointError, match="saved from preset 'nano', not 'lite'"):
        MIMO.from_pretrained(tmp_path / "ckpt", preset="lite")
    state = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    state.pop("grounding.mlp.0.weight")
    save_file(state, str(tmp_path / "ckpt" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 missing, e.g. \['grounding.mlp.0.weight'\]"):
        MIMO.from_pretrained(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="config.json or model.safetensors is missing"):
        MIMO.from_pretrained(tmp_path / "nowhere")


def test_aligner_ablation_switch():
    model = build_mimo("nano", use_aligner=False)
    assert model.aligner is None and "aligner" not in model.parameter_counts()
    out = model(make_batch(["Sure, [SEG]."], [[box(1, 1, 20, 20)]]))
    assert torch.isfinite(out.loss)


def test_aligner_starts_as_identity_and_touches_only_the_question(nano):
    embeds = torch.randn(2, 10, nano.config.llm.hidden_size)
    visual = torch.zeros(2, 10, dtype=torch.bool)
    visual[:, :4] = True
    question = torch.zeros(2, 10, dtype=torch.bool)
    question[:, 5:8] = True
    assert torch.equal(nano.aligner(embeds, visual, question), embeds)  # gate starts closed
    with torch.no_grad():
        nano.aligner.gate.fill_(1.0)
    out = nano.aligner(embeds, visual, question)
    assert torch.equal(out[~question], embeds[~question]) and not torch.allclose(
        out[question], embeds[question]
    )


def test_aligner_attention_gives_the_weights_forward_applies():
    torch.manual_seed(0)
    aligner = InputAligner(32, dim=16, num_heads=4)
    with torch.no_grad():
        aligner.gate.fill_(1.0)
    embeds = torch.randn(2, 10, 32)
    visual, question = torch.zeros(2, 10, dtype=torch.bool), torch.zeros(2, 10, dtype=torch.bool)
    visual[:, :4], question[:, 5:8] = True, True
    weights = aligner.attention(embeds, visual)  # (2, heads, 10, 10)
    assert weights.shape == (2, 4, 10, 10) and not weights[..., 4:].any()  # only the visual tokens are read
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 10))
    _, _, values = aligner.project(embeds)
    out = aligner.out_proj((weights @ values).transpose(1, 2).reshape(2, 10, -1))
    expected = embeds + torch.tanh(torch.tensor(1.0)) * out * question[..., None]
    torch.testing.assert_close(aligner(embeds, visual, question), expected)


PACKAGE = Path(mimo_edu.__file__).parent


def private_model_names() -> set[str]:
    """Underscored methods and attributes (not dunders) that the classes of mimo_edu/model define."""
    names = set()
    for path in (PACKAGE / "model").glob("*.py"):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            for node in ast.walk(cls):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(node.name)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.endswith("__")}


def private_uses(source: str, names: set[str]) -> list[str]:
    """`x._name` where `_name` is in `names` and `x` is not self or cls, as "line: code"."""
    return [
        f"{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in names
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]


def test_only_the_model_package_touches_private_names_of_model_objects():
    """Predictor, figures, training and the rest call the model's public stages; a private one may change."""
    names = private_model_names()
    assert "_sparse_embeddings" in names  # VisualPromptEncoder's
    assert private_uses("tokens = model.prompt_encoder._sparse_embeddings(prompts)", names)  # the scan sees a use
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "model" and (uses := private_uses(path.read_text(), names))
    }
    assert not offenders, f"use a public stage of MIMO instead: {offenders}"


def test_bad_inputs_raise_clear_errors(nano):
    with pytest.raises(PromptError, match="outside the 128x128 image"):
        nano.generate(torch.rand(3, S, S), "What?", [box(10, 10, 200, 50)])
    with pytest.raises(PromptError, match="unknown"):
        nano.generate(torch.rand(3, S, S), "What?", [VisualPrompt("lasso", points=np.zeros((2, 2)))])
    with pytest.raises(PromptError, match="`box` is missing"):
        nano.generate(torch.rand(3, S, S), "What?", [VisualPrompt("box")])
    with pytest.raises(ImageError, match=r"expected \(H, W, 3\) uint8"):
        nano.generate(np.zeros((S, S, 5), np.uint8), "What?")  # grey (S, S) is converted, 5 channels are not
    with pytest.raises(ImageError, match="outside \\[0, 1\\]"):
        nano.generate(torch.rand(3, S, S) * 255, "What?")
    with pytest.raises(MimoError, match="unknown fields \\['hidden'\\]"):
        build_mimo("nano", hidden=3)
    with pytest.raises(MimoError, match="unknown parts"):
        build_mimo("nano", trainable=("everything",))
    with pytest.raises(MimoError, match="model preset 'huge'"):
        build_mimo("huge")


def test_nano_tokenizer_is_the_trained_asset_and_training_is_deterministic():
    tok = load_tokenizer()
    assert 500 <= len(tok) <= 1000
    ids = encode_answer(tok, "The <p>left kidney</p> [SEG].")
    assert decode_answer(tok, ids) == "The <p>left kidney</p> [SEG]."
    seg = ids.index(tok.convert_tokens_to_ids(SEG_TOKEN))
    assert ids[seg - 1] == tok.convert_tokens_to_ids(PHRASE_END)  # the state predicting [SEG] reads </p>
    texts = ["Segment the <p>liver</p> [SEG].", "What is this?", "A <p>cyst</p> [SEG] in the liver."] * 3
    a, b = train_nano_tokenizer(texts, 300), train_nano_tokenizer(list(reversed(texts)), 300)
    assert a.get_vocab() == b.get_vocab()
    assert (NANO_TOKENIZER_DIR / "tokenizer.json").is_file()


def test_a_grounded_term_has_the_same_tokens_in_the_answer_as_in_the_question():
    """Copying a term from the question is repeating its tokens: `<p>` takes the space before the term."""
    tok = load_tokenizer()
    question = encode_user_text(tok, "Segment the right kidney and the liver.")
    answer = encode_answer(tok, "Sure, the <p>right kidney</p> [SEG] and the <p>liver</p> [SEG].")
    open_id, close_id = tok.convert_tokens_to_ids(PHRASE_START), tok.convert_tokens_to_ids(PHRASE_END)
    starts = [i for i, t in enumerate(answer) if t == open_id]
    terms = [answer[i + 1 : answer.index(close_id, i)] for i in starts]
    assert terms == [encode_user_text(tok, " right kidney"), encode_user_text(tok, " liver")]
    for term in terms:
        assert any(question[i : i + len(term)] == term for i in range(len(question)))
    for text in ("<p>liver</p> [SEG] first.", "Sure, [SEG].", "No, the <p>o</p> [SEG] has no cysts."):
        assert decode_answer(tok, encode_answer(tok, text)) == text


def test_merge_patches_concatenates_neighbouring_patches():
    patches = torch.arange(2 * 16 * 3).view(2, 16, 3)  # (B, 4 x 4 grid, C)
    merged = merge_patches(patches, 2)  # (B, 4, 4 * C)
    assert merged.shape == (2, 4, 12)
    grid = patches.view(2, 4, 4, 3)
    assert merged[1, 1].tolist() == torch.cat([grid[1, 0, 2], grid[1, 0, 3], grid[1, 1, 2], grid[1, 1, 3]]).tolist()
    assert sorted(merged.flatten().tolist()) == sorted(patches.flatten().tolist())  # nothing lost
    assert merge_patches(patches, 1) is patches
    with pytest.raises(MimoError, match="divisor of the patch grid"):
        build_mimo("nano", vision=VisionConfig(merge=3))


def test_params_table_for_nano():
    table = params_table("nano")
    total = float(re.search(r"MIMO total\s+([\d.]+) M", table).group(1))
    assert 5 < total <= 10
    for part in PARTS:
        assert part in table


def test_no_cuda_calls_in_the_package():
    root = Path(mimo_edu.__file__).parent
    offenders = [str(p) for p in root.rglob("*.py") if ".cuda(" in p.read_text()]
    assert offenders == []


@pytest.mark.parametrize("to_mask_token", [False, True])
def test_batched_decode_matches_segment_anythings_mask_decoder(to_mask_token):
    """Segmenter.decode batches over images; each mask equals MaskDecoder's own call (with the prompt
    added to the mask token's weight when `prompt_to_mask_token` is on)."""
    torch.manual_seed(0)
    seg = Segmenter(SegmenterConfig(prompt_dim=128, prompt_to_mask_token=to_mask_token))
    embeddings = torch.randn(2, 128, 16, 16)
    sparse = torch.randn(3, 1, 128)
    image_index = torch.tensor([0, 1, 1])
    decoder = seg.sam.mask_decoder
    with torch.no_grad():
        batched = seg.decode(embeddings, sparse, S, image_index)  # (3, S, S)
        _, dense = seg.sam.prompt_encoder(points=None, boxes=None, masks=None)
        token = decoder.mask_tokens.weight[0].clone()
        for k, i in enumerate(image_index.tolist()):
            decoder.mask_tokens.weight[0] = token + sparse[k, 0] if to_mask_token else token
            low_res, _ = decoder(
                image_embeddings=embeddings[i : i + 1],
                image_pe=seg.sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse[k : k + 1],
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            reference = torch.nn.functional.interpolate(low_res, size=(S, S), mode="bilinear")[0, 0]
            torch.testing.assert_close(batched[k], reference, atol=1e-5, rtol=1e-4)
        decoder.mask_tokens.weight[0] = token
    assert scratch_config(nano_config()).segmenter.prompt_to_mask_token
    assert not nano_config().segmenter.prompt_to_mask_token and not paper_config().segmenter.prompt_to_mask_token


def test_pixel_features_start_as_sam_and_then_add_fine_detail_to_each_mask():
    from dataclasses import replace

    torch.manual_seed(0)
    seg = Segmenter(replace(nano_config().segmenter, pixel_features=True)).eval()
    images = torch.rand(2, 3, S, S)
    emb, sparse = seg.image_embeddings(images), torch.randn(3, 1, 128)
    index = torch.tensor([0, 1, 1])
    fine = seg.fine_features(images)
    assert fine.shape == (2, 16, 64, 64)  # (B, D / 8, 4h, 4w): the upscaled embedding's shape
    with torch.no_grad():
        plain = seg.decode(emb, sparse, S, index)
        torch.testing.assert_close(seg.decode(emb, sparse, S, index, fine=fine), plain)  # zero start: SAM exactly
        torch.nn.init.normal_(seg.pixel_features.net[-1].weight)
        spot = images.clone()
        spot[1, :, 60:64, 60:64] = 1.0  # one 4 x 4 spot in image 1
        before = seg.decode(emb, sparse, S, index, fine=seg.fine_features(images))
        after = seg.decode(emb, sparse, S, index, fine=seg.fine_features(spot))
    changed = (before - after).abs() > 1e-4  # (3, S, S)
    assert not changed[0].any()  # masks of image 0 do not see image 1's pixels
    assert changed[1:, 56:68, 56:68].all(dim=0).any() and not changed[1:, :40].any()  # only near the spot
    assert Segmenter(replace(nano_config().segmenter, pixel_features=False)).fine_features(images) is None


def test_seg_features_average_the_grounded_phrase():
    from mimo_edu.model.grounding import seg_features

    SEG, OPEN, CLOSE = 9, 7, 8
    ids = torch.tensor([[1, OPEN, 3, 4, CLOSE, SEG, 2, SEG, 0]])  # "<p> a b </p> [SEG] , [SEG]"
    hidden = torch.arange(9, dtype=torch.float32).view(1, 9, 1).expand(1, 9, 2)  # position t holds t
    feats = seg_features(hidden, ids, SEG, OPEN, CLOSE)
    assert feats.shape == (2, 2)
    assert feats[0].tolist() == [2.5, 2.5]  # mean over <p> a b </p> (positions 1..4)
    assert feats[1].tolist() == [6.0, 6.0]  # no phrase: the state that predicts [SEG] (position 6)


def test_seg_state_is_the_single_state_that_predicts_seg():
    from mimo_edu.model.grounding import seg_features

    SEG, OPEN, CLOSE = 9, 7, 8
    ids = torch.tensor([[1, OPEN, 3, 4, CLOSE, SEG, 2, SEG, 0], [1, 2, SEG, 0, 0, 0, 0, 0, 0]])
    hidden = torch.arange(18, dtype=torch.float32).view(2, 9, 1).expand(2, 9, 2)  # (b, t) holds 9 b + t
    feats = seg_features(hidden, ids, SEG, OPEN, CLOSE, mode="seg_state")
    assert feats[:, 0].tolist() == [4.0, 6.0, 10.0]  # the </p> state, the "," state, then sample 1's


def test_seg_state_model_feeds_the_hidden_state_before_each_seg_to_the_head():
    torch.manual_seed(0)
    model = build_mimo("nano", seg_feature="seg_state").eval()
    answers = ["Yes, a <p>cyst</p> [SEG] in the <p>liver</p> [SEG].", "Sure, [SEG]."]
    batch = make_batch(answers, [[box(20, 20, 90, 100)], []])
    seen = {}
    model.llm.model.register_forward_hook(lambda m, i, out: seen.update(hidden=out.last_hidden_state))
    model.grounding.register_forward_hook(lambda m, i, out: seen.update(features=i[0]))
    with torch.no_grad():
        model(batch)
    ids = model.template.encode_batch(batch["questions"], answers, [1, 0]).input_ids
    b, j = (ids == model.template.seg_id).nonzero(as_tuple=True)  # reading order
    assert len(b) == 3
    torch.testing.assert_close(seen["features"], seen["hidden"][b, j - 1])  # LISA: the state predicting [SEG]
    phrase = build_mimo("nano").seg_features(seen["hidden"], ids)  # nano's default: the phrase mean differs
    assert not torch.allclose(phrase[0], seen["features"][0])


def test_longest_side_frame_puts_masks_back_on_a_non_square_image(monkeypatch):
    """Resize the longest side and pad (SAM's transform): a mask predicted in the frame comes back at the
    image's size and place. The decoder is replaced by "bright pixels of the frame" so the right answer is known."""
    from segment_anything.utils.transforms import ResizeLongestSide

    model = build_mimo("nano", segmenter=SegmenterConfig(prompt_dim=128, resize="longest_side")).eval()
    assert model.frame_size(100, 60) == (128, 77) and model.frame_size(128, 128) == (128, 128)
    image = np.zeros((100, 60, 3), np.uint8)  # portrait: the frame pads on the right
    image[30:70, 10:40] = 255
    p = point((25, 50))
    frame, (prompts,) = model.to_frame(model.image_tensor(image), [[p]])
    assert frame.shape == (1, 3, 128, 128)
    pad = torch.tensor(model.config.segmenter.pixel_mean) / 255
    torch.testing.assert_close(frame[0, :, :, 77:].mean((1, 2)), pad)  # SAM's pixel mean: 0 once normalised
    np.testing.assert_allclose(prompts[0].points, ResizeLongestSide(128).apply_coords(p.points, (100, 60)), rtol=1e-6)

    monkeypatch.setattr(model, "image_embeddings", lambda images: images[:, :1])  # (1, 1, S, S): the frame itself
    monkeypatch.setattr(
        model.segmenter, "decode", lambda emb, sparse, out_size, index=None, decoder=None, fine=None: (emb[:, 0] - 0.75).expand(len(sparse), -1, -1) * 20
    )
    script_answer(model, "Sure, [SEG].")
    masks = model.generate(image, "Segment the lesion.").masks
    assert masks.shape == (1, 100, 60)
    assert (masks[0] == (image[..., 0] > 0)).mean() > 0.99  # in the right place: the padding was cropped


def test_configs_saved_before_seg_feature_and_resize_load_as_before():
    from mimo_edu.model.config import MIMOConfig

    old = nano_config().to_dict()
    del old["seg_feature"], old["segmenter"]["resize"]
    config = MIMOConfig.from_dict(old)
    assert config.seg_feature == "phrase_mean" and config.segmenter.resize == "stretch"
    with pytest.raises(MimoError, match="seg_feature 'mean'"):
        nano_config().with_overrides(seg_feature="mean")
    with pytest.raises(MimoError, match="resize 'pad'"):
        SegmenterConfig(resize="pad")


def test_longest_side_losses_read_only_the_image_part_of_the_frame():
    from mimo_edu.model.grounding import mask_bce_loss

    model = build_mimo("nano", segmenter=SegmenterConfig(prompt_dim=128, resize="longest_side")).eval()
    batch = make_batch(["The <p>liver</p> [SEG]."], [[box(10, 10, 60, 40)]])
    batch["images"], batch["masks"] = batch["images"][..., :64, :], [m[:, :64, :] for m in batch["masks"]]  # (1, 3, 64, 128)
    with torch.no_grad():
        out = model(batch)
    pred = out.pred_masks[0]
    assert pred.shape == (1, S, S) and model.frame_size(64, 128) == (64, 128)
    torch.testing.assert_close(out.bce_loss, mask_bce_loss(pred[:, :64], batch["masks"][0].float()))


def test_an_empty_target_teaches_the_decoder_to_draw_nothing():
    """LISA's Dice loss is 1 for an empty target whatever is drawn, so it gives no gradient there;
    empty_mask_loss costs the drawn area, and forward uses it for empty targets when the config says so."""
    from mimo_edu.model.grounding import empty_mask_loss, mask_dice_loss

    piece = torch.full((1, S, S), -20.0)
    piece[0, :8, :5] = 20.0  # 40 sure pixels
    assert empty_mask_loss(torch.full((1, S, S), -20.0), 40) < 1e-3
    assert abs(empty_mask_loss(piece, 40).item() - 0.5) < 1e-3 and empty_mask_loss(piece, 10) > 0.75
    logits = torch.zeros(1, S, S, requires_grad=True)
    mask_dice_loss(logits, torch.zeros(1, S, S)).backward()
    assert logits.grad.abs().max() < 1e-6

    grads = {}
    for on in (False, True):
        torch.manual_seed(0)
        model = build_mimo("nano", empty_mask_loss=on, ce_weight=0.0, bce_weight=0.0)
        batch = make_batch(["The <p>liver</p> [SEG]."], [[box(10, 10, 60, 40)]])
        batch["masks"] = [torch.zeros_like(batch["masks"][0])]
        out = model(batch)
        out.loss.backward()
        grads[on] = torch.cat([p.grad.flatten() for p in model.segmenter.sam.mask_decoder.parameters() if p.grad is not None])
        if on:
            torch.testing.assert_close(out.dice_loss, empty_mask_loss(out.pred_masks[0], 40))
        else:
            assert out.dice_loss > 0.999
    assert grads[True].abs().max() > 1000 * grads[False].abs().max()  # LISA's: float noise only


def test_mask_summary_counts_pieces_and_reads_side_and_size():
    empty = np.zeros((S, S), bool)
    assert mask_summary(empty, "cysts") == (0, 0, 0)
    two = empty.copy()
    two[10:20, 10:20] = two[40:50, 20:30] = True  # two 10 x 10 squares on the left
    two[100, 100] = True  # a one-pixel speck: below half a lesion's least area, not a piece
    assert mask_summary(two, "cysts") == (2, SIDES.index("left"), SIZES.index("small"))
    assert mask_summary(np.fliplr(two), "liver")[:2] == (2, SIDES.index("right"))
    assert mask_summary(two, "liver")[2] == 0  # anatomy has no size
    many = np.kron(np.eye(8, dtype=bool), np.ones((16, 16), bool))  # 8 squares touching only at corners
    assert mask_summary(many)[0] == 1  # 8-connected: one piece
    apart = np.zeros((S, S), bool)
    for k in range(6):
        apart[5 + 20 * k : 15 + 20 * k, 5:15] = True
    assert mask_summary(apart)[0] == MAX_COUNT  # six pieces read as the most it counts
    cyst = lesion_named("cysts")
    assert cyst is lesion_named("cyst") and lesion_named("liver") is None
    r = int(cyst.size_split * S) + 2  # a disc just over the class's size split is large, just under small
    yy, xx = np.mgrid[:S, :S]
    assert mask_summary((yy - 64) ** 2 + (xx - 30) ** 2 <= r**2, "cyst")[2] == SIZES.index("large")
    assert mask_summary((yy - 64) ** 2 + (xx - 30) ** 2 <= (r - 4) ** 2, "cyst")[2] == SIZES.index("small")


def test_mask_readout_feeds_each_seg_its_mask_in_training_and_its_prediction_in_generation(nano):
    """Teacher forcing reads the true masks at each [SEG]; generate reads the mask it has just predicted: given
    generate's own masks as the truth, teacher forcing reproduces its second mask, which the first one's
    read-out changes."""
    assert nano.config.mask_readout and build_mimo("nano", mask_readout=False).grounding.readout is None
    nano.eval()
    with torch.no_grad():
        for table in (nano.grounding.readout.pieces, nano.grounding.readout.side, nano.grounding.readout.size):
            table.weight.normal_(0, 1.0)
    answer = "I looked for <p>cysts</p> [SEG] in the <p>liver</p> [SEG]: 2. Yes."
    prompts = [box(20, 20, 90, 100)]
    batch = make_batch([answer], [prompts], questions=["Is there a cyst in the liver?"])
    script_answer(nano, answer)
    result = nano.generate(batch["images"][0], "Is there a cyst in the liver?", prompts)
    assert result.text == answer and result.masks.shape == (2, S, S)
    read = result.mask_probs >= READ_PROBABILITY  # what generate read back
    alt = np.zeros_like(read)
    if mask_summary(read[0]) == mask_summary(alt[0]):
        alt[0, 10:60, 20:70] = True
    with torch.no_grad():
        own = nano({**batch, "masks": [torch.from_numpy(read)]}).pred_masks[0].sigmoid().numpy()
        other = nano({**batch, "masks": [torch.from_numpy(alt)]}).pred_masks[0].sigmoid().numpy()
    np.testing.assert_allclose(result.mask_probs, own, atol=1e-4)
    assert np.abs(other[1] - own[1]).max() > 1e-3  # the first mask's read-out changed the second
    np.testing.assert_allclose(other[0], own[0], atol=1e-5)  # and nothing before it


def test_carry_readout_holds_each_seg_reading_until_the_next_seg():
    is_seg = torch.tensor([[0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    read = torch.tensor([[1.0], [2.0], [3.0]])  # the three [SEG]s in reading order
    carried = carry_readout(is_seg, read)[..., 0]
    torch.testing.assert_close(carried, torch.tensor([[0, 1, 1, 1, 2, 2], [0, 0, 0, 0, 0, 0], [3, 3, 3, 3, 3, 3.0]]))
    assert carry_readout(torch.zeros(2, 3, dtype=torch.bool), torch.zeros(0, 1)).shape == (2, 3, 1)
