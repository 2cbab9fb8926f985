"""Benchmark of the weekly flow by market size: wall time, peak memory and rows per second per stage.

    .venv/bin/python scripts/bench.py [--presets demo large xl] [--json FILE]

For each preset: the synthetic market is generated, then the weekly DAG runs once on it
(`python -m local.runner weekly`, the same in-process `airflow dags test` as `make demo`) in a
benchmark database and work folder of its own (`promo_bench`, `.local/bench`, emptied first
except the markets; the demo's warehouse is not touched). Stage times are the task times Airflow recorded; peak memory is the largest
proportional set size (shared pages counted once) of the runner's whole process tree (Airflow,
Spark's JVM, the torchrun workers, dbt) sampled every half second while the stage ran; the
PostgreSQL server is not counted. Rows
per second are the preset's order lines over the stage's time. After the flow: the Spark feature
jobs against their DuckDB peer on the same marts (`spark_jobs.duckdb_peer --compare`), the
models' training throughput, and the discount MIP at the preset's catalogue size with 11 levels.

The last table divides each preset's time by the demo's and by its rows ratio: at most 1 means
the cost grows at most linearly with the data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from promoflow.settings import get_settings

PY = str(ROOT / ".venv" / "bin" / "python")
BENCH_DB = "promo_bench"
#: Stages in flow order: the DAG's tasks grouped under the name they are reported by.
STAGES = (
    ("prepare", ("prepare_run", "resolve_plan_week")),
    ("ingest", ("ingest",)),
    ("dbt", ("dbt_marts.",)),
    ("quality gates", ("check_raw", "check_marts", "check_features")),
    ("spark features", ("spark_features",)),
    ("segments", ("segment_customers",)),
    ("feast", ("feast_materialize", "training_sets")),
    ("train recommender", ("train.train_recommender",)),
    ("train forecaster", ("train.train_forecaster",)),
    ("measure", ("measure",)),
    ("plan", ("plan",)),
    ("publish + report", ("publish", "report")),
)


class TreeMemory:
    """Samples the resident memory of a process and all its children in a background thread."""

    def __init__(self, pid: int, every_s: float = 0.5):
        self.samples: list[tuple[float, int]] = []
        self._root = psutil.Process(pid)
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                procs = [self._root, *self._root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for proc in procs:
                try:  # proportional set size: pages shared between processes counted once
                    total += proc.memory_full_info().pss
                except psutil.Error:
                    pass
            self.samples.append((time.time(), total))
            self._stop.wait(self._every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


def sampled_command(cmd: list[str], env: dict[str, str], log_path: Path,
                    what: str, check: bool = True) -> tuple[float, float, TreeMemory, int]:
    """Run a command with its output in log_path, sampling its memory; (start, seconds,
    samples, exit status). With `check`, a failure stops the benchmark with the log's last
    lines."""
    started = time.time()
    with open(log_path, "a") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        memory = TreeMemory(proc.pid)
        code = proc.wait()
        memory.stop()
    if code != 0 and check:
        tail = log_path.read_text().splitlines()[-15:]
        raise SystemExit(f"error: {what} failed (exit {code}); log {log_path}:\n"
                         + "\n".join(tail))
    return started, time.time() - started, memory, code


def timed_command(cmd: list[str], env: dict[str, str], log_path: Path) -> tuple[float, int]:
    """Run a command; (seconds, peak tree memory in bytes)."""
    _, seconds, memory, _ = sampled_command(cmd, env, log_path, " ".join(cmd[1:4]))
    return seconds, memory.peak()


def flow_with_stages(cmd: list[str], env: dict[str, str], log_path: Path,
                     airflow_db: dict) -> tuple[float, int, list[dict], list[str]]:
    """Run the weekly flow; its time, peak memory, per stage time and peak memory, and the
    tasks that failed (a failed flow keeps the stages that ran, marked `failed`)."""
    started, wall, memory, _ = sampled_command(cmd, env, log_path, "the weekly flow",
                                               check=False)
    tasks = task_times(airflow_db, since=started)
    failed = [t["task_id"] for t in tasks if t["state"] == "failed"]
    stages = []
    for name, prefixes in STAGES:
        mine = [t for t in tasks if any(t["task_id"] == p or (p.endswith(".") and
                                                                t["task_id"].startswith(p))
                                        for p in prefixes)]
        if not mine:
            continue
        seconds = sum(t["end"] - t["start"] for t in mine)
        peak = max(memory.peak(t["start"], t["end"]) for t in mine)
        stages.append({"stage": name, "tasks": len(mine), "seconds": round(seconds, 1),
                       "peak_gb": round(peak / 2**30, 2),
                       "failed": any(t["state"] == "failed" for t in mine)})
    counted = {t["task_id"] for t in tasks}
    listed = {t["task_id"] for t in tasks for _, prefixes in STAGES for p in prefixes
              if t["task_id"] == p or (p.endswith(".") and t["task_id"].startswith(p))}
    for task_id in sorted(counted - listed):
        t = next(t for t in tasks if t["task_id"] == task_id)
        stages.append({"stage": task_id, "tasks": 1, "seconds": round(t["end"] - t["start"], 1),
                       "peak_gb": round(memory.peak(t["start"], t["end"]) / 2**30, 2)})
    return wall, memory.peak(), stages, failed


def task_times(airflow_db: dict, since: float) -> list[dict]:
    """Start and end (epoch seconds) of every task of the latest promo_weekly run."""
    conn = psycopg2.connect(**airflow_db)
    try:
        with conn.cursor() as cur:
            cur.execute("""
                select ti.task_id, extract(epoch from ti.start_date), extract(epoch from ti.end_date),
                       ti.state
                from task_instance ti
                where ti.dag_id = 'promo_weekly' and ti.start_date is not null
                  and ti.end_date is not null
                  and ti.run_id = (select run_id from dag_run where dag_id = 'promo_weekly'
                                   order by start_date desc nulls last limit 1)
                  and extract(epoch from ti.start_date) >= %s
                order by ti.start_date""", (since - 5,))
            return [{"task_id": r[0], "start": float(r[1]), "end": float(r[2]), "state": r[3]}
                    for r in cur.fetchall()]
    finally:
        conn.close()


def order_lines(landing: Path) -> int:
    path = landing / "order_lines.csv"
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")) - 1


def training_throughput(runs_dir: Path) -> dict:
    """train_samples_per_s of both models from the newest run folder's metrics files."""
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    found: dict = {}
    if not runs:
        return found
    for path in sorted(runs[-1].rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        if isinstance(data, dict) and "train_samples_per_s" in data:
            found[path.stem.removesuffix("_metrics")] = {
                k: data.get(k) for k in ("train_samples_per_s", "device", "world_size")}
    return found


def mip_row(products: int) -> dict:
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_optimizer import bench_size

    return bench_size(products, step=0.05, max_discount=0.5, gap=1e-3)


def bench_preset(preset: str, seed: int, env: dict[str, str], work: Path,
                 airflow_db: dict, log_path: Path, reuse: bool = False) -> dict:
    landing = work / "landing" / preset
    if reuse and (landing / "order_lines.csv").exists():
        print(f"[bench] {preset}: reusing the market in {landing}", flush=True)
        gen_s = gen_peak = None
    else:
        print(f"[bench] {preset}: generating the market", flush=True)
        gen_s, gen_peak = timed_command(
            [PY, "-m", "local.runner", "generate", "--preset", preset, "--seed", str(seed)],
            env, log_path)
    rows = order_lines(landing)
    print(f"[bench] {preset}: {rows:,} order lines; running the weekly flow", flush=True)
    wall, peak, stages, failed = flow_with_stages(
        [PY, "-m", "local.runner", "weekly", "--dataset", preset], env, log_path, airflow_db)
    if failed:
        print(f"[bench] {preset}: the weekly flow FAILED at {', '.join(failed)} (log {log_path});"
              " the stages that ran are kept", flush=True)
    for stage in stages:
        stage["rows_per_s"] = round(rows / stage["seconds"]) if stage["seconds"] > 0 else None
    result = {"preset": preset, "order_lines": rows,
              "generate_s": None if gen_s is None else round(gen_s, 1),
              "generate_peak_gb": None if gen_peak is None else round(gen_peak / 2**30, 2),
              "flow_s": round(wall, 1),
              "dag_s": round(sum(s["seconds"] for s in stages), 1),
              "flow_peak_gb": round(peak / 2**30, 2), "stages": stages, "failed_tasks": failed}
    print(f"[bench] {preset}: flow {wall:.0f} s; Spark against DuckDB", flush=True)
    peer_json = work / f"peer_{preset}.json"
    try:
        timed_command([PY, "-m", "spark_jobs.duckdb_peer", "--compare", "--json", str(peer_json)],
                      env, log_path)
        result["spark_vs_duckdb"] = json.loads(peer_json.read_text())
    except SystemExit as error:
        result["spark_vs_duckdb"] = {"error": str(error).splitlines()[0]}
    result["training"] = training_throughput(work / "runs")
    products = _products(landing)
    print(f"[bench] {preset}: the discount MIP, {products:,} products x 11 levels", flush=True)
    result["mip"] = mip_row(products)
    return result


def _products(landing: Path) -> int:
    with open(landing / "products.csv") as handle:
        return sum(1 for _ in handle) - 1


def print_tables(results: list[dict]) -> None:
    for r in results:
        generated = (f"generate {r['generate_s']:.0f} s, {r['generate_peak_gb']:.2f} GB"
                     if r["generate_s"] is not None else "market reused")
        print(f"\n## {r['preset']}: {r['order_lines']:,} order lines; flow {r['flow_s']:.0f} s "
              f"(DAG tasks {r['dag_s']:.0f} s), peak {r['flow_peak_gb']:.2f} GB; {generated}")
        print(f"{'stage':<20} {'tasks':>5} {'seconds':>8} {'peak GB':>8} {'rows/s':>10}")
        for s in r["stages"]:
            print(f"{s['stage']:<20} {s['tasks']:>5} {s['seconds']:>8.1f} {s['peak_gb']:>8.2f} "
                  f"{s['rows_per_s'] or 0:>10,}" + ("  FAILED" if s.get("failed") else ""))
        peer = r.get("spark_vs_duckdb", {})
        if "ratio" in peer:
            print(f"Spark feature jobs {peer['spark_jobs_s']:.1f} s (+ session "
                  f"{peer['spark_session_s']:.1f} s) vs DuckDB {peer['duckdb_s']:.1f} s: "
                  f"{peer['ratio']:.2f}x")
        elif peer:
            print(f"Spark vs DuckDB: {peer.get('error')}")
        for model, t in r.get("training", {}).items():
            print(f"training {model}: {t['train_samples_per_s']:,.0f} samples/s on "
                  f"{t.get('device')} x {t.get('world_size')}")
        m = r["mip"]
        print(f"MIP {m['products']:,} products x {m['levels']} levels: build {m['build_s']:.2f} s, "
              f"solve {m['solve_s']:.2f} s, {m['status']}, gap {m['mip_gap']:.1e}")
    base = next((r for r in results if r["preset"] == "demo"), None)
    if base is None or len(results) < 2:
        return
    print("\n## time ratio / rows ratio against demo (<= 1: at most linear)")
    others = [r for r in results if r is not base]
    print(f"{'stage':<20} " + " ".join(f"{r['preset']:>8}" for r in others))
    names = [s["stage"] for s in base["stages"]] + ["whole flow"]
    for name in names:
        cells = []
        for r in others:
            rows_ratio = r["order_lines"] / base["order_lines"]
            t, t0 = _stage_s(r, name), _stage_s(base, name)
            cells.append(f"{t / t0 / rows_ratio:>8.2f}" if t and t0 else f"{'-':>8}")
        print(f"{name:<20} " + " ".join(cells))


def _stage_s(result: dict, name: str) -> float | None:
    if name == "whole flow":
        return result["dag_s"]
    return next((s["seconds"] for s in result["stages"] if s["stage"] == name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["demo", "large", "xl"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reuse", action="store_true",
                        help="keep a market generated by an earlier benchmark (same seed)")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the results here (default .local/bench/bench-<time>.json)")
    args = parser.parse_args()
    base = get_settings()
    work = base.work_dir / "bench"
    work.mkdir(parents=True, exist_ok=True)
    # a fresh start: no warehouse, lake, models or registry of an earlier benchmark
    conn = psycopg2.connect(host=base.pg_host, port=base.pg_port, dbname="postgres",
                            user=base.pg_user, password=base.pg_password)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in (BENCH_DB, f"{BENCH_DB}_airflow"):
            cur.execute(f'drop database if exists "{name}" with (force)')
        cur.execute(f'create database "{BENCH_DB}"')
    conn.close()
    for folder in work.iterdir():
        if folder.is_dir() and folder.name not in ("landing", "ground_truth"):
            shutil.rmtree(folder)
    env = dict(os.environ, PROMO_WORK_DIR=str(work), PROMO_PG_DB=BENCH_DB,
               PROMO_PG_USER=base.pg_user, PROMO_PG_PASSWORD=base.pg_password)
    airflow_db = {"host": base.pg_host, "port": base.pg_port, "dbname": f"{BENCH_DB}_airflow",
                  "user": base.pg_user, "password": base.pg_password}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = work / f"bench-{stamp}.log"
    print(f"[bench] output of the commands: {log_path}", flush=True)
    results = [bench_preset(p, args.seed, env, work, airflow_db, log_path, args.reuse)
               for p in args.presets]
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB")
    print_tables(results)
    print(f"\nmachine: {machine}")
    out = args.json or work / f"bench-{stamp}.json"
    out.write_text(json.dumps({"machine": machine, "at": stamp, "results": results}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
