"""`python -m mimo_edu generate`: write MIMOSeg-synth samples to a dataset folder."""

import argparse
import time

from mimo_edu.data.disk import write_dataset
from mimo_edu.data.synth import SPLITS, iter_samples, split_seed


def generate(args: argparse.Namespace) -> int:
    seed = split_seed(args.split, args.seed) if args.split else args.seed
    start = time.perf_counter()
    out = write_dataset(iter_samples(args.num, seed, args.image_size), args.out)
    print(f"wrote {args.num} samples (seed {seed}, {args.image_size} px) to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write MIMOSeg-synth samples (annotations.json, images/, masks/)",
        description="Write MIMOSeg-synth samples to a dataset folder; the same seed gives byte-identical files.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, required=True, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="generator seed (with --split: the base seed of the splits)")
    p.add_argument("--split", choices=tuple(SPLITS), help="use the split's own seed, split_seed(split, seed)")
    p.add_argument("--image-size", type=int, default=128, help="image side in pixels, at least 64")
    p.set_defaults(func=generate)
