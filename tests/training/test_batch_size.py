"""The batch size adapts to the data: lowered on small sets, raised on large ones."""

from training.common.loop import effective_batch_size


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
