"""PKGC layout, the original FB15k-237N release (Lv et al., 2022): ``entity2label.txt``, optional
``entity2definition.txt``, ``relation2label.json``, ``train.txt``/``valid.txt``/``test.txt`` and the
triple-classification files ``{valid,test}_{pos,neg}.txt`` (plus ``o_``-prefixed variants)."""

from __future__ import annotations

import json
from pathlib import Path

from ..builder import KGBuilder
from ..errors import KGFormatError
from ..schema import classification_split
from ..text_files import iter_lines, read_rows

SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
CLASSIFICATION_FILES = {
    classification_split("validation"): "valid",
    classification_split("test"): "test",
    "o_" + classification_split("validation"): "o_valid",
    "o_" + classification_split("test"): "o_test",
}


def read_pkgc(directory: Path, builder: KGBuilder) -> None:
    """Read a PKGC directory into ``builder``.

    ``relation2label.json`` covers all 237 FB15k-237 relations; only those that occur in a triple file
    are kept (FB15k-237N uses 93), so the relation count matches the benchmark.
    """
    report = builder.row_report
    labels_path = directory / "entity2label.txt"
    for line, (ident, label) in read_rows(labels_path, 2, maxsplit=1, report=report):
        builder.add_entity(ident, label, None, labels_path, line)
    definitions_path = directory / "entity2definition.txt"
    if definitions_path.is_file():
        for line, (ident, definition) in read_rows(definitions_path, 2, maxsplit=1, report=report):
            if not builder.has_entity(ident):
                builder.fail(definitions_path, line, f"unknown entity id {ident!r} (not in entity2label.txt)")
                continue
            builder.add_entity(ident, None, definition, definitions_path, line)

    relation_labels = read_json_object(directory / "relation2label.json")
    triple_files = [(split, directory / name, None) for split, name in SPLIT_FILES.items()]
    for split, stem in CLASSIFICATION_FILES.items():
        for suffix, label in (("_pos.txt", 1), ("_neg.txt", 0)):
            triple_files.append((split, directory / (stem + suffix), label))
    rows = []
    for split, path, label in triple_files:
        if path.is_file():
            rows.append((split, path, label, read_rows(path, 3, report=report)))
    used = sorted({relation for *_, file_rows in rows for _, (_, relation, _) in file_rows})
    for relation in used:
        if relation in relation_labels:
            builder.add_relation(relation, relation_labels[relation], directory / "relation2label.json", None)
    for split, path, label, file_rows in rows:
        for line, (head, relation, tail) in file_rows:
            builder.add_triple(split, head, relation, tail, path, line, label=label)


def read_json_object(path: Path) -> dict[str, str]:
    """Read a JSON object of strings; a syntax error names the file and line."""
    text = "\n".join(t for _, t in iter_lines(path))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise KGFormatError(path, err.lineno, f"invalid JSON: {err.msg}") from None
    if not isinstance(value, dict):
        raise KGFormatError(path, 1, f"expected a JSON object mapping ids to labels, found {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}
