"""`python -m mimo_edu params --preset {nano,lite,paper}`: parameter counts per part, on the meta device."""

import argparse

from mimo_edu.model.build import build_mimo
from mimo_edu.model.config import PRESETS

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


def params_table(preset: str) -> str:
    """The table `params` prints: one row per part, subtotals for the pretrained backbones, the total."""
    counts = build_mimo(preset, device="meta").parameter_counts()
    lines = [f"MIMO preset {preset!r}: parameters (built on the meta device, no memory allocated)", ""]
    header = f"{'part':<52}{'total':>12}{'trainable':>12}{'frozen':>12}"
    lines += [header, "-" * len(header)]

    def row(name: str, total: int, trainable: int) -> str:
        return f"{name:<52}{_fmt(total):>12}{_fmt(trainable):>12}{_fmt(total - trainable):>12}"

    for part, (total, trainable) in counts.items():
        lines.append(row(part, total, trainable))
    lines.append("-" * len(header))
    for group, parts in GROUPS.items():
        total = sum(counts[p][0] for p in parts)
        trainable = sum(counts[p][1] for p in parts)
        lines.append(row(group, total, trainable))
    lines.append(row("MIMO total", sum(t for t, _ in counts.values()), sum(t for _, t in counts.values())))
    return "\n".join(lines)


def cmd_params(args: argparse.Namespace) -> int:
    print(params_table(args.preset))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "params", help="print MIMO's parameter counts per part (total, trainable, frozen)"
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="nano")
    p.set_defaults(func=cmd_params)
