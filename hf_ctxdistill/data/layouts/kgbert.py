"""KG-BERT layout: ``train.tsv``/``dev.tsv``/``test.tsv`` (head, relation, tail), ``entity2text.txt``,
optional ``entity2textlong.txt``, ``relation2text.txt``, optional ``entities.txt``/``relations.txt``."""

from __future__ import annotations

import re
from pathlib import Path

from ..builder import KGBuilder
from ..text_files import read_rows

SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
_WORDNET_ID = re.compile(r"^\d{8}$")


def read_kgbert(directory: Path, builder: KGBuilder, entity_text: str = "auto") -> None:
    """Read a KG-BERT directory into ``builder``.

    ``entity_text`` says how to read ``entity2text.txt``:
    ``"name"`` (the whole text is the name: FB15k-237 style), ``"name, description"`` (split at the first
    ``", "``: WN18RR style, where the text is "synset name, gloss"), or ``"auto"``: when
    ``entity2textlong.txt`` exists it holds the descriptions and entity2text the names; otherwise WordNet
    ids (8-digit synset offsets) are split, anything else is taken as a name.
    """
    report = builder.row_report
    for filename, adder in (("entities.txt", "entity"), ("relations.txt", "relation")):
        path = directory / filename
        if path.is_file():
            for line, (ident,) in read_rows(path, 1, report=report):
                if adder == "entity":
                    builder.add_entity(ident, None, None, path, line)
                else:
                    builder.add_relation(ident, None, path, line)

    texts_path = directory / "entity2text.txt"
    long_path = directory / "entity2textlong.txt"
    rows = read_rows(texts_path, 2, maxsplit=1, report=report)
    mode = entity_text
    if mode == "auto":
        if long_path.is_file():
            mode = "name"
        elif rows and all(_WORDNET_ID.match(ident) for _, (ident, _) in rows):
            mode = "name, description"
        else:
            mode = "name"
    if mode not in ("name", "name, description"):
        raise ValueError(f"entity_text must be 'auto', 'name' or 'name, description', got {entity_text!r}")
    for line, (ident, text) in rows:
        name, description = text, None
        if mode == "name, description":
            name, _, description = text.partition(", ")
        builder.add_entity(ident, name.strip(), (description or "").strip() or None, texts_path, line)
    if long_path.is_file():
        for line, (ident, text) in read_rows(long_path, 2, maxsplit=1, report=report):
            builder.add_entity(ident, None, text.strip() or None, long_path, line)

    relation_path = directory / "relation2text.txt"
    if relation_path.is_file():
        for line, (ident, name) in read_rows(relation_path, 2, maxsplit=1, report=report):
            builder.add_relation(ident, name, relation_path, line)
    else:
        builder.infer_relations = True

    for split, filename in SPLIT_FILES.items():
        path = directory / filename
        if path.is_file():
            for line, (head, relation, tail) in read_rows(path, 3, report=report):
                builder.add_triple(split, head, relation, tail, path, line)
