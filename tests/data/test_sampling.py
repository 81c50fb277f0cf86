"""Subgraph sampling on generated KGs: size, connectivity, determinism, transductive splits."""

from __future__ import annotations

import random
import time
from collections import defaultdict

import pytest
from datasets import Dataset, DatasetDict

from hf_ctxdistill.data.sampling import sample_subgraph
from hf_ctxdistill.data.schema import ENTITY_FEATURES, RELATION_FEATURES, TRIPLE_FEATURES


def make_kg(triples, num_entities: int, num_relations: int, splits=None) -> DatasetDict:
    """A canonical KG with entities e0..e{n-1} and relations r0..r{m-1}; all triples in train unless
    ``splits`` maps split names to triple lists."""
    splits = splits or {"train": triples, "validation": [], "test": []}
    out = {
        "entities": Dataset.from_dict(
            {
                "id": [f"e{i}" for i in range(num_entities)],
                "name": [f"entity {i}" for i in range(num_entities)],
                "description": [f"description of entity {i}" if i % 2 else None for i in range(num_entities)],
            },
            features=ENTITY_FEATURES,
        ),
        "relations": Dataset.from_dict(
            {
                "id": [f"r{i}" for i in range(num_relations)],
                "name": [f"relation {i}" for i in range(num_relations)],
            },
            features=RELATION_FEATURES,
        ),
    }
    for split, rows in splits.items():
        columns = {
            "head": [h for h, _, _ in rows],
            "relation": [r for _, r, _ in rows],
            "tail": [t for _, _, t in rows],
        }
        out[split] = Dataset.from_dict(columns, features=TRIPLE_FEATURES)
    return DatasetDict(out)


def random_triples(num_entities: int, num_triples: int, num_relations: int, seed: int, offset: int = 0):
    """A random multi-relational graph over e{offset}..: a random tree (so it is connected) plus random edges;
    relation r0 is rare so the 'last triple of a relation stays in train' rule gets exercised."""
    rng = random.Random(seed)
    ids = [f"e{offset + i}" for i in range(num_entities)]
    triples = set()
    for i in range(1, num_entities):
        triples.add((ids[i], f"r{rng.randrange(1, num_relations)}", ids[rng.randrange(i)]))
    while len(triples) < num_triples:
        h, t = rng.choice(ids), rng.choice(ids)
        triples.add((h, f"r{rng.randrange(1, num_relations)}", t))
    triples.add((ids[0], "r0", ids[1]))
    return sorted(triples)


@pytest.fixture(scope="module")
def kg() -> DatasetDict:
    """Two components: 1,500 entities (4,000 triples) and a separate 30-entity one."""
    big = random_triples(1500, 4000, 6, seed=0)
    small = random_triples(30, 60, 6, seed=1, offset=1500)
    return make_kg(big + small, 1530, 6)


def rows(split: Dataset) -> list[tuple[str, str, str]]:
    return list(zip(split["head"], split["relation"], split["tail"]))


def is_connected(triples, nodes) -> bool:
    adjacency = defaultdict(set)
    for h, _, t in triples:
        adjacency[h].add(t)
        adjacency[t].add(h)
    start = next(iter(nodes))
    seen, stack = {start}, [start]
    while stack:
        for w in adjacency[stack.pop()] - seen:
            seen.add(w)
            stack.append(w)
    return seen == set(nodes)


def test_exact_size_and_entity_table(kg):
    sub = sample_subgraph(kg, 300, seed=0)
    ids = sub["entities"]["id"]
    assert len(ids) == len(set(ids)) == 300
    in_triples = {
        x for split in ("train", "validation", "test") for h, _, t in rows(sub[split]) for x in (h, t)
    }
    assert in_triples == set(ids)
    # Rows are copied from the source KG, in its order.
    source = {row["id"]: row for row in kg["entities"]}
    assert all(row == source[row["id"]] for row in sub["entities"])
    assert ids == sorted(ids, key=lambda e: int(e[1:]))
    assert sub["entities"].features == ENTITY_FEATURES and sub["train"].features == TRIPLE_FEATURES
    used = {r for split in ("train", "validation", "test") for _, r, _ in rows(sub[split])}
    assert set(sub["relations"]["id"]) == used


def test_connected_and_train_alone_connected(kg):
    sub = sample_subgraph(kg, 400, seed=3, validation_size=0.1, test_size=0.1)
    nodes = set(sub["entities"]["id"])
    everything = rows(sub["train"]) + rows(sub["validation"]) + rows(sub["test"])
    assert is_connected(everything, nodes)
    assert is_connected(rows(sub["train"]), nodes)


def test_all_triples_among_chosen_entities_are_kept(kg):
    sub = sample_subgraph(kg, 200, seed=5)
    nodes = set(sub["entities"]["id"])
    induced = {t for t in rows(kg["train"]) if t[0] in nodes and t[2] in nodes}
    assert set(rows(sub["train"])) | set(rows(sub["validation"])) | set(rows(sub["test"])) == induced


def test_transductive_splits(kg):
    sub = sample_subgraph(kg, 500, seed=1, validation_size=0.15, test_size=0.15)
    train = rows(sub["train"])
    train_entities = {x for h, _, t in train for x in (h, t)}
    train_relations = {r for _, r, _ in train}
    for split in ("validation", "test"):
        held = rows(sub[split])
        assert held, split
        assert {x for h, _, t in held for x in (h, t)} <= train_entities
        assert {r for _, r, _ in held} <= train_relations
    # The rare relation r0 (one triple) is in the subgraph only if both its ends are; then it stays in train.
    assert "r0" not in {r for _, r, _ in rows(sub["validation"]) + rows(sub["test"])}


def test_no_duplicates_and_disjoint_splits(kg):
    sub = sample_subgraph(kg, 500, seed=2, validation_size=0.1, test_size=0.1)
    splits = {s: rows(sub[s]) for s in ("train", "validation", "test")}
    for split, triples in splits.items():
        assert len(triples) == len(set(triples)), split
    assert not set(splits["train"]) & set(splits["validation"])
    assert not set(splits["train"]) & set(splits["test"])
    assert not set(splits["validation"]) & set(splits["test"])


def test_split_sizes(kg):
    sub = sample_subgraph(kg, 500, seed=4, validation_size=25, test_size=40)
    assert (sub["validation"].num_rows, sub["test"].num_rows) == (25, 40)
    sub = sample_subgraph(kg, 500, seed=4, validation_size=0.1, test_size=0.0)
    total = sum(sub[s].num_rows for s in ("train", "validation", "test"))
    assert sub["validation"].num_rows == round(0.1 * total)
    assert sub["test"].num_rows == 0


def test_deterministic_under_seed(kg):
    a = sample_subgraph(kg, 250, seed=7)
    b = sample_subgraph(kg, 250, seed=7)
    c = sample_subgraph(kg, 250, seed=8)
    for split in ("entities", "train", "validation", "test"):
        assert a[split].to_dict() == b[split].to_dict()
    assert a["entities"]["id"] != c["entities"]["id"] or rows(a["test"]) != rows(c["test"])


def test_start_entity_and_component_limits(kg):
    sub = sample_subgraph(kg, 20, seed=0, start_entity="e1510")
    assert "e1510" in sub["entities"]["id"]
    assert all(int(e[1:]) >= 1500 for e in sub["entities"]["id"])  # stays in the small component
    with pytest.raises(ValueError, match="component of 30 entities"):
        sample_subgraph(kg, 31, start_entity="e1510")
    with pytest.raises(ValueError, match="largest connected component has 1500 entities"):
        sample_subgraph(kg, 1501)
    with pytest.raises(ValueError, match="occurs in no triple"):
        sample_subgraph(kg, 10, start_entity="nobody")
    with pytest.raises(ValueError, match="num_entities"):
        sample_subgraph(kg, 1)


def test_too_many_held_out_triples_is_an_error():
    chain = [(f"e{i}", "r1", f"e{i + 1}") for i in range(9)]  # a path: every triple is a tree edge
    with pytest.raises(ValueError, match="only 0 can leave train"):
        sample_subgraph(make_kg(chain, 10, 2), 10, validation_size=1, test_size=0)


def test_pools_all_splits_and_drops_repeats():
    train = [("e0", "r1", "e1"), ("e1", "r1", "e2"), ("e2", "r1", "e0"), ("e0", "r1", "e1")]
    test = [("e2", "r1", "e0"), ("e0", "r2", "e2")]
    kg = make_kg(None, 3, 3, splits={"train": train, "validation": [], "test": test})
    sub = sample_subgraph(kg, 3, validation_size=0, test_size=0)
    assert sorted(rows(sub["train"])) == sorted({*train, *test})


def test_fast_on_a_wn18rr_sized_graph():
    big = make_kg(random_triples(40_000, 90_000, 11, seed=0), 40_000, 11)
    start = time.process_time()
    sub = sample_subgraph(big, 10_000, seed=0)
    elapsed = time.process_time() - start
    assert sub["entities"].num_rows == 10_000
    assert elapsed < 15, f"sampling took {elapsed:.1f} s of CPU"  # about 1 s when measured


def test_last_triple_of_a_relation_stays_in_train():
    path = [(f"e{i}", "r1", f"e{i + 1}") for i in range(9)]
    extra = [("e0", "r1", "e5"), ("e2", "r1", "e7"), ("e4", "r1", "e9"), ("e1", "r1", "e8")]
    loop = [("e3", "r2", "e3")]  # a self-loop never brings an entity in, so it is never a tree edge
    kg = make_kg(path + extra + loop, 10, 3)
    # 14 triples, 9 of them a spanning tree: 5 could leave train, but r2's only triple must stay.
    with pytest.raises(ValueError, match="only 4 can leave train"):
        sample_subgraph(kg, 10, validation_size=5, test_size=0)
    sub = sample_subgraph(kg, 10, validation_size=2, test_size=2)
    assert ("e3", "r2", "e3") in rows(sub["train"])
    assert sub["validation"].num_rows == sub["test"].num_rows == 2
