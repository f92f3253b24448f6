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


def test_warm_start_subset_comes_first_then_full_epochs():
    from training.data_order import warmup_positions, warmup_subset
    # 10 kimg-equivalent positions: warmup 0.018 kimg at batch 4 = 18 images -> 5 steps = 20 positions.
    assert warmup_positions(0.018, 4) == 20 and warmup_positions(0.0, 4) == 0
    order = DataOrder(50, seed=3, warmup_positions=20, warmup_items=5)
    subset = warmup_subset(50, 3, 5)
    assert len(subset) == 5 and len(set(subset.tolist())) == 5 and subset.max() < 50
    warm = [order.index(p) for p in range(20)]
    # Four passes over the same five items, each pass a permutation of them.
    for k in range(4):
        assert sorted(warm[5 * k:5 * k + 5]) == subset.tolist()
    assert warm[:5] != warm[5:10] or warm[5:10] != warm[10:15]
    # After the warm start: full epochs over all 50 items, as an order without a subset would draw them.
    after = [order.index(p) for p in range(20, 70)]
    plain = DataOrder(50, seed=3)
    assert sorted(after) == list(range(50)) and after == [plain.index(p) for p in range(50)]
    # No subset (0, or at least the set's size) = the plain order from position 0.
    for n in (0, 50, 80):
        same = DataOrder(50, seed=3, warmup_positions=20, warmup_items=n)
        assert [same.index(p) for p in range(30)] == [plain.index(p) for p in range(30)]
