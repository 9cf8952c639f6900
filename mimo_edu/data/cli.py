"""`python -m mimo_edu generate`: write MIMOSeg-synth samples to a dataset folder."""

import argparse
import time

from mimo_edu.data.disk import write_dataset
from mimo_edu.data.synth import iter_samples, split_seed


def cmd_generate(args: argparse.Namespace) -> int:
    seed = split_seed(args.split, args.seed) if args.split else args.seed
    start = time.perf_counter()
    out = write_dataset(iter_samples(args.num, seed, args.image_size), args.out)
    print(f"wrote {args.num} samples (seed {seed}, {args.image_size} px) to {out} in {time.perf_counter() - start:.1f} s")
    return 0
