"""The DDP training loop shared by both models.

`fit` shards a `TensorDataset` with a `DistributedSampler` (re-seeded each epoch with
`set_epoch`), wraps the model in `DistributedDataParallel` when the world is larger than one,
all-reduces the loss for logging, checkpoints after every epoch and resumes automatically.
On CUDA the forward pass and the loss run under bfloat16 autocast; on the CPU nothing changes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from training.common.checkpoint import load_checkpoint, save_checkpoint
from training.common.distributed import DistContext, all_reduce_sum

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]


def effective_batch_size(
    n_rows: int, world_size: int, batch_size: int, min_steps: int = 8, max_steps: int = 256
) -> int:
    """`batch_size`, lowered on small data so each rank still takes `min_steps` steps an epoch,
    raised on large data so it takes at most `max_steps` (a year of 20,000 products' weeks
    would otherwise take an hour of epochs on a CPU)."""
    if n_rows > world_size * max_steps * batch_size:
        return -(-n_rows // (world_size * max_steps))
    return max(16, min(batch_size, n_rows // (world_size * min_steps)))


def autocast(ctx: DistContext) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA (weights, gradients and optimizer stay float32); none on CPU."""
    if ctx.device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_loader(
    dataset: TensorDataset, ctx: DistContext, batch_size: int, seed: int, shuffle: bool = True
) -> DataLoader:
    """A loader over this rank's shard of `dataset`."""
    sampler = DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed
    )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0)


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
) -> nn.Module:
    """Train `model` for `epochs` epochs and return it unwrapped (identical on every rank)."""
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
    batch_size = effective_batch_size(len(dataset), ctx.world_size, batch_size)
    loader = make_loader(dataset, ctx, batch_size, seed)
    started = time.monotonic()
    for epoch in range(start_epoch, epochs):
        loader.sampler.set_epoch(epoch)
        train_model.train()
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
        totals = all_reduce_sum(totals)
        if ctx.is_main:
            log.info(
                "%s epoch %d/%d loss %.5f elapsed %.1fs",
                name, epoch + 1, epochs, (totals[0] / totals[1].clamp(min=1)).item(),
                time.monotonic() - started,
            )
        save_checkpoint(
            checkpoint_path, ctx, model, optimizer,
            epoch=epoch, step=step, run_key=run_key, extra=extra,
        )
    model.eval()
    return model
