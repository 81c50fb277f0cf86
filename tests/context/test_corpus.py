"""ContextCorpus: keyed by triple, imports the authors' format, round-trips through disk and the Hub layout."""

from __future__ import annotations

import pytest
from datasets import load_dataset

from hf_ctxdistill import KGFormatError, KnowledgeGraph
from hf_ctxdistill.citation import PAPER_URL
from hf_ctxdistill.context import ContextCorpus, create_corpus_card
from tests.conftest import TINY_TRAIN, write

PROMPT = 'Given a triplet ({} | {} | {}), please generate a paragraph ...'


@pytest.fixture
def kg(tiny_kgbert_dir):
    return KnowledgeGraph.from_path(tiny_kgbert_dir)


def make_corpus():
    rows = [
        {"head": h, "relation": r, "tail": t, "context": f"text for {h} {r} {t}", "path": "ed+td", "generator": "SmolLM2", "prompt": PROMPT}
        for h, r, t in TINY_TRAIN[:2]
    ]
    rows.append({"head": "e3", "relation": None, "tail": None, "context": "Berlin is a city.", "path": "ed", "generator": "SmolLM2"})
    return ContextCorpus.from_records(rows, source_kg="tiny")


def test_lookup_is_by_key_not_position(kg):
    corpus = make_corpus()
    contexts = corpus.context_map()
    assert contexts[TINY_TRAIN[1]] == "text for e2 part_of e5"
    assert TINY_TRAIN[2] not in contexts  # uncovered triple: no context, not a neighbour's
    assert corpus.entity_context_map() == {"e3": "Berlin is a city."}
    cov = corpus.coverage(kg)
    assert (cov["triples_with_context"], cov["triples"], cov["entities_with_context"]) == (2, 3, 1)


def test_repeated_key_is_rejected():
    rows = [{"head": "a", "relation": "r", "tail": "b", "context": "x", "path": "td"}] * 2
    with pytest.raises(ValueError, match="repeats the key"):
        ContextCorpus.from_records(rows)


def test_save_and_load_from_disk(tmp_path):
    corpus = make_corpus()
    corpus.metadata["temperature"] = 0.7
    corpus.save_to_disk(tmp_path / "corpus")
    back = ContextCorpus.load_from_disk(tmp_path / "corpus")
    assert back.dataset.to_list() == corpus.dataset.to_list()
    assert (back.source_kg, back.metadata) == ("tiny", {"temperature": 0.7})


def test_hub_folder_round_trips_through_load_dataset(tmp_path, kg):
    corpus = make_corpus()
    folder = corpus.save_for_hub(tmp_path / "repo", kg=kg, repo_id="someone/tiny-contexts")
    rows = load_dataset(str(folder), split="train")  # what users of the Hub repo run
    assert rows.to_list() == corpus.dataset.to_list()
    back = ContextCorpus.from_hub(folder)
    assert back.context_map() == corpus.context_map() and back.source_kg == "tiny"


def test_dataset_card_says_what_the_corpus_is(kg):
    card = create_corpus_card(make_corpus(), kg=kg, repo_id="someone/tiny-contexts")
    assert card.startswith("---\n") and "data_files" in card  # Hub YAML header with the parquet config
    assert "`ed+td` (2 rows)" in card and "`ed` (1 rows)" in card
    assert "`SmolLM2` (3 rows)" in card
    assert "Training triples with a context: 2 / 3 (66.7%)" in card
    assert PROMPT in card and PAPER_URL in card and "@inproceedings{li2024contextualization" in card
    assert 'ContextCorpus.from_hub("someone/tiny-contexts")' in card


def write_context_file(path, rows, count=None):
    body = "".join(" |**| ".join(r) + "\n" for r in rows)
    return write(path, (f"{len(rows) if count is None else count}\n" if count is not False else "") + body)


def test_import_knowledge_context_with_kgs2s_ids(tmp_path, tiny_kgs2s_dir):
    kg = KnowledgeGraph.from_path(tiny_kgs2s_dir)
    # train rows of the tiny KG as integer ids: head, TAIL, relation (e1=0, e2=1, e5=4; capital_of=0, part_of=1)
    f = write_context_file(tmp_path / "knowledge_context.txt", [("0", "1", "0", "Paris is the capital of France."), ("1", "4", "1", "France is in Europe.")])
    corpus = ContextCorpus.from_knowledge_context(f, kg, kgs2s_dir=tiny_kgs2s_dir, generator="text-bison-001")
    assert corpus.context_map() == {("e1", "capital_of", "e2"): "Paris is the capital of France.", ("e2", "part_of", "e5"): "France is in Europe."}
    assert set(corpus.dataset["generator"]) == {"text-bison-001"}


def test_import_knowledge_context_with_source_ids_and_no_count_line(tmp_path, kg):
    f = write_context_file(tmp_path / "kc.txt", [("e4", "e5", "part_of", "Germany is in Europe.")], count=False)
    corpus = ContextCorpus.from_knowledge_context(f, kg)
    assert corpus.context_map() == {("e4", "part_of", "e5"): "Germany is in Europe."}


def test_context_for_a_triple_not_in_the_kg_names_the_line(tmp_path, kg):
    f = write_context_file(tmp_path / "kc.txt", [("e4", "e5", "part_of", "ok"), ("e1", "e3", "part_of", "Paris is in Berlin?")])
    with pytest.raises(KGFormatError, match=f"{f}:3: context for a triple that is not in the KG"):
        ContextCorpus.from_knowledge_context(f, kg)


def test_malformed_context_line_and_count(tmp_path, kg):
    f = write_context_file(tmp_path / "kc.txt", [("e4", "e5", "part_of", "ok"), ("e1", "e2", "no text here")])
    with pytest.raises(KGFormatError, match=f"{f}:3: expected 'head |\\*\\*| tail"):
        ContextCorpus.from_knowledge_context(f, kg)
    g = write_context_file(tmp_path / "kc2.txt", [("e4", "e5", "part_of", "ok")], count=3)
    with pytest.raises(KGFormatError, match=f"{g}:1: count line says 3 rows but the file has 1"):
        ContextCorpus.from_knowledge_context(g, kg)


def test_skip_bad_context_rows_reports_them(tmp_path, kg):
    from hf_ctxdistill.data import LoadReport

    f = write_context_file(tmp_path / "kc.txt", [("e4", "e5", "part_of", "ok"), ("e1", "e3", "part_of", "wrong"), ("e4", "e5", "part_of", "again")])
    report = LoadReport()
    corpus = ContextCorpus.from_knowledge_context(f, kg, skip_bad_rows=True, report=report)
    assert len(corpus) == 1
    assert [(p.line, p.message.split(":")[0]) for p in report.skipped] == [
        (3, "context for a triple that is not in the KG"),
        (4, "second context for triple ('e4', 'part_of', 'e5') (first at line 2)"),
    ]
