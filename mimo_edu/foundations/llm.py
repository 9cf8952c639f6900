"""nano-LLM: the tiny Llama pretrained as a causal language model on the course's text.

Vicuna-7B is Llama 2 pretrained on web text, then chat-tuned on conversations. nano-LLM compresses
both into one stage on the only text the course has [course choice]: every turn is a MIMOSeg-synth
question and answer from the train split, laid out as MIMO lays out a turn without the image
("<s> USER: {question} ASSISTANT: {answer}</s>", the template's spacing and tokens), and a quarter of
the items are descriptions of structures and modalities ("In an X-ray image, a nodule is a lesion of the
left lung or the right lung."). The loss covers every token, question included, as pretraining does.

Markers: `[SEG]`, `<p>` and `</p>` are single special tokens of the nano tokenizer and appear in the
answers exactly as MIMO's answers write them, so nano-LLM learns where a grounded term opens, closes
and is followed by `[SEG]`. `<image>` and `<region>` never occur in its text; their embeddings stay at
their random initial values until the MIMO stage trains the token embeddings.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from transformers import LlamaForCausalLM, PreTrainedTokenizerBase

from mimo_edu.data.scenes import MODALITY_NAMES, STRUCTURES
from mimo_edu.data.schema import MODALITIES
from mimo_edu.data.synth import generate_sample
from mimo_edu.model.conversation import IGNORE_INDEX, ConversationTemplate
from mimo_edu.model.tokenizer import encode_user_text
from mimo_edu.utils import quiet_transformers

DESCRIPTION_EVERY = 4  # item i is a description when i % 4 == 3


def descriptions() -> list[str]:
    """Sentences about every modality and structure of MIMOSeg-synth [course choice]."""
    texts = []
    for modality in MODALITIES:
        m = MODALITY_NAMES[modality]
        specs = STRUCTURES[modality]
        anatomy = [s.name for s in specs if not s.lesion]
        lesions = [s for s in specs if s.lesion]
        texts.append(f"A {m} image shows the " + ", the ".join(anatomy[:-1]) + f" and the {anatomy[-1]}.")
        for name in anatomy:
            texts.append(f"In a {m} image, the {name} is normal anatomy.")
        for s in lesions:
            texts.append(f"In a {m} image, {'an' if s.name[0] in 'aeiou' else 'a'} {s.name} is a lesion of the "
                         + " or the ".join(s.hosts) + ".")
            texts.append(f"A {s.name} is abnormal; {s.plural} can be small or large, on the left or on the right.")
    return texts


class TextDataset(Dataset):
    """Item i of a stream: a description (every DESCRIPTION_EVERY-th), else the (question, answer) of the
    stream's next sample, so that the turns run through the samples, and their four tasks, in order."""

    def __init__(self, num: int, stream: int, image_size: int = 128) -> None:
        self.num, self.stream, self.image_size = num, stream, image_size
        self.descriptions = descriptions()

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int) -> tuple[str, str | None]:
        if not 0 <= index < self.num:
            raise IndexError(f"text {index} is outside this {self.num}-text dataset")
        if index % DESCRIPTION_EVERY == DESCRIPTION_EVERY - 1:
            rng = np.random.default_rng([self.stream, index, 5])
            return self.descriptions[int(rng.integers(len(self.descriptions)))], None
        sample = generate_sample(self.stream, index - index // DESCRIPTION_EVERY, self.image_size)
        return sample.question, sample.answer


class TextCollator:
    """(question, answer) -> the turn's ids as ConversationTemplate writes them (no image); (text, None) -> text."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.template = ConversationTemplate(tokenizer, num_image_tokens=0, tokens_per_prompt=0)

    def ids(self, text: str, answer: str | None) -> list[int]:
        t = self.template
        if answer is None:
            return [t.bos_id, *encode_user_text(self.tokenizer, text), t.eos_id]
        return t.encode_batch([text], [answer], [0]).input_ids[0].tolist()

    def __call__(self, items: list[tuple[str, str | None]]) -> dict:
        rows = [self.ids(*item) for item in items]
        length = max(map(len, rows))
        ids = torch.full((len(rows), length), self.template.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = labels[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        labels[:, 0] = IGNORE_INDEX  # <s> is given, never predicted
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


@dataclass
class LMOutput:
    loss: torch.Tensor


class LMObjective(nn.Module):
    """Next-token cross-entropy on every non-pad token; `save_pretrained` writes the Llama folder and tokenizer."""

    def __init__(self, llm: LlamaForCausalLM, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.llm, self.tokenizer = llm, tokenizer

    def token_losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed next-token loss and the number of predicted tokens."""
        logits = self.llm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        total = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX,
                                reduction="sum")
        return total, (labels != IGNORE_INDEX).sum()

    def forward(self, batch: dict) -> LMOutput:
        total, count = self.token_losses(batch)
        return LMOutput(total / count)

    def save_pretrained(self, path) -> None:
        with quiet_transformers():
            self.llm.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))


@torch.no_grad()
def evaluate_llm(objective: LMObjective, num: int, stream: int, train_stream: int = 0, batch_size: int = 32) -> dict:
    """Perplexity on `num` held-out texts of a stream, beside a unigram model fitted on the train stream.

    The unigram baseline (add-one smoothed token frequencies of as many train texts) knows which tokens
    are common but not their order: it is what a model that ignores context could reach.
    """
    objective.eval()
    collate = TextCollator(objective.tokenizer)
    held_out, train = TextDataset(num, stream), TextDataset(num, train_stream)
    total, count = 0.0, 0
    for start in range(0, num, batch_size):
        batch = collate([held_out[i] for i in range(start, min(num, start + batch_size))])
        t, c = objective.token_losses(batch)
        total, count = total + float(t), count + int(c)
    vocab = len(objective.tokenizer)
    counts = np.ones(vocab)
    for i in range(num):
        np.add.at(counts, collate.ids(*train[i])[1:], 1)
    log_p = np.log(counts / counts.sum())
    unigram = -np.mean([log_p[t] for i in range(num) for t in collate.ids(*held_out[i])[1:]])
    return {"kind": "llm", "seed": stream, "num_texts": num, "num_tokens": count,
            "perplexity": float(np.exp(total / count)), "unigram_perplexity": float(np.exp(unigram))}
