"""What the model names when the visual prompt is dropped: why "no visual prompt" falls below chance.

    python benchmarks/bench_no_prompt_answers.py [--checkpoint data/mimo-nano] [--num 1600]

On the perception samples among the first `num` of the test split (the samples of the README's "no visual
prompt" column), the question stays and the prompt goes, as `evaluate --no-prompts` does
(`eval.evaluate.named_without_prompts`). Prints how often the answer names the true structure, the most
named terms, and how often the named term is not even a structure of the image's modality. Writes
benchmarks/results/no_prompt_answers.json.
"""

import argparse
import json
from pathlib import Path

import torch

from mimo_edu.checkpoints import load_model
from mimo_edu.data import MIMOSegSynth, split_seed
from mimo_edu.data.schema import TASKS
from mimo_edu.eval.evaluate import named_without_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/mimo-nano")
    ap.add_argument("--num", type=int, default=1600, help="test samples; a quarter are perception samples")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/no_prompt_answers.json"))
    args = ap.parse_args()

    torch.manual_seed(0)
    model = load_model(args.checkpoint)
    dataset = MIMOSegSynth(args.num, seed=split_seed("test"), image_size=model.config.image_size)
    perception = (dataset[i] for i in range(TASKS.index("perception"), args.num, len(TASKS)))
    found = named_without_prompts(model, perception)
    n, right, foreign = found["n"], found["right"], found["not_in_modality"]
    result = {"checkpoint": str(args.checkpoint), "n": n, "right": right, "not_in_modality": foreign,
              "most_named": found["named"].most_common(5)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"{n} perception samples without their prompt: right {right} ({right / n:.3f}); the term named is not a "
          f"structure of the image's modality {foreign} times ({foreign / n:.3f})")
    print("most named: " + ", ".join(f"{t} {c}" for t, c in result["most_named"]))


if __name__ == "__main__":
    main()
