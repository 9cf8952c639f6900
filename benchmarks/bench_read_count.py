"""How fast does nano-MIMO's language model learn to count lesions from its image tokens?

QA with segmentation asks how many lesions an organ holds, and nearly every one of its answers depends on
the count ("Yes, a tumour ..." against "Yes, tumours ..."). This isolates that skill from the MIMO stage:
nano-CLIP's image tokens of `--train-scenes` train-split scenes are computed once, then the projector and
the whole nano-LLM (no LoRA) train on one question per (scene, lesion class, host) pair,

    <s> <image> x16 How many cysts are in the liver? Answer:   ->   0 | 1 | 2 | 3

with cross-entropy over those four tokens only (3 stands for "3 or more"); AdamW lr 1e-3, 100 warmup
steps, cosine to 0.1 x lr, batch 32. Every `--every` steps it prints the count and presence accuracy on
the same questions about 500 test-split scenes (0.38 of them have no lesion).

    python benchmarks/bench_read_count.py --steps 1500 --out benchmarks/results/read_count_plain.json
    python benchmarks/bench_read_count.py --steps 1500 --oracle 3 --out benchmarks/results/read_count_oracle3.json
    python benchmarks/bench_read_count.py --steps 1000 --objects --out benchmarks/results/read_count_objects.json
    python benchmarks/bench_read_count.py --steps 1000 --objects --proposals --out benchmarks/results/read_count_proposals.json
    python benchmarks/bench_read_count.py --clip runs/clip/step-0000400/model   # another nano-CLIP

`--oracle S` adds `bench_oracle_features.lesion_maps` (per lesion class a flag at each lesion's centroid
patch and the area it covers per patch) times S to the first channels of every patch token, as that
benchmark does: how fast the same loop learns when the image tokens carry the answer.

`--objects` replaces the 16 image tokens by one token per structure instance of the scene (at most 12, the
true masks): nano-CLIP's patch tokens pooled over the instance's mask as the `<region>` token pools them,
with the region's size and centroid (`VisualPromptEncoder.geometry`), through a fresh projector. It is the
upper bound of object-centric image tokens (Groma, Osprey). `--objects --proposals` takes the regions the
nano preset's object tokens read instead (`mimo_edu.model.objects`: felzenszwalb segments, at most 12).

The MIMO stage sees about 2,600 QA-with-segmentation samples in its 1300 steps; this loop sees 32
questions a step.
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_oracle_features import lesion_maps  # benchmarks/, the script's own folder

from mimo_edu.data import split_seed
from mimo_edu.data.scenes import STRUCTURES
from mimo_edu.foundations.clip import patch_coverage
from mimo_edu.foundations.data import image_tensor, scene
from mimo_edu.model import build_mimo
from mimo_edu.model.objects import object_weights
from mimo_edu.model.tokenizer import encode_user_text
from mimo_edu.model.vision import merge_patches, projector

PAIRS = sorted({(m, s.name, s.plural, h) for m, specs in STRUCTURES.items() for s in specs if s.lesion for h in s.hosts})
BATCH, TEST_SCENES = 32, 500
MAX_OBJECTS = 12  # MIMOSeg-synth scenes hold at most 9 instances in their first 200 train images


def object_tokens(model, scene_, patches: torch.Tensor, proposals: bool = False) -> torch.Tensor:
    """(MAX_OBJECTS, C + 4): per true instance (or proposed region) its mask-pooled patch tokens (C), geometry (3)
    and a 1; zero rows pad."""
    grid = model.config.vision.grid
    if proposals:
        cover = object_weights(image_tensor(scene_.image)[None], grid, MAX_OBJECTS)[0]  # (MAX_OBJECTS, N)
        cover = cover[cover.sum(1) > 0]  # (K, N)
    else:
        insts = scene_.instances[:MAX_OBJECTS]
        cover = torch.stack([torch.from_numpy(patch_coverage(i.mask, grid)) for i in insts])  # (K, N)
    pooled = cover @ patches / cover.sum(1, keepdim=True).clamp_min(1e-6)  # (K, C)
    out = torch.zeros(MAX_OBJECTS, patches.shape[-1] + 4)
    out[: len(cover)] = torch.cat([pooled, model.prompt_encoder.geometry(cover), torch.ones(len(cover), 1)], 1)
    return out


def questions(model, stream: int, num: int, oracle: float = 0.0, objects: bool = False,
              proposals: bool = False) -> tuple[torch.Tensor, ...]:
    """Image tokens before the projector (S, T, C) of `num` scenes, and per question its scene, pair and count."""
    feats, scenes, pairs, counts = [], [], [], []
    for start in range(0, num, 64):
        batch = [scene(stream, i) for i in range(start, min(num, start + 64))]
        with torch.no_grad():
            patches = model.vision(torch.stack([image_tensor(s.image) for s in batch]))  # (b, N, C)
        if oracle:
            maps = torch.stack([lesion_maps(s) for s in batch])  # (b, N, 2L)
            patches[..., : maps.shape[-1]] += oracle * maps
        if objects:
            feats.append(torch.stack([object_tokens(model, s, p, proposals)
                                      for s, p in zip(batch, patches, strict=True)]).half())
        else:
            feats.append(merge_patches(patches, model.config.vision.merge).half())  # (b, T, merge^2 C)
        for k, s in enumerate(batch):
            for p, (modality, name, _, host) in enumerate(PAIRS):
                if modality == s.modality:
                    scenes.append(start + k)
                    pairs.append(p)
                    counts.append(min(3, sum(i.host == host for i in s.of(name))))  # as data.tasks._qa_seg counts
    return torch.cat(feats), torch.tensor(scenes), torch.tensor(pairs), torch.tensor(counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--train-scenes", type=int, default=12000)
    ap.add_argument("--clip", default="", help="a nano-CLIP folder to read images with instead of the foundation's")
    ap.add_argument("--oracle", type=float, default=0.0, help="add ground-truth lesion maps at this strength")
    ap.add_argument("--objects", action="store_true", help="one token per true instance instead of the image tokens")
    ap.add_argument("--proposals", action="store_true", help="with --objects: per proposed region, not true instance")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = build_mimo("nano", lora_rank=0, trainable=("projector", "llm"))
    if args.clip:
        from transformers import CLIPVisionModel

        model.vision.clip = CLIPVisionModel.from_pretrained(args.clip).eval()
    if args.objects:
        model.projector = projector(model.config.vision.hidden_size + 4, model.config.llm.hidden_size)
    tok = model.tokenizer
    answers = torch.tensor([encode_user_text(tok, str(k)) for k in range(4)]).squeeze(1)  # (4,) one token each
    texts = [encode_user_text(tok, f"How many {plural} are in the {host}? Answer:") for _, _, plural, host in PAIRS]
    length = max(map(len, texts))
    ids = torch.zeros(len(PAIRS), length, dtype=torch.long)  # left-padded: the last position predicts the count
    for i, t in enumerate(texts):
        ids[i, length - len(t) :] = torch.tensor(t)
    lengths = torch.tensor([len(t) for t in texts])

    t0 = time.time()
    train = questions(model, split_seed("train"), args.train_scenes, args.oracle, args.objects, args.proposals)
    test = questions(model, split_seed("test"), TEST_SCENES, args.oracle, args.objects, args.proposals)
    cache_s = time.time() - t0
    embed = model.llm.get_input_embeddings()

    def count_logits(feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        image = model.projector(feats.float())  # (B, T, H)
        b, t = image.shape[:2]
        x = torch.cat([embed(torch.full((b, 1), tok.bos_token_id)), image, embed(ids[pairs])], 1)
        mask = torch.ones(b, 1 + t + length, dtype=torch.long)
        mask[:, 1 + t :] = (torch.arange(length)[None] >= (length - lengths[pairs])[:, None]).long()
        if args.objects:
            mask[:, 1 : 1 + t] = (feats[..., -1] > 0).long()  # padding rows are not objects
        hidden = model.llm.model(inputs_embeds=x, attention_mask=mask).last_hidden_state[:, -1]  # (B, H)
        return model.llm.lm_head(hidden)[:, answers]  # (B, 4)

    def evaluate() -> dict:
        feats, scenes, pairs, counts = test
        with torch.no_grad():
            pred = torch.cat([count_logits(feats[scenes[k : k + 256]], pairs[k : k + 256]).argmax(-1)
                              for k in range(0, len(counts), 256)])
        return {"count_acc": round(float((pred == counts).float().mean()), 3),
                "presence_acc": round(float(((pred > 0) == (counts > 0)).float().mean()), 3)}

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.45 * (1 + math.cos(math.pi * s / args.steps))))
    gen = torch.Generator().manual_seed(0)
    feats, scenes, pairs, counts = train
    curve, t1 = [], time.time()
    for step in range(1, args.steps + 1):
        j = torch.randint(len(counts), (BATCH,), generator=gen)
        loss = F.cross_entropy(count_logits(feats[scenes[j]], pairs[j]), counts[j])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % args.every == 0 or step == args.steps:
            curve.append({"step": step, "questions_seen": step * BATCH, **evaluate(), "seconds": round(time.time() - t1)})
            print(json.dumps(curve[-1]), flush=True)
    _, _, _, test_counts = test
    report = {
        "clip": args.clip or "data/foundations/clip", "oracle": args.oracle, "objects": args.objects,
        "proposals": args.proposals, "train_scenes": args.train_scenes,
        "train_questions": len(counts), "test_questions": len(test_counts),
        "test_count_share": [round(float(v), 3) for v in torch.bincount(test_counts, minlength=4) / len(test_counts)],
        "cache_seconds": round(cache_s), "curve": curve,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "curve"}))


if __name__ == "__main__":
    main()
