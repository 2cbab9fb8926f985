"""Atomic checkpoints (model, optimizer, step, epoch) written by global rank 0 only.

A checkpoint carries a `run_key` naming the run and configuration that produced it; training
resumes automatically from a checkpoint with the same key (a restarted job) and starts fresh
otherwise (a new weekly run with new data), so a finished old run is never mistaken for this one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.common.distributed import DistContext, barrier

log = logging.getLogger(__name__)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(
    path: Path,
    ctx: DistContext,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    step: int,
    run_key: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the checkpoint on global rank 0 (temporary file, then rename); all ranks wait."""
    if ctx.is_main:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": _unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "step": step,
            "run_key": run_key,
            "extra": extra or {},
        }
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, path)
    barrier(ctx)


def load_checkpoint(
    path: Path,
    ctx: DistContext,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    *,
    run_key: str,
) -> dict[str, Any] | None:
    """Restore model and optimizer from `path` when it belongs to `run_key`; None otherwise."""
    if not path.exists():
        return None
    state = torch.load(path, map_location=ctx.device, weights_only=False)
    if state.get("run_key") != run_key:
        log.info("checkpoint %s belongs to another run or configuration; starting fresh", path)
        return None
    _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    log.info("resumed from %s at epoch %d (step %d)", path, state["epoch"], state["step"])
    return state


def make_run_key(*parts: Any) -> str:
    """A short stable fingerprint of what makes a training job resumable (config, data, world)."""
    import hashlib
    import json

    payload = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
