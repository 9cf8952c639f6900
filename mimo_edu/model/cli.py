"""`python -m mimo_edu params --preset {nano,lite,paper} [--json]`: parameter counts per part, on the meta device."""

import argparse
import json

GROUPS = {
    "CLIP vision tower": ("vision_tower",),
    "language model (without LoRA)": ("llm",),
    "SAM (image encoder + prompt encoder + mask decoder)": (
        "sam_image_encoder",
        "sam_prompt_encoder",
        "mask_decoder",
    ),
}


def _fmt(n: int) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e9 else f"{n / 1e6:.3f} M" if n >= 1e4 else f"{n}"


def params_counts(preset: str) -> dict[str, dict[str, int]]:
    """What `params --json` prints: {"parts": {part: {total, trainable, frozen}}, "groups": {...}, "total": {...}}."""
    from mimo_edu.model.build import build_mimo

    counts = build_mimo(preset, device="meta").parameter_counts()

    def row(total: int, trainable: int) -> dict[str, int]:
        return {"total": total, "trainable": trainable, "frozen": total - trainable}

    groups = {g: row(sum(counts[p][0] for p in parts), sum(counts[p][1] for p in parts)) for g, parts in GROUPS.items()}
    return {"preset": preset, "parts": {p: row(*c) for p, c in counts.items()}, "groups": groups,
            "total": row(sum(t for t, _ in counts.values()), sum(t for _, t in counts.values()))}


def params_table(preset: str) -> str:
    """The table `params` prints: one row per part, subtotals for the pretrained backbones, the total."""
    counts = params_counts(preset)
    lines = [f"MIMO preset {preset!r}: parameters (built on the meta device, no memory allocated)", ""]
    header = f"{'part':<52}{'total':>12}{'trainable':>12}{'frozen':>12}"
    lines += [header, "-" * len(header)]

    def row(name: str, c: dict[str, int]) -> str:
        return f"{name:<52}{_fmt(c['total']):>12}{_fmt(c['trainable']):>12}{_fmt(c['frozen']):>12}"

    lines += [row(part, c) for part, c in counts["parts"].items()]
    lines.append("-" * len(header))
    lines += [row(group, c) for group, c in counts["groups"].items()]
    lines.append(row("MIMO total", counts["total"]))
    return "\n".join(lines)


def cmd_params(args: argparse.Namespace) -> int:
    print(json.dumps(params_counts(args.preset), indent=1) if args.json else params_table(args.preset))
    return 0
