import itertools
import random

import pytest

from distilbert_catalog.inference import plan_batches


def cost(lengths, batches, call_cost):
    return sum(call_cost + len(b) * lengths[b.stop - 1] for b in batches)


def feasible(lengths, batches, max_rows, max_tokens):
    covered = [i for b in batches for i in b]
    return covered == list(range(len(lengths))) and all(
        len(b) <= max_rows and (len(b) == 1 or len(b) * lengths[b.stop - 1] <= max_tokens)
        for b in batches)


def all_partitions(n):
    """Every way to cut range(n) into consecutive non-empty ranges."""
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0, *(i + 1 for i, cut in enumerate(cuts) if cut), n]
        yield [range(a, b) for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("seed", range(40))
def test_plan_is_the_cheapest_feasible_cut(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 10)
    lengths = sorted(rng.choice([rng.randint(3, 40), rng.randint(3, 400)]) for _ in range(n))
    max_rows, max_tokens, call_cost = rng.randint(1, 6), rng.choice([64, 300, 2048]), \
        rng.choice([0, 8, 32, 500])
    plan = plan_batches(lengths, max_rows, max_tokens, call_cost)
    assert feasible(lengths, plan, max_rows, max_tokens)
    best = min(cost(lengths, p, call_cost) for p in all_partitions(n)
               if feasible(lengths, p, max_rows, max_tokens))
    assert cost(lengths, plan, call_cost) == best


def test_plan_splits_where_lengths_jump_and_keeps_equal_lengths_together():
    lengths = [20] * 10 + [300] * 6
    assert plan_batches(lengths, max_rows=32, max_tokens=2048) == [range(0, 10), range(10, 16)]
    # rows and tokens caps: 300-token rows come at most 6 to a 2048-token batch
    # (where several cuts cost the same, which of them comes back is not part of the contract)
    assert sorted(map(len, plan_batches([300] * 13, max_rows=32, max_tokens=2048))) == [1, 6, 6]
    assert sorted(map(len, plan_batches([5] * 7, max_rows=3))) == [1, 3, 3]


def test_a_row_longer_than_the_token_cap_still_gets_a_batch_of_its_own():
    assert plan_batches([10, 5000], max_rows=8, max_tokens=100) == [range(0, 1), range(1, 2)]
    assert plan_batches([], max_rows=8) == []


def test_predictor_answers_in_input_order_whatever_the_batches(emotion_model):
    """Mixed lengths in one request: the planned batches change, the answers do not."""
    import distilbert_catalog as dc

    texts = ["ok", "i feel so happy " * 30, "scared", "i am terrified of the dark night " * 8,
             "joy", "i feel delighted and cheerful and glad today"]
    rows = [{"input_string": t} for t in texts]
    one_by_one = dc.load_model(emotion_model.mlflow_model_dir, batch_size=1, backend="fp32")
    planned = dc.load_model(emotion_model.mlflow_model_dir, batch_size=32, backend="fp32")
    single = [one_by_one.predict([row], {"top_k": 2})[0] for row in rows]
    together = planned.predict(rows, {"top_k": 2})
    assert [[a["label"] for a in answer] for answer in together] == \
        [[a["label"] for a in answer] for answer in single]
    for a, b in zip(together, single):
        assert [x["score"] for x in a] == pytest.approx([x["score"] for x in b], abs=1e-5)
