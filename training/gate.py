"""Tracking, registry and the champion/challenger gate of a trained model (MLflow).

After torchrun has trained a model into a run folder, `gate` (called by training/launch.py in
the launching process, once per model) does, for the dataset's registered model
`promoflow-<dataset>-<model>` (Settings.registered_model):

1. logs an MLflow run: the run's parameters, the holdout metrics of the model and of its
   baselines (metrics JSON), and the model bundle (models/<model>/model.pt) with the metrics
   JSON as artifacts under `model/`;
2. registers that folder as a new version of the registered model (the challenger; a model
   identical to a registered version, as a rerun of the same training trains, is not
   registered twice, and when it is the champion its recorded decision stands);
3. re-scores the current champion (the version holding the alias `champion`) on this run's
   holdout, from its registered bundle (training/<model>/champion.py);
4. promotes the challenger (moves the alias to it) only if it beats its baseline on the holdout
   and is not worse than the champion on the same holdout by more than TOLERANCE (relative):
   forecaster WAPE below seasonal naive's and at most champion x (1 + TOLERANCE); recommender
   NDCG@10 or recall@10 above popularity's and NDCG@10 at least champion x (1 - TOLERANCE);
5. otherwise writes the run's forecasts/recommendations with the champion, so planning uses it;
   with no champion registered yet, a losing challenger stops the run (GateRefused).

The decision (versions, promoted or not, which version planned and why) is returned and kept
in the metrics JSON under "decision". The store is Settings.mlflow_uri (PROMO_MLFLOW_URI; by
default SQLite under the work folder), and one file lock serializes the gates of a work folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from promoflow.run import Run, RunFolder
from promoflow.settings import Settings

log = logging.getLogger(__name__)

#: How much worse than the champion (relative, on the same holdout) a challenger may be and
#: still be promoted: new data moves the metrics a little, and a champion should not stay
#: forever because of noise.
TOLERANCE = 0.02
ALIAS = "champion"
BUNDLE = "model.pt"


class GateRefused(RuntimeError):
    """The challenger lost and there is no champion to plan with."""


@dataclass(frozen=True)
class Rule:
    """How a model is judged: the metric compared with the champion and the baseline's."""

    metric: str
    label: str
    higher_is_better: bool
    baseline: str
    #: beating the baseline on any of these is enough
    baseline_metrics: tuple[str, ...]


RULES = {
    "forecaster": Rule("wape", "WAPE", False, "seasonal naive", ("wape",)),
    "recommender": Rule("ndcg_at_10", "NDCG@10", True, "popularity",
                        ("ndcg_at_10", "recall_at_10")),
}


def _better(rule: Rule, a: float, b: float) -> bool:
    """a better than b (never when a is not a number: a diverged model wins nothing)."""
    return math.isfinite(a) and (a > b if rule.higher_is_better else a < b)


def decide(model: str, challenger: dict, baseline: dict, champion: dict | None,
           champion_version: str | None = None, tolerance: float = TOLERANCE
           ) -> tuple[bool, str]:
    """(promote?, why) for holdout metrics of the challenger, its baseline and the champion
    (None: no champion yet), each a {metric: value} dict of the same holdout."""
    rule = RULES[model]
    mine = challenger[rule.metric]
    wins = [m for m in rule.baseline_metrics if _better(rule, challenger[m], baseline[m])]
    if not wins:
        return False, (f"{rule.label} {mine:.4f} does not beat {rule.baseline}'s "
                       f"{baseline[rule.metric]:.4f} on the holdout")
    beats = (f"{rule.label} {mine:.4f} beats {rule.baseline}'s {baseline[rule.metric]:.4f}"
             if rule.metric in wins else
             f"{wins[0]} {challenger[wins[0]]:.4f} beats {rule.baseline}'s {baseline[wins[0]]:.4f}")
    if champion is None:
        return True, f"{beats} and no champion was registered"
    theirs = champion[rule.metric]
    limit = theirs * (1 - tolerance) if rule.higher_is_better else theirs * (1 + tolerance)
    name = f"champion version {champion_version}" if champion_version else "the champion"
    if _better(rule, limit, mine):
        return False, (f"{rule.label} {mine:.4f} is more than {tolerance:.0%} worse than "
                       f"{name}'s {theirs:.4f} on the same holdout")
    return True, (f"{beats} and is within {tolerance:.0%} of {name}'s {theirs:.4f} on the "
                  "same holdout")


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """One gate at a time per work folder (the local SQLite store takes one writer)."""
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.mlflow_dir / ".gate.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _client(settings: Settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def _experiment(client, settings: Settings, dataset: str) -> str:
    """The dataset's experiment; a local store keeps its artifacts under the work folder."""
    name = f"promoflow-{dataset}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = (settings.mlflow_artifacts_dir.as_uri()
                if settings.mlflow_uri.startswith("sqlite:") else None)
    return client.create_experiment(name, artifact_location=location)


def _numbers(prefix: str, values: dict) -> dict[str, float]:
    return {f"{prefix}{key}": float(value) for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


def _logged_metrics(metrics: dict) -> dict[str, float]:
    """The metrics JSON's holdout numbers: model_*, baseline_*, lightgbm_* and per candidate."""
    logged: dict[str, float] = {}
    for section in ("model", "baseline", "lightgbm"):
        logged |= _numbers(f"{section}_", metrics.get(section, {}))
    for name, summary in metrics.get("models", {}).items():
        logged |= _numbers(f"{name}_", summary)
    logged |= _numbers("", {k: metrics[k] for k in ("holdout_weeks", "train_rows",
                                                    "train_interactions", "train_samples_per_s",
                                                    "world_size") if k in metrics})
    return logged


def _log_run(client, settings: Settings, model: str, run: Run, folder: RunFolder,
             metrics: dict, args: list[str]) -> tuple[str, str]:
    """(MLflow run id, artifact URI of the model folder) of a new run logging this training."""
    from mlflow.entities import Metric, Param

    experiment = _experiment(client, settings, run.params.dataset)
    tracked = client.create_run(experiment, run_name=f"{run.run_id} {model}",
                                tags={"promoflow.run_id": run.run_id, "promoflow.model": model})
    run_id = tracked.info.run_id
    params = {key: str(value) for key, value in run.params.to_dict().items()}
    params["extra_args"] = " ".join(map(str, args))
    stamp = tracked.info.start_time
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, stamp, 0) for key, value in _logged_metrics(metrics).items()],
        params=[Param(key, value[:6000]) for key, value in params.items()],
    )
    with tempfile.TemporaryDirectory(dir=_tmp(settings)) as tmp:
        staged = Path(tmp)
        (staged / BUNDLE).write_bytes((settings.models_dir / model / BUNDLE).read_bytes())
        (staged / folder.metrics(model).name).write_bytes(folder.metrics(model).read_bytes())
        client.log_artifacts(run_id, str(staged), "model")
    return run_id, f"{tracked.info.artifact_uri}/model"


def _tmp(settings: Settings) -> Path:
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    return settings.tmp_dir


def gate(model: str, run: Run, settings: Settings, args: list[str]) -> dict:
    """Log, register and judge the model just trained into the run's folder; the decision.

    `args` are the command-line options the model was trained with (the champion is scored
    on the holdout they give). A model identical to a registered version (a rerun of the same
    training: same weights, same fingerprint) is not registered again: that version is the
    challenger, and when it is the champion its recorded decision stands, so a rerun decides
    and publishes what the first run did. Raises GateRefused, after recording the decision,
    when the challenger loses and no champion exists.

    A replay (`as_of` set) never moves the alias: a training its week already had decides as
    it did then (planned by the same version), a new one plans if it beats its baselines.
    """
    folder = run.folder(settings)
    metrics_path = folder.metrics(model)
    metrics = json.loads(metrics_path.read_text())
    digest = fingerprint(settings.models_dir / model / BUNDLE)
    name = settings.registered_model(run.params.dataset, model)
    with _locked(settings):
        client = _client(settings)
        run_id, source = _log_run(client, settings, model, run, folder, metrics, args)
        version, recorded = _registered(client, name, digest)
        champion = client.get_registered_model(name).aliases.get(ALIAS)
        champion = None if champion is None else str(champion)
        replay = run.params.as_of is not None
        if version is not None and recorded and (version == champion or replay):
            decision = recorded  # a rerun, or a replay of the same training: as it decided
            if replay and recorded["planned_by"] == "champion":
                _write_champion_outputs(client, model, name, recorded["planned_by_version"],
                                        run, settings, args)
        elif replay:
            if version is None:
                version = str(client.create_model_version(name, source=source,
                                                          run_id=run_id).version)
                client.set_model_version_tag(name, version, "fingerprint", digest)
                client.set_model_version_tag(name, version, "replay_as_of",
                                             str(run.params.as_of))
            decision = _judge_replay(model, name, version, metrics)
        else:
            if version is None:
                version = str(client.create_model_version(name, source=source,
                                                          run_id=run_id).version)
                client.set_model_version_tag(name, version, "fingerprint", digest)
            decision = _judge(client, model, name, version, champion, metrics, run, settings,
                              args)
            client.set_model_version_tag(name, version, "promoted",
                                         str(decision["promoted"]).lower())
            client.set_model_version_tag(name, version, "reason", decision["reason"])
            client.set_model_version_tag(name, version, "decision", json.dumps(decision))
        client.log_batch(run_id, metrics=_decision_metrics(decision))
        client.set_terminated(run_id)
    folder.write_json(metrics_path, {**metrics, "decision": {**decision, "mlflow_run_id": run_id}})
    planned_by = decision["planned_by_version"]
    log.info("%s version %s %s: %s; planned by version %s", name, version,
             "promoted" if decision["promoted"] else "not promoted", decision["reason"],
             planned_by)
    if planned_by is None and run.params.as_of is not None:
        raise GateRefused(
            f"The replayed {model} (version {version} of {name}) is not used because its "
            f"{decision['reason']}, and a replay does not plan with the current champion, "
            "which may have learned from the weeks after its time; the run stops before "
            "planning.")
    if planned_by is None:
        raise GateRefused(
            f"The {model} challenger (version {version} of {name}) is not promoted because its "
            f"{decision['reason']}, and no champion is registered to plan with, so the run "
            "stops before planning.")
    return decision


def _argv(run: Run, settings: Settings, args: list[str]) -> list[str]:
    return ["--run-dir", str(run.folder(settings).path), "--models-dir",
            str(settings.models_dir), *map(str, args)]


def _bundle(client, name: str, version: str, settings: Settings, tmp: str) -> Path:
    """The registered version's model bundle, downloaded into `tmp`."""
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"{client.get_model_version(name, version).source}/{BUNDLE}",
        dst_path=tmp, tracking_uri=settings.mlflow_uri))


def _write_champion_outputs(client, model: str, name: str, version: str, run: Run,
                            settings: Settings, args: list[str]) -> None:
    scorer = importlib.import_module(f"training.{model}.champion")
    with tempfile.TemporaryDirectory(dir=_tmp(settings)) as tmp:
        scorer.write_outputs(_bundle(client, name, version, settings, tmp),
                             _argv(run, settings, args))


def _judge_replay(model: str, name: str, version: str, metrics: dict) -> dict:
    """A replay's new training (one its week never had): judged against its baselines only,
    never promoted. The current champion is not scored: it may have learned from the weeks
    after the replay's time, the replay's holdout among them."""
    rule = RULES[model]
    beats, reason = decide(model, metrics["model"], metrics["baseline"], None)
    reason = reason.replace("and no champion was registered", "in a replay (never promoted)")
    return {
        "registered_model": name, "challenger_version": version,
        "champion_version_before": None, "promoted": False,
        "planned_by": "challenger" if beats else None,
        "planned_by_version": version if beats else None, "reason": reason,
        "metric": rule.metric, "challenger": metrics["model"][rule.metric],
        "baseline": metrics["baseline"][rule.metric], "champion": None,
        "champion_metrics": None, "tolerance": TOLERANCE,
    }


def _judge(client, model: str, name: str, version: str, champion: str | None, metrics: dict,
           run: Run, settings: Settings, args: list[str]) -> dict:
    """Score the champion on this run's holdout, decide, move the alias or write the
    champion's outputs into the run's folder; the decision."""
    argv = _argv(run, settings, args)
    scorer = importlib.import_module(f"training.{model}.champion")
    rule = RULES[model]
    champion_metrics = None
    with tempfile.TemporaryDirectory(dir=_tmp(settings)) as tmp:
        if champion is not None:
            bundle = _bundle(client, name, champion, settings, tmp)
            champion_metrics = scorer.holdout_metrics(bundle, argv)
        promoted, reason = decide(model, metrics["model"], metrics["baseline"],
                                  champion_metrics, champion)
        if promoted:
            client.set_registered_model_alias(name, ALIAS, version)
            planned_by = version
        elif champion is not None:
            scorer.write_outputs(bundle, argv)
            planned_by = champion
        else:
            planned_by = None
    return {
        "registered_model": name, "challenger_version": version,
        "champion_version_before": champion, "promoted": promoted,
        "planned_by": "challenger" if promoted else "champion" if planned_by else None,
        "planned_by_version": planned_by, "reason": reason, "metric": rule.metric,
        "challenger": metrics["model"][rule.metric],
        "baseline": metrics["baseline"][rule.metric],
        "champion": champion_metrics[rule.metric] if champion_metrics else None,
        "champion_metrics": champion_metrics, "tolerance": TOLERANCE,
    }


def _registered(client, name: str, digest: str) -> tuple[str | None, dict | None]:
    """(version, its recorded decision) of `name` whose model has fingerprint `digest`;
    (None, None) when there is none (the registered model is created when missing)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
        return None, None
    for found in client.search_model_versions(f"name = '{name}'"):
        if found.tags.get("fingerprint") == digest:
            recorded = found.tags.get("decision")
            return str(found.version), json.loads(recorded) if recorded else None
    return None, None


def fingerprint(bundle: Path) -> str:
    """SHA-256 of a model bundle's content (tensor bytes, names and settings), independent of
    how the file was written."""
    import hashlib

    import torch

    digest = hashlib.sha256()

    def walk(value: object) -> None:
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(str(value.dtype).encode() + str(tuple(value.shape)).encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                digest.update(repr(key).encode())
                walk(value[key])
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        else:
            digest.update(repr(value).encode())

    walk(torch.load(bundle, map_location="cpu", weights_only=False))
    return digest.hexdigest()


def _decision_metrics(decision: dict) -> list:
    import time

    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    values = {"promoted": float(decision["promoted"])}
    if decision["champion"] is not None:
        values[f"champion_{decision['metric']}"] = float(decision["champion"])
    return [Metric(key, value, stamp, 0) for key, value in values.items()]
