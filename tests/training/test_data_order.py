"""Data order, rank sharding and per-micro-batch seeds."""

import numpy as np

from training.data_order import DataOrder, RankBatchSampler, micro_batches_of_rank, phase_seed


def test_epochs_are_permutations_and_ranks_split_the_global_batch():
    order = DataOrder(10, seed=3)
    first = [order.index(p) for p in range(10)]
    second = [order.index(p) for p in range(10, 20)]
    assert sorted(first) == sorted(second) == list(range(10)) and first != second
    # Batch 4 in micro-batches of 1 over 2 ranks: rank 0 runs micro 0, 2; rank 1 runs 1, 3.
    assert micro_batches_of_rank(4, 1, 0, 2) == [0, 2] and micro_batches_of_rank(4, 1, 1, 2) == [1, 3]
    r0 = iter(RankBatchSampler(order, 4, 1, 0, 2))
    r1 = iter(RankBatchSampler(order, 4, 1, 1, 2))
    one = iter(RankBatchSampler(order, 4, 2, 0, 1))
    step0 = [next(r0), next(r1), next(r0), next(r1)]  # micro 0, 1, 2, 3
    assert sum(step0, []) == sum([next(one), next(one)], []) == [order.index(p) for p in range(4)]
    # Resuming at step 2 continues at stream position 8.
    resumed = iter(RankBatchSampler(order, 4, 2, 0, 1, start_step=2))
    assert next(resumed) == [order.index(8), order.index(9)]


def test_phase_seeds_are_distinct_and_stable():
    seeds = {phase_seed(0, s, p, m) for s in range(20) for p in ("G_main", "G_reg", "D_main", "D_reg") for m in range(4)}
    assert len(seeds) == 20 * 4 * 4
    assert phase_seed(1, 5, "D_main", 2) == phase_seed(1, 5, "D_main", 2) != phase_seed(2, 5, "D_main", 2)
    assert all(0 <= s < 2 ** 63 for s in seeds)
    np.random.SeedSequence(phase_seed(0, 0, "G_main", 0))  # usable as a seed
