"""The batch size adapts to the data (lowered on small sets, raised on large ones), to the
device (larger on a GPU) and to memory (the recommenders' catalogue logits)."""

import dataclasses

import pytest
import torch

from training.common.distributed import DistContext
from training.common.loop import device_batch_size, effective_batch_size
from training.recommender.train import OptimConfig, RecommenderConfig, max_rows_per_step

CPU = DistContext(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), backend=None)
CUDA = dataclasses.replace(CPU, device=torch.device("cuda", 0))


def test_default_batch_size_on_mid_sized_data():
    assert effective_batch_size(48_000, 2, 512) == 512
    assert effective_batch_size(2 * 256 * 512, 2, 512) == 512


def test_small_data_keeps_eight_steps_an_epoch():
    assert effective_batch_size(1_000, 2, 512) == 62
    assert effective_batch_size(100, 2, 512) == 16


def test_large_data_takes_at_most_256_steps_an_epoch():
    rows = 1_050_000
    batch = effective_batch_size(rows, 2, 512)
    assert batch > 512
    assert -(-rows // (2 * batch)) <= 256
    assert -(-rows // (2 * (batch - 1))) > 256  # the smallest batch that does


def test_memory_cap_comes_before_the_step_count():
    assert effective_batch_size(1_050_000, 2, 512, max_batch=300) == 300
    assert effective_batch_size(1_000, 2, 512, max_batch=10_000) == 62  # binds only above it


def test_the_gpu_batch_is_scaled_and_the_cpu_batch_is_not():
    assert device_batch_size(512, CPU, 8) == 512
    assert device_batch_size(512, CUDA, 8) == 4096
    with pytest.raises(ValueError, match="at least 1"):
        device_batch_size(512, CUDA, 0)


def test_recommender_steps_fit_the_logit_budget_at_xl():
    cfg = RecommenderConfig()
    # 50,000 products train with the sampled softmax: a row scores its draws and its target
    scored = cfg.optim.sampled_negatives + 1
    rows = max_rows_per_step("two_tower", cfg, CPU, 50_000)
    assert rows == (1 << 25) // scored  # 128 MB of float32 logits a step
    windows = max_rows_per_step("sequence", cfg, CPU, 50_000)
    assert windows * scored * (cfg.sequence.max_length + 1) <= 1 << 25 and windows >= 21
    assert max_rows_per_step("two_tower", cfg, CUDA, 50_000) == 8 * (1 << 25) // scored
    # the full softmax's catalogue logits up to its limit
    full = cfg.optim.full_softmax_max_products
    assert max_rows_per_step("two_tower", cfg, CPU, full) == (1 << 25) // full
    small = dataclasses.replace(cfg, optim=OptimConfig(max_logit_cells=10))
    assert max_rows_per_step("two_tower", small, CPU, 50_000) == 1
    # the demo market (500 products) is not limited by it
    assert max_rows_per_step("sequence", cfg, CPU, 500) > cfg.sequence.batch_size
