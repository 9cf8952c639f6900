"""Colour modalities: fundus photography, dermoscopy, endoscopy and H&E histopathology.

Each renderer draws one square RGB image of side `n` and returns its `Scene`.
Colours are jittered per image and per structure, so a class is recognised by
its shape, texture and context rather than by one fixed colour. Images are
painted channels-first, (3, H, W): NumPy fills a 2-D mask per channel many
times faster than it fills (H, W, 3) pixels.
"""

import numpy as np

from mimo_edu.data.scenes import Instance, Scene, place_lesions, structure, to_uint8
from mimo_edu.data.shapes import blob, fine_noise, grid, smooth_noise, wave, wobble


def _colour(rng: np.random.Generator, rgb: tuple[float, float, float], spread: float = 0.05) -> np.ndarray:
    """`rgb` jittered per channel; (3,) float32."""
    return np.clip(np.asarray(rgb) + rng.uniform(-spread, spread, 3), 0.0, 1.0).astype(np.float32)


def _shade(img: np.ndarray, mask: np.ndarray, colour: np.ndarray, texture: np.ndarray | None = None) -> None:
    """Paint `colour` (3,) into the (3, H, W) `img` where `mask`, modulated by a (H, W) `texture`."""
    gain = None if texture is None else 1.0 + texture[mask]  # (K,)
    for channel, value in zip(img, colour.tolist(), strict=True):
        channel[mask] = value if gain is None else value * gain


def fundus(rng: np.random.Generator, n: int) -> Scene:
    """Colour fundus photograph: optic disc, macula, vessel arcades, haemorrhages, exudates."""
    u = rng.uniform
    yy, xx = grid(n, n)
    c = n / 2
    retina = blob(n, n, c, c, n * 0.47, n * 0.47)
    vignette = 1.0 - 0.35 * ((xx - c) ** 2 + (yy - c) ** 2) / (0.47 * n) ** 2  # (H, W)
    img = np.zeros((3, n, n), np.float32)
    _shade(img, retina, _colour(rng, (0.82, 0.36, 0.15)), 0.05 * smooth_noise(rng, n, n, n // 12))
    eye = -1.0 if rng.random() < 0.5 else 1.0  # optic disc on the left or the right: left or right eye
    dx, dy, dr = c + eye * n * u(0.2, 0.25), c + n * u(-0.05, 0.05), n * u(0.06, 0.075)
    disc = blob(n, n, dx, dy, dr, dr * u(0.9, 1.1), u(0, np.pi), wobble(rng, 0.03))
    mx, my = dx - eye * n * u(0.3, 0.34), dy + n * u(-0.04, 0.04)
    macula = blob(n, n, mx, my, n * u(0.07, 0.09), n * u(0.07, 0.09), u(0, np.pi), wobble(rng, 0.05))
    r = np.sqrt((xx - dx) ** 2 + (yy - dy) ** 2)
    theta = np.arctan2(yy - dy, xx - dx)
    towards = float(np.arctan2(my - dy, mx - dx))
    vessels = np.zeros((n, n), bool)
    width = max(n * u(0.018, 0.024), 2.0)
    for base, bend in ((0.7, -1.4), (-0.7, 1.4), (np.pi - 0.6, 0.8), (np.pi + 0.6, -0.8)):
        direction = towards + base + u(-0.2, 0.2) + bend * u(0.8, 1.2) * r / n
        off = np.abs((theta - direction + np.pi) % (2 * np.pi) - np.pi) * r  # (H, W) px from the vessel
        vessels |= (off < width / 2) & (r < n * u(0.4, 0.55))
    vessels &= retina & ~disc & ~macula
    img *= vignette
    _shade(img, disc, _colour(rng, (0.98, 0.85, 0.55)), 0.04 * fine_noise(rng, n, n))
    img *= np.where(macula, np.float32(u(0.55, 0.7)), np.float32(1.0))
    _shade(img, vessels, _colour(rng, (0.55, 0.12, 0.08)))
    occupied = disc | macula
    lesions = []
    for name, rgb in (("haemorrhage", (0.4, 0.06, 0.04)), ("exudate", (0.96, 0.86, 0.4))):
        found = place_lesions(rng, structure("fundus", name), {"retina": retina}, occupied, roundness=0.2)
        for lesion in found:
            _shade(img, lesion.mask, _colour(rng, rgb))
        lesions += found
    img += 0.02 * fine_noise(rng, n, n)
    img *= retina
    anatomy = [("retina", retina), ("optic disc", disc), ("macula", macula), ("vessels", vessels)]
    return Scene("fundus", to_uint8(img), [Instance(name, m) for name, m in anatomy] + lesions)


def dermoscopy(rng: np.random.Generator, n: int) -> Scene:
    """Dermoscopy: skin in a round field, a regular naevus, irregular melanomas, hairs."""
    u = rng.uniform
    c = n / 2
    skin = blob(n, n, c, c, n * u(0.52, 0.58), n * u(0.52, 0.58))
    img = np.zeros((3, n, n), np.float32)
    _shade(img, skin, _colour(rng, (0.86, 0.66, 0.56)), 0.04 * smooth_noise(rng, n, n, n // 16))
    nr = n * u(0.1, 0.15)
    naevus = blob(n, n, n * u(0.3, 0.7), n * u(0.3, 0.7), nr, nr * u(0.8, 1.2), u(0, np.pi), wobble(rng, 0.04))
    _shade(img, naevus, _colour(rng, (0.56, 0.36, 0.24)), 0.05 * smooth_noise(rng, n, n, n // 16))
    keep_out = blob(n, n, *_centroid(naevus), nr * 1.6, nr * 1.6)
    melanomas = place_lesions(rng, structure("dermoscopy", "melanoma"), {"skin": skin}, keep_out, roundness=0.4)
    blotch = smooth_noise(rng, n, n, n // 10)
    for melanoma in melanomas:
        m = melanoma.mask
        _shade(img, m, _colour(rng, (0.24, 0.14, 0.13)), 0.3 * blotch)
        _shade(img, m & (blotch > 0.6), _colour(rng, (0.38, 0.42, 0.5)))  # blue-grey veil
    hair = np.zeros((n, n), bool)
    for _ in range(rng.integers(2, 5)):
        hair |= wave(n, n, n * u(0.1, 0.9), n * u(0.1, 0.9), u(0, np.pi), n * u(0.02, 0.06),
                     u(2, 6) / n, u(0, 2 * np.pi), max(n * u(0.012, 0.018), 1.5))
    hair &= skin
    _shade(img, hair, _colour(rng, (0.15, 0.1, 0.08)))
    img += 0.015 * fine_noise(rng, n, n)
    anatomy = [("skin", skin), ("naevus", naevus), ("hair", hair)]
    return Scene("dermoscopy", to_uint8(img), [Instance(name, m) for name, m in anatomy] + melanomas)


def endoscopy(rng: np.random.Generator, n: int) -> Scene:
    """Colonoscopy: pink mucosa with ring folds around a dark lumen, polyps and ulcers."""
    u = rng.uniform
    yy, xx = grid(n, n)
    field = blob(n, n, n / 2, n / 2, n * 0.56, n * 0.56)
    lx, ly = n * u(0.32, 0.68), n * u(0.32, 0.68)
    lumen = blob(n, n, lx, ly, n * u(0.07, 0.1), n * u(0.06, 0.09), u(0, np.pi), wobble(rng, 0.15))
    mucosa = field & ~lumen
    r = np.sqrt((xx - lx) ** 2 + (yy - ly) ** 2)
    theta = np.arctan2(yy - ly, xx - lx)
    folds = np.zeros((n, n), bool)
    for k in range(3):
        radius = n * (0.17 + 0.13 * k + u(-0.02, 0.02)) * (1.0 + 0.08 * np.sin(3 * theta + u(0, 2 * np.pi)))
        arc = np.cos(theta - u(0, 2 * np.pi)) > u(-0.4, 0.1)
        folds |= (np.abs(r - radius) < n * 0.016) & arc
    folds &= mucosa
    light = np.clip(0.35 + r / (0.6 * n), 0.35, 1.0)  # (H, W): darker towards the lumen
    img = np.zeros((3, n, n), np.float32)
    _shade(img, mucosa, _colour(rng, (0.85, 0.42, 0.36)), 0.05 * smooth_noise(rng, n, n, n // 16))
    img *= light * np.where(folds, np.float32(u(0.6, 0.72)), np.float32(1.0))
    _shade(img, lumen, _colour(rng, (0.1, 0.03, 0.02), 0.02))
    keep_out = blob(n, n, lx, ly, n * 0.16, n * 0.16)
    lesions = place_lesions(rng, structure("endoscopy", "polyp"), {"mucosa": mucosa}, keep_out, roundness=0.1)
    for polyp in lesions:
        _shade(img, polyp.mask, _colour(rng, (0.95, 0.55, 0.5)), 0.1 * smooth_noise(rng, n, n, n // 16))
        px, py = _centroid(polyp.mask)
        _shade(img, blob(n, n, px - 2, py - 2, 1.5, 1.5) & polyp.mask, np.ones(3))  # specular highlight
    ulcers = place_lesions(rng, structure("endoscopy", "ulcer"), {"mucosa": mucosa}, keep_out, roundness=0.3)
    spots = smooth_noise(rng, n, n, n // 8) > 0.7
    for ulcer in ulcers:
        _shade(img, ulcer.mask, _colour(rng, (0.93, 0.88, 0.68)))
        _shade(img, ulcer.mask & spots, _colour(rng, (0.7, 0.16, 0.12)))
    img += 0.015 * fine_noise(rng, n, n)
    img *= field
    anatomy = [("mucosa", mucosa), ("lumen", lumen), ("folds", folds)]
    return Scene("endoscopy", to_uint8(img), [Instance(name, m) for name, m in anatomy] + lesions + ulcers)


def histopathology(rng: np.random.Generator, n: int) -> Scene:
    """H&E section: pink fibrous stroma, glands with a lumen, fat vacuoles, dense carcinoma."""
    u = rng.uniform
    glands = np.zeros((n, n), bool)
    lumens = np.zeros((n, n), bool)
    for _ in range(rng.integers(2, 5)):
        gx, gy, gr = n * u(0.15, 0.85), n * u(0.15, 0.85), n * u(0.08, 0.12)
        outer = blob(n, n, gx, gy, gr, gr * u(0.7, 1.0), u(0, np.pi), wobble(rng, 0.08))
        if not (outer & glands).any():
            glands |= outer
            lumens |= blob(n, n, gx, gy, gr * 0.5, gr * 0.35, u(0, np.pi), wobble(rng, 0.1))
    fat = np.zeros((n, n), bool)
    fx, fy = n * u(0.15, 0.85), n * u(0.15, 0.85)
    for _ in range(rng.integers(3, 7)):
        vacuole = blob(n, n, fx + n * u(-0.1, 0.1), fy + n * u(-0.1, 0.1), n * u(0.035, 0.05), n * u(0.035, 0.05))
        fat |= vacuole & ~glands
    stroma = ~(glands | fat)
    img = np.empty((3, n, n), np.float32)
    _shade(img, stroma, _colour(rng, (0.93, 0.64, 0.8)), 0.06 * smooth_noise(rng, n, n, (n // 3, n // 24)))
    dots = fine_noise(rng, n, n)  # (H, W) nuclei seeds
    _shade(img, glands, _colour(rng, (0.55, 0.35, 0.65)), 0.1 * dots)
    _shade(img, lumens, _colour(rng, (0.97, 0.94, 0.97), 0.02))
    _shade(img, fat, _colour(rng, (0.98, 0.96, 0.98), 0.02))
    _shade(img, stroma & (dots > 1.6), _colour(rng, (0.4, 0.2, 0.55)))  # scattered stromal nuclei
    carcinomas = place_lesions(rng, structure("histopathology", "carcinoma"), {"stroma": stroma},
                               glands | fat, roundness=0.35)
    for carcinoma in carcinomas:
        _shade(img, carcinoma.mask, _colour(rng, (0.45, 0.24, 0.58)), 0.15 * dots)
        _shade(img, carcinoma.mask & (dots > 0.8), _colour(rng, (0.24, 0.1, 0.36)))
    img += 0.015 * fine_noise(rng, n, n)
    anatomy = [("stroma", stroma), ("glands", glands), ("fat", fat)]
    return Scene("histopathology", to_uint8(img), [Instance(name, m) for name, m in anatomy] + carcinomas)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    """Centroid (x, y) of a non-empty mask."""
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())
