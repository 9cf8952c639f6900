"""Numbers the notebooks' prose states are the numbers the code computes.

Where a notebook's text must hold a number (a shape in an explanation, a memory estimate it discusses), the
phrase is rebuilt here from the package and must appear in the notebook's markdown word for word. A change in
a config or a formula then fails here, naming the phrase to update. Numbers about the trained model never
appear in prose: cells print them.
"""

import re
from pathlib import Path

import nbformat
import pytest

from mimo_edu.model.config import nano_config, paper_config

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {p.stem[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight"}


def markdown(nb: str) -> str:
    cells = nbformat.read(NOTEBOOKS[nb], as_version=4).cells
    return "\n".join(c.source for c in cells if c.cell_type == "markdown")


def missing(nb: str, phrases: list[str]) -> list[str]:
    text = markdown(nb)
    return [p for p in phrases if p not in text]


def test_model_notebooks_state_nanos_and_the_papers_shapes():
    nano, paper = nano_config(), paper_config()
    v, pv = nano.vision, paper.vision
    tokens, points = nano.tokens_per_prompt, nano.prompt_points
    assert missing("03", [
        f"cuts the {nano.image_size} px image into {v.patch_size} px patches, a {v.grid} x {v.grid} grid",
        f"concatenates each {v.merge} x {v.merge} block of neighbouring patches into one token",
        f"so the LLM reads {v.image_tokens} image tokens instead of {v.grid ** 2}",
        f"`N` = {v.grid ** 2} CLIP patches (a {v.grid} x {v.grid} grid), `C_clip` = {v.hidden_size} and "
        f"`H` = {nano.llm.hidden_size} channels",
        f"one prompt times {tokens} tokens per prompt",
        f"`D` = {nano.segmenter.prompt_dim} channels of nano-SAM's image embedding, `S` = {nano.image_size} pixels",
        f"{v.image_tokens} `<image>` placeholders",
        f"{tokens} `<region>` placeholders per visual prompt",
        f"({paper.segmenter.prompt_dim}-d in SAM, {nano.segmenter.prompt_dim}-d in nano)",
        f"rank {nano.lora_rank} on `q_proj` and `v_proj`",
        f"LoRA (rank {paper.lora_rank}, alpha {paper.lora_alpha:g} on",
        f"(both {paper.llm.hidden_size} x {paper.llm.hidden_size}) in each of Vicuna-7B's {paper.llm.num_layers} layers",
    ]) == []
    assert missing("04", [
        f"`1 + prompt_points + 1 = {tokens}` of them in `nano`",
        f"up to {WORDS[points]} points sampled along the stroke",
        f"over the {v.grid} x {v.grid} patch grid ({v.patch_size} x {v.patch_size} pixels each)",
        f"The model's frame is {nano.image_size} px and each CLIP patch is {v.patch_size} x {v.patch_size} px",
        f"({nano.aligner_dim} in nano, {paper.aligner_dim} in the paper)",
        f"({v.image_tokens} image tokens, each carrying a {v.merge} x {v.merge} block of patches, then {tokens} region tokens)",
        f"`1 / {v.image_tokens + tokens}`",
        f"for nano (`H = {nano.llm.hidden_size}, dim = {nano.aligner_dim}`), the paper "
        f"(`H = {paper.llm.hidden_size}, dim = {paper.aligner_dim}`)",
    ]) == []
    assert pv.grid ** 2 == 256  # 08's "256 image tokens": CLIP ViT-H/14 at 224 px
    assert missing("08", [f"{pv.grid ** 2} image tokens (CLIP ViT-H/14 at {pv.image_size} px gives a {pv.grid} x {pv.grid} patch grid)",
                              f"{tokens} `<region>` tokens per visual prompt"]) == []


def test_scaling_notebook_states_the_calculators_numbers():
    from mimo_edu.scaling import (
        A800,
        GIB,
        PAPER_DAYS,
        estimate_memory,
        estimate_step,
        memory_scenarios,
        paper_model_counts,
        paper_setup,
        sequence_length,
    )
    from mimo_edu.train.config import get_preset

    counts, shape = paper_model_counts()
    setup = paper_setup()
    s = sequence_length(shape, setup)
    paper = paper_config()
    trained, total = counts.trainable() / 1e6, counts.total() / 1e9
    lora, embed = counts.total("lora") / 1e6, counts.total("embed_tokens") / 1e6
    plain, ckpt, _, per_image = (estimate_memory(counts, shape, sc).gib() for sc in memory_scenarios(setup).values())
    steps = (estimate_step(counts, shape, setup.with_(checkpointing=False), A800, 0.35),
             estimate_step(counts, shape, setup.with_(checkpointing=True), A800, 0.35))
    llm_total = sum(counts.total(g) for g in ("embed_tokens", "llm_layers", "lm_head")) / 1e9
    shorter = sorted(round(d / st.days()) for d in PAPER_DAYS for st in steps)
    assert 19 <= shorter[0] and shorter[-1] <= 30, shorter  # "20-30 times shorter", "20-30x less"
    assert plain["llm_activations"] / ckpt["llm_activations"] > 10  # "more than tenfold"
    assert 0.45 < steps[1].flops["LLM recompute (checkpointing)"] / steps[1].flops["LLM forward + backward"] < 0.55  # "about 50 %"
    assert round(steps[1].seconds_per_step / steps[0].seconds_per_step - 1, 1) == 0.3  # "about 30 %"
    sam = steps[0].flops["SAM image encoder forward"] / steps[0].flops["LLM forward + backward"]
    assert 0.4 < sam < 0.6  # "about half as much as the LLM's whole training step"
    sam_tokens = (paper.segmenter.image_size // paper.segmenter.patch_size) ** 2
    assert missing("08", [
        f"Only {trained:.0f} M of the {total:.1f} B parameters train: LoRA ({lora:.1f} M, rank {paper.lora_rank}",
        f"of {paper.llm.num_layers} layers), the token embeddings and LM head ({embed:.0f} M each: Vicuna's "
        f"{paper.llm.vocab_size - 5:,} tokens plus MIMO's 5 new ones",
        f"The {counts.total('llm_layers') / 1e9:.1f} B weights of Vicuna's layers",
        f"scales with the trained {trained:.0f} M, memory for weights with all {total:.1f} B",
        f"{counts.frozen() / 1e9:.1f} B frozen parameters in bf16 are about {plain['frozen_weights']:.1f} GiB",
        f"only {trained:.0f} M parameters train: 16 bytes each is {16 * counts.trainable() / GIB:.1f} GiB",
        f"16 x {llm_total:.1f} B = {16 * llm_total * 1e9 / GIB:.0f} GiB",
        f"at {s} tokens and batch {setup.per_gpu_batch} they are about {plain['llm_activations']:.0f} GiB",
        f"about {per_image['encoder_transient']:.1f} GiB per image and {plain['encoder_transient']:.0f} GiB for {setup.per_gpu_batch}",
        f"it sees {sam_tokens} tokens per image, more than {sam_tokens // s}x as many as the LLM",
        f"`max_steps = {get_preset('paper').max_steps:,}`",
        f"short {s}-token sequences at batch {setup.per_gpu_batch}",
        f"The paper model has {total:.1f} B parameters, of which {trained:.0f} M train",
        f"the {plain['frozen_weights']:.0f} GiB of frozen bf16 weights, the LLM's activations (about "
        f"{plain['llm_activations']:.0f} GiB",
        f"(about {plain['encoder_transient']:.0f} GiB, a tenth of that one image at a time)",
    ]) == []


def test_the_gpu_measurement_in_08_and_the_readme_is_the_reports():
    """The numbers 08's prose and the README state about the GPU smoke are those its report gives."""
    from mimo_edu.scaling import format_table, paper_model_counts, smoke_comparison, smoke_report

    report = smoke_report()
    assert report is not None, "benchmarks/results/paper_gpu_smoke.json is missing"
    counts, shape = paper_model_counts()
    rows = smoke_comparison(report, counts, shape)
    by_name = {quantity: (estimate, measured) for quantity, estimate, measured in rows}
    est, peak = by_name["peak memory, checkpointing (GiB)"]
    step, mfu = by_name["step time, checkpointing (s)"][1], by_name["MFU, checkpointing"][1]
    assert float(peak) < float(est)  # "an upper bound"
    assert abs(float(mfu) - 0.35) <= 0.02  # "close to the 0.35" assumed
    gpu = report["device"].removeprefix("NVIDIA ")
    assert missing("08", [
        f"on the {gpu} the measured peak of {peak} GiB lies below the estimate of {est} GiB",
        f"The step took {step} s, an MFU of {mfu}, close to the 0.35",
        f"on one {gpu} it peaked at {peak} GiB, under the {est} GiB estimated",
        f"measured an MFU of {mfu} on one {gpu}, close to the assumed 0.35",
    ]) == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    torch_version = ".".join(report["torch"].split(".")[:2])
    for phrase in (format_table(rows, ("quantity", "estimate", "measured")),
                   f"python benchmarks/paper_gpu_smoke.py --batch {report['per_gpu_batch']} --steps "
                   f"{len(report['runs'][0]['step_s_all'])} --json benchmarks/results/paper_gpu_smoke.json",
                   f"On one {report['device']}\nwith torch {torch_version}", f"at an MFU of {mfu}, close to the 0.35"):
        assert phrase in readme, phrase


# How the [SEG] feature is built (mimo_edu.model.grounding.seg_features): the mean of the hidden states over the
# grounded phrase. Prose that calls it the hidden state "at" or "before" [SEG] describes LISA's rule, not this code.
WRONG_SEG = (r"`\[SEG\]` hidden state", r"hidden state (just )?before (each |the )?`\[SEG\]`",
             r"hidden state at (each |the )?`?\[SEG\]", r"\[SEG\]'s hidden state")


@pytest.mark.parametrize("nb", sorted(NOTEBOOKS))
def test_the_seg_feature_is_described_as_the_code_builds_it(nb):
    text = markdown(nb)
    for pattern in WRONG_SEG:
        assert not re.search(pattern, text), f"{NOTEBOOKS[nb].name}: {pattern!r}"


def test_readme_and_the_model_notebook_show_the_known_inferred_table():
    from mimo_edu.model.provenance import provenance_rows, provenance_table

    table = provenance_table()
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in markdown("03")
    rows = {choice: (nano, paper, source) for choice, nano, paper, source in provenance_rows()}
    assert "LISA [inferred]" in rows["`[SEG]` feature"][2] and "this course" in rows["visual prompt encoder"][2]
    assert rows["answer syntax"][2] == "GLaMM [inferred]"
