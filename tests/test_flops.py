"""training.flops: the counting loop shared by the benchmark and the scaling study, on hand-checked values."""
import torch

from training.flops import count_flops, r1_period_flops


def test_count_flops_of_a_matrix_product_is_2_m_n_k():
    a, b = torch.randn(4, 10), torch.randn(10, 20)
    assert count_flops(lambda: a @ b) == 2 * 4 * 10 * 20


def test_r1_period_flops_counts_the_penalty_at_its_average_share():
    a = torch.randn(8, 8)
    step = lambda k: (a @ a) if k == 0 else None  # noqa: E731 - 1,024 FLOPs on the period's first step only
    assert r1_period_flops(step, r1_gamma=1.0, r1_every=4) == 1024 / 4
    assert r1_period_flops(step, r1_gamma=0.0, r1_every=4) == 1024  # no R1: the period is one step
