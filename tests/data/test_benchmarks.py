"""The public benchmarks read in every layout give the published counts (skipped without the data)."""

from __future__ import annotations

import pytest

from hf_ctxdistill import KnowledgeGraph

WN18RR = {"entities": 40_943, "relations": 11, "train": 86_835, "validation": 3_034, "test": 3_134}
FB15K_237N = {"entities": 14_541, "relations": 93, "train": 87_282, "validation": 7_041, "test": 8_226}


@pytest.fixture(scope="module")
def wn18rr(shared_data):
    return {layout: KnowledgeGraph.from_path(shared_data / "WN18RR" / layout) for layout in ("kgbert_format", "kgs2s_format")}


@pytest.mark.parametrize("layout", ["kgbert_format", "kgs2s_format"])
def test_wn18rr_counts(wn18rr, layout):
    kg = wn18rr[layout]
    assert {k: v for k, v in kg.statistics().items() if k in WN18RR} == WN18RR
    assert kg.report.num_skipped == 0 and kg.report.num_duplicates == 0


def test_wn18rr_layouts_give_the_same_triples(wn18rr):
    a, b = wn18rr["kgbert_format"], wn18rr["kgs2s_format"]
    for split in ("train", "validation", "test"):
        assert set(a.decode(a.triples(split))) == set(b.decode(b.triples(split)))
    assert set(a.entity_ids) == set(b.entity_ids)
    # Names agree apart from letter case (the KG-S2S release keeps capitals, KG-BERT lowercases some).
    b_names = dict(zip(b.entity_ids, b.entity_names))
    same = sum(name.lower() == b_names[e].lower() for e, name in zip(a.entity_ids, a.entity_names))
    assert same / a.num_entities > 0.99


@pytest.mark.parametrize("layout", ["kgbert_format", "kgs2s_format", "pkgc_original"])
def test_fb15k237n_counts(shared_data, layout):
    kg = KnowledgeGraph.from_path(shared_data / "FB15k-237N" / layout)
    assert {k: v for k, v in kg.statistics().items() if k in FB15K_237N} == FB15K_237N
    if layout == "pkgc_original":
        # The triple-classification files: one positive and one negative per validation/test triple.
        assert kg.labels("validation_classification").tolist().count(1) == 7_041
        assert len(kg.dataset["validation_classification"]) == 2 * 7_041
        assert len(kg.dataset["test_classification"]) == 2 * 8_226
        assert sum(1 for e in kg.entity_descriptions if e) == 12_578
