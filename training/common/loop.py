"""The DDP training loop shared by both models.

`fit` shards a `TensorDataset` with a `DistributedSampler` (re-seeded each epoch with
`set_epoch`), wraps the model in `DistributedDataParallel` when the world is larger than one,
all-reduces the loss for logging, checkpoints after every epoch and resumes automatically.

Throughput: every epoch's training samples (all ranks together) over its wall time (the steps,
not the checkpoint) go to a `Throughput`, which the models write to their metrics
(`train_samples_per_s`, `device`, `world_size`) and which each epoch's log line shows.

The GPU path (nothing of it changes a CPU run): the forward pass and the loss run under
bfloat16 autocast (weights, gradients and optimizer stay float32), the per-process batch is
`cuda_batch_scale` times the configured one, and the loader pins its batches in page-locked
memory so the copies to the device (`non_blocking`) overlap the computation.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, TensorDataset

from training.common.checkpoint import load_checkpoint, save_checkpoint
from training.common.distributed import DistContext, all_reduce_sum

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]


def effective_batch_size(
    n_rows: int, world_size: int, batch_size: int, min_steps: int = 8, max_steps: int = 256,
    max_batch: int | None = None,
) -> int:
    """`batch_size`, lowered on small data so each rank still takes `min_steps` steps an epoch,
    raised on large data so it takes at most `max_steps` (a year of 20,000 products' weeks
    would otherwise take an hour of epochs on a CPU), and never above `max_batch` (the rows
    whose activations fit in memory: memory comes before the step count)."""
    if n_rows > world_size * max_steps * batch_size:
        size = -(-n_rows // (world_size * max_steps))
    else:
        size = max(16, min(batch_size, n_rows // (world_size * min_steps)))
    return size if max_batch is None else max(1, min(size, max_batch))


def epochs_within_budget(epochs: int, samples: int, budget: int) -> int:
    """`epochs`, cut so that `samples` x epochs stays within `budget` (at least one): on large
    data a training sees each row fewer times, so its cost stops growing with the epochs."""
    return max(1, min(epochs, budget // max(1, samples)))


def device_batch_size(batch_size: int, ctx: DistContext, cuda_batch_scale: int = 1) -> int:
    """The per-process batch on this process's device: `cuda_batch_scale` x `batch_size` on a
    GPU (it has the memory and the parallelism for it), `batch_size` on the CPU."""
    if cuda_batch_scale < 1:
        raise ValueError(f"cuda_batch_scale must be at least 1, not {cuda_batch_scale}.")
    return batch_size * cuda_batch_scale if ctx.device.type == "cuda" else batch_size


@dataclass
class Throughput:
    """Training samples per second of a job, all ranks together, per epoch and overall."""

    device: str
    world_size: int
    epochs: list[dict] = field(default_factory=list)  # model, epoch, samples, seconds, rate

    @classmethod
    def of(cls, ctx: DistContext) -> Throughput:
        return cls(device=ctx.device.type, world_size=ctx.world_size)

    def record(self, model: str, epoch: int, samples: int, seconds: float) -> float:
        """Add one epoch's samples (all ranks) and wall seconds; its samples per second."""
        rate = samples / seconds if seconds > 0 else 0.0
        self.epochs.append({"model": model, "epoch": epoch, "samples": samples,
                            "seconds": round(seconds, 4), "samples_per_s": round(rate, 1)})
        return rate

    @property
    def samples_per_s(self) -> float | None:
        """Samples over seconds of every recorded epoch (None when none ran: all resumed)."""
        seconds = sum(e["seconds"] for e in self.epochs)
        return round(sum(e["samples"] for e in self.epochs) / seconds, 1) if seconds else None

    def to_metrics(self) -> dict:
        """The metrics' keys: train_samples_per_s, device, world_size and the epochs."""
        return {"train_samples_per_s": self.samples_per_s, "device": self.device,
                "world_size": self.world_size, "throughput": {"epochs": self.epochs}}


def autocast(ctx: DistContext) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA (weights, gradients and optimizer stay float32); none on CPU."""
    if ctx.device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_loader(
    dataset: TensorDataset, ctx: DistContext, batch_size: int, seed: int, shuffle: bool = True
) -> DataLoader:
    """A loader over this rank's shard of `dataset` in batches of a `DistributedSampler`
    (`loader.sampler.sampler`, re-seed it with set_epoch), each batch sliced from the tensors
    at once instead of collated row by row (at millions of rows the collation, not the model,
    took most of an epoch); pinned for the GPU on CUDA."""
    sampler = DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed
    )
    return DataLoader(dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False),
                      batch_size=None, num_workers=0, pin_memory=ctx.device.type == "cuda")


def fit(
    ctx: DistContext,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataset: TensorDataset,
    loss_fn: LossFn,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    checkpoint_path: Path,
    run_key: str,
    name: str,
    extra: dict | None = None,
    cuda_batch_scale: int = 1,
    max_batch: int | None = None,
    throughput: Throughput | None = None,
) -> nn.Module:
    """Train `model` for `epochs` epochs and return it unwrapped (identical on every rank).

    The per-process batch is `batch_size` (times `cuda_batch_scale` on a GPU) adapted to the
    data (`effective_batch_size`, at most `max_batch` rows); each epoch's samples per second
    go to `throughput` when one is given."""
    model.to(ctx.device)
    state = load_checkpoint(checkpoint_path, ctx, model, optimizer, run_key=run_key)
    start_epoch = state["epoch"] + 1 if state else 0
    step = state["step"] if state else 0
    if ctx.world_size > 1:
        device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        # buffers (feature tables) are built identically on every rank: no need to re-send them
        train_model: nn.Module = DistributedDataParallel(
            model, device_ids=device_ids, broadcast_buffers=False
        )
    else:
        train_model = model
    batch_size = effective_batch_size(len(dataset), ctx.world_size,
                                      device_batch_size(batch_size, ctx, cuda_batch_scale),
                                      max_batch=max_batch)
    loader = make_loader(dataset, ctx, batch_size, seed)
    started = time.monotonic()
    for epoch in range(start_epoch, epochs):
        loader.sampler.sampler.set_epoch(epoch)
        train_model.train()
        epoch_started = time.perf_counter()
        totals = torch.zeros(2, dtype=torch.float64, device=ctx.device)
        for batch in loader:
            batch = tuple(t.to(ctx.device, non_blocking=True) for t in batch)
            with autocast(ctx):
                loss = loss_fn(train_model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            totals[0] += loss.detach().double() * len(batch[0])
            totals[1] += len(batch[0])
        totals = all_reduce_sum(totals).cpu()  # every rank's steps are done here
        rate = (throughput or Throughput.of(ctx)).record(
            name, epoch + 1, int(totals[1]), time.perf_counter() - epoch_started)
        if ctx.is_main:
            log.info(
                "%s epoch %d/%d loss %.5f, %.0f samples/s (%d processes, batch %d), "
                "elapsed %.1fs", name, epoch + 1, epochs,
                (totals[0] / totals[1].clamp(min=1)).item(), rate, ctx.world_size, batch_size,
                time.monotonic() - started,
            )
        save_checkpoint(
            checkpoint_path, ctx, model, optimizer,
            epoch=epoch, step=step, run_key=run_key, extra=extra,
        )
    model.eval()
    return model
