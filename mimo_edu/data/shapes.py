"""Vectorised drawing primitives for the procedural images: masks and textures.

Everything works on cached coordinates, shapes are computed inside their
bounding box only, and textures come from small matrix products, so a whole
scene renders in about a millisecond.
"""

from functools import lru_cache

import numpy as np

Harmonics = list[tuple[float, float]]
"""Boundary waves of a `blob`: (amplitude, phase) of waves 2, 3, ... around it."""


@lru_cache(maxsize=8)
def grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates, each (H, W) float32, read-only and cached per size."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


@lru_cache(maxsize=32)
def _smoother(n_out: int, n_in: int, unit_variance: bool) -> np.ndarray:
    """A (n_out, n_in) float32 matrix that spreads n_in control values smoothly over n_out pixels.

    Rows sum to 1 (`unit_variance=False`, keeps the mean) or have unit L2 norm
    (keeps the variance of independent values). Negligible weights are exactly
    zero: denormal floats would make the matrix products ten times slower.
    """
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5  # (n_out,)
    dist = pos[:, None] - np.arange(n_in)[None, :]  # (n_out, n_in)
    weights = np.exp(-0.5 * (dist / 0.75) ** 2)
    weights[weights < 1e-6] = 0.0
    norm = np.sqrt((weights**2).sum(axis=1, keepdims=True)) if unit_variance else weights.sum(axis=1, keepdims=True)
    return (weights / norm).astype(np.float32)


def _spread(coarse: np.ndarray, h: int, w: int, unit_variance: bool) -> np.ndarray:
    """Interpolate a coarse (a, b) field smoothly to (H, W) float32."""
    a, b = coarse.shape
    return _smoother(h, a, unit_variance) @ coarse @ _smoother(w, b, unit_variance).T


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int | tuple[int, int]) -> np.ndarray:
    """Smooth Gaussian field (H, W) float32 with unit variance and `cells` (rows, cols) blobs across."""
    rows, cols = (cells, cells) if isinstance(cells, int) else cells
    return _spread(rng.standard_normal((rows, cols), dtype=np.float32), h, w, unit_variance=True)


@lru_cache(maxsize=8)
def _noise_bank(h: int, w: int) -> np.ndarray:
    """A fixed (2H, 2W) float32 field of uniform noise with unit variance."""
    bank = (np.random.default_rng(0).random((2 * h, 2 * w), dtype=np.float32) - 0.5) * np.float32(12**0.5)
    bank.flags.writeable = False
    return bank


def fine_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Pixel noise (H, W) float32 with unit variance: a random window of a cached noise bank.

    Drawing 16K fresh random numbers per image would cost more than the whole scene.
    """
    oy, ox = rng.integers(0, h), rng.integers(0, w)
    return _noise_bank(h, w)[oy:oy + h, ox:ox + w]


def speckle(rng: np.random.Generator, h: int, w: int, grain: int = 2) -> np.ndarray:
    """Multiplicative ultrasound speckle (H, W) float32 with mean ~1 and grains of `grain` px."""
    coarse = rng.standard_exponential((h // grain, w // grain), dtype=np.float32)
    return _spread(coarse, h, w, unit_variance=False)


def wobble(rng: np.random.Generator, amount: float, harmonics: int = 3) -> Harmonics:
    """Random boundary waves of relative amplitude ~`amount` for `blob`."""
    amps = rng.uniform(0.3, 1.0, harmonics) * amount / np.arange(1, harmonics + 1)
    return list(zip(amps.tolist(), rng.uniform(0, 2 * np.pi, harmonics).tolist(), strict=True))


def _span(center: float, reach: float, size: int) -> tuple[int, int]:
    lo = min(max(int(center - reach) - 1, 0), size)
    return lo, max(min(int(center + reach) + 2, size), lo)


def blob(
    h: int,
    w: int,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    angle: float = 0.0,
    harmonics: Harmonics | None = None,
) -> np.ndarray:
    """A rotated ellipse, optionally with a wavy boundary (see `wobble`); bool mask (H, W)."""
    reach = max(rx, ry) * (1.0 + sum(abs(a) for a, _ in harmonics or ()))
    y0, y1 = _span(cy, reach, h)
    x0, x1 = _span(cx, reach, w)
    dx = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)  # (w',)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)  # (h', 1)
    c, s = float(np.cos(angle)), float(np.sin(angle))  # Python floats keep the arrays float32
    u = dx * (c / rx) + dy * (s / rx)  # (h', w') along the major axis, in radii
    v = dy * (c / ry) - dx * (s / ry)
    rho2 = u * u + v * v
    if harmonics:
        theta = np.arctan2(v, u)
        edge = np.ones_like(theta)
        wave_k = np.empty_like(theta)
        for k, (amp, phase) in enumerate(harmonics, start=2):
            np.multiply(theta, k, out=wave_k)
            wave_k += phase
            np.cos(wave_k, out=wave_k)
            wave_k *= amp
            edge += wave_k
        inside = rho2 <= edge * edge
    else:
        inside = rho2 <= 1.0
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def segment_distance(points: np.ndarray, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """Distance (y1 - y0, x1 - x0) from each pixel of a window to the polyline `points` (N, 2) in (x, y)."""
    px = np.arange(x0, x1, dtype=np.float32)[None, None, :]  # (1, 1, w')
    py = np.arange(y0, y1, dtype=np.float32)[None, :, None]  # (1, h', 1)
    a = points[:-1] if len(points) > 1 else points
    b = points[1:] if len(points) > 1 else points
    ax, ay = a[:, 0, None, None], a[:, 1, None, None]  # (S, 1, 1)
    dx, dy = b[:, 0, None, None] - ax, b[:, 1, None, None] - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
    return np.sqrt((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2).min(axis=0)


def stroke(h: int, w: int, points: np.ndarray, width: float) -> np.ndarray:
    """Pixels within width / 2 of the polyline `points` (N, 2) in (x, y); bool mask (H, W)."""
    half = width / 2.0
    x0, y0 = np.floor(points.min(axis=0) - half).astype(int).tolist()
    x1, y1 = np.ceil(points.max(axis=0) + half).astype(int).tolist()
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, w), min(y1 + 1, h)
    mask = np.zeros((h, w), dtype=bool)
    if x0 < x1 and y0 < y1:
        mask[y0:y1, x0:x1] = segment_distance(points.astype(np.float32), x0, x1, y0, y1) <= half
    return mask


def wave(
    h: int, w: int, cx: float, cy: float, angle: float, amp: float, freq: float, phase: float, width: float
) -> np.ndarray:
    """A sinusoidal band through (cx, cy) along `angle`, like a hair; bool mask (H, W)."""
    yy, xx = grid(h, w)
    dx, dy = xx - float(cx), yy - float(cy)
    c, s = float(np.cos(angle)), float(np.sin(angle))
    u, v = dx * c + dy * s, dy * c - dx * s
    return np.abs(v - float(amp) * np.sin(float(freq) * u + float(phase))) <= width / 2.0
