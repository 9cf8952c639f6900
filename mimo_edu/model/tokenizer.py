"""Tokenizers: the nano byte-level BPE trained on the course corpus, and MIMO's special tokens.

`python -m mimo_edu.model.tokenizer` retrains the nano tokenizer from
`mimo_edu.data.corpus_texts()` and writes `mimo_edu/assets/nano_tokenizer/`.
Training is deterministic, so the folder changes only when the corpus does.

User text is encoded with `split_special_tokens=True`: a `[SEG]` typed by the
user becomes the characters `[`, `S`, `E`, `G`, `]`, never the token.
"""

import argparse
import re
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mimo_edu.data.schema import PHRASE_END, PHRASE_START, SEG_TOKEN, SPECIAL_TOKENS
from mimo_edu.errors import CheckpointError

NANO_TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "assets" / "nano_tokenizer"
BASE_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")
ANSWER_MARKERS = re.compile(f"({re.escape(SEG_TOKEN)}|{re.escape(PHRASE_START)}|{re.escape(PHRASE_END)})")
"""The special tokens an answer may carry; the other pieces of an answer are plain text."""
TEMPLATE_TEXTS = ("USER:", " ASSISTANT:")


def answer_pieces(answer: str) -> list[str]:
    """`answer` split into markers and plain text, spaced as `encode_answer` tokenises it.

    A space before `<p>` moves behind it, so a term reads " left kidney" after `<p>` as it does in the
    question ("Segment the left kidney."): copying a term then means repeating the question's tokens.
    The space in `</p> [SEG]` is dropped, so the state that predicts `[SEG]` is the one at `</p>`.
    """
    pieces = [p for p in ANSWER_MARKERS.split(" " + answer) if p]
    out: list[str] = []
    for i, piece in enumerate(pieces):
        after = pieces[i + 1] if i + 1 < len(pieces) else ""
        before = out[-1] if out else ""
        if piece.isspace() and before == PHRASE_END and after == SEG_TOKEN:
            continue
        if before == PHRASE_START and not ANSWER_MARKERS.fullmatch(piece):
            piece = " " + piece.lstrip(" ")
        if after == PHRASE_START and not ANSWER_MARKERS.fullmatch(piece):
            piece = piece.rstrip(" ")
        if piece:
            out.append(piece)
    return out


def text_pieces(text: str) -> list[str]:
    """The plain-text pieces of `text` between answer markers, as `encode_answer` sees them."""
    return [p for p in answer_pieces(text) if not ANSWER_MARKERS.fullmatch(p)]


def train_nano_tokenizer(texts: list[str], vocab_size: int = 768) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` (covers any byte, so no `<unk>`) and add MIMO's special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*BASE_TOKENS, *SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    pieces = [p for t in sorted(set(texts)) for p in text_pieces(t)]
    tok.train_from_iterator([*TEMPLATE_TEXTS, *pieces], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens=list(SPECIAL_TOKENS),
    )


def load_tokenizer(path: str | Path = NANO_TOKENIZER_DIR) -> PreTrainedTokenizerBase:
    """Load a tokenizer folder and make sure it carries MIMO's special tokens and a pad token."""
    path = Path(path)
    if not (path / "tokenizer_config.json").is_file():
        raise CheckpointError(
            f"tokenizer folder {path}: no tokenizer_config.json. For nano/lite run "
            "`python -m mimo_edu.model.tokenizer`; for paper put Vicuna's tokenizer files in the LLM folder."
        )
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    add_special_tokens(tokenizer)
    return tokenizer


def add_special_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    """Add `<image>`, `<region>`, `[SEG]`, `<p>`, `</p>` if missing; pad with `<unk>` if there is no pad (as LISA)."""
    missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token


def encode_user_text(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of user text in which special-token strings are ordinary characters."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def encode_answer(tokenizer: PreTrainedTokenizerBase, answer: str) -> list[int]:
    """Token ids of an answer: `[SEG]`, `<p>`, `</p>` become their tokens, the rest is plain text
    spaced as `answer_pieces` says (`decode_answer` undoes the spacing)."""
    ids: list[int] = []
    for piece in answer_pieces(answer):
        if ANSWER_MARKERS.fullmatch(piece):
            ids.append(tokenizer.convert_tokens_to_ids(piece))
        else:
            ids += encode_user_text(tokenizer, piece)
    return ids


def decode_answer(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    """Answer ids -> text, keeping `<p>`, `</p>` and `[SEG]`; the inverse of `encode_answer`."""
    text = tokenizer.decode(ids, skip_special_tokens=False)
    text = re.sub(rf"\s*{re.escape(PHRASE_START)}\s*", f" {PHRASE_START}", text)
    return text.replace(f"{PHRASE_END}{SEG_TOKEN}", f"{PHRASE_END} {SEG_TOKEN}").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Retrain the nano tokenizer on the MIMOSeg-synth corpus.")
    parser.add_argument("--out", type=Path, default=NANO_TOKENIZER_DIR)
    parser.add_argument("--vocab-size", type=int, default=768)
    args = parser.parse_args(argv)
    from mimo_edu.data import corpus_texts

    tokenizer = train_nano_tokenizer(corpus_texts(), args.vocab_size)
    tokenizer.save_pretrained(str(args.out))
    print(f"wrote {args.out} ({len(tokenizer)} tokens)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
