"""``KGBuilder``: the one place where rows from any layout become the canonical ``DatasetDict``.

Every layout reader feeds entities, relations and triples through it together with the file and line
they came from, so unknown ids, conflicting definitions and duplicates are reported the same way for
every format.
"""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict

from .errors import KGFormatError, LoadReport
from .schema import (
    ENTITIES,
    ENTITY_FEATURES,
    LABELED_TRIPLE_FEATURES,
    RELATION_FEATURES,
    RELATIONS,
    TRIPLE_FEATURES,
    dataset_from_columns,
)


class KGBuilder:
    """Collects a KG row by row and builds the canonical ``DatasetDict``.

    Args:
        skip_bad_rows: record bad rows in ``report`` and go on, instead of raising on the first one.
        infer_entities: accept triples whose entities were never declared, adding them with the id as
            name (for plain triple files that come without an entity file).
        infer_relations: the same for relations.
    """

    def __init__(self, skip_bad_rows: bool = False, infer_entities: bool = False, infer_relations: bool = False):
        self.skip_bad_rows = skip_bad_rows
        self.infer_entities = infer_entities
        self.infer_relations = infer_relations
        self.report = LoadReport()
        self.entities: dict[str, list] = {}  # id -> [name, description, file, line]
        self.relations: dict[str, list] = {}  # id -> [name, file, line]
        self.splits: dict[str, dict[tuple, tuple]] = {}  # split -> {(h, r, t[, label]): (file, line)}
        self.labeled: set[str] = set()
        self._first_seen: dict[tuple, tuple[str, int | None]] = {}

    # ------------------------------------------------------------------ errors
    def fail(self, file: str | Path, line: int | None, message: str) -> None:
        """Raise, or record and continue when ``skip_bad_rows`` is set."""
        error = KGFormatError(file, line, message)
        if not self.skip_bad_rows:
            raise error
        self.report.skip(error)

    @property
    def row_report(self) -> LoadReport | None:
        """The report to hand to :func:`read_rows` so it skips malformed rows (``None`` = raise)."""
        return self.report if self.skip_bad_rows else None

    # ------------------------------------------------------------------ entities and relations
    def add_entity(self, entity_id: str, name: str | None, description: str | None, file, line) -> None:
        """Declare an entity; a second declaration may fill in a missing name or description."""
        if not entity_id:
            return self.fail(file, line, "empty entity id")
        current = self.entities.get(entity_id)
        if current is None:
            self.entities[entity_id] = [name, description or None, str(file), line]
            return
        same_file = Path(current[2]) == Path(file)
        conflicts = [
            what
            for slot, value, what in ((0, name, "name"), (1, description or None, "description"))
            if value is not None and current[slot] is not None and current[slot] != value
        ]
        # A second file may fill in what the first lacked (entities.txt ids, then entity2text.txt names).
        if current[0] is None:
            current[0] = name
        if current[1] is None:
            current[1] = description or None
        if same_file:
            detail = f" with another {' and '.join(conflicts)}; kept the first" if conflicts else ""
            self.report.duplicate(file, line, f"entity {entity_id!r} repeated (first at line {current[3]}){detail}")

    def add_relation(self, relation_id: str, name: str | None, file, line) -> None:
        """Declare a relation."""
        if not relation_id:
            return self.fail(file, line, "empty relation id")
        current = self.relations.get(relation_id)
        if current is None:
            self.relations[relation_id] = [name, str(file), line]
        elif current[0] is None:
            current[0] = name
        elif Path(current[1]) == Path(file):
            self.report.duplicate(file, line, f"relation {relation_id!r} repeated (first at line {current[2]}); kept the first")

    def has_entity(self, entity_id: str) -> bool:
        return entity_id in self.entities

    # ------------------------------------------------------------------ triples
    def add_triple(self, split: str, head: str, relation: str, tail: str, file, line, label: int | None = None) -> None:
        """Add one triple to ``split``; unknown ids fail (unless inferred), exact repeats are reported and
        kept once."""
        for entity in (head, tail):
            if entity not in self.entities:
                if not self.infer_entities:
                    return self.fail(file, line, f"unknown entity id {entity!r}")
                self.entities[entity] = [None, None, str(file), line]
        if relation not in self.relations:
            if not self.infer_relations:
                return self.fail(file, line, f"unknown relation id {relation!r}")
            self.relations[relation] = [None, str(file), line]
        rows = self.splits.setdefault(split, {})
        key = (head, relation, tail) if label is None else (head, relation, tail, int(label))
        first = self._first_seen.get((split, key))
        if first is None:
            self._first_seen[(split, key)] = (str(file), line)
        if label is not None:
            # Classification files are evaluation instances: a repeated row is kept (and reported), so
            # accuracy is computed over the same rows as the release.
            self.labeled.add(split)
            if first is not None:
                self.report.duplicate(file, line, f"triple {key[:3]} repeated in {split} (first at {Path(first[0]).name}:{first[1]}); kept both")
            rows[(*key, file, line)] = (str(file), line)
            return
        if first is not None:
            self.report.duplicate(file, line, f"triple {key} repeated in {split} (first at {Path(first[0]).name}:{first[1]}); kept once")
            return
        rows[key] = (str(file), line)

    # ------------------------------------------------------------------ output
    def build(self) -> DatasetDict:
        """The canonical ``DatasetDict`` (see :mod:`hf_ctxdistill.data.schema`)."""
        entity_rows = {
            "id": list(self.entities),
            "name": [v[0] if v[0] is not None else k for k, v in self.entities.items()],
            "description": [v[1] for v in self.entities.values()],
        }
        relation_rows = {
            "id": list(self.relations),
            "name": [v[0] if v[0] is not None else k for k, v in self.relations.items()],
        }
        out = {
            ENTITIES: dataset_from_columns(entity_rows, ENTITY_FEATURES),
            RELATIONS: dataset_from_columns(relation_rows, RELATION_FEATURES),
        }
        for split, rows in self.splits.items():
            keys = list(rows)
            columns = {"head": [k[0] for k in keys], "relation": [k[1] for k in keys], "tail": [k[2] for k in keys]}
            # Labeled rows are keyed (head, relation, tail, label, file, line) so repeats survive.
            if split in self.labeled:
                columns["label"] = [k[3] for k in keys]
                out[split] = dataset_from_columns(columns, LABELED_TRIPLE_FEATURES)
            else:
                out[split] = dataset_from_columns(columns, TRIPLE_FEATURES)
        return DatasetDict(out)
