"""The memory and compute calculator (mimo_edu.scaling): hand-checked toy numbers, the paper model's counts,
the effect of each saving, the launch commands the README shows, and refused inputs."""

import json
import math
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from paper_checkpoints import save_tiny_paper_checkpoints
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mimo_edu.cli import build_parser, main
from mimo_edu.data import collate
from mimo_edu.data.schema import VisualPrompt
from mimo_edu.errors import MimoError
from mimo_edu.model import PaperPaths, SegmenterConfig, build_mimo
from mimo_edu.model.config import nano_config, paper_config
from mimo_edu.scaling import (
    A800,
    GIB,
    GPU,
    H100,
    MIMOSEG_SAMPLES,
    ModelShape,
    ParamCounts,
    Plan,
    Setup,
    estimate_memory,
    estimate_step,
    evaluate_command,
    launch_command,
    layer_activation_bytes,
    max_batch_that_fits,
    memory_scenarios,
    paper_model_counts,
    paper_setup,
    plan_launch,
    preset_differences,
    sequence_length,
    smoke_comparison,
    smoke_report,
)
from mimo_edu.train.cli import train_config
from mimo_edu.train.config import get_preset
from mimo_edu.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]

# A toy model small enough to redo every number by hand (see the comments in the tests).
TOY_COUNTS = ParamCounts({
    "llm_layers": (1000, 0),  # frozen, between trained parts: 4 FLOPs per parameter per token
    "lora": (10, 10),
    "embed_tokens": (100, 100),  # a lookup: no FLOPs, no autocast copy
    "lm_head": (100, 100),
    "vision_tower": (500, 0),  # frozen encoder: forward only
    "sam_image_encoder": (400, 0),
})
TOY_SHAPE = ModelShape(
    llm_width=8, llm_layers=2, llm_heads=2, vocab=50, lora_targets=0, image_tokens=4, tokens_per_prompt=6,
    aligner_dim=0, clip_tokens=5, clip_width=4, clip_layers=1, sam_grid=2, sam_width=4, sam_heads=1,
    sam_depth=1, sam_window=0, sam_global_blocks=1, frame=8,
)
TOY_SETUP = Setup(per_gpu_batch=2, num_gpus=2, text_tokens=6, prompts_per_sample=0, masks_per_sample=0)


@pytest.fixture(scope="module")
def paper():
    return paper_model_counts()


def test_toy_memory_by_hand():
    # s = 4 image + 0 region + 6 text = 10 tokens; b = 2; trainable 210, frozen 1900
    assert sequence_length(TOY_SHAPE, TOY_SETUP) == 10
    m = estimate_memory(TOY_COUNTS, TOY_SHAPE, TOY_SETUP)
    assert m.frozen_weights == 2 * 1900  # bf16
    assert m.trainable_weights == 4 * 210  # fp32 masters
    assert m.autocast_copies == 2 * (210 - 100)  # every trained matmul weight, not the embedding
    assert m.gradients == 4 * 210 and m.optimizer == 8 * 210
    assert m.llm_activations == 2 * (10 * 2 * 8 * 34)  # L * s*b*h*34
    assert m.logits == 10 * 2 * 50 * 10
    assert m.other_activations == 0
    # SAM: 2 images x (10 bytes x 1 head x 4**2 scores + 16 x 4 tokens x 4 channels) = 832 > CLIP's 800
    assert m.encoder_transient == 2 * (10 * 16 + 16 * 4 * 4)
    assert m.total == 3800 + 840 + 220 + 840 + 1680 + 10880 + 10000 + 832

    ckpt = estimate_memory(TOY_COUNTS, TOY_SHAPE, TOY_SETUP.with_(checkpointing=True))
    assert ckpt.llm_activations == 2 * (2 * 10 * 2 * 8) + 10 * 2 * 8 * 34  # inputs of each layer + one layer
    zero = estimate_memory(TOY_COUNTS, TOY_SHAPE, TOY_SETUP.with_(zero2=True))
    assert zero.gradients == 4 * 210 / 2 and zero.optimizer == 8 * 210 / 2
    fp32 = estimate_memory(TOY_COUNTS, TOY_SHAPE, TOY_SETUP.with_(frozen_dtype="fp32"))
    assert fp32.frozen_weights == 4 * 1900
    assert fp32.autocast_copies == 2 * 110 + 2 * 1000  # + the frozen LLM weights' bf16 copies kept for backward


def test_toy_flops_and_time_by_hand():
    step = estimate_step(TOY_COUNTS, TOY_SHAPE, TOY_SETUP, GPU("toy", 1e-12, 1.0), mfu=0.5)  # 1 FLOP/s peak
    attn = 4 * 2 * 10**2 * 8  # 4 * L * s**2 * h forward
    assert step.flops["LLM forward + backward"] == 10 * (4 * 1000 + 6 * 10 + 6 * 100) + 3 * attn
    assert step.flops["CLIP forward"] == 5 * 2 * 500 + 4 * 1 * 5**2 * 4
    assert step.flops["SAM image encoder forward"] == 4 * 2 * 400 + 4 * 4 * 4**2
    assert step.flops["LLM recompute (checkpointing)"] == 0
    assert step.flops_per_sample == 65800 + 5400 + 3456
    assert step.seconds_per_step == pytest.approx(2 * 74656 / 0.5)
    assert step.steps(8) == 2 and step.days(8) == pytest.approx(2 * 2 * 74656 / 0.5 / 86400)
    ckpt = estimate_step(TOY_COUNTS, TOY_SHAPE, TOY_SETUP.with_(checkpointing=True), GPU("toy", 1e-12, 1.0), 0.5)
    assert ckpt.flops["LLM recompute (checkpointing)"] == 2 * 10 * 1010 + attn


def test_paper_counts_match_the_params_command(paper):
    counts, shape = paper
    assert round(counts.total() / 1e9, 3) == 8.111
    assert round(counts.llm / 1e9, 3) == 6.738
    assert round(counts.trainable() / 1e6, 3) == 366.978
    assert counts.total("lora") == 32 * 2 * 8 * (4096 + 4096)  # r * (in + out) on q_proj and v_proj
    assert counts.total("embed_tokens") == counts.total("lm_head") == 32005 * 4096
    assert counts.trainable("llm_layers", "vision_tower", "sam_image_encoder") == 0
    assert shape == ModelShape.from_config(paper_config())
    assert sequence_length(shape, Setup()) == 256 + 6 + 128


def test_paper_savings(paper):
    counts, shape = paper
    base = paper_setup(zero2=False, checkpointing=False, sam_chunk=0)
    launch = paper_setup()  # FSDP, checkpointing and SAM one image at a time, as the presets set them
    assert (launch.per_gpu_batch, launch.num_gpus, launch.zero2, launch.checkpointing, launch.sam_chunk,
            launch.frozen_dtype) == (10, 4, True, True, 1, "bf16")
    plain = estimate_memory(counts, shape, base)
    ckpt = estimate_memory(counts, shape, base.with_(checkpointing=True))
    zero = estimate_memory(counts, shape, base.with_(checkpointing=True, zero2=True))
    assert ckpt.llm_activations < plain.llm_activations / 10
    assert zero.optimizer == pytest.approx(ckpt.optimizer / 4) and zero.gradients == pytest.approx(ckpt.gradients / 4)
    assert zero.frozen_weights == ckpt.frozen_weights  # ZeRO-2 shards no weights
    chunked = estimate_memory(counts, shape, base.with_(checkpointing=True, sam_chunk=1))
    assert chunked.encoder_transient == pytest.approx(plain.encoder_transient / 10)
    totals = [estimate_memory(counts, shape, s).total for s in memory_scenarios(base).values()]
    assert totals == sorted(totals, reverse=True)
    assert all(t < 80 * 2**30 for t in totals)
    assert max_batch_that_fits(counts, shape, base.with_(checkpointing=True), A800) > max_batch_that_fits(
        counts, shape, base, A800
    )


def test_attention_scores_term():
    # Korthikanti: s*b*h*(34 + 5*a*s/h); the paper LLM at s = 390, b = 10
    s, b, h, a = 390, 10, 4096, 32
    assert layer_activation_bytes(s, b, h, a, scores_saved=True) == pytest.approx(s * b * h * 34 + 5 * a * s**2 * b)
    assert layer_activation_bytes(s, b, h, a, scores_saved=False) == s * b * h * 34


def test_paper_step_time_and_days(paper):
    counts, shape = paper
    step = estimate_step(counts, shape, paper_setup(), A800, mfu=0.35)
    assert step.steps(MIMOSEG_SAMPLES) == get_preset("paper").max_steps == 22_375
    assert step.days() == pytest.approx(22_375 * step.seconds_per_step / 86_400)
    # the LLM dominates; SAM's 1024 px encoder is the next largest (~2 * 637 M * 4096 tokens)
    assert step.flops["LLM forward + backward"] > step.flops["SAM image encoder forward"] > 2 * 637e6 * 4096
    faster = estimate_step(counts, shape, paper_setup(checkpointing=False), A800, mfu=0.35)
    assert faster.seconds_per_step < step.seconds_per_step
    assert estimate_step(counts, shape, paper_setup(), A800, mfu=0.7).days() == pytest.approx(step.days() / 2)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:traitlets")  # from importing every CLI module
def test_launch_commands_are_the_readme_ones():
    readme = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()]
    for command in (launch_command(), evaluate_command()):
        lines = [line.strip() for line in command.splitlines()]
        starts = [i for i, line in enumerate(readme) if line == lines[0]]
        assert any(readme[i : i + len(lines)] == lines for i in starts), f"README lacks:\n{command}"
    train = launch_command().replace("\\\n", " ").splitlines()[-1]  # the torchrun line, continuation joined
    args = build_parser().parse_args(train.split("-m mimo_edu ")[1].split())
    assert (args.command, args.preset, args.data, args.out) == ("train", "paper", "/data/MIMOSeg", "runs/paper")
    args = build_parser().parse_args(evaluate_command().split("-m mimo_edu ")[1].split())
    assert args.command == "evaluate" and args.json


def test_preset_differences():
    rows = {k: (a, b) for k, a, b in preset_differences(nano_config(), paper_config(), get_preset("nano"),
                                                        get_preset("paper"))}
    assert rows["model.llm.hidden_size"] == ("256", "4096")
    assert rows["train.lr"] == ("0.001", "0.0003")
    assert rows["train.strategy"] == ("ddp", "fsdp")
    assert "model.ce_weight" not in rows  # equal in both
    assert "model.frozen parts" not in rows and "model.lora_rank" not in rows  # nano freezes what paper freezes
    assert rows["model.region_source"] == ("sam", "prompt")


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"per_gpu_batch": 0}, "per_gpu_batch"), ({"num_gpus": -1}, "num_gpus"), ({"text_tokens": 0}, "text_tokens"),
     ({"masks_per_sample": -1}, "masks_per_sample"), ({"frozen_dtype": "fp16"}, "frozen_dtype")],
)
def test_bad_setup_is_refused(changes, field):
    with pytest.raises(MimoError, match=rf"Setup\.{field}=.*must be"):
        Setup(**changes)


@pytest.mark.parametrize("mfu", [0, -0.1, 1.5, math.nan])
def test_bad_mfu_is_refused(mfu):
    with pytest.raises(MimoError, match=r"mfu=.*\(0, 1\]"):
        estimate_step(TOY_COUNTS, TOY_SHAPE, TOY_SETUP, A800, mfu=mfu)


def test_other_bad_inputs():
    with pytest.raises(MimoError, match="unknown fields"):
        TOY_SETUP.with_(batch=4)
    with pytest.raises(MimoError, match="num_gpus=0"):
        launch_command(num_gpus=0)
    assert estimate_step(TOY_COUNTS, TOY_SHAPE, TOY_SETUP, A800, mfu=1).mfu == 1.0


def test_smoke_comparison_reads_the_benchmark_report(paper, tmp_path):
    counts, shape = paper
    assert smoke_report(tmp_path / "missing.json") is None  # notebook 08 then prints "NOT MEASURED"
    # the shape of benchmarks/paper_gpu_smoke.py's JSON; the values are made up for the test
    report = {"device": "NVIDIA H100 80GB HBM3", "weights_gib": 16.0, "per_gpu_batch": 10, "frozen_dtype": "bf16",
              "sam_chunk": 1,
              "runs": [{"gradient_checkpointing": False, "peak_gib": 60.0, "step_s_median": 1.0,
                        "sequence_length": 390}]}
    (tmp_path / "smoke.json").write_text(json.dumps(report))
    rows = {q: (est, meas) for q, est, meas in smoke_comparison(smoke_report(tmp_path / "smoke.json"), counts, shape)}
    launch = estimate_memory(counts, shape, Setup(num_gpus=1, text_tokens=128, sam_chunk=1)).total / GIB
    assert rows["peak memory, no checkpointing (GiB)"][0] == f"{launch:.1f}"  # SAM one image at a time, as run
    assert rows["device"] == ("H100 SXM 80GB", "NVIDIA H100 80GB HBM3")
    assert rows["peak memory, no checkpointing (GiB)"][1] == "60.0"
    flops = estimate_step(counts, shape, Setup(num_gpus=1), H100, mfu=1.0).flops_per_sample * 10
    assert rows["MFU, no checkpointing"][1] == f"{flops / 989e12:.2f}"
    with pytest.raises(MimoError, match="no peak FLOPs known"):
        smoke_comparison({**report, "device": "Some GPU"}, counts, shape)


# ---- the launch and its plan ----------------------------------------------------------------------------


def launch_args(*extra: str):
    """`train --preset paper` as README.md launches it, parsed by the real CLI (plus `extra` switches)."""
    return build_parser().parse_args(["train", "--preset", "paper", "--data", "/data/MIMOSeg", "--out", "runs/paper",
                                      *extra])


def test_the_readme_launch_fits_with_ten_percent_to_spare():
    plan = plan_launch(train_config(launch_args()), num_gpus=4, gpu=A800)
    assert plan.memory.total <= 72 * GIB  # 10 % under the A800's 80 GB
    assert plan.to_dict()["fits"] and plan.setup.global_batch == 40


def test_the_launch_config_is_the_calculators(paper):
    train = train_config(launch_args())
    plan = plan_launch(train, num_gpus=4)
    assert plan.train is train  # the object `train` hands to train_run, not a copy
    assert plan.setup == Setup.from_launch(train, plan.model, 4)
    assert plan.model == paper_config()  # build_mimo("paper") on the meta device keeps the preset's config
    assert (plan.counts, plan.shape) == paper
    with pytest.raises(MimoError, match=r"\['checkpointing'\] come from the launch's configs"):
        Setup.from_launch(train, plan.model, 4, checkpointing=False)


def test_each_switch_moves_the_estimate_by_its_formula(paper):
    counts, shape = paper
    base = plan_launch(train_config(launch_args()))
    s, b, h, L = sequence_length(shape, base.setup), 10, shape.llm_width, shape.llm_layers
    layer = s * b * h * (34 + 3 * shape.lora_targets)  # one layer's activations (SDPA: no score matrix)
    off = plan_launch(train_config(launch_args("--no-checkpointing")))
    assert off.model.gradient_checkpointing is False and off.setup.checkpointing is False
    # without checkpointing every layer keeps its activations instead of its 2 s b h input + one layer's worth
    assert off.memory.total - base.memory.total == pytest.approx(L * layer - (L * 2 * s * b * h + layer))
    fp32 = plan_launch(train_config(launch_args("--frozen-dtype", "fp32")))
    # 2 more bytes per frozen parameter, and autocast's bf16 copy of one frozen LLM layer kept for backward
    assert fp32.memory.total - base.memory.total == pytest.approx(
        2 * counts.frozen() + 2 * counts.frozen("llm_layers") / L)
    ddp = plan_launch(train_config(launch_args("--strategy", "ddp")))
    assert ddp.memory.total - base.memory.total == pytest.approx(12 * counts.trainable() * (1 - 1 / 4))
    whole = plan_launch(train_config(launch_args("--sam-chunk", "0")))
    assert whole.memory.encoder_transient == pytest.approx(10 * base.memory.encoder_transient)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:traitlets")  # from importing every CLI module
def test_plan_and_params_print_json(capsys, paper):
    counts, _ = paper
    assert main(["params", "--preset", "paper", "--json"]) == 0
    params = json.loads(capsys.readouterr().out)
    assert params["total"] == {"total": counts.total(), "trainable": counts.trainable(), "frozen": counts.frozen()}
    assert params["parts"]["lora"]["trainable"] == counts.total("lora")
    assert params["groups"]["language model (without LoRA)"]["total"] == counts.llm
    assert main(["plan", "--preset", "paper", "--gpus", "4", "--gpu-memory-gb", "80", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    want = plan_launch(train_config(launch_args()), 4).to_dict()
    assert plan == json.loads(json.dumps(want))
    assert plan["memory_gib"]["total"] <= 72 and plan["passes_in_paper_days"][0] > 1
    assert main(["plan", "--preset", "paper", "--batch-size", "40", "--no-checkpointing"]) == 0
    assert "DOES NOT FIT" in capsys.readouterr().out
    assert main(["plan", "--preset", "paper", "--gpus", "0"]) == 2
    assert "--gpus 0" in capsys.readouterr().err


# ---- the calculator against a measurement -------------------------------------------------------------


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensor storages alive while it is on, and their peak: every storage an op returns is
    counted until it is freed (`existing` ones from the start); views share their storage's count."""

    def __init__(self, existing: list[torch.Tensor]) -> None:
        super().__init__()
        self.live: set[int] = set()
        self.now = 0
        for t in existing:
            self._count(t)
        self.peak = self.now

    def _count(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if id(storage) not in self.live and storage.nbytes():
            self.live.add(id(storage))
            self.now += storage.nbytes()
            weakref.finalize(storage, self._free, id(storage), storage.nbytes())

    def _free(self, key: int, nbytes: int) -> None:
        self.live.discard(key)
        self.now -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._count(t)
        self.peak = max(self.peak, self.now)
        return out


def measured_step(paths: PaperPaths, batch_size: int, **model_overrides) -> tuple[int, Plan]:
    """Peak live bytes of the second training step (AdamW's state exists) of the paper's code path at reduced
    width, through the real Trainer under bf16 autocast, and the calculator's plan for the same launch."""
    overrides = {"image_size": 64, "segmenter": MEASURED_SAM, "aligner_dim": 32, "aligner_heads": 2,
                 **model_overrides}
    train = get_preset("paper", batch_size=batch_size, progress=False, model_overrides=overrides)
    torch.manual_seed(0)
    model = build_mimo("paper", paths=paths, **overrides)
    trainer = Trainer(model, [], train, None, collate)
    model.train()
    box = VisualPrompt("box", box=np.array([8, 8, 40, 40], np.float32))
    masks = torch.zeros(batch_size, 1, 64, 64, dtype=torch.bool)
    masks[:, :, 16:32, 16:40] = True
    batch = {"images": torch.rand(batch_size, 3, 64, 64), "questions": ["What is this?"] * batch_size,
             "answers": ["The <p>liver</p> [SEG]."] * batch_size, "masks": list(masks),
             "visual_prompts": [[box]] * batch_size}
    trainer.train_step([batch])
    state = [v for s in trainer.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    with LiveBytes([*model.parameters(), *model.buffers(), *state]) as live:
        trainer.train_step([batch])
    text = model.template.encode_batch(batch["questions"], batch["answers"], [1] * batch_size).input_ids.shape[1]
    shape = ModelShape.from_config(model.config)
    counts = ParamCounts.from_model(model)
    setup = Setup.from_launch(train, model.config, 1, text_tokens=text - shape.image_tokens - shape.tokens_per_prompt,
                              prompts_per_sample=1, masks_per_sample=1)
    plan = Plan(train, model.config, setup, counts, shape, estimate_memory(counts, shape, setup),
                estimate_step(counts, shape, setup))
    return live.peak, plan


MEASURED_SAM = SegmenterConfig(image_size=64, patch_size=8, encoder_dim=32, encoder_depth=2, encoder_heads=2,
                               decoder_mlp_dim=64, prompt_dim=32)


def test_measured_peak_of_the_paper_path_at_reduced_width(tmp_path):
    """The estimate is an upper bound: it adds every kind as if all were alive at once, while in a step the
    gradients (and the trained weights' autocast copies) are made as the activations are freed, and SAM's
    encoder runs before the LLM. So the measured peak lies below the estimate by about those terms, 10 % of
    it at this width (LLM activations dominate, as in the paper's launch): we allow 0.8-1.0 of it (measured
    0.87 when written). Turning checkpointing off must add what the activation formulas say within 20 %
    (measured +16 %: Llama's SwiGLU MLP and LoRA are not exactly Korthikanti's GPT layer)."""
    paths = save_tiny_paper_checkpoints(tmp_path, llm_width=128, llm_layers=4, sam=MEASURED_SAM)
    paths = PaperPaths(paths / "clip-vit-huge-patch14", paths / "vicuna-7b-v1.5", paths / "sam_vit_h_4b8939.pth")
    peak, plan = measured_step(paths, 4)
    assert plan.setup.checkpointing and plan.setup.frozen_dtype == "bf16" and plan.setup.sam_chunk == 1
    assert 0.8 * plan.memory.total <= peak <= plan.memory.total, (peak / 2**20, plan.memory.gib())
    peak_off, plan_off = measured_step(paths, 4, gradient_checkpointing=False)
    saved, estimated = peak_off - peak, plan_off.memory.total - plan.memory.total
    assert saved == pytest.approx(estimated, rel=0.2), (saved / 2**20, estimated / 2**20)
