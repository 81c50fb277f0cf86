"""``load_kg``: one entry point that reads any supported layout into the canonical ``DatasetDict``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from datasets import DatasetDict

from .builder import KGBuilder
from .errors import KGFormatError, LoadReport
from .layouts import read_kgbert, read_kgs2s, read_pkgc, read_plain

logger = logging.getLogger(__name__)

FORMATS = ("kgbert", "kgs2s", "pkgc", "plain")


@dataclass
class KGReadResult:
    """What :func:`read_kg` returns: the canonical dataset, what was tolerated, and the layout read."""

    dataset: DatasetDict
    report: LoadReport
    format: str


def detect_format(path: str | Path) -> str:
    """Guess the layout of ``path`` from the file names it holds."""
    path = Path(path)
    if path.is_file():
        return "plain"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory")
    names = {p.name for p in path.iterdir()}
    if {"entity2id.txt", "relation2id.txt"} <= names:
        return "kgs2s"
    if "entity2label.txt" in names and "relation2label.json" in names:
        return "pkgc"
    if "entity2text.txt" in names and names & {"train.tsv", "dev.tsv", "test.tsv"}:
        return "kgbert"
    return "plain"


def read_kg(path: str | Path, format: str = "auto", *, skip_bad_rows: bool = False, **options) -> KGReadResult:
    """Read a KG and return the dataset together with its :class:`LoadReport`.

    Args:
        path: a directory in the KG-BERT, KG-S2S, PKGC or plain layout, or a single triple file.
        format: ``"auto"`` (detected from the file names), or one of ``"kgbert"``, ``"kgs2s"``,
            ``"pkgc"``, ``"plain"``.
        skip_bad_rows: skip malformed rows (and triples with unknown ids), listing each in the report,
            instead of raising :class:`KGFormatError` on the first.
        options: layout options, e.g. ``entity_text`` for the KG-BERT layout.
    """
    path = Path(path)
    if format == "auto":
        format = detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"unknown KG format {format!r}; expected 'auto' or one of {FORMATS}")
    builder = KGBuilder(skip_bad_rows=skip_bad_rows)
    reader = {"kgbert": read_kgbert, "kgs2s": read_kgs2s, "pkgc": read_pkgc, "plain": read_plain}[format]
    reader(path, builder, **options)
    dataset = builder.build()
    if not any(split in dataset for split in ("train", "validation", "test")):
        raise KGFormatError(path, None, f"no triples found in this {format} layout")
    builder.report.log(logger)
    return KGReadResult(dataset=dataset, report=builder.report, format=format)


def load_kg(path: str | Path, format: str = "auto", *, skip_bad_rows: bool = False, **options) -> DatasetDict:
    """Load a KG from disk into the canonical ``DatasetDict`` (``entities``, ``relations``, ``train``,
    ``validation``, ``test``; see :mod:`hf_ctxdistill.data.schema`).

    Reads unchanged the KG-BERT, KG-S2S and PKGC releases and plain TSV/JSONL triples. Bad input raises
    :class:`KGFormatError` naming the file and line; duplicates are logged. Use :func:`read_kg` or
    :meth:`KnowledgeGraph.from_path` to keep the :class:`LoadReport`.

    Example:
        >>> kg = load_kg("WN18RR/kgbert_format")  # doctest: +SKIP
        >>> kg["train"][0]  # doctest: +SKIP
        {'head': '00260881', 'relation': '_hypernym', 'tail': '00260622'}
    """
    return read_kg(path, format, skip_bad_rows=skip_bad_rows, **options).dataset
