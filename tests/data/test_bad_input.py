"""Bad input fails with a message that names the file and the line; nothing is dropped silently."""

from __future__ import annotations

import re

import pytest

from hf_ctxdistill import KGFormatError, KnowledgeGraph, load_kg
from hf_ctxdistill.data import read_kg
from tests.conftest import write


def raises_at(path, line, pattern):
    """Expect a KGFormatError at ``path:line`` whose message matches ``pattern``."""
    where = re.escape(f"{path}:{line}:") if line is not None else re.escape(f"{path}:")
    return pytest.raises(KGFormatError, match=where + ".*" + pattern)


def test_wrong_column_count_names_file_and_line(tiny_kgbert_dir):
    f = tiny_kgbert_dir / "train.tsv"
    write(f, f.read_text() + "e1\tcapital_of\n")
    with raises_at(f, 4, "expected 3 fields separated by tabs, found 2") as info:
        load_kg(tiny_kgbert_dir)
    assert info.value.file == str(f) and info.value.line == 4


def test_unknown_entity_id(tiny_kgbert_dir):
    f = tiny_kgbert_dir / "dev.tsv"
    write(f, "e1\tcapital_of\te99\n")
    with raises_at(f, 1, "unknown entity id 'e99'"):
        load_kg(tiny_kgbert_dir)


def test_unknown_relation_id(tiny_kgbert_dir):
    f = tiny_kgbert_dir / "test.tsv"
    write(f, "e1\tpart_of\te5\ne1\tborders\te3\n")
    with raises_at(f, 2, "unknown relation id 'borders'"):
        load_kg(tiny_kgbert_dir)


def test_unknown_integer_id_in_kgs2s(tiny_kgs2s_dir):
    f = tiny_kgs2s_dir / "train2id.txt"
    write(f, "2\n0 1 0\n0 7 1\n")
    with raises_at(f, 3, "unknown entity integer id '7'.*HEAD TAIL RELATION"):
        load_kg(tiny_kgs2s_dir)


def test_count_line_disagrees_with_rows(tiny_kgs2s_dir):
    f = tiny_kgs2s_dir / "valid2id.txt"
    write(f, "5\n2 3 0\n")
    with raises_at(f, 1, "count line says 5 rows but the file has 1"):
        load_kg(tiny_kgs2s_dir)


def test_count_line_not_a_number(tiny_kgs2s_dir):
    f = tiny_kgs2s_dir / "entity2id.txt"
    write(f, "e1\t0\n")
    with raises_at(f, 1, "expected a count on the first line"):
        load_kg(tiny_kgs2s_dir)


def test_non_utf8_bytes(tiny_kgbert_dir):
    f = tiny_kgbert_dir / "entity2text.txt"
    write(f, "e1\tparis\ne2\tfran\xe7e\n".encode("latin-1"))
    with raises_at(f, 2, "not valid UTF-8 \\(byte 0xe7 at column 8\\)"):
        load_kg(tiny_kgbert_dir)


def test_empty_line_in_the_middle(tiny_kgbert_dir):
    f = tiny_kgbert_dir / "train.tsv"
    write(f, "e1\tcapital_of\te2\n\ne2\tpart_of\te5\n")
    with raises_at(f, 2, "empty line"):
        load_kg(tiny_kgbert_dir)


def test_bad_json_line_in_plain_layout(tmp_path):
    f = write(tmp_path / "plain" / "train.jsonl", '{"head": "a", "relation": "r", "tail": "b"}\n{"head": "a", "relation": "r"}\n')
    with raises_at(f, 2, "missing key\\(s\\) tail"):
        load_kg(tmp_path / "plain")


def test_bad_json_file_in_pkgc_layout(tmp_path):
    d = tmp_path / "pkgc"
    write(d / "entity2label.txt", "a\tA\nb\tB\n")
    f = write(d / "relation2label.json", '{\n  "r": "rel",\n  "s" "oops"\n}')
    write(d / "train.txt", "a\tr\tb\n")
    with raises_at(f, 3, "invalid JSON"):
        load_kg(d)


def test_missing_file_is_named(tmp_path):
    d = tmp_path / "kgs2s"
    write(d / "entity2id.txt", "1\na\t0\n")
    write(d / "relation2id.txt", "1\nr\t0\n")
    write(d / "train2id.txt", "1\n0 0 0\n")
    write(d / "entityid2name.txt", "1\n0\tA\n")
    load_kg(d)  # complete enough
    (d / "entity2id.txt").unlink()
    write(d / "entity2label.txt", "a\tA\n")  # now looks like nothing known: plain layout, no triple files
    with pytest.raises(KGFormatError, match="no triple files found"):
        load_kg(d)


def test_skip_bad_rows_reports_each_one(tiny_kgbert_dir):
    f = tiny_kgbert_dir / "train.tsv"
    write(f, f.read_text() + "e1\tcapital_of\n" + "e1\tpart_of\te99\n")
    result = read_kg(tiny_kgbert_dir, skip_bad_rows=True)
    assert len(result.dataset["train"]) == 3  # the three good rows survive
    assert result.report.num_skipped == 2
    assert [(p.line, p.file) for p in result.report.skipped] == [(4, str(f)), (5, str(f))]
    assert "unknown entity id 'e99'" in result.report.skipped[1].message


def test_duplicates_are_reported_and_kept_once(tiny_kgbert_dir, caplog):
    f = tiny_kgbert_dir / "train.tsv"
    write(f, f.read_text() + "e1\tcapital_of\te2\n")
    kg = KnowledgeGraph.from_path(tiny_kgbert_dir)
    assert len(kg.dataset["train"]) == 3
    assert kg.report.num_duplicates == 1
    problem = kg.report.duplicates[0]
    assert (problem.file, problem.line) == (str(f), 4) and "first at train.tsv:1" in problem.message
    assert "1 duplicate rows" in caplog.text  # logged, not silent


def test_duplicate_entity_definition_is_reported(tiny_kgbert_dir):
    f = tiny_kgbert_dir / "entity2text.txt"
    write(f, f.read_text() + "e1\tParis (city)\n")
    kg = KnowledgeGraph.from_path(tiny_kgbert_dir)
    assert kg.entity_names[kg.entity_index["e1"]] == "paris"  # the first definition wins
    assert "with another name; kept the first" in kg.report.duplicates[0].message
