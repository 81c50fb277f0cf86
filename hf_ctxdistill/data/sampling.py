"""Carve a small, connected link-prediction benchmark out of any KG in the canonical form.

:func:`sample_subgraph` grows a connected set of entities from a start entity, keeps every triple among
them and splits those triples into train / validation / test so that every entity and relation of the
validation and test splits also occurs in train (the transductive setting of WN18RR and FB15k-237).
It works on any canonical ``DatasetDict`` (e.g. the whole of WordNet from
:func:`hf_ctxdistill.data.wordnet.read_wordnet`, or WN18RR itself), and is deterministic for a seed.
"""

from __future__ import annotations

import logging
import random

import pyarrow as pa
from datasets import Dataset, DatasetDict, Features

from .schema import ENTITIES, ENTITY_FEATURES, RELATION_FEATURES, RELATIONS, TRIPLE_FEATURES, TRIPLE_SPLITS

logger = logging.getLogger(__name__)


def sample_subgraph(
    kg: DatasetDict,
    num_entities: int,
    *,
    seed: int = 0,
    validation_size: int | float = 0.05,
    test_size: int | float = 0.05,
    start_entity: str | None = None,
) -> DatasetDict:
    """A connected subgraph of exactly ``num_entities`` entities, split for transductive link prediction.

    How it is built:

    1. The triples of all link-prediction splits of ``kg`` (``train``, ``validation``, ``test``; exact
       repeats kept once) form an undirected graph; classification splits are ignored.
    2. Growth starts at ``start_entity`` (default: an entity drawn with ``seed`` among those whose
       connected component is large enough) and repeatedly adds the far end of a random edge leaving the
       current set. Picking edges rather than frontier entities favours entities with many links into
       the set, which gives denser subgraphs than plain breadth-first search.
    3. Every triple between two chosen entities is kept. The edges that brought each entity in form a
       spanning tree; those stay in ``train``, so train alone is connected and holds every entity.
    4. Validation and test triples are drawn at random from the others, skipping any whose relation
       would then be missing from train.

    Args:
        kg: a KG in the canonical form (see :mod:`hf_ctxdistill.data.schema`).
        num_entities: how many entities the subgraph has (at least 2).
        seed: seeds every random choice; the same inputs and seed give the same subgraph and splits.
        validation_size, test_size: a fraction (``float`` in [0, 1)) of the subgraph's triples, rounded,
            or an exact number of triples (``int``).
        start_entity: the entity growth starts from (its connected component must be large enough).

    Returns:
        A canonical ``DatasetDict``: ``entities`` and ``relations`` limited to those the subgraph uses
        (rows copied from ``kg``, in ``kg``'s order), ``train``, ``validation``, ``test``.

    Raises:
        ValueError: ``num_entities`` exceeds the largest connected component (or that of
            ``start_entity``), or fewer triples than asked for can leave train.
    """
    if isinstance(num_entities, bool) or not isinstance(num_entities, int) or num_entities < 2:
        raise ValueError(f"num_entities must be an integer >= 2, got {num_entities!r}")
    rng = random.Random(seed)

    heads, rels, tails, entity_ids, relation_ids = _indexed_triples(kg)
    num_nodes = len(entity_ids)
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(num_nodes)]
    for i, (h, t) in enumerate(zip(heads, tails)):
        if h != t:  # a self-loop connects nothing
            adjacency[h].append((t, i))
            adjacency[t].append((h, i))
    component, sizes = _components(adjacency)

    if start_entity is not None:
        start = _find_start(start_entity, entity_ids)
        if sizes[component[start]] < num_entities:
            raise ValueError(
                f"start entity {start_entity!r} lies in a connected component of {sizes[component[start]]} entities, "
                f"fewer than the {num_entities} asked for"
            )
    else:
        candidates = [v for v in range(num_nodes) if sizes[component[v]] >= num_entities]
        if not candidates:
            largest = max(sizes, default=0)
            raise ValueError(
                f"the KG's largest connected component has {largest} entities (counting only entities that occur in "
                f"triples), fewer than the {num_entities} asked for"
            )
        start = rng.choice(candidates)

    chosen, tree = _grow(start, num_entities, adjacency, rng)
    in_subgraph = bytearray(num_nodes)
    for v in chosen:
        in_subgraph[v] = 1
    kept = [i for i in range(len(heads)) if in_subgraph[heads[i]] and in_subgraph[tails[i]]]
    num_validation = _split_size(validation_size, len(kept), "validation_size")
    num_test = _split_size(test_size, len(kept), "test_size")
    held_out = _hold_out(kept, set(tree), rels, num_validation + num_test, rng)
    if len(held_out) < num_validation + num_test:
        raise ValueError(
            f"the {num_entities}-entity subgraph has {len(kept)} triples, of which only {len(held_out)} can leave train "
            f"(the {len(tree)} spanning-tree triples and the last triple of each relation must stay); "
            f"asked for {num_validation} validation + {num_test} test: ask for fewer or for more entities"
        )
    validation, test = sorted(held_out[:num_validation]), sorted(held_out[num_validation:])
    leaving = set(held_out)
    train = [i for i in kept if i not in leaving]

    def triples(indices: list[int]) -> Dataset:
        columns = {
            "head": [entity_ids[heads[i]] for i in indices],
            "relation": [relation_ids[rels[i]] for i in indices],
            "tail": [entity_ids[tails[i]] for i in indices],
        }
        return _dataset(columns, TRIPLE_FEATURES)

    used_entities = {entity_ids[v] for v in chosen}
    used_relations = {relation_ids[rels[i]] for i in kept}
    start_id = entity_ids[start]
    logger.info(
        "sampled %d entities around %r (component of %d): %d train / %d validation / %d test triples, %d relations",
        num_entities,
        start_id,
        sizes[component[start]],
        len(train),
        len(validation),
        len(test),
        len(used_relations),
    )
    return DatasetDict(
        {
            ENTITIES: _rows(kg, ENTITIES, used_entities, ENTITY_FEATURES),
            RELATIONS: _rows(kg, RELATIONS, used_relations, RELATION_FEATURES),
            "train": triples(train),
            "validation": triples(validation),
            "test": triples(test),
        }
    )


def _indexed_triples(kg: DatasetDict) -> tuple[list[int], list[int], list[int], list[str], list[str]]:
    """All link-prediction triples as index lists (repeats dropped), with the index -> id lists.

    Indices follow first appearance, so every later step is deterministic (no iteration over sets of strings).
    """
    entity_index: dict[str, int] = {}
    relation_index: dict[str, int] = {}
    seen: set[tuple[int, int, int]] = set()
    heads: list[int] = []
    rels: list[int] = []
    tails: list[int] = []
    splits = [split for split in TRIPLE_SPLITS if split in kg]
    if not splits:
        raise ValueError(f"the KG has none of the splits {TRIPLE_SPLITS} (has: {list(kg)})")
    for split in splits:
        table = kg[split].with_format("arrow")[:]  # Arrow columns: far faster than row access
        for h, r, t in zip(*(table.column(name).to_pylist() for name in ("head", "relation", "tail"))):
            key = (
                entity_index.setdefault(h, len(entity_index)),
                relation_index.setdefault(r, len(relation_index)),
                entity_index.setdefault(t, len(entity_index)),
            )
            if key not in seen:
                seen.add(key)
                heads.append(key[0])
                rels.append(key[1])
                tails.append(key[2])
    return heads, rels, tails, list(entity_index), list(relation_index)


def _components(adjacency: list[list[tuple[int, int]]]) -> tuple[list[int], list[int]]:
    """Connected component of every node (undirected) and the size of each component."""
    component = [-1] * len(adjacency)
    sizes: list[int] = []
    for root in range(len(adjacency)):
        if component[root] != -1:
            continue
        label = len(sizes)
        component[root] = label
        stack, size = [root], 0
        while stack:
            v = stack.pop()
            size += 1
            for w, _ in adjacency[v]:
                if component[w] == -1:
                    component[w] = label
                    stack.append(w)
        sizes.append(size)
    return component, sizes


def _grow(
    start: int, num_entities: int, adjacency: list[list[tuple[int, int]]], rng: random.Random
) -> tuple[list[int], list[int]]:
    """Random edge-driven growth: the chosen nodes, in order, and the triple that brought each one in."""
    chosen = [start]
    seen = {start}
    tree: list[int] = []
    boundary = list(adjacency[start])  # edges out of the set; ones whose far end joined meanwhile are skipped
    while len(chosen) < num_entities:
        j = rng.randrange(len(boundary))
        boundary[j], boundary[-1] = boundary[-1], boundary[j]  # O(1) removal of a random element
        node, triple = boundary.pop()
        if node in seen:
            continue
        seen.add(node)
        chosen.append(node)
        tree.append(triple)
        boundary.extend(adjacency[node])
    return chosen, tree


def _split_size(size: int | float, total: int, what: str) -> int:
    if isinstance(size, bool):
        raise ValueError(f"{what} must be an int or a float, got {size!r}")
    if isinstance(size, int):
        if size < 0:
            raise ValueError(f"{what} must be >= 0, got {size}")
        return size
    if isinstance(size, float) and 0.0 <= size < 1.0:
        return round(size * total)
    raise ValueError(f"{what} must be a fraction in [0, 1) or a number of triples, got {size!r}")


def _hold_out(kept: list[int], tree: set[int], rels: list[int], wanted: int, rng: random.Random) -> list[int]:
    """Draw up to ``wanted`` triples that may leave train: not in the spanning tree, and not the last
    remaining triple of their relation."""
    remaining: dict[int, int] = {}
    for i in kept:
        remaining[rels[i]] = remaining.get(rels[i], 0) + 1
    candidates = [i for i in kept if i not in tree]
    rng.shuffle(candidates)
    held: list[int] = []
    for i in candidates:
        if len(held) == wanted:
            break
        if remaining[rels[i]] > 1:
            remaining[rels[i]] -= 1
            held.append(i)
    return held


def _find_start(start_entity: str, entity_ids: list[str]) -> int:
    try:
        return entity_ids.index(start_entity)
    except ValueError:
        raise ValueError(f"start entity {start_entity!r} occurs in no triple of the KG") from None


def _rows(kg: DatasetDict, split: str, ids: set[str], features: Features) -> Dataset:
    """The rows of ``kg[split]`` whose id is in ``ids``, in ``kg``'s order; ids without a row get one with
    the id as name (as the readers do for undeclared ids)."""
    if split in kg:
        table = kg[split].with_format("arrow")[:]
        all_ids = table.column("id").to_pylist()
        positions = [i for i, key in enumerate(all_ids) if key in ids]
        columns = {name: table.column(name).take(positions).to_pylist() for name in features}
        found = {all_ids[i] for i in positions}
    else:
        columns = {name: [] for name in features}
        found = set()
    missing = [key for key in ids if key not in found]
    if missing:
        logger.warning(
            "%d %s used by triples have no row in '%s'; their id serves as name", len(missing), split, split
        )
        for key in sorted(missing):
            for name in features:
                columns[name].append(key if name in ("id", "name") else None)
    return _dataset(columns, features)


def _dataset(columns: dict[str, list], features: Features) -> Dataset:
    return Dataset(pa.table(columns, schema=features.arrow_schema))
