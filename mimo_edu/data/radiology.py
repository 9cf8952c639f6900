"""Grey-scale modalities: abdominal CT, brain MRI, chest X-ray and gallbladder ultrasound.

Each renderer draws one square image of side `n` and returns its `Scene`.
Positions, sizes, shapes, intensities and lesion counts vary per image.
Anatomical sides follow the radiological convention: the patient's left is on
the image's right.
"""

import numpy as np

from mimo_edu.data.scenes import Instance, Scene, place_lesions, structure, to_uint8
from mimo_edu.data.shapes import blob, fine_noise, grid, smooth_noise, speckle, wobble


def ct(rng: np.random.Generator, n: int) -> Scene:
    """Axial abdominal CT at a soft-tissue window: liver, spleen, kidneys, spine, liver cysts."""
    u = rng.uniform
    img = np.zeros((n, n), np.float32)  # air
    cx, cy = n * u(0.47, 0.53), n * u(0.47, 0.53)
    body = blob(n, n, cx, cy, n * u(0.40, 0.46), n * u(0.32, 0.37), u(-0.1, 0.1), wobble(rng, 0.03))
    liver = body & blob(n, n, cx - n * u(0.13, 0.19), cy - n * u(0.04, 0.1), n * u(0.15, 0.19),
                        n * u(0.12, 0.16), u(-0.4, 0.4), wobble(rng, 0.08))
    spleen = body & ~liver & blob(n, n, cx + n * u(0.2, 0.25), cy - n * u(0.06, 0.12), n * u(0.06, 0.08),
                                  n * u(0.09, 0.11), u(-0.6, 0.6), wobble(rng, 0.06))
    sx, sy = cx + n * u(-0.02, 0.02), cy + n * u(0.17, 0.2)
    spine = blob(n, n, sx, sy, n * u(0.055, 0.07), n * u(0.05, 0.06))
    canal = blob(n, n, sx, sy + n * 0.035, n * 0.02, n * 0.02)
    ky = cy + n * u(0.06, 0.11)
    kidneys = [
        ~liver & blob(n, n, cx + side * n * u(0.14, 0.19), ky + n * u(-0.02, 0.02), n * u(0.05, 0.065),
                      n * u(0.075, 0.09), side * u(-0.5, -0.2), wobble(rng, 0.05))
        for side in (-1, 1)
    ]
    img[body] = u(0.36, 0.44)
    img[liver] = u(0.58, 0.66)
    img[spleen] = u(0.52, 0.6)
    for kidney in kidneys:
        img[kidney] = u(0.7, 0.8)
    img[spine] = u(0.9, 1.0)
    img[canal] = u(0.3, 0.4)
    img += body * (0.03 * smooth_noise(rng, n, n, n // 8))
    cysts = place_lesions(rng, structure("ct", "cyst"), {"liver": liver}, np.zeros((n, n), bool))
    for cyst in cysts:
        img[cyst.mask] = u(0.12, 0.24)
    img += 0.025 * fine_noise(rng, n, n)
    anatomy = [("liver", liver), ("spleen", spleen), ("right kidney", kidneys[0]),
               ("left kidney", kidneys[1]), ("spine", spine)]
    return Scene("ct", to_uint8(img), [Instance(name, m) for name, m in anatomy] + cysts)


def mri(rng: np.random.Generator, n: int) -> Scene:
    """Axial T2-weighted brain MRI: skull, brain, bright ventricles, mottled tumours."""
    u = rng.uniform
    img = np.zeros((n, n), np.float32)
    cx, cy, rx, ry = n * u(0.46, 0.54), n * u(0.47, 0.53), n * u(0.34, 0.39), n * u(0.41, 0.45)
    tilt, shape = u(-0.15, 0.15), wobble(rng, 0.02)
    bone, scalp = n * u(0.035, 0.05), n * u(0.02, 0.03)
    head = blob(n, n, cx, cy, rx + scalp, ry + scalp, tilt, shape)
    brain = blob(n, n, cx, cy, rx - bone, ry - bone, tilt, shape)
    skull = blob(n, n, cx, cy, rx, ry, tilt, shape) & ~brain
    vx, vy = cx + n * u(-0.02, 0.02), cy + n * u(-0.05, 0.01)
    ventricles = np.zeros((n, n), bool)
    for side in (-1, 1):
        ventricles |= blob(n, n, vx + side * n * u(0.035, 0.05), vy, n * u(0.022, 0.032), n * u(0.08, 0.11),
                           side * u(0.15, 0.35), wobble(rng, 0.1))
    img[head] = u(0.55, 0.7)
    img[skull] = u(0.08, 0.15)
    img[brain] = u(0.4, 0.5)
    img += brain * (0.07 * smooth_noise(rng, n, n, n // 6))
    img[ventricles] = u(0.85, 0.95)
    keep_out = blob(n, n, vx, vy, n * 0.12, n * 0.16)
    tumours = place_lesions(rng, structure("mri", "tumour"), {"brain": brain}, keep_out, roundness=0.2)
    mottle = smooth_noise(rng, n, n, n // 10)
    for tumour in tumours:
        img[tumour.mask] = u(0.62, 0.75) + 0.12 * mottle[tumour.mask]
    img += 0.025 * fine_noise(rng, n, n)
    anatomy = [("skull", skull), ("brain", brain), ("ventricles", ventricles)]
    return Scene("mri", to_uint8(img), [Instance(name, m) for name, m in anatomy] + tumours)


def xray(rng: np.random.Generator, n: int) -> Scene:
    """Frontal chest X-ray: dark lungs crossed by ribs, a bright heart, round nodules."""
    u = rng.uniform
    yy, xx = grid(n, n)
    cx = n * u(0.47, 0.53)
    lungs = [
        blob(n, n, cx + side * n * u(0.17, 0.21), n * u(0.44, 0.5), n * u(0.12, 0.15), n * u(0.27, 0.31),
             side * u(0.0, 0.12), wobble(rng, 0.04))
        for side in (-1, 1)
    ]
    heart = blob(n, n, cx + n * u(0.03, 0.07), n * u(0.63, 0.68), n * u(0.13, 0.16), n * u(0.1, 0.13),
                 u(-0.5, -0.2), wobble(rng, 0.03))
    lungs = [lung & ~heart for lung in lungs]
    img = u(0.5, 0.6) - 0.1 * np.abs(xx - cx) / n + 0.03 * smooth_noise(rng, n, n, 4)
    img[np.abs(xx - cx) < n * u(0.035, 0.045)] += u(0.12, 0.18)  # spine
    lung_value = u(0.12, 0.2)
    for lung in lungs:
        img[lung] = lung_value
    gap, bend = n * u(0.09, 0.11), u(0.8, 1.2)
    ribs = np.sin(2 * np.pi * (yy - bend * (xx - cx) ** 2 / n) / gap) > 0.55
    img += ribs * u(0.08, 0.12)
    img[heart] = u(0.7, 0.8)
    nodules = place_lesions(rng, structure("xray", "nodule"), {"left lung": lungs[1], "right lung": lungs[0]},
                            np.zeros((n, n), bool), roundness=0.08)
    for nodule in nodules:
        img[nodule.mask] += u(0.3, 0.45)
    img += 0.02 * fine_noise(rng, n, n)
    anatomy = [("right lung", lungs[0]), ("left lung", lungs[1]), ("heart", heart)]
    return Scene("xray", to_uint8(img), [Instance(name, m) for name, m in anatomy] + nodules)


def ultrasound(rng: np.random.Generator, n: int) -> Scene:
    """Sector-scan ultrasound of the liver: anechoic gallbladder and vessel, stones that cast shadows."""
    u = rng.uniform
    yy, xx = grid(n, n)
    ax, ay, depth = n * u(0.45, 0.55), -n * u(0.05, 0.12), n * u(1.0, 1.1)
    r = np.sqrt((xx - ax) ** 2 + (yy - ay) ** 2)
    theta = np.arctan2(xx - ax, yy - ay)
    fan = (r < depth) & (np.abs(theta) < u(0.55, 0.7)) & (r > n * 0.15)
    edge = depth * u(0.6, 0.72) + n * 0.04 * np.sin(theta * u(3, 5) + u(0, 2 * np.pi))
    liver = fan & (r < edge)
    side = -1.0 if rng.random() < 0.5 else 1.0
    gx, gy = ax + side * n * u(0.06, 0.14), n * u(0.3, 0.4)
    gallbladder = liver & blob(n, n, gx, gy, n * u(0.12, 0.15), n * u(0.065, 0.08), u(-0.4, 0.4), wobble(rng, 0.05))
    vessel = liver & ~gallbladder & blob(n, n, ax - side * n * u(0.1, 0.15), n * u(0.42, 0.52), n * u(0.14, 0.2),
                                         n * u(0.025, 0.035), u(-0.6, 0.6), wobble(rng, 0.03))
    img = np.where(liver, u(0.45, 0.55), u(0.22, 0.32)).astype(np.float32)
    img[gallbladder] = 0.04
    img[vessel] = 0.05
    img[(np.abs(xx - gx) < n * 0.1) & (yy > gy) & ~gallbladder] *= 1.3  # posterior enhancement
    stones = place_lesions(rng, structure("ultrasound", "stone"), {"gallbladder": gallbladder},
                           np.zeros((n, n), bool), roundness=0.1)
    for stone in stones:
        ys, xs = np.nonzero(stone.mask)
        img[(xx >= xs.min()) & (xx <= xs.max()) & (yy > ys.mean()) & ~stone.mask] *= 0.3  # acoustic shadow
        img[stone.mask] = u(0.9, 1.0)
    img *= speckle(rng, n, n) * (1.0 - 0.4 * r / depth) * fan
    anatomy = [("liver", liver), ("gallbladder", gallbladder), ("vessel", vessel)]
    return Scene("ultrasound", to_uint8(img), [Instance(name, m) for name, m in anatomy] + stones)

