"""Does the side of the marked region reach the slot where the model says it?

    python benchmarks/bench_side_slot.py --out benchmarks/results/side_slot.json

Teacher-forced on `--num` train-split prompt-QA samples asking "Is the marked structure on the left or the
right?" (answer "The <p>term</p> [SEG] is on the left."): the LLM's hidden state at the position that
predicts the side word, after each layer (0: the input embeddings), and the LM head's own choice between
" left" and " right" there. A logistic regression per layer, fit on the first half of the samples and scored
on the second, says how much of the side a linear read-out could take from that slot; compare the same
probe on the prompt tokens themselves (`bench_region_decisions.py`'s `probe`).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from bench_region_decisions import held_out_accuracy

from mimo_edu.checkpoints import load_model
from mimo_edu.data import MIMOSegSynth, split_seed
from mimo_edu.data.collate import collate

QUESTION = "Is the marked structure on the left or the right?"


def keep_hidden(model) -> dict:
    """Make the LLM inside `model` return its hidden states after each layer and keep the last call's in
    the returned dict ("states": layers + 1 tensors (B, L, H), the input embeddings first)."""
    kept: dict = {}

    def ask(module, args, kwargs):
        return args, {**kwargs, "output_hidden_states": True}

    def keep(module, args, kwargs, output):
        kept["states"] = output.hidden_states

    model.llm.model.register_forward_pre_hook(ask, with_kwargs=True)
    model.llm.model.register_forward_hook(keep, with_kwargs=True)
    return kept


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/mimo-nano")
    ap.add_argument("--num", type=int, default=400, help="side questions (half fit the probe, half score it)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/side_slot.json"))
    args = ap.parse_args()
    torch.manual_seed(0)
    model = load_model(args.checkpoint).eval()
    left, right = (model.tokenizer.convert_tokens_to_ids(model.tokenizer.tokenize(w))[0] for w in (" left", " right"))
    hidden = keep_hidden(model)
    train = MIMOSegSynth(100 * args.num, seed=split_seed("train"), tasks=("prompt_qa",))
    states, sides, head = [], [], []
    for i in range(len(train)):
        if len(sides) == args.num:
            break
        s = train[i]
        if s.question != QUESTION:
            continue
        batch = collate([s])
        out = model(batch)  # the training forward pass; `keep_hidden` records the LLM's layer outputs
        labels = model.template.encode_batch(batch["questions"], batch["answers"], [1]).labels[0]
        at = [t for t in range(1, len(labels)) if labels[t] in (left, right)][-1] - 1  # predicts the side word
        states.append(torch.stack([h[0, at] for h in hidden["states"]]).numpy())  # (layers + 1, H)
        said_right = bool(labels[at + 1] == right)
        sides.append(said_right)
        logits = out.logits[0, at]
        head.append(bool(logits[right] > logits[left]) == said_right)
    x, y = torch.from_numpy(np.stack(states)), torch.tensor(sides, dtype=torch.float32)  # (N, layers + 1, H), (N,)
    probe = [round(held_out_accuracy(x[:, k], y), 3) for k in range(x.shape[1])]
    report = {"checkpoint": args.checkpoint, "n": len(sides), "right_share": round(float(y.mean()), 3),
              "lm_head_accuracy": round(sum(head) / len(head), 3), "probe_accuracy_per_layer": probe}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
