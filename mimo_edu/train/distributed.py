"""Multi-process training on torch.distributed: set-up from torchrun, wrapping, collectives.

`torchrun --nproc_per_node=N` sets RANK, LOCAL_RANK and WORLD_SIZE; without them
everything runs in one process and the helpers here do nothing. The backend is
NCCL on GPUs and gloo on the CPU.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def default_device(local_rank: int = 0) -> torch.device:
    """The accelerator of this process if there is one, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def init_distributed() -> DistEnv:
    """Join the process group torchrun describes (once), or describe a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = default_device(local_rank)
    if world_size == 1:
        return DistEnv(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(dist.get_rank(), local_rank, dist.get_world_size(), device)


def wrap_model(model: nn.Module, env: DistEnv, strategy: str) -> nn.Module:
    """DDP (replicated weights, all-reduced grads) or FSDP2 with ZeRO-2 sharding.

    FSDP2 with reshard_after_forward=False keeps the gathered weights from the
    forward to the backward and shards gradients and optimizer state: ZeRO-2.
    """
    if not env.distributed:
        return model
    if strategy == "ddp":
        # Some parts (prompt encoder, mask decoder) sit idle on batches without prompts or masks.
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        fully_shard(model, reshard_after_forward=False)
        return model
    raise ValueError(f"strategy must be 'ddp' or 'fsdp', got {strategy!r}")


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes (in place); identity in one process."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
