"""The canonical form every reader produces: one ``datasets.DatasetDict``.

Splits (each a ``datasets.Dataset``; ids are always the source's own string ids, e.g. WordNet offsets
``"00260881"`` or Freebase MIDs ``"/m/027rn"``, never positions):

- ``entities``: ``id``, ``name``, ``description`` (``None`` where the source has none)
- ``relations``: ``id``, ``name``
- ``train``, ``validation``, ``test``: ``head``, ``relation``, ``tail``
- optional triple-classification splits (FB15k-237N ships them): ``head``, ``relation``, ``tail``, ``label``
  (1 = true triple, 0 = corrupted), named ``<split>_classification`` (e.g. ``test_classification``).
"""

from __future__ import annotations

import pyarrow as pa
from datasets import Dataset, Features, Value
from datasets.table import InMemoryTable

ENTITIES = "entities"
RELATIONS = "relations"
TRIPLE_SPLITS = ("train", "validation", "test")

ENTITY_FEATURES = Features({"id": Value("string"), "name": Value("string"), "description": Value("string")})
RELATION_FEATURES = Features({"id": Value("string"), "name": Value("string")})
TRIPLE_FEATURES = Features({"head": Value("string"), "relation": Value("string"), "tail": Value("string")})
LABELED_TRIPLE_FEATURES = Features(
    {"head": Value("string"), "relation": Value("string"), "tail": Value("string"), "label": Value("int8")}
)


def classification_split(split: str) -> str:
    """Name of the triple-classification split that goes with a link-prediction split."""
    return f"{split}_classification"


def dataset_from_columns(columns: dict[str, list], features: Features) -> Dataset:
    """Build a ``Dataset`` straight from Python lists through Arrow (``Dataset.from_dict`` encodes row
    by row, which costs seconds on a 100k-triple KG)."""
    return Dataset(InMemoryTable(pa.table(columns, schema=features.arrow_schema)))


def column(dataset: Dataset, name: str) -> list:
    """One column as a Python list, read through Arrow (iterating ``dataset[name]`` decodes row by row)."""
    return dataset.with_format("arrow")[name].to_pylist()
