"""What the shipped model's wrong prompt-assisted answers get wrong.

    python benchmarks/bench_prompt_qa_errors.py --out benchmarks/results/prompt_qa_errors.json

On `--num` test-split prompt-QA samples (MIMOSeg-synth's test seed, prompt-QA questions only):

- **side questions, per modality**: whether the answer names the image side the truth names, the other side,
  or neither. CT and X-ray name structures by the patient's side, which the radiological convention puts on
  the image's other side (`mimo_edu/data/radiology.py`): the right kidney lies in the image's left half.
- **"is it abnormal" questions**: right answers; wrong ones that name the marked structure right but give the
  wrong yes or no; wrong ones that name another structure.
"""

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import torch
from bench_region_decisions import kind_of

from mimo_edu.checkpoints import load_model
from mimo_edu.data import MIMOSegSynth, split_seed
from mimo_edu.data.templates import grounded_terms
from mimo_edu.eval.metrics import exact_match

PHRASE = re.compile(r"<p>.*?</p>")


def image_side(answer: str) -> str:
    """'left', 'right' or 'none': the side word of an answer outside its grounded phrases."""
    words = PHRASE.sub("", answer)
    return next((side for side in ("left", "right") if side in words), "none")


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/mimo-nano")
    ap.add_argument("--num", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/prompt_qa_errors.json"))
    args = ap.parse_args()
    model = load_model(args.checkpoint).eval()
    test = MIMOSegSynth(args.num, seed=split_seed("test"), tasks=("prompt_qa",))
    sides: dict[str, Counter] = defaultdict(Counter)
    abnormal: Counter = Counter()
    for i in range(args.num):
        s = test[i]
        kind = kind_of(s.question)
        if kind not in ("side", "abnormal"):
            continue
        text = model.generate(s.image, s.question, s.visual_prompts).text
        if kind == "side":
            truth, said = image_side(s.answer), image_side(text)
            sides[s.modality]["n"] += 1
            sides[s.modality]["same side" if said == truth else "no side" if said == "none" else "other side"] += 1
        else:
            abnormal["n"] += 1
            if exact_match(text, s.answer):
                abnormal["right"] += 1
            elif grounded_terms(text)[:1] == grounded_terms(s.answer)[:1]:
                abnormal["structure right, yes or no wrong"] += 1
            else:
                abnormal["another structure"] += 1
    report = {"checkpoint": args.checkpoint, "num_prompt_qa_samples": args.num,
              "side_by_modality": {k: dict(v) for k, v in sorted(sides.items())}, "abnormal": dict(abnormal)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
