"""Data-parallel training with PyTorch's own engine (DistributedDataParallel), under torchrun.

``torchrun --nproc-per-node K -m drawviz train ...`` starts K processes; ``init_from_env`` joins them
in a process group (gloo on CPU, NCCL on CUDA, chosen by the device) and ``train`` then runs each
global batch split over the ranks: every rank draws the whole batch's randomness (binarisation, ε)
from the same generator and keeps its own rows, so K processes follow the one-process run on the same
global batches to float rounding, and a checkpoint resumes exactly with any number of processes.
Only rank 0 evaluates and writes checkpoints. A rank that dies stops the others at their next
collective (within ``DRAWVIZ_DIST_TIMEOUT`` seconds, default 300) instead of hanging.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Ranks", "current", "init_from_env", "launched", "shutdown"]


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (rank 0 of 1 without a process group)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batch_size: int) -> slice:
        """The rows of a global batch this rank trains on (the batch splits evenly)."""
        if batch_size % self.world:
            raise ValueError(
                f"the batch ({batch_size} images) does not split evenly over {self.world} processes; "
                f"use a batch size divisible by {self.world}"
            )
        n = batch_size // self.world
        return slice(self.rank * n, (self.rank + 1) * n)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over the ranks of a tensor each holds (itself without a process group)."""
        if self.world > 1:
            values = values.clone()
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
            values /= self.world
        return values

    def same(self, text: str) -> bool:
        """Whether every rank holds the same ``text`` (all ranks get the same answer)."""
        if self.world == 1:
            return True
        h = int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")
        both = torch.tensor([h, -h], dtype=torch.int64, device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(both, op=dist.ReduceOp.MAX)  # max of h and of -h: equal to one's own only if all agree
        return int(both[0]) == h and int(both[1]) == -h

    def barrier(self) -> None:
        """Wait until every rank is here (a no-op without a process group)."""
        if self.world > 1:
            dist.barrier()

    def agree(self, seconds: float, stop: bool) -> tuple[float, bool]:
        """The slowest rank's training time and whether any rank was told to stop: every rank then
        takes the same decision about the next step (a rank that stopped alone would hang the others)."""
        if self.world == 1:
            return seconds, stop
        flags = torch.tensor(
            [seconds, float(stop)], dtype=torch.float64, device="cuda" if dist.get_backend() == "nccl" else "cpu"
        )
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return float(flags[0]), bool(flags[1] > 0)


def current() -> Ranks:
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def launched() -> bool:
    """Started by torchrun (or another launcher that sets WORLD_SIZE) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto") -> Ranks:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...):
    NCCL when training on CUDA (each rank on GPU LOCAL_RANK), gloo otherwise. Returns this rank."""
    if not launched() or dist.is_initialized():
        return current()
    cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = datetime.timedelta(seconds=float(os.environ.get("DRAWVIZ_DIST_TIMEOUT", "300")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    return current()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
