"""Run a training module under torchrun as a subprocess and stream its logs.

    run_torchrun("training.forecaster.train", ["--run-dir", str(run_dir)])
    train_forecaster(run)   # a weekly run's stage: the run's folder, parameters from run.json

After torchrun, the gate (training/gate.py) logs the model to MLflow, registers it and decides
whether it or the registered champion plans.

Uses `python -m torch.distributed.run --standalone` with one process per GPU when CUDA is
available and two CPU processes (gloo) otherwise. Temporary files of torch and inductor stay in
the settings' tmp folder, and each worker gets one OpenMP thread.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from promoflow.run import Run
from promoflow.settings import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger(__name__)


class TrainingFailed(RuntimeError):
    """A torchrun job exited with a non-zero status."""


def default_nproc() -> int:
    """Number of GPUs when CUDA is available, else 2 CPU processes."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 2


def torchrun_env(settings: Settings) -> dict[str, str]:
    """The environment of the job: temporary folders inside the work folder, one thread."""
    tmp = settings.tmp_dir / "torchrun"
    inductor = settings.tmp_dir / "torchinductor"
    tmp.mkdir(parents=True, exist_ok=True)
    inductor.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        TMPDIR=str(tmp),
        TORCHINDUCTOR_CACHE_DIR=str(inductor),
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p),
    )
    return env


def run_torchrun(
    module: str, args: list[str], nproc: int | None = None, settings: Settings | None = None
) -> None:
    """Run `python -m torch.distributed.run --standalone -m module args`; raise on failure."""
    settings = settings or get_settings()
    nproc = nproc or default_nproc()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", module, *map(str, args),
    ]
    log.info("running %s", " ".join(command))
    tail: collections.deque[str] = collections.deque(maxlen=50)
    with subprocess.Popen(
        command, cwd=Path(PROJECT_ROOT), env=torchrun_env(settings),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("%s", line)
        status = process.wait()
    if status != 0:
        raise TrainingFailed(
            f"{module} failed under torchrun with exit status {status} "
            f"(last error: {_last_error(tail)}); see the log above."
        )


def _last_error(lines: collections.deque[str]) -> str:
    """The most telling line of a failed job's output (the last exception line, if any)."""
    for line in reversed(lines):
        text = line.split("]:", 1)[-1].strip()
        if text and ("Error" in text or "Exception" in text) and "ChildFailedError" not in text:
            return text[:300]
    return lines[-1][:300] if lines else "no output"


def train_recommender(run: Run, settings: Settings | None = None,
                      args: list[str] | None = None) -> dict:
    """The recommender stage of a weekly run; its holdout metrics and the gate's decision."""
    return _train("recommender", run, settings, args or [])


def train_forecaster(run: Run, settings: Settings | None = None,
                     args: list[str] | None = None) -> dict:
    """The forecaster stage of a weekly run; its holdout metrics and the gate's decision."""
    return _train("forecaster", run, settings, args or [])


def _train(model: str, run: Run, settings: Settings | None, args: list[str]) -> dict:
    """torchrun `training.<model>.train` on the run's folder (it reads the run's run.json;
    `args` are further options of the train module), then the champion/challenger gate
    (training/gate.py), which leaves the outputs of the model that plans in the folder."""
    from training.gate import GateRefused, gate

    settings = settings or get_settings()
    folder = run.folder(settings)
    if not folder.run_file.exists():
        raise TrainingFailed(f"{folder.run_file} does not exist; prepare the run first.")
    run_torchrun(f"training.{model}.train",
                 ["--run-dir", folder.path, "--models-dir", settings.models_dir, *args],
                 settings=settings)
    try:
        decision = gate(model, run, settings, args)
    except GateRefused as refused:
        raise TrainingFailed(str(refused)) from None
    metrics = json.loads(folder.metrics(model).read_text())
    return {**{key: metrics[key] for key in ("model", "baseline", "holdout_weeks")},
            "decision": {key: decision[key] for key in (
                "registered_model", "challenger_version", "promoted", "planned_by_version",
                "reason")}}
