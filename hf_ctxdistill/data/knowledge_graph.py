"""``KnowledgeGraph``: a fast, index-based view of the canonical ``DatasetDict``.

Models and evaluators work with integer indices; the dataset keeps the source's string ids. This view
holds the id <-> index maps, the triples of each split as ``(n, 3)`` int64 arrays (head, relation, tail)
and a sorted index of every known true triple, which filtered ranking and negative sampling need.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict

from .errors import KGFormatError, LoadReport
from .schema import ENTITIES, RELATIONS, TRIPLE_SPLITS, column


class KnowledgeGraph:
    """Index-based view of a KG in canonical form (see :mod:`hf_ctxdistill.data.schema`).

    Build it with :meth:`from_path` (any supported layout) or :meth:`from_dataset` (a canonical
    ``DatasetDict``, e.g. from ``load_kg``, ``load_from_disk`` or ``load_dataset``).
    """

    def __init__(self, dataset: DatasetDict, report: LoadReport | None = None, source: str | None = None):
        for split in (ENTITIES, RELATIONS):
            if split not in dataset:
                raise ValueError(f"the KG dataset has no '{split}' split (has: {list(dataset)})")
        self.dataset = dataset
        self.report = report if report is not None else LoadReport()
        self.source = source
        entities = dataset[ENTITIES]
        relations = dataset[RELATIONS]
        self.entity_ids: list[str] = column(entities, "id")
        self.entity_names: list[str] = column(entities, "name")
        self.entity_descriptions: list[str | None] = column(entities, "description")
        self.relation_ids: list[str] = column(relations, "id")
        self.relation_names: list[str] = column(relations, "name")
        self.entity_index: dict[str, int] = {e: i for i, e in enumerate(self.entity_ids)}
        self.relation_index: dict[str, int] = {r: i for i, r in enumerate(self.relation_ids)}
        if len(self.entity_index) != len(self.entity_ids):
            raise ValueError("entity ids in the 'entities' split are not unique")
        if len(self.relation_index) != len(self.relation_ids):
            raise ValueError("relation ids in the 'relations' split are not unique")
        self._triples: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataset(cls, dataset: DatasetDict, report: LoadReport | None = None) -> KnowledgeGraph:
        """Wrap a canonical ``DatasetDict``."""
        return cls(dataset, report=report)

    @classmethod
    def from_path(cls, path: str | Path, format: str = "auto", **kwargs) -> KnowledgeGraph:
        """Read a KG from disk in any supported layout (see :func:`hf_ctxdistill.data.load_kg`)."""
        from .load import read_kg

        result = read_kg(path, format=format, **kwargs)
        return cls(result.dataset, report=result.report, source=f"{result.format}:{path}")

    # ------------------------------------------------------------------ sizes and splits
    @property
    def num_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def num_relations(self) -> int:
        return len(self.relation_ids)

    @property
    def splits(self) -> list[str]:
        """Triple splits present (``train``, ``validation``, ``test``, classification splits...)."""
        return [s for s in self.dataset if s not in (ENTITIES, RELATIONS)]

    def triples(self, split: str) -> np.ndarray:
        """Triples of ``split`` as an ``(n, 3)`` int64 array of (head, relation, tail) indices."""
        if split not in self._triples:
            if split not in self.dataset:
                raise KeyError(f"no split '{split}' in this KG (has: {self.splits})")
            self._triples[split] = self.encode(self.dataset[split], where=split)
        return self._triples[split]

    def labels(self, split: str) -> np.ndarray:
        """The 0/1 labels of a triple-classification split."""
        return np.asarray(column(self.dataset[split], "label"), dtype=np.int64)

    def encode(self, rows, where: str = "triples") -> np.ndarray:
        """Map rows with string ``head``/``relation``/``tail`` (a Dataset, dict of lists or list of
        tuples) to an ``(n, 3)`` index array; unknown ids raise ``KeyError`` naming the id."""
        if isinstance(rows, Dataset):
            heads, relations, tails = (column(rows, c) for c in ("head", "relation", "tail"))
        elif isinstance(rows, dict):
            heads, relations, tails = rows["head"], rows["relation"], rows["tail"]
        else:
            heads, relations, tails = zip(*rows) if len(rows) else ((), (), ())
        out = np.empty((len(heads), 3), dtype=np.int64)
        for position, (values, index, kind) in enumerate(
            ((heads, self.entity_index, "entity"), (relations, self.relation_index, "relation"), (tails, self.entity_index, "entity"))
        ):
            try:
                out[:, position] = [index[v] for v in values]
            except KeyError as err:
                raise KeyError(f"{where}: unknown {kind} id {err.args[0]!r}") from None
        return out

    def decode(self, triples: np.ndarray) -> list[tuple[str, str, str]]:
        """Map an ``(n, 3)`` index array back to string id triples."""
        return [(self.entity_ids[h], self.relation_ids[r], self.entity_ids[t]) for h, r, t in np.asarray(triples)]

    # ------------------------------------------------------------------ known true triples
    def known_triples(self) -> np.ndarray:
        """Every true triple of ``train``, ``validation`` and ``test`` (deduplicated, sorted): the filter
        set of the filtered ranking protocol."""
        return self._known_sorted_keys_and_triples[1]

    @cached_property
    def _known_sorted_keys_and_triples(self) -> tuple[np.ndarray, np.ndarray]:
        parts = [self.triples(s) for s in TRIPLE_SPLITS if s in self.dataset]
        known = np.concatenate(parts) if parts else np.empty((0, 3), dtype=np.int64)
        keys = np.unique(self._keys(known))
        return keys, self._unkey(keys)

    def _keys(self, triples: np.ndarray) -> np.ndarray:
        # One int64 per triple: (head * R + relation) * E + tail. Fits for E up to ~3e6 with R up to 1e6.
        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        return (triples[:, 0] * self.num_relations + triples[:, 1]) * self.num_entities + triples[:, 2]

    def _unkey(self, keys: np.ndarray) -> np.ndarray:
        tails = keys % self.num_entities
        rest = keys // self.num_entities
        return np.stack([rest // self.num_relations, rest % self.num_relations, tails], axis=1)

    def is_known(self, triples: np.ndarray) -> np.ndarray:
        """Vectorised membership test against :meth:`known_triples` (for filtering corrupted negatives)."""
        keys = self._keys(triples)
        known = self._known_sorted_keys_and_triples[0]
        if len(known) == 0:
            return np.zeros(len(keys), dtype=bool)
        position = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
        return known[position] == keys

    # ------------------------------------------------------------------ text
    def entity_text(self, index: int, with_description: bool = True) -> str:
        """``"name, description"`` (KG-BERT style) or just the name."""
        name, description = self.entity_names[index], self.entity_descriptions[index]
        return f"{name}, {description}" if with_description and description else name

    def statistics(self) -> dict[str, int]:
        """Counts of entities, relations and triples per split."""
        stats = {"entities": self.num_entities, "relations": self.num_relations}
        stats.update({split: len(self.dataset[split]) for split in self.splits})
        return stats

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v:,}" for k, v in self.statistics().items())
        return f"KnowledgeGraph({parts})"


def ensure_knowledge_graph(kg: KnowledgeGraph | DatasetDict | str | Path) -> KnowledgeGraph:
    """Accept a KnowledgeGraph, a canonical DatasetDict or a path, and return a KnowledgeGraph."""
    if isinstance(kg, KnowledgeGraph):
        return kg
    if isinstance(kg, DatasetDict):
        return KnowledgeGraph.from_dataset(kg)
    if isinstance(kg, (str, Path)):
        return KnowledgeGraph.from_path(kg)
    raise TypeError(f"expected a KnowledgeGraph, DatasetDict or path, got {type(kg).__name__}")


__all__ = ["KnowledgeGraph", "ensure_knowledge_graph", "KGFormatError"]
