"""Shared training helpers: distributed set-up, seeding, checkpoints, the training loop, the
command line (`cli`) and reading training sets / writing outputs (`io`)."""

from training.common.checkpoint import load_checkpoint, save_checkpoint
from training.common.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    seed_everything,
    setup_distributed,
)

__all__ = [
    "DistContext",
    "all_reduce_sum",
    "barrier",
    "cleanup_distributed",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "setup_distributed",
]
