"""KGBertCollator: KG-BERT input layout, filtered negatives, dynamic masking, contexts keyed by triple."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from hf_ctxdistill.data import KnowledgeGraph
from hf_ctxdistill.models import KGBertTripleEncoder, minilm_path
from hf_ctxdistill.training import KGBertCollator

# ---------------------------------------------------------------------------------------------- helpers
# (also imported by tests/models/test_kgbert.py and tests/training/test_multitask_trainer.py)

TOPICS = ["river", "mountain", "city", "country", "language", "painter", "novel", "planet", "animal", "instrument"]


def tiny_kg_dataset(num_entities: int = 20, num_train: int = 48, seed: int = 0, dense_relation: bool = False) -> DatasetDict:
    """A small KG in canonical form: entities with names and (mostly) descriptions, three relations.

    With ``dense_relation`` the train split also links about 60% of all entity pairs by ``r0``, so that
    random corruptions of those triples often hit true triples (what the negative filter must catch)."""
    rng = np.random.default_rng(seed)
    entities = {
        "id": [f"Q{i}" for i in range(num_entities)],
        "name": [f"{TOPICS[i % len(TOPICS)]} {i}" for i in range(num_entities)],
        "description": [None if i % 4 == 3 else f"a {TOPICS[i % len(TOPICS)]} described in entry {i}" for i in range(num_entities)],
    }
    relations = {"id": ["r0", "r1", "r2"], "name": ["located in", "part of", "named after"]}
    sparse: set[tuple[str, str, str]] = set()
    while len(sparse) < num_train + 8:
        h, t = rng.choice(num_entities, size=2, replace=False)
        sparse.add((f"Q{h}", f"r{rng.integers(1, 3)}", f"Q{t}"))
    ordered = sorted(sparse)
    rng.shuffle(ordered)
    train = ordered[:num_train]
    if dense_relation:
        train += [(f"Q{h}", "r0", f"Q{t}") for h in range(num_entities) for t in range(num_entities) if h != t and rng.random() < 0.6]
    splits = {"train": train, "validation": ordered[num_train : num_train + 4], "test": ordered[num_train + 4 :]}

    def table(rows):
        return Dataset.from_dict({"head": [r[0] for r in rows], "relation": [r[1] for r in rows], "tail": [r[2] for r in rows]})

    return DatasetDict(
        entities=Dataset.from_dict(entities),
        relations=Dataset.from_dict(relations),
        **{name: table(rows) for name, rows in splits.items()},
    )


def tiny_contexts(dataset: DatasetDict, every: int = 4, words: int = 40) -> dict[tuple[str, str, str], str]:
    """Contexts for the train triples except every ``every``-th one, keyed by (head, relation, tail);
    lengths vary so micro-batches hold different numbers of masked tokens."""
    out = {}
    for i, row in enumerate(dataset["train"]):
        if every and i % every == every - 1:
            continue
        key = (row["head"], row["relation"], row["tail"])
        filler = " ".join(f"fact{(i * 7 + j) % 50}" for j in range(words + (i * 13) % 30))
        out[key] = f"The {row['head']} is {row['relation']} the {row['tail']}. {filler}"
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run each module's small models on one thread (imported by the other KG-BERT test modules): on a
    shared two-core machine, intra-op threads waiting for each other slowed tiny steps many times over."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tokenizer():
    """The offline MiniLM tokenizer (skips when the package is missing)."""
    from transformers import AutoTokenizer

    try:
        path = minilm_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def kg_data() -> DatasetDict:
    return tiny_kg_dataset()


@pytest.fixture(scope="module")
def kg(kg_data) -> KnowledgeGraph:
    return KnowledgeGraph.from_dataset(kg_data)


def rows(dataset, n=None):
    n = len(dataset) if n is None else n
    return [dataset[i] for i in range(n)]


# ---------------------------------------------------------------------------------------------- layout
def test_input_layout_segments_and_labels(kg, kg_data, tokenizer):
    collator = KGBertCollator(kg, tokenizer, num_negatives=3, seed=0)
    batch = collator(rows(kg_data["train"], 2))
    assert batch["labels"].tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    first = kg_data["train"][0]
    h, r, t = kg.entity_index[first["head"]], kg.relation_index[first["relation"]], kg.entity_index[first["tail"]]
    expected = f"[CLS] {kg.entity_text(h)} [SEP] {kg.relation_names[r]} [SEP] {kg.entity_text(t)} [SEP]"
    decoded = collator.triple_encoder.decode(batch["input_ids"][:1])[0]
    assert decoded == tokenizer.decode(tokenizer(expected, add_special_tokens=False)["input_ids"])
    ids, types, mask = batch["input_ids"][0], batch["token_type_ids"][0], batch["attention_mask"][0]
    seps = (ids == tokenizer.sep_token_id).nonzero().flatten().tolist()
    assert len(seps) == 3 and ids[0] == tokenizer.cls_token_id
    # KG-BERT segments: 0 for [CLS] head [SEP], 1 for relation [SEP], 0 for tail [SEP]
    assert types[: seps[0] + 1].eq(0).all() and types[seps[0] + 1 : seps[1] + 1].eq(1).all()
    assert types[seps[1] + 1 :].eq(0).all()
    assert mask[: seps[2] + 1].eq(1).all() and mask[seps[2] + 1 :].eq(0).all()
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}  # no contexts given


def test_truncation_shortens_longer_entity_first_and_keeps_structure(tokenizer):
    data = tiny_kg_dataset()
    entities = data["entities"].to_dict()
    entities["description"][0] = " ".join(["word"] * 60)
    data["entities"] = Dataset.from_dict(entities)
    kg = KnowledgeGraph.from_dataset(data)
    encoder = KGBertTripleEncoder(kg, tokenizer, max_length=20)
    short = 3  # "country 3", no description
    short_len = len(tokenizer(kg.entity_text(short), add_special_tokens=False)["input_ids"])
    out = encoder(np.array([[0, 0, short], [short, 1, 0]]))
    assert out["input_ids"].shape[1] == 20
    for row, rel in zip(out["input_ids"], (0, 1)):
        seps = (row == tokenizer.sep_token_id).nonzero().flatten().tolist()
        assert row[0] == tokenizer.cls_token_id and len(seps) == 3 and seps[-1] == 19
        rel_len = len(tokenizer(kg.relation_names[rel], add_special_tokens=False)["input_ids"])
        assert seps[1] - seps[0] - 1 == rel_len  # the relation is not cut while entities can give way
        long_part, short_part = (seps[0] - 1, seps[2] - seps[1] - 1) if rel == 0 else (seps[2] - seps[1] - 1, seps[0] - 1)
        assert short_part == short_len  # the short entity stays whole...
        assert long_part == 20 - 4 - rel_len - short_len  # ...the long one takes the rest of the budget


def test_negatives_are_filtered_corruptions(tokenizer):
    kg = KnowledgeGraph.from_dataset(tiny_kg_dataset(dense_relation=True))
    true = kg.triples("train")
    known_share = {}
    for filtered in (True, False):
        collator = KGBertCollator(kg, tokenizer, num_negatives=5, filter_negatives=filtered, seed=3)
        drawn = []
        for epoch in range(3):
            collator.set_epoch(epoch)
            drawn.append(collator.sample_negatives(true))
        negatives, positives = np.concatenate(drawn), np.concatenate([np.repeat(true, 5, axis=0)] * 3)
        assert (negatives[:, 1] == positives[:, 1]).all()  # the relation is never corrupted
        changed = (negatives[:, 0] != positives[:, 0]).astype(int) + (negatives[:, 2] != positives[:, 2]).astype(int)
        assert (changed == 1).all()  # exactly one side replaced, never the true triple itself
        assert 0.3 < (negatives[:, 0] != positives[:, 0]).mean() < 0.7  # "both": heads and tails alike
        known_share[filtered] = kg.is_known(negatives).mean()
        # a collated batch carries exactly these corruptions, right after their true triple
        batch = collator([{"head": int(h), "relation": int(r), "tail": int(t)} for h, r, t in true[:2]])
        expected = collator.triple_encoder(np.concatenate([true[:1], drawn[-1][:5], true[1:2], drawn[-1][5:10]]))
        assert torch.equal(batch["input_ids"], expected["input_ids"])
        assert batch["labels"].tolist() == [1, 0, 0, 0, 0, 0] * 2
    assert known_share[True] == 0.0  # no known true triple among the negatives
    assert known_share[False] > 0.2  # the same draws unfiltered do hit true triples: the filter matters


def test_negatives_reproducible_and_independent_of_batching(kg, kg_data, tokenizer):
    contexts = tiny_contexts(kg_data)
    train = rows(kg_data["train"], 8)
    full_collator = KGBertCollator(kg, tokenizer, contexts, num_negatives=5, seed=7)
    split_collator = KGBertCollator(kg, tokenizer, contexts, num_negatives=5, seed=7)
    full_collator.set_epoch(2)
    split_collator.set_epoch(2)
    full = full_collator(train)
    halves = [split_collator(train[:4]), split_collator(train[4:])]
    assert torch.equal(full["labels"], torch.cat([h["labels"] for h in halves]))
    row, mlm_row = 0, 0
    for part in halves:
        n, width = part["input_ids"].shape
        assert torch.equal(full["input_ids"][row : row + n, :width], part["input_ids"])
        assert (full["input_ids"][row : row + n, width:] == tokenizer.pad_token_id).all()
        m, mlm_width = part["mlm_labels"].shape
        assert torch.equal(full["mlm_labels"][mlm_row : mlm_row + m, :mlm_width], part["mlm_labels"])
        assert torch.equal(full["mlm_input_ids"][mlm_row : mlm_row + m, :mlm_width], part["mlm_input_ids"])
        row, mlm_row = row + n, mlm_row + m
    again = KGBertCollator(kg, tokenizer, contexts, num_negatives=5, seed=7)
    again.set_epoch(2)
    assert torch.equal(again(train)["mlm_labels"], full["mlm_labels"])  # seeded: reproducible
    full_collator.set_epoch(3)
    other = full_collator(train)
    assert not torch.equal(other["input_ids"], full["input_ids"])  # a new epoch draws new negatives...
    assert not torch.equal(other["mlm_labels"], full["mlm_labels"])  # ...and a new mask (dynamic masking)


# ---------------------------------------------------------------------------------------------- masking
def test_masking_proportions_and_special_tokens(kg, tokenizer):
    contexts = {("x", "y", "z"): " ".join(f"token{i} alpha beta" for i in range(40))}
    collator = KGBertCollator(kg, tokenizer, contexts, mask_probability=0.15, context_max_length=128)
    encoded = tokenizer(contexts[("x", "y", "z")], truncation=True, max_length=128, return_special_tokens_mask=True)
    original = np.array(encoded["input_ids"])
    special = np.array(encoded["special_tokens_mask"]).astype(bool)
    assert special.sum() == 2 and len(original) == 128
    masked = kept = randomised = chosen = 0
    for draw in range(400):
        ids, labels = collator.mask_context(encoded["input_ids"], encoded["special_tokens_mask"], np.random.default_rng(draw))
        sel = labels != -100
        assert not sel[special].any() and (ids[special] == original[special]).all()
        assert (labels[sel] == original[sel]).all() and (ids[~sel] == original[~sel]).all()
        chosen += sel.sum()
        masked += (ids[sel] == tokenizer.mask_token_id).sum()
        kept += (ids[sel] == original[sel]).sum()
        randomised += ((ids[sel] != original[sel]) & (ids[sel] != tokenizer.mask_token_id)).sum()
        inserted = ids[sel][ids[sel] != original[sel]]
        assert not np.isin(inserted, [i for i in tokenizer.all_special_ids if i != tokenizer.mask_token_id]).any()
    assert chosen / (400 * (~special).sum()) == pytest.approx(0.15, abs=0.005)
    assert masked / chosen == pytest.approx(0.8, abs=0.02)
    assert randomised / chosen == pytest.approx(0.1, abs=0.02)
    assert kept / chosen == pytest.approx(0.1, abs=0.02)


def test_contexts_by_key_and_rows_without_context(kg, kg_data, tokenizer):
    train = rows(kg_data["train"], 6)
    keys = [(r["head"], r["relation"], r["tail"]) for r in train]
    # Contexts for rows 0, 2 and 5 only, inserted in reverse order, plus one for a triple not in the batch.
    contexts = {keys[5]: "the fifth context text", ("Q1", "r9", "Q2"): "unrelated", keys[2]: "second row context", keys[0]: "zeroth row context"}
    collator = KGBertCollator(kg, tokenizer, contexts, num_negatives=1)
    batch = collator(train)
    assert batch["mlm_input_ids"].shape[0] == 6  # one row per true triple
    for i in range(6):
        ids, labels = batch["mlm_input_ids"][i].clone(), batch["mlm_labels"][i]
        restored = torch.where(labels != -100, labels, ids)[batch["mlm_attention_mask"][i].bool()]
        if keys[i] in contexts:
            assert restored.tolist() == tokenizer(contexts[keys[i]])["input_ids"]
            assert (labels != -100).sum() >= 1
        else:
            assert (labels == -100).all()  # no context: no reconstruction target at all
    none = KGBertCollator(kg, tokenizer, {("a", "b", "c"): "nothing here"}, num_negatives=1)(train)
    assert (none["mlm_labels"] == -100).all() and none["mlm_input_ids"].shape[0] == 6


def test_labelled_rows_are_used_as_given(kg, kg_data, tokenizer):
    features = [dict(kg_data["validation"][0], label=1), dict(kg_data["validation"][1], label=0)]
    batch = KGBertCollator(kg, tokenizer, num_negatives=5)(features)
    assert batch["labels"].tolist() == [1, 0]


def test_missing_columns_error_mentions_remove_unused_columns(kg, tokenizer):
    with pytest.raises(KeyError, match="remove_unused_columns"):
        KGBertCollator(kg, tokenizer)([{"input_ids": [1, 2]}])
