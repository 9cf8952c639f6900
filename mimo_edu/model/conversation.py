"""The chat template: where image, region, question and answer tokens sit in the LLM input.

One turn, Vicuna style (`system` is empty for nano/lite, Vicuna's for paper):

    <s> {system} USER: <image>*N_patches (<region>*T)*P {question} ASSISTANT: {answer}</s>

N_patches = CLIP patch tokens, P = visual prompts, T = `tokens_per_prompt`.
Only the answer and its `</s>` carry labels; the question tokens are the
instruction the Multi-modal Input Aligner reads.

Everything must fit the LLM's context (`max_position_embeddings`): the request gate
(`model/requests.py`) refuses more visual prompts than `max_prompts` and a question
too long to leave room for the answer; nothing is truncated silently.
"""

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from mimo_edu.data.schema import IMAGE_TOKEN, PHRASE_END, PHRASE_START, REGION_TOKEN, SEG_TOKEN
from mimo_edu.model.tokenizer import decode_answer, encode_answer, encode_user_text

IGNORE_INDEX = -100
MIN_TEXT_TOKENS = 128
"""Context positions kept for the question and the answer when counting how many visual prompts fit."""


@dataclass
class EncodedBatch:
    """Token ids of a batch, right-padded."""

    input_ids: torch.Tensor  # (B, L) long
    labels: torch.Tensor  # (B, L) long, IGNORE_INDEX outside answers
    attention_mask: torch.Tensor  # (B, L) long
    instruction_mask: torch.Tensor  # (B, L) bool, the question tokens


class ConversationTemplate:
    """Encodes (question, answer, number of prompts) into token ids and labels."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        num_image_tokens: int,
        tokens_per_prompt: int,
        system_prompt: str = "",
    ) -> None:
        self.tokenizer = tokenizer
        self.num_image_tokens = num_image_tokens
        self.tokens_per_prompt = tokens_per_prompt
        ids = tokenizer.convert_tokens_to_ids
        self.image_id, self.region_id, self.seg_id = ids(IMAGE_TOKEN), ids(REGION_TOKEN), ids(SEG_TOKEN)
        self.open_id, self.close_id = ids(PHRASE_START), ids(PHRASE_END)
        self.bos_id, self.eos_id, self.pad_id = (
            tokenizer.bos_token_id,
            tokenizer.eos_token_id,
            tokenizer.pad_token_id,
        )
        system = encode_user_text(tokenizer, system_prompt + " ") if system_prompt else []
        self.head = [self.bos_id, *system, *encode_user_text(tokenizer, "USER:")]
        self.tail = encode_user_text(tokenizer, " ASSISTANT:")

    def encode_prompt(self, question: str, num_prompts: int) -> tuple[list[int], list[bool]]:
        """Ids up to and including `ASSISTANT:`, and which of them are the question."""
        visual = [self.image_id] * self.num_image_tokens + [self.region_id] * (
            self.tokens_per_prompt * num_prompts
        )
        question_ids = encode_user_text(self.tokenizer, " " + question)
        ids = self.head + visual + question_ids + self.tail
        instruction = (
            [False] * len(self.head + visual) + [True] * len(question_ids) + [False] * len(self.tail)
        )
        return ids, instruction

    def max_prompts(self, max_length: int) -> int:
        """The most visual prompts one question may carry in a `max_length` context: what is left after
        the template, the image tokens and MIN_TEXT_TOKENS of text, `tokens_per_prompt` each."""
        fixed = len(self.head) + self.num_image_tokens + len(self.tail) + MIN_TEXT_TOKENS
        return max((max_length - fixed) // self.tokens_per_prompt, 0)

    def encode_batch(self, questions: list[str], answers: list[str], num_prompts: list[int]) -> EncodedBatch:
        """Encode B full turns for teacher forcing; labels cover the answer and its `</s>`."""
        rows = []
        for question, answer, p in zip(questions, answers, num_prompts, strict=True):
            ids, instruction = self.encode_prompt(question, p)
            answer_ids = encode_answer(self.tokenizer, answer) + [self.eos_id]
            labels = [IGNORE_INDEX] * len(ids) + answer_ids
            rows.append((ids + answer_ids, labels, instruction + [False] * len(answer_ids)))
        length = max(len(r[0]) for r in rows)
        out = EncodedBatch(
            input_ids=torch.full((len(rows), length), self.pad_id, dtype=torch.long),
            labels=torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long),
            attention_mask=torch.zeros((len(rows), length), dtype=torch.long),
            instruction_mask=torch.zeros((len(rows), length), dtype=torch.bool),
        )
        for i, (ids, labels, instruction) in enumerate(rows):
            n = len(ids)
            out.input_ids[i, :n] = torch.tensor(ids)
            out.labels[i, :n] = torch.tensor(labels)
            out.attention_mask[i, :n] = 1
            out.instruction_mask[i, :n] = torch.tensor(instruction)
        return out

    def decode_answer(self, ids: list[int]) -> str:
        """Generated ids -> answer text, keeping `<p>`, `</p>` and `[SEG]`."""
        return decode_answer(self.tokenizer, ids)
