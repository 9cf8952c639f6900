"""The on-disk format: LLaVA conversation records plus masks and visual prompts.

```
DIR/annotations.json     a JSON list of records, one sample per line
DIR/images/<id>.png      the image, RGB
DIR/masks/<id>_<k>.png   the mask of the k-th [SEG] of the answer, 1-bit
```

A record is the conversation format of LLaVA-Med, LISA and MedPLIB, extended:

```
{"id": "synth-0-000001", "image": "images/synth-0-000001.png",
 "modality": "ct", "task": "perception",
 "conversations": [{"from": "human", "value": "<image>\\nWhat is this?"},
                   {"from": "gpt", "value": "The <p>liver</p> [SEG]."}],
 "visual_prompt": [{"kind": "box", "box": [20.0, 31.0, 60.0, 70.0]}],
 "masks": ["masks/synth-0-000001_0.png"], "terms": ["liver"]}
```

Paths are relative to DIR. `modality`, `task`, `visual_prompt` (a list, one
object or null) and `terms` may be left out of a learner's own records;
`masks` may be left out when the answer has no [SEG].
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mimo_edu.data.prompts import validate_prompt
from mimo_edu.data.real import load_image
from mimo_edu.data.schema import IMAGE_TOKEN, SEG_TOKEN, TASKS, Sample, VisualPrompt
from mimo_edu.data.templates import grounded_terms
from mimo_edu.errors import DataError, ImageError, PromptError

ANNOTATIONS = "annotations.json"
PNG_COMPRESS_LEVEL = 1
"""Fixed PNG settings (and no metadata) make the files byte-identical for the same samples."""


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def _read_mask(path: Path) -> np.ndarray:
    """A mask image (any mode; nonzero is inside) as (H, W) bool."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L")) > 0
    except (OSError, UnidentifiedImageError) as err:
        raise ImageError(f"cannot read mask {path}: {err}; give a PNG with 0 outside the structure") from err


def to_record(sample: Sample, image: str, masks: list[str]) -> dict:
    """The JSON record of `sample`, whose image and masks are stored at the given relative paths."""
    return {
        "id": sample.id,
        "image": image,
        "modality": sample.modality,
        "task": sample.task,
        "conversations": [
            {"from": "human", "value": f"{IMAGE_TOKEN}\n{sample.question}"},
            {"from": "gpt", "value": sample.answer},
        ],
        "visual_prompt": [prompt.to_dict() for prompt in sample.visual_prompts],
        "masks": masks,
        "terms": list(sample.terms),
    }


def write_dataset(samples: Iterable[Sample], out_dir: str | Path) -> Path:
    """Write samples (a list or a lazy iterator) to `out_dir` in the format above; returns the folder."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    records = []
    for sample in samples:
        image = f"images/{sample.id}.png"
        masks = [f"masks/{sample.id}_{k}.png" for k in range(len(sample.masks))]
        _save_png(sample.image, out / image)
        for path, mask in zip(masks, sample.masks, strict=True):
            _save_png(mask.astype(bool), out / path)
        records.append(to_record(sample, image, masks))
    lines = ",\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    (out / ANNOTATIONS).write_text(f"[\n{lines}\n]\n", encoding="utf-8")  # one record per line
    return out


@dataclass
class Record:
    """A checked annotation record whose files exist; `MIMOSegDataset` loads its pixels on demand."""

    id: str
    image: Path
    modality: str
    task: str
    question: str
    answer: str
    masks: list[Path]
    visual_prompts: list[VisualPrompt]
    terms: list[str]


def _prompt_from_dict(raw: object, where: str) -> VisualPrompt:
    if not isinstance(raw, dict) or raw.get("kind") not in ("point", "box", "scribble"):
        raise DataError(f"{where}: visual_prompt entry {raw!r} needs a 'kind' of 'point', 'box' or 'scribble'")
    try:
        return VisualPrompt(
            kind=raw["kind"],
            points=None if raw.get("points") is None else np.asarray(raw["points"], np.float32).reshape(-1, 2),
            labels=None if raw.get("labels") is None else np.asarray(raw["labels"], np.int64),
            box=None if raw.get("box") is None else np.asarray(raw["box"], np.float32),
            width=float(raw.get("width", 3.0)),
        )
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: visual_prompt {raw!r} is malformed ({err}); see VisualPrompt for the fields") from err


def parse_record(raw: object, index: int, root: Path) -> Record:
    """Check one annotation record and resolve its paths against `root`; raise DataError on any problem."""
    where = f"record {index} of {root / ANNOTATIONS}"
    if not isinstance(raw, dict):
        raise DataError(f"{where} is a {type(raw).__name__}, not an object with id, image and conversations")
    missing = [key for key in ("id", "image", "conversations") if key not in raw]
    if missing:
        raise DataError(f"{where} lacks {missing}; every record needs 'id', 'image' and 'conversations'")
    where = f"{where} (id {raw['id']!r})"
    turns = raw["conversations"]
    if (
        not isinstance(turns, list)
        or len(turns) != 2
        or not all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in turns)
        or [t.get("from") for t in turns] != ["human", "gpt"]
    ):
        raise DataError(
            f"{where}: 'conversations' must be one human turn then one gpt turn, each with a string 'value'; "
            "split longer conversations into one record per question"
        )
    question = turns[0]["value"].replace(IMAGE_TOKEN, "").strip()
    answer = turns[1]["value"]
    if not question or not answer.strip():
        raise DataError(
            f"{where}: the {'human' if not question else 'gpt'} turn is empty; write the question after "
            f"'{IMAGE_TOKEN}\\n' and the answer in the gpt turn"
        )
    masks = raw.get("masks") or []
    if not isinstance(masks, list) or len(masks) != answer.count(SEG_TOKEN):
        raise DataError(
            f"{where}: the answer has {answer.count(SEG_TOKEN)} {SEG_TOKEN} but 'masks' lists "
            f"{len(masks) if isinstance(masks, list) else masks!r}; give one mask file per {SEG_TOKEN}, in order"
        )
    task = raw.get("task") or ("prompt_qa" if raw.get("visual_prompt") else "qa_seg")
    if task not in TASKS:
        raise DataError(f"{where}: task {task!r} is unknown; use one of {TASKS} or leave it out")
    prompts = raw.get("visual_prompt") or []
    prompts = [prompts] if isinstance(prompts, dict) else prompts
    terms = raw.get("terms") or grounded_terms(answer)
    if not isinstance(terms, list) or len(terms) != len(masks):
        found = f"has {len(terms)} entries" if isinstance(terms, list) else f"is {terms!r}, not a list"
        raise DataError(f"{where}: 'terms' {found} for {len(masks)} masks; give a list with one term per mask")
    files = [raw["image"], *masks]
    if not all(isinstance(f, str) and f for f in files):
        raise DataError(f"{where}: 'image' and 'masks' must be file paths (strings), got {files!r}")
    paths = [root / f for f in files]
    for path in paths:
        if not path.is_file():
            raise DataError(f"{where}: file {path} is missing; check the path (relative to {root}) or add the file")
    return Record(
        id=str(raw["id"]),
        image=paths[0],
        modality=str(raw.get("modality", "unknown")),
        task=task,
        question=question,
        answer=answer,
        masks=paths[1:],
        visual_prompts=[_prompt_from_dict(p, where) for p in prompts],
        terms=[str(t) for t in terms],
    )


def load_record(record: Record) -> Sample:
    """Read a record's image and masks and check them against each other and its prompts."""
    image = load_image(record.image)  # (H, W, 3) uint8
    h, w = image.shape[:2]
    masks = np.zeros((len(record.masks), h, w), bool)  # (K, H, W)
    for k, path in enumerate(record.masks):
        mask = _read_mask(path)
        if mask.shape != (h, w):
            raise DataError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is {w}x{h}; resize it")
        masks[k] = mask
    for prompt in record.visual_prompts:
        try:
            validate_prompt(prompt, h, w)
        except PromptError as err:
            raise PromptError(f"record {record.id!r}: {err}") from err
    return Sample(
        id=record.id, image=image, modality=record.modality, task=record.task, question=record.question,
        answer=record.answer, masks=masks, visual_prompts=record.visual_prompts, terms=record.terms,
    )


def read_annotations(root: str | Path) -> list[Record]:
    """Parse and check `root/annotations.json`; every file it names must exist."""
    root = Path(root)
    path = root / ANNOTATIONS
    if not root.is_dir():
        raise DataError(
            f"dataset folder {root} does not exist or is not a folder (so {path} is missing); check the path, "
            "or write a dataset with `python -m mimo_edu generate --out DIR`"
        )
    if not path.is_file():
        raise DataError(f"{path} is missing; a dataset folder needs {ANNOTATIONS} (write one with write_dataset)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # not JSON, or not UTF-8 text
        raise DataError(f"{path} is not valid JSON in UTF-8 ({err}); fix or rewrite it") from err
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{path} holds {raw!r:.40}; it must be a non-empty JSON list of records")
    records = [parse_record(item, i, root) for i, item in enumerate(raw)]
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path} repeats the id {next(i for i in ids if ids.count(i) > 1)!r}; ids must be unique")
    return records


class MIMOSegDataset(Dataset):
    """A dataset folder in the format above as a torch Dataset of `Sample`s, read lazily.

    The annotations are checked on construction (so a missing file fails
    early); pixels, mask sizes and prompt bounds are checked as each sample loads.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.records = read_annotations(self.root)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        return load_record(self.records[index])


def load_dataset(root: str | Path) -> list[Sample]:
    """Every sample of a dataset folder, fully loaded and checked."""
    return [load_record(record) for record in read_annotations(root)]
