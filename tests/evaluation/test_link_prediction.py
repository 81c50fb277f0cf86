"""LinkPredictionEvaluator against a brute-force filtered ranking, plus sharding, resuming and sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_ctxdistill.evaluation import (
    LinkPredictionEvaluator,
    LinkPredictionResult,
    merge_results,
    rank_metrics,
)

NUM_ENTITIES = 23  # prime, so candidate batches never line up with query boundaries
NUM_RELATIONS = 3


class ToyGraph:
    """The KnowledgeGraph interface the evaluator needs, over small numpy arrays."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)

        def sample(n):
            return np.stack(
                [
                    rng.integers(0, NUM_ENTITIES, n),
                    rng.integers(0, NUM_RELATIONS, n),
                    rng.integers(0, NUM_ENTITIES, n),
                ],
                axis=1,
            ).astype(np.int64)

        train = sample(150)
        test = sample(12)
        # Some test triples share (h, r) or (r, t) with train triples, so the filter has work to do;
        # one test triple also appears in train (duplicates must not break the filter).
        test[:4, :2] = train[:4, :2]
        test[4:7, 1:] = train[4:7, 1:]
        test[7] = train[7]
        self.splits = {"train": train, "validation": sample(10), "test": test}
        self.num_entities = NUM_ENTITIES
        self.num_relations = NUM_RELATIONS
        self.entity_ids = [f"e{i}" for i in range(NUM_ENTITIES)]
        self.relation_ids = [f"r{i}" for i in range(NUM_RELATIONS)]

    def triples(self, split):
        return self.splits[split]

    def known_triples(self):
        return np.unique(np.concatenate(list(self.splits.values())), axis=0)


def score_table(seed: int = 1):
    # Integer scores from a small range: ties everywhere.
    return (
        np.random.default_rng(seed)
        .integers(0, 4, size=(NUM_ENTITIES, NUM_RELATIONS, NUM_ENTITIES))
        .astype(np.float32)
    )


class CountingScorer:
    """A TripleScorer that looks scores up in a table and records every call."""

    def __init__(self, table, fail_after: int | None = None, on_call=None):
        self.table = table
        self.fail_after = fail_after
        self.on_call = on_call
        self.calls = 0
        self.batches: list[np.ndarray] = []

    def __call__(self, triples):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        self.batches.append(triples.copy())
        if self.on_call is not None:
            self.on_call(self.calls)
        return self.table[triples[:, 0], triples[:, 1], triples[:, 2]]


class TableCandidateScorer:
    """The score_tails / score_heads protocol over the same table (returns torch tensors)."""

    def __init__(self, table):
        self.table = torch.from_numpy(table)
        self.calls = 0

    def score_tails(self, heads, relations):
        self.calls += 1
        return self.table[heads, relations, :]

    def score_heads(self, relations, tails):
        self.calls += 1
        return self.table[:, relations, tails].T


def brute_force(graph, table, tie_rule="realistic", filtered=True):
    """Plain reference: for each test triple, head query then tail query, loop over all entities."""
    known = {tuple(t) for t in graph.known_triples().tolist()} if filtered else set()
    ranks = []
    for h, r, t in graph.triples("test").tolist():
        for side in ("head", "tail"):
            target = h if side == "head" else t
            target_score = table[h, r, t]
            better = better_or_equal = 0
            for e in range(NUM_ENTITIES):
                candidate = (e, r, t) if side == "head" else (h, r, e)
                if e != target and candidate in known:
                    continue
                score = table[candidate]
                better += score > target_score
                better_or_equal += score >= target_score
            optimistic, pessimistic = better + 1, better_or_equal
            ranks.append(
                {"optimistic": optimistic, "pessimistic": pessimistic}.get(
                    tie_rule, (optimistic + pessimistic) / 2
                )
            )
    return np.array(ranks, dtype=float)


@pytest.fixture(scope="module")
def graph():
    return ToyGraph()


@pytest.fixture(scope="module")
def table():
    return score_table()


@pytest.mark.parametrize("batch_size", [1, 7, 23, 50, 10_000])
def test_triple_protocol_matches_brute_force(graph, table, batch_size):
    evaluator = LinkPredictionEvaluator(graph, batch_size=batch_size, progress=False)
    scorer = CountingScorer(table)
    result = evaluator.run(scorer)
    for tie_rule in ("realistic", "optimistic", "pessimistic"):
        np.testing.assert_array_equal(result.ranks(tie_rule), brute_force(graph, table, tie_rule))
    # Exactly one model input per (query, candidate), in full batches except the last.
    sizes = [len(b) for b in scorer.batches]
    assert sum(sizes) == result.pairs_scored == 2 * 12 * NUM_ENTITIES
    assert all(s == batch_size for s in sizes[:-1]) and sizes[-1] <= batch_size
    assert result.complete and result.num_queries == 24


def test_candidate_protocol_matches_brute_force(graph, table):
    evaluator = LinkPredictionEvaluator(graph, queries_per_call=5, progress=False)
    scorer = TableCandidateScorer(table)
    result = evaluator.run(scorer)
    np.testing.assert_array_equal(result.ranks(), brute_force(graph, table))
    assert scorer.calls == 2 * 5  # 5 blocks of up to 5 queries, one call per direction each
    forced = evaluator.run(CountingScorer(table), protocol="triples")
    np.testing.assert_array_equal(forced.ranks(), result.ranks())


def test_unfiltered_and_metrics(graph, table):
    raw = LinkPredictionEvaluator(graph, filtered=False, progress=False).run(CountingScorer(table))
    np.testing.assert_array_equal(raw.ranks(), brute_force(graph, table, filtered=False))
    filtered = LinkPredictionEvaluator(graph, progress=False).run(CountingScorer(table))
    assert (raw.ranks() >= filtered.ranks()).all() and (raw.ranks() > filtered.ranks()).any()

    expected = brute_force(graph, table)
    metrics = filtered.metrics()
    assert metrics["overall"]["mrr"] == pytest.approx(rank_metrics(expected)["mrr"])
    assert metrics["head"]["mr"] == pytest.approx(expected[0::2].mean())
    assert metrics["tail"]["hits@10"] == pytest.approx(np.mean(expected[1::2] <= 10))
    relations = np.repeat(graph.triples("test")[:, 1], 2)
    assert metrics["per_relation"]["r1"]["overall"]["mrr"] == pytest.approx(
        np.mean(1 / expected[relations == 1])
    )


def test_evaluate_returns_trainer_style_keys(graph, table):
    evaluator = LinkPredictionEvaluator(graph, progress=True, tie_rule="pessimistic")
    metrics = evaluator.evaluate(CountingScorer(table))
    for key in (
        "eval_mrr",
        "eval_mr",
        "eval_hits@1",
        "eval_hits@3",
        "eval_hits@10",
        "eval_head_mrr",
        "eval_tail_mrr",
    ):
        assert key in metrics
    assert metrics["eval_mr"] == pytest.approx(brute_force(graph, table, "pessimistic").mean())
    bare = evaluator.evaluate(CountingScorer(table), metric_key_prefix=None, per_relation=True)
    assert bare["mrr"] == metrics["eval_mrr"] and "rel_r0_mrr" in bare


def test_shards_merge_to_the_unsharded_run(graph, table, tmp_path):
    full = LinkPredictionEvaluator(graph, batch_size=10, progress=False).run(CountingScorer(table))
    evaluator = LinkPredictionEvaluator(graph, batch_size=10, output_dir=tmp_path, progress=False)
    shards = [evaluator.run(CountingScorer(table), shard_index=i, num_shards=3) for i in range(3)]
    assert [s.num_queries for s in shards] == [8, 8, 8] and not shards[0].complete
    assert len(list(tmp_path.glob("lp-ranks-*.npz"))) == 3

    for merged in (evaluator.merge(), merge_results(shards), merge_results(tmp_path, require_complete=True)):
        assert merged.complete
        np.testing.assert_array_equal(merged.query_ids, np.arange(24))
        np.testing.assert_array_equal(merged.ranks(), full.ranks())
        np.testing.assert_array_equal(merged.triples, full.triples)
        assert merged.metrics() == full.metrics()
    with pytest.raises(ValueError, match="8 of 24"):
        merge_results(shards[:1], require_complete=True)

    # Explicit start/stop ranges overlapping finished shards score nothing new.
    again = CountingScorer(table)
    overlap = evaluator.run(again, start=4, stop=20)
    assert again.calls == 0 and overlap.num_queries == 16


def test_resume_after_crash_does_not_rescore_finished_queries(graph, table, tmp_path):
    reference = LinkPredictionEvaluator(graph, batch_size=10, progress=False).run(CountingScorer(table))
    evaluator = LinkPredictionEvaluator(graph, batch_size=10, output_dir=tmp_path, progress=False)
    crashing = CountingScorer(table, fail_after=20)
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluator.run(crashing)
    saved = LinkPredictionResult.load(next(tmp_path.glob("lp-ranks-*.npz")))
    # 20 calls x 10 pairs = 200 pairs: the first 200 // 23 = 8 queries were complete and saved.
    assert saved.num_queries == 8
    np.testing.assert_array_equal(saved.ranks(), reference.ranks()[:8])

    resumed_scorer = CountingScorer(table)
    resumed = evaluator.run(resumed_scorer)
    assert resumed.complete
    np.testing.assert_array_equal(resumed.ranks(), reference.ranks())
    scored = np.concatenate(resumed_scorer.batches)
    assert len(scored) == (24 - 8) * NUM_ENTITIES  # only the unfinished queries
    # Candidates come query by query: block i must be exactly the candidates of query 8 + i.
    blocks = scored.reshape(24 - 8, NUM_ENTITIES, 3)
    for i, query in enumerate(range(8, 24)):
        expected = np.tile(evaluator.query_triples[query], (NUM_ENTITIES, 1))
        expected[:, 2 if evaluator.query_sides[query] == 1 else 0] = np.arange(NUM_ENTITIES)
        np.testing.assert_array_equal(blocks[i], expected)
    # A third run finds everything done and scores nothing.
    idle = CountingScorer(table)
    assert evaluator.run(idle).complete and idle.calls == 0


def test_progress_is_saved_periodically(graph, table, tmp_path):
    evaluator = LinkPredictionEvaluator(
        graph, batch_size=23, output_dir=tmp_path, save_every_seconds=0, progress=False
    )
    seen = []

    def look(call):
        files = list(tmp_path.glob("lp-ranks-*.npz"))
        seen.append(LinkPredictionResult.load(files[0]).num_queries if files else 0)

    evaluator.run(CountingScorer(table, on_call=look))
    # One query per call; before call k the previous k - 1 queries are already on disk.
    assert seen == list(range(24))


def test_sampled_queries_are_deterministic(graph, table):
    full = LinkPredictionEvaluator(graph, progress=False).run(CountingScorer(table))
    first = LinkPredictionEvaluator(graph, num_queries=9, seed=3, progress=False)
    second = LinkPredictionEvaluator(graph, num_queries=9, seed=3, progress=False)
    other = LinkPredictionEvaluator(graph, num_queries=9, seed=4, progress=False)
    np.testing.assert_array_equal(first.query_triples, second.query_triples)
    np.testing.assert_array_equal(first.query_sides, second.query_sides)
    assert first.fingerprint == second.fingerprint != other.fingerprint
    assert first.num_queries == 9

    result = first.run(CountingScorer(table))
    # Sampled queries keep query-list order and get exactly the ranks they get in the full run.
    positions = [
        next(i for i in range(24) if full.triple_index[i] == row and full.sides[i] == side)
        for row, side in zip(first.query_rows, first.query_sides)
    ]
    assert positions == sorted(positions)
    np.testing.assert_array_equal(result.ranks(), full.ranks()[positions])


def test_sampled_triples_keep_both_directions_and_split_order(graph):
    sampled = LinkPredictionEvaluator(graph, num_triples=5, seed=3, progress=False)
    expected_rows = np.sort(np.random.default_rng(3).choice(12, size=5, replace=False))
    np.testing.assert_array_equal(sampled.query_rows, np.repeat(expected_rows, 2))
    assert sampled.num_queries == 10
    same = LinkPredictionEvaluator(graph, triple_indices=expected_rows, progress=False)
    assert sampled.fingerprint == same.fingerprint  # the same queries: resumable across both spellings
    everything = LinkPredictionEvaluator(graph, num_triples=50, seed=3, progress=False)
    assert everything.num_queries == 24
    with pytest.raises(ValueError, match="num_triples must be >= 1"):
        LinkPredictionEvaluator(graph, num_triples=0, progress=False)


def test_subset_and_single_side(graph, table):
    evaluator = LinkPredictionEvaluator(graph, triple_indices=[2, 5], sides=("tail",), progress=False)
    result = evaluator.run(CountingScorer(table))
    expected = brute_force(graph, table)
    np.testing.assert_array_equal(result.ranks(), expected[[5, 11]])
    assert result.sides.tolist() == [1, 1]


def test_mismatched_output_dir_and_disagreeing_shards_raise(graph, table, tmp_path):
    LinkPredictionEvaluator(graph, output_dir=tmp_path, progress=False).run(CountingScorer(table), stop=4)
    other = LinkPredictionEvaluator(graph, num_queries=5, output_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="different evaluation"):
        other.run(CountingScorer(table))

    evaluator = LinkPredictionEvaluator(graph, progress=False)
    a = evaluator.run(CountingScorer(table), start=0, stop=4)
    b = evaluator.run(CountingScorer(table + np.float32(np.arange(NUM_ENTITIES))), start=2, stop=6)
    with pytest.raises(ValueError, match="disagree"):
        merge_results([a, b])


def test_nan_scores_raise_and_keep_finished_work(graph, table, tmp_path):
    broken = table.copy()
    h, r, t = graph.triples("test")[3]
    broken[h, r, :] = np.nan  # the tail query of test triple 3 (query 7) sees NaNs
    evaluator = LinkPredictionEvaluator(graph, batch_size=23, output_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        evaluator.run(CountingScorer(broken))
    saved = LinkPredictionResult.load(next(tmp_path.glob("lp-ranks-*.npz")))
    assert saved.num_queries >= 1 and 7 not in saved.query_ids.tolist()


def test_bad_scorer_output_raises(graph):
    evaluator = LinkPredictionEvaluator(graph, progress=False)
    with pytest.raises(ValueError, match="shape"):
        evaluator.run(lambda triples: np.zeros(len(triples) + 1))
    with pytest.raises(TypeError, match="score_triples"):
        evaluator.run(torch.nn.Linear(3, 1))


def test_real_knowledge_graph_class(table):
    datasets = pytest.importorskip("datasets")
    kg_module = pytest.importorskip("hf_ctxdistill.data.knowledge_graph")
    toy = ToyGraph()
    entities = datasets.Dataset.from_dict(
        {"id": toy.entity_ids, "name": toy.entity_ids, "description": [None] * NUM_ENTITIES}
    )
    relations = datasets.Dataset.from_dict({"id": toy.relation_ids, "name": toy.relation_ids})

    def rows(split):
        array = toy.triples(split)
        return datasets.Dataset.from_dict(
            {
                key: [toy.entity_ids[i] if key != "relation" else toy.relation_ids[i] for i in array[:, c]]
                for c, key in enumerate(("head", "relation", "tail"))
            }
        )

    dataset = datasets.DatasetDict(
        {"entities": entities, "relations": relations, **{s: rows(s) for s in toy.splits}}
    )
    graph = kg_module.KnowledgeGraph(dataset)
    result = LinkPredictionEvaluator(graph, progress=False).run(CountingScorer(table))
    np.testing.assert_array_equal(result.ranks(), brute_force(toy, table))
