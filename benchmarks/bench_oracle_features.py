"""Is QA with segmentation held back by the vision features or by the LLM? Give it the answer in the features.

The oracle adds ground-truth lesion maps to nano-CLIP's patch tokens before they are merged and projected:
for every lesion class, a channel that is `--strength` (3) on the patch holding an instance's centroid, and a channel with
the fraction of each patch the class covers (20 of the 128 channels). A presence question ("Is there a cyst in
the liver?") is then answered by a lookup in the image tokens: the rule "yes iff the asked class has a centre
flag" is right 0.98 of the time (it misses only which lung a nodule is in).

    python benchmarks/bench_oracle_features.py                    # direct loop, with and without the oracle
    python benchmarks/bench_oracle_features.py --mode recipe      # the nano MIMO stage (1300 steps) + evaluate
    python benchmarks/bench_oracle_features.py --mode rule        # how well the maps alone answer presence

`loop`: a bare training loop on presence questions only (16 a step, whole LLM and projector trained, cross-entropy
on the first answer token, Yes or No), reporting that token's accuracy over the last 400 questions.
`recipe`: `train --preset nano` as it is, with the oracle on, then the test split (100 samples per task).
"""

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mimo_edu.data.synth as synth  # noqa: E402
from mimo_edu.data import MIMOSegSynth, collate, split_seed  # noqa: E402
from mimo_edu.data.scenes import STRUCTURES  # noqa: E402
from mimo_edu.foundations.clip import patch_coverage  # noqa: E402
from mimo_edu.model import vision  # noqa: E402
from mimo_edu.model.config import nano_config  # noqa: E402

LESIONS = sorted({s.name for specs in STRUCTURES.values() for s in specs if s.lesion})
GRID = nano_config().vision.grid  # patches per side of the nano vision tower
MAPS: dict[str, torch.Tensor] = {}  # image bytes digest -> (N, 2 * len(LESIONS)) lesion maps


def digest(image: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()


def lesion_maps(scene) -> torch.Tensor:
    """(N, 2L): per patch, 1 where a lesion of class l has its centroid, and the fraction class l covers."""
    cell = scene.image.shape[0] // GRID
    maps = np.zeros((GRID * GRID, 2 * len(LESIONS)), np.float32)
    for inst in scene.instances:
        if inst.name not in LESIONS:
            continue
        c = LESIONS.index(inst.name)
        ys, xs = np.nonzero(inst.mask)
        maps[int(ys.mean()) // cell * GRID + int(xs.mean()) // cell, c] = 1.0
        maps[:, len(LESIONS) + c] = np.maximum(maps[:, len(LESIONS) + c], patch_coverage(inst.mask, GRID))
    return torch.from_numpy(maps)


def install_oracle(strength: float) -> None:
    """Record each rendered scene's lesion maps; add them (times `strength`) to the vision tower's patch tokens."""
    render, forward = synth.render_scene, vision.VisionTower.forward

    def render_and_record(modality, rng, image_size=128):
        scene = render(modality, rng, image_size)
        MAPS[digest(scene.image)] = lesion_maps(scene)
        return scene

    def forward_with_oracle(self, images):
        patches = forward(self, images)  # (B, N, C)
        pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        maps = torch.stack([MAPS[digest(p)] for p in pixels]).to(patches)  # (B, N, 2L)
        return torch.cat([patches[..., : maps.shape[-1]] + strength * maps, patches[..., maps.shape[-1]:]], dim=-1)

    synth.render_scene = render_and_record
    vision.VisionTower.forward = forward_with_oracle


def is_presence(question: str) -> bool:
    return question.split()[0] in ("Is", "Does", "Are") and not any(
        w in question for w in ("free", "left or", "large or"))


def presence_pool(num: int = 6000) -> tuple[MIMOSegSynth, list[int]]:
    """The train split's first `num` qa_seg samples and the indices of its presence questions."""
    data = MIMOSegSynth(num, seed=split_seed("train"), image_size=128, tasks=("qa_seg",))
    return data, [i for i in range(len(data)) if is_presence(data[i].question)]


def rule() -> dict:
    """How often "yes iff the asked lesion class has a centroid flag" answers the presence questions right."""
    plural = {s.plural: s.name for specs in STRUCTURES.values() for s in specs if s.lesion}
    data, pool = presence_pool()
    hits = []
    for i in pool:
        sample = data[i]
        words = set(sample.question.rstrip("?.").split())
        asked = [LESIONS.index(plural.get(w, w)) for w in words if plural.get(w, w) in LESIONS]
        flagged = bool(MAPS[digest(sample.image)][:, asked].sum() > 0)
        hits.append(flagged == sample.answer.startswith("Yes"))
    return {"questions": len(hits), "rule_acc": round(float(np.mean(hits)), 3)}


def loop(steps: int, seed: int) -> dict:
    from mimo_edu.model import build_mimo
    from mimo_edu.model.mimo import unique_images

    torch.manual_seed(seed)
    model = build_mimo("nano", lora_rank=0, trainable=("projector", "llm"))
    data, pool = presence_pool()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    hits, curve, t0 = [], [], time.time()
    for step in range(steps):
        batch = collate([data[int(i)] for i in np.random.default_rng([seed, step]).choice(pool, 16)])
        enc = model.template.encode_batch(batch["questions"], batch["answers"], [0] * 16)
        images, image_of = unique_images(batch["images"])
        visual = model.visual_tokens(images, [[] for _ in range(16)], image_of)
        embeds = model.embed_inputs(enc.input_ids, enc.instruction_mask, visual)
        hidden = model.llm.model(inputs_embeds=embeds, attention_mask=enc.attention_mask).last_hidden_state
        first = (enc.labels != -100).float().argmax(1)  # (B,) the first answer token: Yes or No
        rows = torch.arange(16)
        logits = model.llm.lm_head(hidden[rows, first - 1])  # (B, V)
        loss = F.cross_entropy(logits, enc.labels[rows, first])
        opt.zero_grad()
        loss.backward()
        opt.step()
        hits += (logits.argmax(-1) == enc.labels[rows, first]).tolist()
        if (step + 1) % 100 == 0:
            curve.append({"step": step + 1, "first_token_acc_last_400": round(float(np.mean(hits[-400:])), 3)})
            print(curve[-1], flush=True)
    yes = float(np.mean([data[i].answer.startswith("Yes") for i in pool]))
    return {"curve": curve, "yes_share": round(yes, 3), "wall_s": round(time.time() - t0, 1)}


def recipe(steps: int, seed: int, out: str) -> dict:
    from mimo_edu.eval.evaluate import evaluate
    from mimo_edu.train import run
    from mimo_edu.train.config import get_preset

    cfg = get_preset("nano", max_steps=steps, seed=seed, eval_samples=0, ckpt_every=0, progress=False)
    t0 = time.time()
    model = run.train_run(cfg, out).raw_model.eval()
    wall = time.time() - t0
    report = evaluate(model, MIMOSegSynth(400, seed=split_seed("test"), image_size=model.config.image_size))
    return {"train_wall_s": round(wall, 1),
            **{f"{t}/{k}": round(v[k], 3) for t, v in report["per_task"].items() for k in ("answer_acc", "dice")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("loop", "recipe", "rule"), default="loop")
    ap.add_argument("--steps", type=int, default=0, help="default: 600 (loop), 1300 (recipe)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-oracle", action="store_true", help="the same run on nano-CLIP's features alone")
    ap.add_argument("--strength", type=float, default=3.0,
                    help="the maps' scale (nano-CLIP's patch tokens have norm about 16, 1.1 a channel)")
    ap.add_argument("--out", default="build/bench-oracle")
    ap.add_argument("--json", default="", help="also write the result here")
    args = ap.parse_args()
    if args.mode == "rule" and args.no_oracle:
        ap.error("--mode rule reads the oracle's maps; leave out --no-oracle")
    if not args.no_oracle:
        install_oracle(args.strength)
    steps = args.steps or (600 if args.mode == "loop" else 1300)
    if args.mode == "rule":
        result = rule()
    elif args.mode == "loop":
        result = loop(steps, args.seed)
    else:
        result = recipe(steps, args.seed, f"{args.out}/{'plain' if args.no_oracle else 'oracle'}-{args.seed}")
    result = {"mode": args.mode, "oracle": not args.no_oracle, "strength": args.strength, "steps": steps, "seed": args.seed, **result}
    print(json.dumps(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
