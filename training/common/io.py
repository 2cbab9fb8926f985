"""Reading the training sets and writing model outputs, shared by both models."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def read_training_set(path: Path, required: list[str]) -> pd.DataFrame:
    """A training-set file with Feast's `view__feature` prefixes undone and its columns checked."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; build the training sets before training.")
    frame = pd.read_parquet(path)
    renames: dict[str, str] = {}
    for column in frame.columns:
        base = column.split("__")[-1]
        if base != column and base not in frame.columns and base not in renames.values():
            renames[column] = base
    frame = frame.rename(columns=renames)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path.name} lacks the columns {missing}; rebuild it with the "
                         "feature set of docs/architecture.md.")
    return frame


def temporary_path(path: Path) -> Path:
    """Where to write `path` before moving it in place with os.replace."""
    return path.with_name(f".{path.name}.tmp")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write through a temporary file, so readers never see half a file."""
    tmp = temporary_path(path)
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    log.info("wrote %s (%d rows)", path.name, len(frame))
