"""Each layout reads into the same canonical form; real-release quirks are accepted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_ctxdistill import KnowledgeGraph, load_kg
from hf_ctxdistill.data import ENTITY_FEATURES, TRIPLE_FEATURES, detect_format, read_kg
from tests.conftest import TINY_ENTITIES, TINY_TEST, TINY_TRAIN, TINY_VALID, write


def triple_set(dataset, split):
    return set(zip(dataset[split]["head"], dataset[split]["relation"], dataset[split]["tail"]))


def test_kgbert_layout_reads_canonical_form(tiny_kgbert_dir):
    kg = load_kg(tiny_kgbert_dir)
    assert set(kg) == {"entities", "relations", "train", "validation", "test"}
    assert kg["entities"].features == ENTITY_FEATURES
    assert kg["train"].features == TRIPLE_FEATURES
    assert triple_set(kg, "train") == set(TINY_TRAIN)
    assert triple_set(kg, "validation") == set(TINY_VALID)
    entities = {row["id"]: (row["name"], row["description"]) for row in kg["entities"]}
    assert entities == TINY_ENTITIES  # names from entity2text, descriptions from entity2textlong
    assert dict(zip(kg["relations"]["id"], kg["relations"]["name"]))["capital_of"] == "capital of"


def test_kgs2s_layout_matches_kgbert(tiny_kgbert_dir, tiny_kgs2s_dir):
    a, b = load_kg(tiny_kgbert_dir), load_kg(tiny_kgs2s_dir)
    assert detect_format(tiny_kgs2s_dir) == "kgs2s"
    for split in ("train", "validation", "test"):
        assert triple_set(a, split) == triple_set(b, split)
    assert sorted(a["entities"].to_list(), key=lambda r: r["id"]) == sorted(b["entities"].to_list(), key=lambda r: r["id"])


def test_kgs2s_wordnet_names_lose_pos_and_sense(tmp_path, tiny_kgs2s_dir):
    names = (tiny_kgs2s_dir / "entityid2name.txt").read_text().splitlines()
    names[1] = "0\tland reform , NN , 1"
    write(tiny_kgs2s_dir / "entityid2name.txt", "\n".join(names) + "\n")
    kg = KnowledgeGraph.from_path(tiny_kgs2s_dir)
    assert kg.entity_names[kg.entity_index["e1"]] == "land reform"


def test_wordnet_style_entity_text_is_split_into_name_and_gloss(tmp_path):
    d = tmp_path / "wn"
    write(d / "entity2text.txt", "00260881\tland reform, a redistribution of agricultural land\n00260622\treform, a change for the better")
    write(d / "relation2text.txt", "_hypernym\thypernym")  # last lines without a newline, as WN18RR ships them
    write(d / "train.tsv", "00260881\t_hypernym\t00260622\r\n")  # CRLF endings
    kg = KnowledgeGraph.from_path(d)
    i = kg.entity_index["00260881"]
    assert (kg.entity_names[i], kg.entity_descriptions[i]) == ("land reform", "a redistribution of agricultural land")
    assert kg.entity_text(i) == "land reform, a redistribution of agricultural land"
    assert kg.relation_names == ["hypernym"]
    assert kg.triples("train").tolist() == [[i, 0, kg.entity_index["00260622"]]]


def test_plain_tsv_infers_entities_and_relations(tmp_path):
    f = write(tmp_path / "my_triples.tsv", "a\tlikes\tb\nb\tlikes\tc\n")
    kg = KnowledgeGraph.from_path(f)
    assert kg.num_entities == 3 and kg.num_relations == 1
    assert kg.entity_names == kg.entity_ids  # named by id when no entity file is given
    assert len(kg.dataset["train"]) == 2


def test_plain_jsonl_with_entity_file(tmp_path):
    d = tmp_path / "plain"
    write(d / "train.jsonl", "".join(json.dumps({"head": h, "relation": r, "tail": t}) + "\n" for h, r, t in TINY_TRAIN))
    write(d / "test.jsonl", "".join(json.dumps({"head": h, "relation": r, "tail": t}) + "\n" for h, r, t in TINY_TEST))
    write(d / "entities.tsv", "".join(f"{k}\t{n}\t{t}\n" for k, (n, t) in TINY_ENTITIES.items()))
    write(d / "relations.tsv", "capital_of\tcapital of\npart_of\tpart of\n")
    result = read_kg(d)
    assert result.format == "plain"
    assert triple_set(result.dataset, "test") == set(TINY_TEST)
    assert "validation" not in result.dataset
    entities = {row["id"]: (row["name"], row["description"]) for row in result.dataset["entities"]}
    assert entities == TINY_ENTITIES


def test_pkgc_layout_with_classification_splits(tmp_path):
    d = tmp_path / "pkgc"
    write(d / "entity2label.txt", "".join(f"{k}\t{n}\n" for k, (n, _) in TINY_ENTITIES.items()))
    write(d / "entity2definition.txt", "e1\tcapital of France\n")
    write(d / "relation2label.json", json.dumps({"capital_of": "capital of", "part_of": "part of", "unused": "x"}))
    write(d / "train.txt", "".join("\t".join(r) + "\n" for r in TINY_TRAIN))
    write(d / "test.txt", "".join("\t".join(r) + "\n" for r in TINY_TEST))
    write(d / "test_pos.txt", "e1\tpart_of\te5\n")
    write(d / "test_neg.txt", "e3\tpart_of\te2\ne3\tpart_of\te2\n")  # repeated negative, as the release has
    kg = KnowledgeGraph.from_path(d)
    assert kg.relation_ids == ["capital_of", "part_of"]  # only relations that occur are kept
    assert kg.labels("test_classification").tolist() == [1, 0, 0]  # classification rows keep repeats
    assert kg.report.num_duplicates == 1
    assert kg.entity_descriptions[kg.entity_index["e1"]] == "capital of France"
    assert kg.entity_descriptions[kg.entity_index["e2"]] is None


def test_knowledge_graph_index_and_known_triples(tiny_kgbert_dir):
    kg = KnowledgeGraph.from_path(tiny_kgbert_dir)
    all_triples = set(TINY_TRAIN) | set(TINY_VALID) | set(TINY_TEST)
    assert set(kg.decode(kg.known_triples())) == all_triples
    # Membership agrees with a plain Python set for every possible triple.
    grid = np.array(np.meshgrid(range(kg.num_entities), range(kg.num_relations), range(kg.num_entities))).reshape(3, -1).T
    expected = [t in all_triples for t in kg.decode(grid)]
    assert kg.is_known(grid).tolist() == expected
    assert kg.encode(TINY_TRAIN).tolist() == kg.triples("train").tolist()
    with pytest.raises(KeyError, match="unknown entity id 'nope'"):
        kg.encode([("nope", "part_of", "e1")])
