"""Does a LLaVA-style caption stage before the MIMO stage teach nano-LLM to read lesions in time?

The MIMO stage sees about 2,600 QA-with-segmentation samples; `bench_read_count.py` needs about 8,000 count
questions before even ideal object tokens are read well. LISA starts from LLaVA and MedPLIB from
LLaVA-Med, language models that have already learned to read image tokens; nano's starts from text only.
This script inserts such a stage [course choice] and scores the MIMO stage after it:

1. Caption stage: the projector (and the object projector, with object tokens) and the whole nano-LLM train
   on "Describe this CT image." -> a caption of the scene's findings, built from the same facts QA with
   segmentation asks about ("The liver has 2 cysts. The left kidney has no cysts. ..."), nano-CLIP
   frozen; `--replay B` adds B of nano-LLM's own pretraining texts to every step so that it keeps the
   MIMOSeg turns it knows. AdamW lr 1e-3, 100 warmup steps, cosine, batch 32 fresh train-split scenes.
2. The MIMO stage exactly as `train --preset nano` (1300 steps), from the caption stage's LLM and
   projector instead of the foundations', then `evaluate` on the test split (`--num`, a quarter per task).

`--short-qa N` gives N of the 32 scenes a step a closed question with a one-word answer instead of a
caption ("Does the liver show cysts? Answer yes or no." -> "yes"; "Number of cysts in the liver?" -> "2"),
as LLaVA-Med trains on VQA-RAD's closed questions [course choice]: MIMOSeg's presence answers decide at
their first token. `--free-of` adds the inverted "Is the liver free of cysts? Answer yes or no." (yes: none),
the polarity the closed questions above leave untaught.

`--objects true` gives the LLM one object token per true structure instance (at most 12; an oracle: the
masks come from the scene, in both stages and in the evaluation); `--objects felz` the nano preset's
felzenszwalb proposals (`mimo_edu.model.objects`).

    python benchmarks/bench_caption_stage.py --objects true --out build/caption-stage/true
    python benchmarks/bench_caption_stage.py --objects felz --out build/caption-stage/felz

    python benchmarks/bench_caption_stage.py --objects true --short-qa 16 --out build/caption-stage/true-shortqa
    python benchmarks/bench_caption_stage.py --objects felz --short-qa 16 --free-of --out build/caption-stage/felz-shortqa-free

Each writes report.json in its --out; benchmarks/results/caption_stage_{true,felz,true_shortqa,felz_shortqa_free}.json
are those of the committed runs (one run each, seed 0).
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import mimo_edu.data.synth as synth
import mimo_edu.model.mimo as mimo_module
from mimo_edu.data import MIMOSegSynth, collate, split_seed
from mimo_edu.data.scenes import MODALITY_NAMES, STRUCTURES, Scene
from mimo_edu.data.tasks import side_of, size_of
from mimo_edu.eval.evaluate import evaluate
from mimo_edu.foundations.clip import patch_coverage
from mimo_edu.foundations.data import scene
from mimo_edu.foundations.llm import LMObjective, TextCollator, TextDataset
from mimo_edu.foundations.paths import FOUNDATIONS_DIR, FOUNDATIONS_ENV
from mimo_edu.model import build_mimo
from mimo_edu.train.config import nano_training
from mimo_edu.train.run import datasets
from mimo_edu.train.trainer import Trainer
from mimo_edu.utils import seed_everything

MAX_OBJECTS = 12
SCENES: dict[str, Scene] = {}  # image hash -> its scene, for the true-instance oracle


def _key(image: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()


def caption(s: Scene) -> str:
    """The scene's findings: per lesion class and host how many, and side and size of a class seen once."""
    out = []
    for spec in (spec for spec in STRUCTURES[s.modality] if spec.lesion):
        every = s.of(spec.name)
        for host in spec.hosts:
            n = sum(i.host == host for i in every)
            art = "an" if spec.name[0] in "aeiou" else "a"
            out.append(f"The {host} has no {spec.plural}." if n == 0 else
                       f"The {host} has {art} {spec.name}." if n == 1 else f"The {host} has {n} {spec.plural}.")
        if len(every) == 1:
            if side := side_of(every[0].mask):
                out.append(f"The {spec.name} is on the {side}.")
            out.append(f"It is a {size_of(every[0].mask, spec)} {spec.name}.")
    return " ".join(out)


def describe(s: Scene) -> str:
    """The caption stage's question about a scene."""
    return f"Describe this {MODALITY_NAMES[s.modality]} image."


def short_qa(s: Scene, rng: np.random.Generator, free_of: bool = False) -> tuple[str, str]:
    """A closed question about one lesion class in one host and its one-word answer (VQA-RAD style);
    `free_of` adds the inverted presence question, where "yes" means none."""
    specs = [spec for spec in STRUCTURES[s.modality] if spec.lesion]
    spec = specs[int(rng.integers(len(specs)))]
    host = spec.hosts[int(rng.integers(len(spec.hosts)))]
    n = sum(i.host == host for i in s.of(spec.name))
    kind = rng.random() * (3 if free_of else 2)
    if kind < 1:
        return f"Does the {host} show {spec.plural}? Answer yes or no.", "yes" if n else "no"
    if kind >= 2:
        return f"Is the {host} free of {spec.plural}? Answer yes or no.", "no" if n else "yes"
    return f"Number of {spec.plural} in the {host}?", str(n)


def true_object_weights(images: torch.Tensor, grid: int, max_regions: int) -> torch.Tensor:
    """`objects.object_weights` with each scene's true instance masks instead of proposals (the oracle)."""
    pixels = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = torch.zeros(len(images), max_regions, grid * grid)
    for u, image in enumerate(pixels):
        for k, inst in enumerate(SCENES[_key(image)].instances[:max_regions]):
            out[u, k] = torch.from_numpy(patch_coverage(inst.mask, grid))
    return out


def use_true_objects() -> None:
    """Every scene a sample is made from is remembered; object tokens then read its true masks."""
    make = synth.make_sample

    def remembering(s, task, rng, sample_id):
        SCENES[_key(s.image)] = s
        return make(s, task, rng, sample_id)

    synth.make_sample = remembering
    mimo_module.object_weights = true_object_weights


def caption_stage(args, out: Path) -> dict:
    """Train projector(s) + nano-LLM on captions; write a foundations folder (clip, sam linked; llm new)."""
    torch.manual_seed(0)
    model = build_mimo("nano", object_tokens=args.k, lora_rank=0, use_aligner=False,
                       trainable=("projector", "llm") + (("prompt_encoder",) if args.k else ()))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.0)
    steps = args.caption_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.45 * (1 + math.cos(math.pi * s / steps))))
    texts, text_batch = TextDataset(10**7, split_seed("train")), TextCollator(model.tokenizer)
    replay = LMObjective(model.llm, model.tokenizer)  # nano-LLM's own pretraining loss
    rng, train = np.random.default_rng(0), split_seed("train")
    t0 = time.time()
    for _ in range(steps):
        scenes = [scene(train, int(i)) for i in rng.integers(0, 10**7, 32)]
        SCENES.update({_key(s.image): s for s in scenes})
        turns = [short_qa(s, rng, args.free_of) if k < args.short_qa else
                 (describe(s), caption(s)) for k, s in enumerate(scenes)]
        batch = {"images": torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float() / 255,
                 "questions": [q for q, _ in turns], "answers": [a for _, a in turns],
                 "masks": [torch.zeros(0, 1, 1, dtype=torch.bool)] * 32, "visual_prompts": [[] for _ in scenes]}
        loss = model(batch).loss
        if args.replay:
            loss = loss + replay(text_batch([texts[int(i)] for i in rng.integers(0, 10**7, args.replay)])).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if len(SCENES) > 20_000:
            SCENES.clear()
    wall = time.time() - t0
    model.eval()
    test = [scene(split_seed("test"), i) for i in range(100)]
    SCENES.update({_key(s.image): s for s in test})
    exact = sum(model.generate(s.image, describe(s)).text.strip() == caption(s)
                for s in test)
    for kind in ("clip", "sam"):
        (out / kind).unlink(missing_ok=True)
        os.symlink(FOUNDATIONS_DIR.resolve() / kind, out / kind)
    shutil.rmtree(out / "llm", ignore_errors=True)
    model.llm.save_pretrained(out / "llm")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FOUNDATIONS_DIR / "llm" / name, out / "llm")
    keep = ("projector.", "prompt_encoder.object_proj.", "prompt_encoder.no_object")
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith(keep)}, out / "projectors.pt")
    return {"steps": steps, "wall_s": round(wall), "test_captions_exact": exact, "test_captions": len(test)}


def mimo_stage(args, out: Path) -> dict:
    """`train --preset nano` from the caption stage's folder, then `evaluate` on the test split."""
    os.environ[FOUNDATIONS_ENV] = str(out)
    cfg = replace(nano_training(), model_overrides={"object_tokens": args.k}, progress=False, eval_samples=0)
    t0 = time.time()
    seed_everything(cfg.seed)
    model = build_mimo("nano", object_tokens=args.k)
    model.load_state_dict(torch.load(out / "projectors.pt"), strict=False)
    train_set, _ = datasets(cfg, model.config.image_size)
    Trainer(model, train_set, cfg, out / "mimo", collate).train()
    wall = time.time() - t0
    test = MIMOSegSynth(args.num, seed=split_seed("test"), image_size=model.config.image_size)
    if args.objects == "true":
        for i in range(len(test)):
            test[i]  # remembers its scene
    report = evaluate(model, test)["per_task"]
    return {"wall_s": round(wall), **{task: {"answer_acc": r["answer_acc"], "answer_acc_ci95": r["answer_acc_ci95"],
                                             "dice": r["dice"]} for task, r in report.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", choices=("none", "true", "felz"), default="none")
    ap.add_argument("--caption-steps", type=int, default=800)
    ap.add_argument("--replay", type=int, default=32, help="pretraining texts per step beside 32 captions")
    ap.add_argument("--short-qa", type=int, default=0, help="of the 32 scenes a step, this many get a closed "
                    "question instead of a caption")
    ap.add_argument("--free-of", action="store_true", help="closed questions include the inverted "
                    "'Is the X free of Y?' (yes = none)")
    ap.add_argument("--num", type=int, default=400, help="test samples (a quarter per task)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.k = 0 if args.objects == "none" else MAX_OBJECTS
    if args.objects == "true":
        use_true_objects()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"objects": args.objects, "replay": args.replay, "short_qa": args.short_qa,
              "free_of": args.free_of, "caption_stage": caption_stage(args, args.out)}
    print(json.dumps(report), flush=True)
    report["mimo_stage"] = mimo_stage(args, args.out)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
