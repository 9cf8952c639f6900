"""Which samples each process reads at each step: a pure function of (seed, step).

Sample positions are laid out as (step, micro-step, rank, slot) and position p
reads `perm[p % N]`, where `perm` is a fresh permutation of the dataset for
every epoch p // N, drawn from a generator seeded with (seed, epoch). Resuming
at step k therefore reads exactly the batches the uninterrupted run would have.

With `group` > 1 the permutation shuffles runs of `group` consecutive indices and
keeps each run together: MIMOSeg-synth's samples of one image then share a batch
(as MIMOSeg asks several questions about one image), so the image is rendered and
encoded once for all of them.
"""

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's index list for every micro-step from `start_step` on."""

    def __init__(self, num_samples: int, batch_size: int, grad_accum: int, seed: int,
                 rank: int = 0, world_size: int = 1, start_step: int = 0, group: int = 1):
        if num_samples < 1:
            raise ValueError("the training set is empty")
        self.n, self.batch_size, self.grad_accum, self.group = num_samples, batch_size, grad_accum, group
        self.seed, self.rank, self.world_size, self.start_step = seed, rank, world_size, start_step
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)  # cache of the current epoch's permutation

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            runs = torch.randperm(-(-self.n // self.group), generator=generator)  # (ceil(N / group),)
            order = (runs[:, None] * self.group + torch.arange(self.group)).flatten()
            self._epoch, self._order = epoch, order[order < self.n]
        return self._order

    def indices(self, step: int, micro: int) -> list[int]:
        """Dataset indices of this rank's micro-batch `micro` at optimiser step `step`."""
        first = ((step * self.grad_accum + micro) * self.world_size + self.rank) * self.batch_size
        return [int(self._perm(p // self.n)[p % self.n]) for p in range(first, first + self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            for micro in range(self.grad_accum):
                yield self.indices(step, micro)
            step += 1
