"""Object tokens: one extra `<image>` token per region a classical segmentation proposes (nano) [course choice].

MIMO's paper feeds the LLM CLIP's patch tokens only. nano's tiny LLM does not learn to count the lesions
of a class in an organ from 16 merged patch tokens within its budget, even when the answer is written into
them, while it learns it fast from one token per object (benchmarks/bench_read_count.py). So nano's
`<image>` positions hold its 16 patch tokens followed by `object_tokens` object tokens, as Groma and
Osprey give an LLM one token per region.

The regions come from scikit-image's `felzenszwalb` graph segmentation (Felzenszwalb and Huttenlocher
2004; selective search, R-CNN's proposals, starts from it): about 20 ms an image on one CPU core, where
nano-SAM prompted on a point grid costs ten times more for fewer lesions found. Segments are kept when
they look like an object: neither a speck nor a background (area), and compact (they fill at least half
of their bounding box); the most compact and largest first. Each kept region becomes a token as a
`<region>` token does (`VisualPromptEncoder.objects`: CLIP patches pooled over it, with its size and
centroid), through a projector of its own: sharing the region projector made the marked region hard to
tell from the proposed ones (perception fell from 0.84 to 0.49 on 100 test samples).
"""

import numpy as np
import torch
from skimage.segmentation import felzenszwalb

SCALE = 200  # felzenszwalb's scale: larger, fewer and larger segments
MIN_AREA = 0.0012  # of the image (20 px of a 128 px image): smaller segments are texture specks
MAX_AREA = 0.3  # of the image: larger segments are background or a whole body
MIN_EXTENT = 0.5  # area / bounding-box area: an ellipse fills 0.79 of its box, a ragged fragment much less


def propose_regions(image: np.ndarray, max_regions: int) -> np.ndarray:
    """(H, W, 3) uint8 image -> (K, H, W) bool, K <= max_regions region proposals, the most object-like first."""
    labels = felzenszwalb(image, scale=SCALE, sigma=0.8, min_size=10)  # (H, W) segment ids 0..n-1
    flat = labels.ravel()
    n = int(flat.max()) + 1
    area = np.bincount(flat, minlength=n)
    ys, xs = np.divmod(np.arange(flat.size), labels.shape[1])
    y0, x0 = np.full(n, flat.size), np.full(n, flat.size)
    y1, x1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    np.minimum.at(y0, flat, ys), np.minimum.at(x0, flat, xs)
    np.maximum.at(y1, flat, ys), np.maximum.at(x1, flat, xs)
    extent = area / ((y1 - y0 + 1) * (x1 - x0 + 1))
    keep = np.flatnonzero(
        (area >= MIN_AREA * flat.size) & (area <= MAX_AREA * flat.size) & (extent >= MIN_EXTENT)
    )
    keep = keep[np.argsort(-(extent[keep] * np.sqrt(area[keep])), kind="stable")][:max_regions]
    return labels[None] == keep[:, None, None]


def object_weights(images: torch.Tensor, grid: int, max_regions: int) -> torch.Tensor:
    """images (U, 3, S, S) in [0, 1] -> (U, max_regions, grid^2): how much of each CLIP patch each proposed
    region covers; rows of zeros where an image has fewer regions."""
    pixels = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    size = images.shape[-1]
    out = torch.zeros(len(images), max_regions, grid * grid)
    for u, image in enumerate(pixels):
        regions = torch.from_numpy(propose_regions(image, max_regions))  # (K, S, S)
        cell = size // grid
        out[u, : len(regions)] = regions.float().view(-1, grid, cell, grid, cell).mean(dim=(2, 4)).flatten(1)
    return out.to(images.device)
