"""Training throughput of both models on synthetic tensors, on this machine's device.

    python scripts/bench_training.py --products 2000 --customers 20000 --rows 200000
    python scripts/bench_training.py --nproc 2 --json bench.json   # 1 and 2 processes (torchrun)

Builds seeded random inputs of the given size (the recommender's feature tables and
customer-product rows, the forecaster's product-week rows), trains each model with the
training loop of the platform (`training.common.loop.fit`, DDP under torchrun, the GPU path on
CUDA) for `--epochs` epochs, and prints training samples per second, all processes together,
from the loop's own throughput records (the first epoch, warm-up, is left out when there are
more). `--nproc N` runs it again under `torchrun --standalone` for 2..N processes (gloo on the
CPU, one process per GPU with nccl). The numbers say how fast the models train here, not how
good they are.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.common.distributed import (
    cleanup_distributed,
    seed_everything,
    setup_distributed,
)
from training.common.loop import Throughput, fit
from training.forecaster.data import FEATURE_NAMES
from training.forecaster.fitting import fit_with_early_stopping
from training.forecaster.model import DemandForecaster
from training.forecaster.train import OptimConfig as ForecasterOptim
from training.forecaster.train import row_loss
from training.recommender.model import TwoTower, two_tower_loss
from training.recommender.train import RecommenderConfig, max_rows_per_step

log = logging.getLogger("bench_training")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=100_000,
                        help="training rows of each model (interactions, product-weeks)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=1,
                        help="also run under torchrun with 2..nproc processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def _rate(throughput: Throughput) -> float:
    epochs = throughput.epochs[1:] if len(throughput.epochs) > 1 else throughput.epochs
    return round(sum(e["samples"] for e in epochs) / sum(e["seconds"] for e in epochs), 1)


def bench(args: argparse.Namespace, workdir: Path) -> dict:
    """Samples per second of each model in this process's world (rank 0's dict)."""
    ctx = setup_distributed()
    generator = torch.Generator().manual_seed(args.seed)
    results = {}
    try:
        seed_everything(args.seed)
        cfg = RecommenderConfig()
        recommender = TwoTower(
            torch.randn(args.customers, 10, generator=generator),
            torch.randint(0, 21, (args.customers,), generator=generator),
            torch.randn(args.products, 10, generator=generator),
            torch.randint(1, 21, (args.products,), generator=generator), 20,
            dim=cfg.model.embedding_dim, hidden=cfg.model.hidden_dim)
        rows = TensorDataset(torch.randint(0, args.customers, (args.rows,), generator=generator),
                             torch.randint(0, args.products, (args.rows,), generator=generator))
        throughput = Throughput.of(ctx)
        fit(ctx, recommender, torch.optim.AdamW(recommender.parameters(), lr=cfg.optim.lr),
            rows, two_tower_loss, epochs=args.epochs, batch_size=cfg.optim.batch_size,
            seed=args.seed, checkpoint_path=workdir / "two_tower.pt", run_key="bench",
            name="two_tower", cuda_batch_scale=cfg.optim.cuda_batch_scale,
            max_batch=max_rows_per_step("two_tower", cfg, ctx, args.products),
            throughput=throughput)
        results["recommender_two_tower"] = _rate(throughput)

        optim = ForecasterOptim()
        forecaster = DemandForecaster(n_features=len(FEATURE_NAMES), n_products=args.products,
                                      n_categories=20, initial_level=1.0)
        n = args.rows
        weeks = TensorDataset(
            torch.randn(n, len(FEATURE_NAMES), generator=generator),
            torch.randint(0, args.products + 1, (n,), generator=generator),
            torch.randint(0, 21, (n,), generator=generator),
            torch.rand(n, generator=generator) * 0.5, torch.zeros(n, 3),
            torch.rand(n, 3, generator=generator) * 0.3, torch.rand(n, generator=generator),
            torch.zeros(n), torch.rand(n, generator=generator) * 3, torch.zeros(n))
        throughput = Throughput.of(ctx)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the forecaster trains (training/forecaster/train.py)
        fit_with_early_stopping(
            ctx, forecaster, torch.optim.AdamW(forecaster.parameter_groups(
                optim.lr, optim.weight_decay, optim.effect_lr_scale), fused=True),
            weeks, None, row_loss, epochs=args.epochs, patience=args.epochs,
            batch_size=optim.batch_size, seed=args.seed,
            checkpoint_path=workdir / "forecaster.pt", run_key="bench", name="forecaster",
            min_steps=optim.min_steps, cuda_batch_scale=optim.cuda_batch_scale,
            throughput=throughput)
        torch.set_num_threads(threads)
        results["forecaster"] = _rate(throughput)
        return {"device": ctx.device.type, "world_size": ctx.world_size, **results}
    finally:
        cleanup_distributed()


def _under_torchrun(args: argparse.Namespace, nproc: int, workdir: Path) -> dict:
    """This script under torchrun with `nproc` processes; rank 0's results."""
    out = workdir / f"nproc{nproc}.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", __file__, "--products", str(args.products),
               "--customers", str(args.customers), "--rows", str(args.rows),
               "--epochs", str(args.epochs), "--seed", str(args.seed), "--json", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(workdir)}
    subprocess.run(command, check=True, env=env)
    return json.loads(out.read_text())[0]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        workdir = Path(tmp)
        results = [bench(args, workdir)]
        if int(os.environ.get("RANK", "0")) != 0:
            return
        if "RANK" not in os.environ:
            results += [_under_torchrun(args, n, workdir) for n in range(2, args.nproc + 1)]
    size = {"products": args.products, "customers": args.customers, "rows": args.rows,
            "epochs": args.epochs, "threads": torch.get_num_threads()}
    if "RANK" not in os.environ:
        for result in results:
            print(f"{result['device']} x {result['world_size']}: "
                  f"recommender (two-tower) {result['recommender_two_tower']:.0f} samples/s, "
                  f"forecaster {result['forecaster']:.0f} samples/s ({size})")
    if args.json:
        args.json.write_text(json.dumps([{**r, **size} for r in results], indent=2))


if __name__ == "__main__":
    main()
