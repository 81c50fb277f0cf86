"""KG-S2S layout (also CSProm-KG's and the Contextualization Distillation authors'): integer ids, every
file starts with a count line, and ``train2id.txt`` rows are ``HEAD TAIL RELATION`` (tail before relation).

Files: ``entity2id.txt`` (source id -> int), ``entityid2name.txt``, ``entityid2description.txt``
(optional), ``relation2id.txt``, ``relationid2name.txt`` (optional), ``train2id.txt``/``valid2id.txt``/
``test2id.txt``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..builder import KGBuilder
from ..errors import KGFormatError
from ..text_files import read_rows

SPLIT_FILES = {"train": "train2id.txt", "validation": "valid2id.txt", "test": "test2id.txt"}
# WN18RR names look like "land reform , NN , 1" (lemma, part of speech, sense number).
_WORDNET_NAME = re.compile(r"^(.*?) , [A-Z]{2} , \d+$")


def read_id_map(path: Path, builder: KGBuilder) -> dict[str, str]:
    """Read ``<source id> <int id>`` lines into {int id: source id}; a repeated int id is an error."""
    mapping: dict[str, str] = {}
    for line, (source_id, number) in read_rows(path, 2, sep=None, count_header=True, report=builder.row_report):
        if not number.isdigit():
            builder.fail(path, line, f"expected an integer id in the second column, found {number!r}")
            continue
        if number in mapping:
            builder.fail(path, line, f"integer id {number} is given to both {mapping[number]!r} and {source_id!r}")
            continue
        mapping[number] = source_id
    return mapping


def read_kgs2s(directory: Path, builder: KGBuilder) -> None:
    """Read a KG-S2S directory into ``builder`` (ids become the source ids of entity2id/relation2id)."""
    report = builder.row_report
    entity_of = read_id_map(directory / "entity2id.txt", builder)
    relation_of = read_id_map(directory / "relation2id.txt", builder)

    names: dict[str, tuple[str, int]] = {}
    names_path = directory / "entityid2name.txt"
    if names_path.is_file():
        for line, (number, name) in read_rows(names_path, 2, maxsplit=1, count_header=True, report=report):
            match = _WORDNET_NAME.match(name.strip())
            names[number] = ((match.group(1) if match else name).strip(), line)
    descriptions: dict[str, str] = {}
    description_path = directory / "entityid2description.txt"
    if description_path.is_file():
        # An entity may have an empty description ("<id>" or "<id><TAB>"): keep the id, no text.
        rows = read_rows(description_path, 2, maxsplit=1, count_header=True, report=report, allow_missing_last=True)
        for line, (number, text) in rows:
            text = text.strip()
            if number not in entity_of:
                builder.fail(description_path, line, f"unknown entity integer id {number}")
                continue
            if text:
                descriptions[number] = text
    for number, source_id in entity_of.items():
        builder.add_entity(source_id, names.get(number, (None,))[0], descriptions.get(number), directory / "entity2id.txt", None)
    for number, (_, line) in names.items():
        if number not in entity_of:
            builder.fail(names_path, line, f"unknown entity integer id {number}")

    relation_names: dict[str, str] = {}
    relation_names_path = directory / "relationid2name.txt"
    if relation_names_path.is_file():
        for line, (number, name) in read_rows(relation_names_path, 2, maxsplit=1, count_header=True, report=report):
            if number not in relation_of:
                builder.fail(relation_names_path, line, f"unknown relation integer id {number}")
                continue
            relation_names[number] = name.strip()
    for number, source_id in relation_of.items():
        builder.add_relation(source_id, relation_names.get(number), directory / "relation2id.txt", None)

    for split, filename in SPLIT_FILES.items():
        path = directory / filename
        if not path.is_file():
            continue
        for line, (head, tail, relation) in read_rows(path, 3, sep=None, count_header=True, report=report):
            try:
                ids = (_lookup(entity_of, head, "entity", path, line), _lookup(relation_of, relation, "relation", path, line),
                       _lookup(entity_of, tail, "entity", path, line))
            except KGFormatError as err:
                builder.fail(err.file, err.line, err.reason)
                continue
            builder.add_triple(split, ids[0], ids[1], ids[2], path, line)


def _lookup(mapping: dict[str, str], number: str, kind: str, path: Path, line: int) -> str:
    try:
        return mapping[number]
    except KeyError:
        raise KGFormatError(
            path, line, f"unknown {kind} integer id {number!r} (columns are HEAD TAIL RELATION; {len(mapping)} {kind} ids declared)"
        ) from None
