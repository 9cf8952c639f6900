"""The nano foundations: each objective learns, pretraining resumes exactly, the evaluations compute what
they say, and the shipped weights load strictly into the nano MIMO (or fail with a clear error)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mimo_edu.cli import main as cli_main
from mimo_edu.data import TASKS, generate_samples, split_seed
from mimo_edu.errors import CheckpointError
from mimo_edu.foundations import FOUNDATIONS_DIR
from mimo_edu.foundations.data import image_tensor, scene
from mimo_edu.foundations.llm import TextCollator, TextDataset
from mimo_edu.foundations.run import (
    build_objective,
    datasets,
    load_objective,
    pretrain,
    pretrain_config,
    sam_config,
)
from mimo_edu.foundations.sam import SamObjective, eval_prompts
from mimo_edu.model import build_mimo
from mimo_edu.train.trainer import Trainer
from mimo_edu.utils import seed_everything

KINDS = ("clip", "sam", "llm")


def small(kind: str, **kw):
    return pretrain_config(kind, **{"batch_size": 2, "max_steps": 4, "warmup_steps": 1, "ckpt_every": 2,
                                    "eval_samples": 0, "progress": False, "log_every": 1, **kw})


@pytest.mark.parametrize("kind", KINDS)
def test_each_objective_lowers_its_loss_on_a_fixed_batch(kind):
    seed_everything(0)
    objective = build_objective(kind)
    train_set, collate = datasets(kind, small(kind))
    batch = collate([train_set[i] for i in range(2)])
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = objective(batch).loss
        losses.append(float(loss))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.fixture
def one_thread():
    """Bit-exact comparisons on one thread: multi-threaded CPU kernels may sum in another order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ("clip", "llm"))
def test_pretraining_resumes_exactly_after_an_interruption(kind, tmp_path, one_thread):
    cfg = small(kind)
    full = pretrain(kind, tmp_path / "full", cfg)
    seed_everything(cfg.seed)
    objective = build_objective(kind)
    train_set, collate = datasets(kind, cfg)
    Trainer(objective, train_set, cfg, tmp_path / "cut", collate).train(steps=2)  # "killed" after step 2
    resumed = pretrain(kind, tmp_path / "cut", cfg)
    assert resumed.step == 4
    a, b = full.raw_model.state_dict(), resumed.raw_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]


def test_pretraining_reads_only_the_train_split():
    for kind in KINDS:
        train_set, _ = datasets(kind, small(kind))
        assert train_set.stream == split_seed("train")


def test_sam_evaluation_matches_dice_by_hand(tmp_path, capsys):
    seed_everything(0)
    build_objective("sam").save_pretrained(tmp_path / "sam")
    assert cli_main(["foundation-eval", "sam", "--checkpoint", str(tmp_path / "sam"), "--seed", "7", "--num", "1",
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    objective = load_objective("sam", tmp_path / "sam")
    s = scene(7, 0)
    prompts = eval_prompts(s, np.random.default_rng([7, 0, 4]))
    for kind, ps in prompts.items():
        logits = objective.predict(image_tensor(s.image)[None], ps, torch.zeros(len(ps), dtype=torch.long))
        dices = []
        for inst, pred in zip(s.instances, (logits > 0).detach().numpy(), strict=True):
            inter, total = (pred & inst.mask).sum(), pred.sum() + inst.mask.sum()
            dices.append(1.0 if total == 0 else 2 * inter / total)
        assert report["dice"][kind] == pytest.approx(np.mean(dices))
    assert report["num_masks"] == len(s.instances)


def test_llm_texts_are_the_streams_samples_in_order_with_descriptions_between():
    """Every task's turns reach nano-LLM: a description replaces no sample (with four tasks and a description
    every fourth item, sample i at item i would leave out every prompt-assisted QA turn)."""
    texts = TextDataset(16, 5)
    turns = [texts[i] for i in range(16) if texts[i][1] is not None]
    samples = generate_samples(len(turns), 5)
    assert turns == [(s.question, s.answer) for s in samples]
    assert {s.task for s in samples} == set(TASKS)
    assert sum(texts[i][1] is None for i in range(16)) == 4


def test_llm_perplexity_matches_the_mean_token_loss_by_hand(tmp_path, capsys):
    seed_everything(0)
    build_objective("llm").save_pretrained(tmp_path / "llm")
    assert cli_main(["foundation-eval", "llm", "--checkpoint", str(tmp_path / "llm"), "--seed", "5", "--num", "3",
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    objective = load_objective("llm", tmp_path / "llm")
    collate, texts = TextCollator(objective.tokenizer), TextDataset(3, 5)
    nll = []
    for i in range(3):
        ids = torch.tensor([collate.ids(*texts[i])])
        log_probs = objective.llm(input_ids=ids).logits[0, :-1].log_softmax(-1)
        nll += (-log_probs[torch.arange(ids.shape[1] - 1), ids[0, 1:]]).tolist()
    assert report["perplexity"] == pytest.approx(float(np.exp(np.mean(nll))), rel=1e-4)
    assert report["unigram_perplexity"] > 1


def test_clip_evaluation_matches_nearest_caption_by_hand(tmp_path, capsys):
    seed_everything(0)
    build_objective("clip").save_pretrained(tmp_path / "clip")
    assert cli_main(["foundation-eval", "clip", "--checkpoint", str(tmp_path / "clip"), "--seed", "9", "--num", "2",
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    objective = load_objective("clip", tmp_path / "clip").eval()
    hits = []
    for i in range(2):
        s = scene(9, i)
        image, _ = objective.image_and_patches(image_tensor(s.image)[None])
        hits.append(int((image @ objective.text_embeddings("modality").T).argmax()) == i % 8)
    assert report["modality_acc"] == pytest.approx(np.mean(hits))
    assert report["num_regions"] == sum(len(scene(9, i).instances) for i in range(2))


def test_shipped_foundations_load_strictly_into_the_nano_modules():
    model = build_mimo("nano")
    clip = load_file(str(FOUNDATIONS_DIR / "clip" / "model.safetensors"))
    vision = {k.removeprefix("vision_model."): v for k, v in clip.items() if k.startswith("vision_model.")}
    own = {k.removeprefix("vision_model."): v for k, v in model.vision.clip.state_dict().items()}
    assert set(vision) == set(own) and all(torch.equal(own[k], v) for k, v in vision.items())
    sam = torch.load(FOUNDATIONS_DIR / "sam" / "sam.pth", weights_only=True)
    own = model.segmenter.sam.state_dict()
    assert set(sam) == set(own) and all(torch.equal(own[k], v) for k, v in sam.items())
    llm = load_file(str(FOUNDATIONS_DIR / "llm" / "model.safetensors"))
    base = {k.replace(".base_layer", ""): v for k, v in model.llm.state_dict().items() if "lora_" not in k}
    assert set(llm) == set(base) and all(torch.equal(base[k], v) for k, v in llm.items())


def test_missing_or_mismatched_foundations_name_make_foundations(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMO_EDU_FOUNDATIONS", str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match="make foundations"):
        build_mimo("nano")
    build_mimo("nano", from_scratch=True)  # the ablation needs no foundations
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for kind in ("clip", "llm"):
        (mixed / kind).symlink_to(FOUNDATIONS_DIR / kind)
    SamObjective(replace(sam_config(), encoder_dim=64)).save_pretrained(mixed / "sam")  # another SAM's weights
    monkeypatch.setenv("MIMO_EDU_FOUNDATIONS", str(mixed))
    with pytest.raises(CheckpointError, match="make foundations"):
        build_mimo("nano")
    with pytest.raises(CheckpointError, match="make foundations"):
        load_objective("clip", tmp_path / "nowhere")
