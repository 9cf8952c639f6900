"""A scripted LM head: generation emits a fixed answer, whatever the weights (test_model, test_model_presets)."""

import torch

from mimo_edu.model import MIMO
from mimo_edu.model.tokenizer import encode_answer


class ScriptedHead(torch.nn.Module):
    """Wraps the LM head so that generation (one position at a time) emits a fixed answer; the script ends with
    EOS and starts again, so each `generate` call answers the same."""

    def __init__(self, head: torch.nn.Module, script: list[int]) -> None:
        super().__init__()
        self.head, self.script, self.step = head, script, 0

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden)
        if hidden.ndim == 2:  # generate: (1, H)
            logits = torch.zeros_like(logits)
            logits[:, self.script[self.step % len(self.script)]] = 1.0
            self.step += 1
        return logits


def script_answer(model: MIMO, answer: str) -> None:
    """Make `model.generate` answer `answer` (markers included) to every question."""
    ids = encode_answer(model.tokenizer, answer) + [model.template.eos_id]
    model.llm.lm_head = ScriptedHead(model.llm.lm_head, ids)
