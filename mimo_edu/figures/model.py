"""Figures and small traces for notebooks 03 and 04: token layouts, forward traces, prompt pooling, the aligner.

Each helper keeps a notebook cell short; none changes the model. The traces
call the model's public stages (`MIMO.to_frame`, `visual_tokens`, `embed_inputs`,
`seg_features`, ...) in the order `MIMO.forward` calls them, so the tensors they
report are the ones the model computes.
"""

from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from mimo_edu.data.schema import VisualPrompt

if TYPE_CHECKING:  # the model (transformers, peft) loads only where a notebook builds one
    from mimo_edu.model.mimo import MIMO

# ---- the token layout -----------------------------------------------------------------------

TOKEN_KINDS = ("template", "<image>", "<region>", "question", "answer", "[SEG]", "pad")
TOKEN_COLOURS = ("#bbbbbb", "#4e79a7", "#f28e2b", "#59a14f", "#edc948", "#e15759", "#ffffff")


def token_kinds(model: "MIMO", input_ids: torch.Tensor, instruction: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """One row of ids (L,) -> the index in TOKEN_KINDS of each position."""
    t = model.template
    kinds = np.zeros(len(input_ids), int)  # template: <s>, USER:, ASSISTANT:
    kinds[(input_ids == t.image_id).numpy()] = 1
    kinds[(input_ids == t.region_id).numpy()] = 2
    kinds[instruction.numpy()] = 3
    kinds[(labels != -100).numpy()] = 4
    kinds[(input_ids == t.seg_id).numpy()] = 5
    kinds[(input_ids == t.pad_id).numpy()] = 6
    return kinds


def draw_token_strip(ax, kinds: np.ndarray, title: str = "") -> None:
    """A coloured strip, one cell per token position, with a legend of the kinds present."""
    ax.imshow(kinds[None], cmap=ListedColormap(TOKEN_COLOURS), vmin=0, vmax=len(TOKEN_KINDS) - 1,
              aspect="auto", interpolation="nearest")
    ax.set_yticks([])
    ax.set_title(f"{title} (x: token position)" if title else "token position", fontsize=10)
    present = sorted(set(kinds.tolist()))
    handles = [Patch(facecolor=TOKEN_COLOURS[k], edgecolor="#444444", label=TOKEN_KINDS[k]) for k in present]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=len(handles), fontsize=9)


# ---- one batch through the data flow --------------------------------------------------------


@torch.no_grad()
def trace_forward(model: "MIMO", batch: dict) -> dict[str, torch.Tensor]:
    """The tensors of one forward pass, stage by stage (the model's own stages, in `MIMO.forward`'s order), named
    as in the data-flow figure."""
    from mimo_edu.model.grounding import seg_positions

    images, prompts = model.to_frame(batch["images"].to(model.device), batch["visual_prompts"])
    enc = model.template.encode_batch(batch["questions"], batch["answers"], [len(p) for p in prompts])
    image_embeddings = model.image_embeddings(images)  # (B, D, h, w)
    visual = model.visual_tokens(images, prompts, sam_embeddings=image_embeddings)
    embeds = model.embed_inputs(enc.input_ids, enc.instruction_mask, visual)  # (B, L, H)
    hidden = model.llm.model(inputs_embeds=embeds, attention_mask=enc.attention_mask).last_hidden_state
    features = model.seg_features(hidden, enc.input_ids)  # (K_total, H): one feature per [SEG] (config.seg_feature)
    sparse = model.grounding(features)  # (K_total, 1, D)
    first = int(seg_positions(enc.input_ids, model.template.seg_id)[0].sum())
    masks = model.decode_masks(
        image_embeddings[:1], sparse[:first], [prompts[0]] * first, model.config.image_size,
        fine=model.segmenter.fine_features(images[:1]),
    )
    return {
        "images (B, 3, H, W)": images,
        "CLIP patch tokens (B, N, C_clip)": visual.patches,
        ("projected image tokens (B, N / merge^2 + O, H), O objects" if model.config.object_tokens
         else "projected image tokens (B, N / merge^2, H)"): visual.image_tokens,
        "<region> tokens (P * T, H)": visual.region_tokens,
        "input ids (B, L)": enc.input_ids,
        "LLM input embeddings (B, L, H)": embeds,
        "LLM hidden states (B, L, H)": hidden,
        "[SEG] features, phrase means (K, H)": features,
        "grounding MLP -> SAM prompts (K, 1, D)": sparse,
        "SAM image embeddings (B, D, h, w)": image_embeddings,
        "mask logits of sample 0 (K_0, S, S)": masks,
        "_labels": enc.labels,
        "_instruction": enc.instruction_mask,
    }


def print_shapes(trace: dict[str, torch.Tensor]) -> None:
    for name, tensor in trace.items():
        if not name.startswith("_"):
            print(f"{name:<44}{tuple(tensor.shape)}")


# ---- visual prompts and the aligner ---------------------------------------------------------


def region_weight_grid(model: "MIMO", prompt: VisualPrompt, image: np.ndarray | None = None) -> np.ndarray:
    """The weight of each CLIP patch in the prompt's pooled region token, as the (grid, grid) patch grid.

    Without `image`: the prompt's own rasterised region (`region_source="prompt"`, the from-scratch ablation).
    With `image` (in the model's frame) and `region_source="sam"`: the coverage of the mask nano-SAM predicts
    for the prompt, which is what the model pools. The prompt is in the model's frame (config.image_size pixels).
    """
    grid = model.config.vision.grid
    if image is None or model.config.region_source != "sam":
        return model.prompt_encoder.region_weights(prompt).view(grid, grid).numpy()
    with torch.no_grad():
        weights = model.sam_region_weights(model.embed_image(np.array(image)), [[prompt]])  # (1, N)
    return weights[0].view(grid, grid).cpu().numpy()


def show_weight_grid(ax, image: np.ndarray, weights: np.ndarray, title: str = "", numbers: bool | None = None):
    """The image with the patch weights over it and patch borders drawn; returns the weights' image (for a colorbar).

    `numbers` writes each non-zero weight in its patch (9 pt); by default only on grids of at most 8 x 8, where
    the numbers fit their patches in a figure a notebook column wide.
    """
    size, grid = image.shape[0], weights.shape[0]
    cell = size / grid
    ax.imshow(image, alpha=0.55)
    im = ax.imshow(weights, cmap="magma", alpha=0.6, vmin=0, vmax=1, extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    for k in range(1, grid):
        ax.axhline(k * cell - 0.5, color="white", lw=0.4)
        ax.axvline(k * cell - 0.5, color="white", lw=0.4)
    if numbers or (numbers is None and grid <= 8):
        for r, c in zip(*np.nonzero(weights), strict=True):
            ax.text((c + 0.5) * cell, (r + 0.5) * cell, f"{weights[r, c]:.2f}".lstrip("0"), ha="center",
                    va="center", fontsize=9, color="white")
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    return im


@torch.no_grad()
def aligner_inputs(model: "MIMO", image: np.ndarray, question: str, prompts: list[VisualPrompt]) -> dict:
    """What the aligner receives for one question: embeddings (1, L, H), visual and instruction masks, tokens."""
    pixels = model.image_tensor(np.array(image))  # a writable copy (samples share read-only images)
    images, frame_prompts = model.to_frame(pixels, [list(prompts)])
    ids, instruction = model.template.encode_prompt(question, len(prompts))
    input_ids = torch.tensor([ids])
    t = model.template
    visual = model.visual_tokens(images, frame_prompts)
    embeds = model.embed_inputs(input_ids, torch.tensor([instruction]), visual, align=False)
    return {
        "embeds": embeds,
        "visual_mask": (input_ids == t.image_id) | (input_ids == t.region_id),
        "instruction_mask": torch.tensor([instruction]),
        "tokens": model.tokenizer.convert_ids_to_tokens(ids),
    }


def question_attention(model: "MIMO", image: np.ndarray, question: str, prompts: list[VisualPrompt]) -> dict:
    """The aligner's attention from each question token to each visual token, for one question about `image`.

    Returns "attn" (heads, question tokens, visual tokens) as numpy, "labels" (the question tokens), "n_image"
    (patch image tokens; the columns hold them, then "n_object" object tokens, then the <region> tokens), "side"
    (patch image tokens per row) and "gate" (tanh of the aligner's gate:
    how much of its output reaches the LLM). Works for a fresh model and for a trained one
    (`load_model(course_checkpoint())`) alike.
    """
    inputs = aligner_inputs(model, image, question, prompts)
    with torch.no_grad():
        weights = model.aligner.attention(inputs["embeds"], inputs["visual_mask"])[0]  # (heads, L, L)
    rows = np.flatnonzero(inputs["instruction_mask"][0].numpy())  # question tokens
    cols = np.flatnonzero(inputs["visual_mask"][0].numpy())  # image tokens (patches, objects), then region tokens
    v = model.config.vision
    return {
        "attn": weights[:, rows][:, :, cols].numpy(),
        "labels": [inputs["tokens"][i].replace("\u0120", "") for i in rows],
        "n_image": v.image_tokens,
        "n_object": model.config.object_tokens,
        "side": v.grid // v.merge,
        "gate": float(torch.tanh(model.aligner.gate.detach()).mean()),
    }


def plot_question_attention(fig, att: dict, image: np.ndarray, title: str, word: str = "cyst") -> None:
    """Two panels in `fig` (10 in wide): the attention of every question token to every visual token, averaged over
    heads, with a colorbar (uniform attention is 1 / visual tokens); and `word`'s attention over the image tokens,
    drawn on the image (scaled to its largest weight)."""
    attn, labels, n_img, side = att["attn"].mean(0), att["labels"], att["n_image"], att["side"]
    n_obj = att.get("n_object", 0)
    ends = [n_img, n_img + n_obj] if n_obj else [n_img]  # where the image / object tokens end
    ax, over = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.6, 1]})
    im = ax.imshow(attn, aspect="auto", cmap="viridis", vmin=0)
    for end in ends:
        ax.axvline(end - 0.5, color="white", lw=1.5)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    starts = [0, *ends]
    stops = [*ends, attn.shape[1]]
    ax.set_xticks([t for a, b in zip(starts, stops, strict=True) for t in (a, b - 1)],
                  [t for a, b in zip(starts, stops, strict=True) for t in (1, b - a)], fontsize=9)
    groups = [f"{n_img} image tokens", *([f"{n_obj} object tokens"] if n_obj else []), f"{attn.shape[1] - ends[-1]} region tokens"]
    ax.set_xlabel("visual token: " + " | ".join(groups), fontsize=9)
    ax.set_title(f"{title}: mean over {att['attn'].shape[0]} heads; tanh(gate) = {att['gate']:.3f}", fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    bar.ax.tick_params(labelsize=9)
    bar.set_label(f"weight (uniform: 1/{attn.shape[1]} = {1 / attn.shape[1]:.3f})", fontsize=9)
    k = labels.index(word) if word in labels else 0
    row = attn[k, :n_img].reshape(side, side)
    show_weight_grid(over, image, row / max(row.max(), 1e-12), f"'{labels[k]}' over the image tokens\n(scaled to its largest)")
    over.title.set_fontsize(9)


def plot_attention_heads(fig, atts: dict[str, dict], heads: int) -> None:
    """One row per model (`atts`: name -> `question_attention`), one panel per head (question x visual tokens),
    with a shared colorbar per row; sized for a 10-inch-wide figure."""
    axes = fig.subplots(len(atts), heads, squeeze=False)
    for row, (name, att) in zip(axes, atts.items(), strict=True):
        top = float(att["attn"][:heads].max())
        for h, ax in enumerate(row):
            im = ax.imshow(att["attn"][h], aspect="auto", cmap="viridis", vmin=0, vmax=top)
            for end in {att["n_image"], att["n_image"] + att.get("n_object", 0)}:
                ax.axvline(end - 0.5, color="white", lw=1)
            ax.set_title(f"{name}, head {h}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel("question token", fontsize=9)
        bar = fig.colorbar(im, ax=list(row), fraction=0.03, pad=0.01)
        bar.ax.tick_params(labelsize=9)


# ---- LiteMedSAM: a mask from a box ----------------------------------------------------------


def box_to_mask(model: "MIMO", image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """SAM's own path, as `Predictor.segment` takes it: image embedding, box -> prompt encoder -> mask decoder;
    (H, W) bool at the image's size."""
    h, w = image.shape[:2]
    return (model.sam_mask(model.embed_image(image), h, w, box=box) > 0).cpu().numpy()
