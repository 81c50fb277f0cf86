"""Plain layout for users' own KGs: triples as TSV (``head<TAB>relation<TAB>tail``) or JSONL
(``{"head": ..., "relation": ..., "tail": ...}``), with optional entity and relation text files.

A directory may hold ``train``, ``valid``/``dev``/``validation`` and ``test`` files with the suffix
``.tsv``, ``.txt`` or ``.jsonl``, plus ``entities.{tsv,jsonl}`` (``id``, ``name``, optional
``description``) and ``relations.{tsv,jsonl}`` (``id``, ``name``). A single file is read as ``train``.
Without an entity (relation) file, entities (relations) are taken from the triples, named by their id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..builder import KGBuilder
from ..errors import KGFormatError
from ..text_files import iter_lines, read_rows

SPLIT_STEMS = {"train": ("train",), "validation": ("valid", "validation", "dev"), "test": ("test",)}
SUFFIXES = (".tsv", ".txt", ".jsonl")


def find_file(directory: Path, stems: tuple[str, ...]) -> Path | None:
    """The first ``<stem><suffix>`` that exists in ``directory``."""
    for stem in stems:
        for suffix in SUFFIXES:
            if (directory / (stem + suffix)).is_file():
                return directory / (stem + suffix)
    return None


def read_plain(path: Path, builder: KGBuilder) -> None:
    """Read a plain TSV/JSONL KG (a directory or a single triple file) into ``builder``."""
    if path.is_file():
        split_paths = {"train": path}
        directory = path.parent
        entity_path = relation_path = None
    else:
        directory = path
        split_paths = {s: p for s, stems in SPLIT_STEMS.items() if (p := find_file(directory, stems)) is not None}
        entity_path = find_file(directory, ("entities",))
        relation_path = find_file(directory, ("relations",))
        if not split_paths:
            raise KGFormatError(directory, None, "no triple files found (expected train/valid/test .tsv, .txt or .jsonl)")
    if entity_path is not None:
        for line, row in _records(entity_path, ("id", "name", "description"), builder, optional=("description",)):
            builder.add_entity(row["id"], row["name"], row.get("description"), entity_path, line)
    else:
        builder.infer_entities = True
    if relation_path is not None:
        for line, row in _records(relation_path, ("id", "name"), builder):
            builder.add_relation(row["id"], row["name"], relation_path, line)
    else:
        builder.infer_relations = True
    for split, split_path in split_paths.items():
        for line, row in _records(split_path, ("head", "relation", "tail"), builder):
            builder.add_triple(split, row["head"], row["relation"], row["tail"], split_path, line)


def _records(
    path: Path, fields: tuple[str, ...], builder: KGBuilder, optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a TSV or JSONL file as dicts with ``fields`` (``optional`` ones may be missing)."""
    if path.suffix == ".jsonl":
        for line, text in iter_lines(path):
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, found {type(record).__name__}")
                missing = [f for f in fields if f not in record and f not in optional]
                if missing:
                    raise ValueError(f"missing key(s) {', '.join(missing)}")
            except ValueError as err:  # JSONDecodeError is a ValueError
                builder.fail(path, line, f"bad JSON line: {err}")
                continue
            yield line, {k: (str(record[k]) if record.get(k) is not None else None) for k in fields if k in record}
        return
    required = len(fields) - len(optional)
    if optional:
        # Accept rows with or without the optional trailing column(s).
        for line, text in iter_lines(path):
            parts = [p.strip() for p in text.split("\t", len(fields) - 1)]
            if not (required <= len(parts) <= len(fields)) or not text.strip():
                builder.fail(path, line, f"expected {required} to {len(fields)} tab-separated fields, found {len(parts)}")
                continue
            yield line, dict(zip(fields, parts))
        return
    for line, parts in read_rows(path, len(fields), report=builder.row_report):
        yield line, dict(zip(fields, parts))
