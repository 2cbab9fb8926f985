"""Process-group set-up that works under torchrun and as a plain single process.

Under torchrun (RANK, LOCAL_RANK and WORLD_SIZE in the environment) the process group is
initialized with `nccl` when CUDA is available and `gloo` otherwise; each process uses
`cuda:LOCAL_RANK` or the CPU. Without those variables the run is a world of one and no
process group is created, so every helper here degrades to a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job and which device it computes on."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True on global rank 0, the only rank that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()


def _launched_by_torchrun() -> bool:
    return all(name in os.environ for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


def _keep_caches_in_work_dir() -> None:
    """torch writes an inductor cache on first use; keep it in the work folder, not in /tmp."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        from promoflow.settings import get_settings

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(get_settings().tmp_dir / "torchinductor")


def setup_distributed() -> DistContext:
    """Initialize the process group (under torchrun) and choose this process's device."""
    _keep_caches_in_work_dir()
    cuda = torch.cuda.is_available()
    if not _launched_by_torchrun():
        device = torch.device("cuda:0" if cuda else "cpu")
        return DistContext(rank=0, local_rank=0, world_size=1, device=device, backend=None)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    backend = "nccl" if cuda else "gloo"
    if cuda:
        device = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        if backend == "nccl":
            dist.init_process_group(backend=backend, device_id=device)
        else:
            dist.init_process_group(backend=backend)
    log.info("rank %d/%d on %s (backend %s)", rank, world_size, device, backend)
    return DistContext(rank, local_rank, world_size, device, backend)


def cleanup_distributed() -> None:
    """Tear the process group down if one was created."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a world of one)."""
    if dist.is_initialized():
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.local_rank])
        else:
            dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all ranks (returns a copy; identity in a world of one)."""
    out = values.detach().clone()
    if dist.is_initialized():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; every rank uses the same seed so models start identical."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def main_takes_idle_threads(ctx: DistContext) -> Iterator[None]:
    """On the CPU, while rank 0 works alone (evaluation, writing outputs) and the other local
    ranks wait for it, rank 0 uses their threads too (torch's intra-op threads x the local
    world size); restored afterwards. A no-op on a GPU, in a world of one and on other ranks."""
    before = torch.get_num_threads()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))
    if ctx.is_main and ctx.device.type == "cpu" and local > 1:
        torch.set_num_threads(min(before * local, os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)
