"""The guided tour: one structure per image, marked three ways, each answer graded against the truth.

The images are picked by a rule, never searched for: the first test-split image of each of the first two
modalities (CT and MRI), and on each the structure that the image's language-guided segmentation sample
names first. Each structure is marked with a box, clicks and a scribble drawn from its true mask
(`prompt_from_mask`, seeded) and the model is asked "What is this?". An answer is right when the term it
grounds is the true structure and that term's mask has Dice >= `MIN_DICE` against the true mask.
"""

from dataclasses import dataclass

import numpy as np

from mimo_edu.data import Sample, generate_sample, prompt_from_mask, split_seed
from mimo_edu.data.schema import MODALITIES, TASKS, VisualPrompt
from mimo_edu.eval.metrics import dice

TOUR_MODALITIES = MODALITIES[:2]  # ct, mri
TOUR_QUESTION = "What is this?"
TOUR_KINDS = ("box", "point", "scribble")
MIN_DICE = 0.7


@dataclass
class TourStop:
    """One prompt of the tour, with the model's answer and its grade."""

    sample: Sample  # the image, with the structure's true mask
    structure: str  # the true name
    prompt: VisualPrompt
    answer: object  # the model's GroundedAnswer
    dice: float  # of the mask the model grounds on the true name (0 when it names another)

    @property
    def named(self) -> bool:
        return self.structure in self.answer.terms

    @property
    def right(self) -> bool:
        return self.named and self.dice >= MIN_DICE

    def truth(self) -> Sample:
        """The stop as a perception sample, for `mimo_edu.figures.evaluation.show_graded`."""
        s = self.sample
        return Sample(s.id, s.image, s.modality, "perception", TOUR_QUESTION, f"The <p>{self.structure}</p> [SEG].",
                      s.masks[:1], [self.prompt], [self.structure])


def tour_images(seed: int = 0) -> list[tuple[Sample, str]]:
    """(sample, structure) for each tour modality: image j of the test split has modality j % 8, and its
    first sample asks for language-guided segmentation; its first term and mask are the tour's structure."""
    out = []
    for modality in TOUR_MODALITIES:
        image = MODALITIES.index(modality)
        sample = generate_sample(split_seed("test", seed), image * len(TASKS) + TASKS.index("seg"))
        out.append((sample, sample.terms[0]))
    return out


def run_tour(predictor, seed: int = 0) -> list[TourStop]:
    """Ask `predictor` (a `Predictor`) about every tour image and prompt kind: 6 graded stops."""
    stops = []
    for sample, structure in tour_images(seed):
        target = sample.masks[0]
        rng = np.random.default_rng(seed)
        predictor.set_image(sample.image)
        for kind in TOUR_KINDS:
            prompt = prompt_from_mask(target, kind, rng)
            answer = predictor.ask(TOUR_QUESTION, [prompt])
            d = max((dice(m, target) for t, m in zip(answer.terms, answer.masks, strict=False) if t == structure),
                    default=0.0)
            stops.append(TourStop(sample, structure, prompt, answer, float(d)))
    return stops


def tour_line(stop: TourStop) -> str:
    """One line per stop: the verdict, the truth, the words and the Dice."""
    verdict = "RIGHT" if stop.right else "WRONG"
    return (f"{verdict}: {stop.sample.modality} {stop.prompt.kind:<8} truth {stop.structure!r}; "
            f"answer {stop.answer.plain_text!r}; Dice of its {stop.structure!r} mask {stop.dice:.2f}")
