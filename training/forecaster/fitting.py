"""The forecaster's DDP training loop with early stopping on the validation slice.

Like `training.common.loop.fit` (a `DistributedSampler` re-seeded each epoch, the model wrapped
in `DistributedDataParallel` when the world is larger than one, a checkpoint after every epoch
and automatic resume; its loader, `make_loader`, slices each batch from the tensors; the same
GPU path and throughput records, training.common.loop), plus:
after every epoch each rank scores its share of the validation
rows (rows rank, rank + world, ...), the sums are all-reduced, so every rank sees the same
validation loss and takes the same decision. Training stops once the loss has not improved for
`patience` epochs (or at `epochs`), and the model of the best epoch is restored. The learning
rate is constant, so the first n epochs are the same whatever the epoch limit: a higher limit
can only find a better validation loss, and an early stop before the limit gives the very same
model. The early-stopping state (best weights, best loss, epochs without improvement, history)
travels in the checkpoint, so a restarted job resumes to the same result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import TensorDataset

from training.common.checkpoint import load_checkpoint, save_checkpoint
from training.common.distributed import DistContext, all_reduce_sum
from training.common.loop import (
    Throughput,
    autocast,
    device_batch_size,
    effective_batch_size,
    make_loader,
)

log = logging.getLogger(__name__)

#: per-row losses [rows] of a batch (the model's inputs, then its labels)
RowLoss = Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]


@dataclass
class FitResult:
    """What early stopping chose."""

    best_epoch: int  # 1-based epoch whose model was kept (0: none ran)
    epochs_run: int
    stopped_early: bool
    best_validation_loss: float | None
    history: list[dict] = field(default_factory=list)  # epoch, train_loss, validation_loss

    def to_dict(self, max_epochs: int, patience: int) -> dict:
        return {"chosen_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "max_epochs": max_epochs, "patience": patience,
                "stopped_early": self.stopped_early,
                "best_validation_loss": self.best_validation_loss, "history": self.history}


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@torch.no_grad()
def validation_loss(
    ctx: DistContext, model: nn.Module, validation: tuple[torch.Tensor, ...], row_loss: RowLoss,
    chunk: int = 8192,
) -> float:
    """Mean per-row loss over the validation rows, identical on every rank."""
    model.eval()
    shard = tuple(t[ctx.rank::ctx.world_size] for t in validation)
    totals = torch.zeros(2, dtype=torch.float64, device=ctx.device)
    for start in range(0, len(shard[0]), chunk):
        batch = tuple(t[start:start + chunk].to(ctx.device) for t in shard)
        losses = row_loss(model, batch)
        totals[0] += losses.double().sum()
        totals[1] += len(losses)
    totals = all_reduce_sum(totals)
    return float(totals[0] / totals[1].clamp(min=1))


def fit_with_early_stopping(
    ctx: DistContext,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataset: TensorDataset,
    validation: tuple[torch.Tensor, ...] | None,
    row_loss: RowLoss,
    *,
    epochs: int,
    patience: int,
    batch_size: int,
    seed: int,
    checkpoint_path: Path,
    run_key: str,
    name: str,
    extra: dict | None = None,
    min_steps: int = 8,
    cuda_batch_scale: int = 1,
    throughput: Throughput | None = None,
) -> FitResult:
    """Train `model` (unwrapped, identical on every rank at the end) with early stopping; each
    epoch's training samples per second go to `throughput` when one is given."""
    model.to(ctx.device)
    extra = dict(extra or {})
    state = load_checkpoint(checkpoint_path, ctx, model, optimizer, run_key=run_key)
    progress = (state or {}).get("extra", {}).get("early_stopping") or {
        "best_loss": None, "best_epoch": 0, "bad_epochs": 0, "history": [], "finished": False,
        "best_state": None,
    }
    start_epoch = state["epoch"] + 1 if state else 0
    step = state["step"] if state else 0
    has_validation = validation is not None and len(validation[0]) > 0
    if ctx.world_size > 1:
        device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        train_model: nn.Module = DistributedDataParallel(
            model, device_ids=device_ids, broadcast_buffers=False
        )
    else:
        train_model = model
    size = effective_batch_size(len(dataset), ctx.world_size,
                                device_batch_size(batch_size, ctx, cuda_batch_scale),
                                min_steps=min_steps)
    loader = make_loader(dataset, ctx, size, seed)
    started = time.monotonic()
    trained = False
    for epoch in range(start_epoch, epochs):
        if progress["finished"]:
            break
        trained = True
        loader.sampler.sampler.set_epoch(epoch)
        train_model.train()
        epoch_started = time.perf_counter()
        totals = torch.zeros(2, dtype=torch.float64, device=ctx.device)
        for batch in loader:
            batch = tuple(t.to(ctx.device, non_blocking=True) for t in batch)
            with autocast(ctx):
                loss = row_loss(train_model, batch).float().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            totals[0] += loss.detach().double() * len(batch[0])
            totals[1] += len(batch[0])
        totals = all_reduce_sum(totals).cpu()  # every rank's steps are done here
        rate = (throughput or Throughput.of(ctx)).record(
            name, epoch + 1, int(totals[1]), time.perf_counter() - epoch_started)
        train_loss = float(totals[0] / totals[1].clamp(min=1))
        val_loss = validation_loss(ctx, model, validation, row_loss) if has_validation else None
        record = {"epoch": epoch + 1, "train_loss": train_loss, "validation_loss": val_loss}
        progress["history"].append(record)
        best = progress["best_loss"]
        if val_loss is None or best is None or val_loss < best:
            progress.update(best_loss=val_loss, best_epoch=epoch + 1, bad_epochs=0,
                            best_state=_cpu_state(model))
        else:
            progress["bad_epochs"] += 1
        progress["finished"] = has_validation and progress["bad_epochs"] >= patience
        if ctx.is_main:
            log.info("%s epoch %d/%d loss %.5f validation %s (best epoch %d), %.0f samples/s "
                     "(%d processes, batch %d), elapsed %.1fs", name, epoch + 1, epochs,
                     train_loss, "-" if val_loss is None else f"{val_loss:.5f}",
                     progress["best_epoch"], rate, ctx.world_size, size,
                     time.monotonic() - started)
        save_checkpoint(checkpoint_path, ctx, model, optimizer, epoch=epoch, step=step,
                        run_key=run_key, extra={**extra, "early_stopping": progress})
    epochs_run = len(progress["history"])
    if progress["best_state"] is not None:
        model.load_state_dict(progress["best_state"])
    if trained:
        # the checkpoint's model is the chosen one; a restart finds the job finished
        progress["finished"] = True
        save_checkpoint(checkpoint_path, ctx, model, optimizer, epoch=epochs_run - 1, step=step,
                        run_key=run_key, extra={**extra, "early_stopping": progress})
    model.eval()
    return FitResult(
        best_epoch=progress["best_epoch"], epochs_run=epochs_run,
        stopped_early=bool(has_validation and epochs_run < epochs),
        best_validation_loss=progress["best_loss"],
        history=[dict(r) for r in progress["history"]],
    )
