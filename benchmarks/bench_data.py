"""MIMOSeg-synth throughput on one core: samples generated per second, and the time to write 10,000.

    python benchmarks/bench_data.py [--num 3000] [--write-num 10000] [--image-size 128]
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # before NumPy loads its BLAS: one core

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from mimo_edu.data import iter_samples, write_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=3000, help="samples to generate for the throughput")
    parser.add_argument("--write-num", type=int, default=10_000, help="samples to write to disk")
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)

    start, cpu = time.perf_counter(), time.process_time()
    for _ in iter_samples(args.num, seed=0, image_size=args.image_size):
        pass
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"generate: {args.num / wall:.0f} samples/s at {args.image_size} px on one core "
          f"({args.num} samples in {wall:.2f} s wall, {cpu:.2f} s CPU)")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = write_dataset(iter_samples(args.write_num, seed=1, image_size=args.image_size), Path(tmp) / "ds")
        total = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    generating = args.write_num * wall / args.num
    print(f"write: {args.write_num} samples generated and written in {total:.1f} s "
          f"(~{generating:.1f} s generating, ~{total - generating:.1f} s encoding and writing; {size:.0f} MiB)")


if __name__ == "__main__":
    main()
