"""The command line shared by the train modules, and what a run folder tells them.

    torchrun --standalone --nproc_per_node=2 -m training.<model>.train --run-dir DIR

The run's parameters come from the folder's run.json (written by the weekly flow; RunParams
defaults when there is none): seed, epochs (0 keeps the model's default), the discount grid
and the audience size. Options given on the command line override them.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from promoflow.logs import setup_logging
from promoflow.run import RunFolder, RunParams

Config = TypeVar("Config")


def base_parser(description: str) -> argparse.ArgumentParser:
    """Options every model takes; a value left out (None) falls back to run.json or the config."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="run folder with the training sets (and run.json); outputs go there")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="models folder; checkpoints go to <dir>/<model>/")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: the run's epochs, else the model's default")
    parser.add_argument("--seed", type=int, default=None, help="default: the run's seed")
    for option in ("--holdout-weeks", "--batch-size", "--hidden-dim", "--embedding-dim"):
        parser.add_argument(option, type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    return parser


def run_params(run_dir: Path) -> RunParams:
    """The parameters of the run whose folder this is (defaults without a run.json)."""
    folder = RunFolder(Path(run_dir))
    return folder.read_run().params if folder.run_file.exists() else RunParams()


def configure(defaults: Config, args: argparse.Namespace, params: RunParams,
              **extra: dict[str, object]) -> Config:
    """A model's configuration: its `defaults` (sections data, model, optim and trainer), then
    the run's parameters, then the options given on the command line.

    `extra` sets model-specific fields per section, e.g. `data={"top_n": ...}`; a value of
    None there or on the command line keeps what comes before it.
    """
    given: dict[str, dict[str, object]] = {
        "data": {"run_dir": args.run_dir, "holdout_weeks": args.holdout_weeks},
        "model": {"embedding_dim": args.embedding_dim, "hidden_dim": args.hidden_dim},
        "optim": {"lr": args.lr, "batch_size": args.batch_size},
        "trainer": {"epochs": _first(args.epochs, params.epochs or None),
                    "seed": _first(args.seed, params.seed), "models_dir": args.models_dir},
    }
    for section, values in extra.items():
        given[section].update(values)
    sections = {
        section: replace(getattr(defaults, section),
                         **{name: value for name, value in values.items() if value is not None})
        for section, values in given.items()
    }
    return replace(defaults, **sections)


def _first(*values: object) -> object:
    """The first value that is not None (None when all are)."""
    return next((value for value in values if value is not None), None)


def default_models_dir() -> Path:
    from promoflow.settings import get_settings

    return get_settings().models_dir


def run_main(parse: Callable[[list[str] | None], object], train: Callable[[object], object],
             argv: list[str] | None = None) -> None:
    """Logging (only rank 0 below warnings), then train on the parsed configuration."""
    setup_logging()
    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger().setLevel(logging.WARNING)
    train(parse(argv))
