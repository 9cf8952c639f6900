"""Question and answer phrasings of the four task perspectives, and the corpus they span.

Each `Phrasing` pairs one question wording with one answer wording (and, for
yes/no and counting questions, the wording when the finding is absent), so the
answer's words follow from the question's words plus the image: a model can
learn every answer exactly. Every grounded term is written `<p>term</p> [SEG]`, even
where LISA answers "Sure, [SEG]." [course choice]: in nano a bare `[SEG]` is read from the
single hidden state before it, and in three of five 1300-step runs of the nano recipe with
the mask read-out below, those masks scored Dice 0.26-0.48 while the phrased ones scored
0.73-0.93 (the models still read and ground a bare `[SEG]`; `grounded_terms` and the
metrics handle it).

"Is the marked region abnormal?" and its kin are answered as a report gives findings before
its impression [course choice]: first the marked structure ("It is the <p>ulcer</p> [SEG]"),
then what it is ("which is a lesion"), then yes or no. A causal model writes its answer a
token at a time, so an answer that opens with "Yes" or "No" commits before it has named what
it sees; here each word follows from the words just before it and the question.

The same holds for every word that depends on what a mask shows [course choice]: how many
lesions an organ holds, on which side and how big one is are said after the `[SEG]` that
segments them ("I looked for <p>cysts</p> [SEG] in the <p>liver</p> [SEG] and found 2. Yes."; the
lesion term is the question's plural whatever the count, its mask empty when there are none),
so that the model reads them back from its own mask (`grounding.MaskReadout`).

Fields: m modality, t / t1 / t2 structure terms, l / ls / al lesion singular,
plural and with its article, art the article of t, o the host structure, n a
count, side, size.
"""

import itertools
import re
from dataclasses import dataclass

from mimo_edu.data.scenes import MODALITY_NAMES, STRUCTURES, Structure
from mimo_edu.data.schema import MODALITIES, PHRASE_END, PHRASE_START, SEG_TOKEN


@dataclass(frozen=True)
class Phrasing:
    """One question wording with its answer (and its answer when the finding is absent)."""

    question: str
    answer: str
    negative: str = ""

    def fill(self, present: bool = True, **fields: str) -> tuple[str, str]:
        """(question, answer) with the fields filled in; `present=False` picks the negative answer (the answer
        itself when there is none: a count of 0 is said as any other)."""
        return self.question.format(**fields), (self.answer if present else self.negative or self.answer).format(**fields)


P = Phrasing

SEG_ONE = (
    P("Segment the {t}.", "Sure, <p>{t}</p> [SEG]."),
    P("Please segment the {t} in this {m} image.", "Sure, the <p>{t}</p> [SEG]."),
    P("Can you segment the {t}?", "Yes, here it is: <p>{t}</p> [SEG]."),
    P("Where is the {t}? Please output the segmentation mask.", "The <p>{t}</p> [SEG] is shown."),
    P("Show me the {t}.", "Here is the <p>{t}</p> [SEG]."),
    P("Outline the {t} in the image.", "Sure, I outlined the <p>{t}</p> [SEG]."),
)
SEG_TWO = (
    P("Segment the {t1} and the {t2}.", "Sure, the <p>{t1}</p> [SEG] and the <p>{t2}</p> [SEG]."),
    P("Please segment the {t1} and the {t2} in this {m} image.", "The <p>{t1}</p> [SEG] and the <p>{t2}</p> [SEG]."),
    P("Where are the {t1} and the {t2}?", "Here are the <p>{t1}</p> [SEG] and the <p>{t2}</p> [SEG]."),
    P("Show me the {t1} and the {t2}.", "Sure, <p>{t1}</p> [SEG] and <p>{t2}</p> [SEG]."),
    P("Outline the {t1} and the {t2}.", "I outlined the <p>{t1}</p> [SEG] and the <p>{t2}</p> [SEG]."),
)
PERCEPTION = (
    P("What is this?", "The <p>{t}</p> [SEG]."),
    P("What is the marked region?", "The marked region is the <p>{t}</p> [SEG]."),
    P("What structure is marked?", "It is the <p>{t}</p> [SEG]."),
    P("Can you identify the marked structure?", "Yes, it is the <p>{t}</p> [SEG]."),
    P("What does the prompt show in this {m} image?", "It shows the <p>{t}</p> [SEG]."),
    P("Name the marked region.", "This is the <p>{t}</p> [SEG]."),
)
PRESENCE = (
    P("Is there {al} in the {o}?", "I looked for <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] and found {n}. Yes.",
      "I looked for <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] and found none. No."),
    P("Does the {o} contain {al}?", "Looking for <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] I find {n}. Yes.",
      "Looking for <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] I find none. No."),
    P("Are there any {ls} in the {o}?", "Searching the <p>{o}</p> [SEG] for <p>{ls}</p> [SEG] gives {n}. Yes.",
      "Searching the <p>{o}</p> [SEG] for <p>{ls}</p> [SEG] gives none. No."),
    P("Check the {o} of this {m} image for {ls}.", "I checked the <p>{o}</p> [SEG] for <p>{ls}</p> [SEG] and found {n}.",
      "I checked the <p>{o}</p> [SEG] for <p>{ls}</p> [SEG] and found none."),
    P("Is the {o} free of {ls}?", "I looked for <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] and found {n}. No.",
      "I looked for <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] and found none. Yes."),
)
COUNT = (
    P("How many {ls} are in the {o}?", "Counting the <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] gives {n}."),
    P("Count the {ls} in the {o}.", "I count the <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] as {n}."),
    P("How many {ls} does the {o} have?", "In the <p>{o}</p> [SEG] the <p>{ls}</p> [SEG] number {n}."),
    P("What is the number of {ls} in the {o}?", "The number of <p>{ls}</p> [SEG] in the <p>{o}</p> [SEG] is {n}."),
)
LOCATION = (
    P("Is the {l} on the left or the right?", "The <p>{l}</p> [SEG] is on the {side}."),
    P("On which side of the image is the {l}?", "The <p>{l}</p> [SEG] is on the {side} side."),
    P("Where is the {l}, left or right?", "The <p>{l}</p> [SEG] lies on the {side}."),
)
SIZE = (
    P("Is the {l} large or small?", "The <p>{l}</p> [SEG] is {size}."),
    P("How big is the {l}?", "The <p>{l}</p> [SEG] is a {size} one."),
    P("What size is the {l} in this {m} image?", "This <p>{l}</p> [SEG] is {size}."),
)
ABNORMAL = (
    P("Is the marked region abnormal?", "It is the <p>{t}</p> [SEG], which is a lesion. Yes.",
      "It is the <p>{t}</p> [SEG], which is normal. No."),
    P("Is this normal?", "It is the <p>{t}</p> [SEG], which is a lesion. No.",
      "It is the <p>{t}</p> [SEG], which is normal. Yes."),
    P("Is the marked structure a lesion?", "This is the <p>{t}</p> [SEG], which is a lesion. Yes.",
      "This is the <p>{t}</p> [SEG], which is normal. No."),
    P("Does the marked area show disease?", "It shows the <p>{t}</p> [SEG], which is a lesion. Yes.",
      "It shows the <p>{t}</p> [SEG], which is normal. No."),
    P("Is the marked region healthy?", "It is the <p>{t}</p> [SEG], which is a lesion. No.",
      "It is the <p>{t}</p> [SEG], which is normal. Yes."),
)
HOST = (
    P("Where is the marked lesion?", "The <p>{t}</p> [SEG] is in the <p>{o}</p> [SEG]."),
    P("Which structure contains the marked lesion?", "The <p>{o}</p> [SEG] contains the <p>{t}</p> [SEG]."),
    P("In what part of this {m} image is the marked lesion?", "In the <p>{o}</p> [SEG]: {art}<p>{t}</p> [SEG]."),
)
MARKED_SIZE = (
    P("Is the marked lesion large or small?", "It is the <p>{t}</p> [SEG] and it is {size}."),
    P("How big is the marked lesion?", "The marked <p>{t}</p> [SEG] is {size}."),
    P("What size is the marked lesion?", "The <p>{t}</p> [SEG] looks {size}."),
)
MARKED_SIDE = (
    P("Is the marked structure on the left or the right?", "The <p>{t}</p> [SEG] is on the {side}."),
    P("Which side is the marked region on?", "It is the <p>{t}</p> [SEG] on the {side}."),
    P("Is the marked region in the left or the right half of the image?", "The <p>{t}</p> [SEG] is in the {side} half."),
)

TASK_PHRASINGS = {
    "seg": SEG_ONE + SEG_TWO,
    "perception": PERCEPTION,
    "qa_seg": PRESENCE + COUNT + LOCATION + SIZE,
    "prompt_qa": ABNORMAL + HOST + MARKED_SIZE + MARKED_SIDE,
}
SIDES = ("left", "right")
SIZES = ("small", "large")

_GROUNDED = re.compile(rf"(?:{re.escape(PHRASE_START)}(.*?){re.escape(PHRASE_END)}\s*)?{re.escape(SEG_TOKEN)}")


def grounded_terms(answer: str, default: str = "") -> list[str]:
    """The term each [SEG] of `answer` grounds, in order: the <p>phrase</p> just before it, else `default`."""
    return [match.group(1) or default for match in _GROUNDED.finditer(answer)]


def a_an(word: str) -> str:
    """The indefinite article for `word`, with its space: 'a ' or 'an '."""
    return "an " if word[0] in "aeiou" else "a "


def lesion_fields(spec: Structure, count: int) -> dict[str, str]:
    """Fields naming lesion `spec` found `count` times."""
    return {"l": spec.name, "ls": spec.plural, "al": a_an(spec.name) + spec.name, "n": str(count)}


def corpus_texts() -> list[str]:
    """Every question and answer the generator can produce, for every term: the tokenizer's corpus."""
    texts: set[str] = set()

    def add(phrasings: tuple[Phrasing, ...], present: bool = True, **fields: str) -> None:
        for phrasing in phrasings:
            texts.update(phrasing.fill(present, **fields))

    for modality in MODALITIES:
        m = MODALITY_NAMES[modality]
        specs = STRUCTURES[modality]
        lesions = [s for s in specs if s.lesion]
        terms = [s.name for s in specs] + [s.plural for s in lesions]
        for t in terms:
            add(SEG_ONE, m=m, t=t)
        for t1, t2 in itertools.permutations(terms, 2):
            add(SEG_TWO, m=m, t1=t1, t2=t2)
        for spec in specs:
            add(PERCEPTION, m=m, t=spec.name)
            add(ABNORMAL, spec.lesion, m=m, t=spec.name, art=a_an(spec.name))
            for side in SIDES:
                add(MARKED_SIDE, m=m, t=spec.name, side=side)
        for spec in lesions:
            for host in spec.hosts:
                add(HOST, m=m, o=host, t=spec.name, art=a_an(spec.name))
                for count in range(spec.max_count + 1):
                    add(PRESENCE + COUNT, count > 0, m=m, o=host, **lesion_fields(spec, count))
            for side, size in itertools.product(SIDES, SIZES):
                add(LOCATION + SIZE, m=m, side=side, size=size, **lesion_fields(spec, 1))
                add(MARKED_SIZE, m=m, t=spec.name, size=size)
    return sorted(texts)
