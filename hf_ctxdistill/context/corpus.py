"""``ContextCorpus``: KG triples joined with their LLM-written context, keyed by (head, relation, tail).

Each row carries how it was made: the generating ``path`` (e.g. ``"ed+td"``, the paper's main path),
the ``generator`` model and the ``prompt`` template. Entity-level rows (the ``ed`` path: one description
per entity) have ``relation`` and ``tail`` set to ``None``. Contexts are looked up by key, never by
position, so a corpus that covers only part of a KG, or lists it in another order, joins correctly.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from datasets import Dataset, Features, Value, load_dataset, load_from_disk

from ..data.errors import KGFormatError, LoadReport
from ..data.knowledge_graph import KnowledgeGraph
from ..data.schema import column, dataset_from_columns
from ..data.text_files import iter_lines

logger = logging.getLogger(__name__)

CORPUS_FEATURES = Features(
    {
        "head": Value("string"),
        "relation": Value("string"),
        "tail": Value("string"),
        "context": Value("string"),
        "path": Value("string"),
        "generator": Value("string"),
        "prompt": Value("string"),
    }
)
METADATA_FILE = "corpus_metadata.json"
CONTEXT_SEPARATOR = " |**| "  # the authors' knowledge_context.txt field separator
_DATA_FILE = "data/train-00000-of-00001.parquet"

TripleKey = tuple[str, str, str]


class ContextCorpus:
    """A contextualized KG corpus backed by a ``datasets.Dataset`` with :data:`CORPUS_FEATURES`.

    Args:
        dataset: rows with ``head``, ``relation``, ``tail``, ``context``, ``path``, ``generator``, ``prompt``.
        source_kg: a short description of the KG the keys refer to (name or path), for the card.
        metadata: free-form provenance (sampling settings, dates...), saved with the corpus.
    """

    def __init__(self, dataset: Dataset, source_kg: str | None = None, metadata: Mapping | None = None):
        missing = [c for c in CORPUS_FEATURES if c not in dataset.column_names]
        if missing:
            raise ValueError(f"corpus dataset lacks column(s) {missing}; expected {list(CORPUS_FEATURES)}")
        self.dataset = dataset
        self.source_kg = source_kg
        self.metadata = dict(metadata or {})
        seen: dict[tuple, int] = {}
        for index, key in enumerate(zip(*(column(dataset, c) for c in ("head", "relation", "tail", "path")))):
            if key in seen:
                raise ValueError(f"corpus row {index} repeats the key {key[:3]} of row {seen[key]} (path {key[3]!r})")
            seen[key] = index

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_records(
        cls, records: Iterable[Mapping], source_kg: str | None = None, metadata: Mapping | None = None
    ) -> ContextCorpus:
        """Build from dicts with the corpus columns (missing provenance columns become ``None``)."""
        rows = {name: [] for name in CORPUS_FEATURES}
        for record in records:
            for name in CORPUS_FEATURES:
                rows[name].append(record.get(name))
        return cls(dataset_from_columns(rows, CORPUS_FEATURES), source_kg=source_kg, metadata=metadata)

    @classmethod
    def from_knowledge_context(
        cls,
        file: str | Path,
        kg: KnowledgeGraph,
        *,
        id_scheme: str = "auto",
        kgs2s_dir: str | Path | None = None,
        path: str = "ed+td",
        generator: str | None = None,
        prompt: str | None = None,
        skip_bad_rows: bool = False,
        report: LoadReport | None = None,
    ) -> ContextCorpus:
        """Import the authors' ``knowledge_context.txt``: ``head |**| tail |**| relation |**| text`` per
        line, with an optional count on the first line.

        Args:
            file: the context file.
            kg: the KG the contexts belong to; every triple must be one of its triples.
            id_scheme: ``"source"`` (ids as in the KG itself: WordNet offsets, Freebase MIDs, relation
                names: the KG-BERT variant), ``"kgs2s"`` (the integer ids of ``entity2id.txt`` /
                ``relation2id.txt`` in ``kgs2s_dir``), or ``"auto"``: the scheme under which every row
                resolves (an error if both or neither do).
            kgs2s_dir: directory with ``entity2id.txt`` and ``relation2id.txt``, for integer ids.
            path, generator, prompt: provenance stored on every row.
            skip_bad_rows: record malformed rows and unknown triples in ``report`` instead of raising.
        """
        file = Path(file)
        report = report if report is not None else LoadReport()
        rows: list[tuple[int, list[str]]] = []
        declared = header_line = None
        for line, text in iter_lines(file):
            if not rows and declared is None and CONTEXT_SEPARATOR.strip() not in text and text.strip().isdigit():
                declared, header_line = int(text.strip()), line
                continue
            fields = text.split(CONTEXT_SEPARATOR.strip(), 3)
            if len(fields) != 4 or not fields[3].strip():
                error = KGFormatError(file, line, f"expected 'head {CONTEXT_SEPARATOR.strip()} tail {CONTEXT_SEPARATOR.strip()} relation {CONTEXT_SEPARATOR.strip()} text', found {len(fields)} field(s)")
                if not skip_bad_rows:
                    raise error
                report.skip(error)
                continue
            rows.append((line, [f.strip() for f in fields]))
        if declared is not None and declared != len(rows) + report.num_skipped_in(file):
            raise KGFormatError(file, header_line, f"count line says {declared} rows but the file has {len(rows) + report.num_skipped_in(file)}")

        schemes = {"source": (kg.entity_index, kg.relation_index)}
        if kgs2s_dir is not None:
            schemes["kgs2s"] = _kgs2s_maps(Path(kgs2s_dir))
        if id_scheme == "auto":
            fits = [name for name, maps in schemes.items() if all(_resolve(f, maps) for _, f in rows)]
            if len(fits) != 1:
                hint = "" if kgs2s_dir is not None else " (pass kgs2s_dir= for files keyed by KG-S2S integer ids)"
                raise ValueError(
                    f"{file}: cannot tell the id scheme: rows resolve fully under {fits or 'no scheme'}{hint}; pass id_scheme="
                )
            id_scheme = fits[0]
        if id_scheme not in schemes:
            raise ValueError(f"id_scheme must be 'auto', 'source' or 'kgs2s' (with kgs2s_dir), got {id_scheme!r}")
        entity_of, relation_of = schemes[id_scheme]

        known_keys = set(kg.decode(kg.known_triples()))
        records, seen = [], {}
        for line, fields in rows:
            ids = _resolve(fields, (entity_of, relation_of))
            problem = None
            if ids is None:
                problem = f"unknown id in {fields[:3]} under the {id_scheme!r} id scheme"
            elif ids not in known_keys:
                problem = f"context for a triple that is not in the KG: {ids}"
            elif ids in seen:
                problem = f"second context for triple {ids} (first at line {seen[ids]})"
            if problem is not None:
                if not skip_bad_rows:
                    raise KGFormatError(file, line, problem)
                report.skip(KGFormatError(file, line, problem))
                continue
            seen[ids] = line
            records.append(
                {"head": ids[0], "relation": ids[1], "tail": ids[2], "context": fields[3], "path": path, "generator": generator, "prompt": prompt}
            )
        report.log(logger)
        return cls.from_records(records, source_kg=kg.source, metadata={"imported_from": file.name})

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        paths = sorted({p for p in column(self.dataset, "path") if p is not None})
        return f"ContextCorpus(rows={len(self):,}, paths={paths}, source_kg={self.source_kg!r})"

    def context_map(self, path: str | None = None) -> dict[TripleKey, str]:
        """{(head, relation, tail): context} over triple-level rows (optionally of one ``path``)."""
        return {
            (h, r, t): c
            for h, r, t, c, p in self._columns()
            if r is not None and t is not None and (path is None or p == path)
        }

    def entity_context_map(self, path: str | None = None) -> dict[str, str]:
        """{entity id: context} over entity-level rows (the ``ed`` path)."""
        return {h: c for h, r, t, c, p in self._columns() if r is None and t is None and (path is None or p == path)}

    def _columns(self):
        return zip(*(column(self.dataset, c) for c in ("head", "relation", "tail", "context", "path")))

    def coverage(self, kg: KnowledgeGraph, split: str = "train") -> dict[str, float | int]:
        """How many triples of ``split`` (and entities) have a context."""
        triple_contexts = self.context_map()
        keys = kg.decode(kg.triples(split))
        covered = sum(key in triple_contexts for key in keys)
        entity_contexts = self.entity_context_map()
        described = sum(e in entity_contexts for e in kg.entity_ids)
        return {
            "triples": len(keys),
            "triples_with_context": covered,
            "triple_coverage": covered / len(keys) if keys else 0.0,
            "entities": kg.num_entities,
            "entities_with_context": described,
            "entity_coverage": described / kg.num_entities if kg.num_entities else 0.0,
        }

    # ------------------------------------------------------------------ persistence
    def _metadata(self) -> dict:
        return {"source_kg": self.source_kg, "metadata": self.metadata}

    def save_to_disk(self, directory: str | Path) -> None:
        """Save with ``Dataset.save_to_disk`` plus a ``corpus_metadata.json``."""
        directory = Path(directory)
        self.dataset.save_to_disk(str(directory))
        (directory / METADATA_FILE).write_text(json.dumps(self._metadata(), indent=2), encoding="utf-8")

    @classmethod
    def load_from_disk(cls, directory: str | Path) -> ContextCorpus:
        """Load what :meth:`save_to_disk` wrote."""
        directory = Path(directory)
        meta = _read_metadata(directory)
        return cls(load_from_disk(str(directory)), source_kg=meta.get("source_kg"), metadata=meta.get("metadata"))

    def save_for_hub(self, directory: str | Path, kg: KnowledgeGraph | None = None, **card_kwargs) -> Path:
        """Write the folder a Hub dataset repo holds: a parquet data file, the dataset card (README.md)
        and ``corpus_metadata.json``. ``load_dataset(directory)`` reads it back, as it reads the Hub repo."""
        from .dataset_card import create_corpus_card

        directory = Path(directory)
        (directory / "data").mkdir(parents=True, exist_ok=True)
        self.dataset.to_parquet(str(directory / _DATA_FILE))
        (directory / METADATA_FILE).write_text(json.dumps(self._metadata(), indent=2), encoding="utf-8")
        (directory / "README.md").write_text(create_corpus_card(self, kg=kg, **card_kwargs), encoding="utf-8")
        return directory

    def push_to_hub(
        self, repo_id: str, *, kg: KnowledgeGraph | None = None, private: bool | None = None, token: str | None = None,
        commit_message: str = "Upload contextualized KG corpus", **card_kwargs,
    ) -> str:
        """Push the corpus (data, card, metadata) to a Hub dataset repo; returns the commit URL."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_for_hub(tmp, kg=kg, repo_id=repo_id, **card_kwargs)
            info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=tmp, commit_message=commit_message)
        return str(info)

    @classmethod
    def from_hub(cls, repo_id_or_path: str | Path, revision: str | None = None, token: str | None = None) -> ContextCorpus:
        """Load a corpus pushed with :meth:`push_to_hub` (a Hub id) or written by :meth:`save_for_hub`
        (a local folder), through ``datasets.load_dataset``."""
        local = Path(repo_id_or_path)
        data_files = sorted(str(f) for f in local.glob("data/*.parquet")) if local.is_dir() else []
        if data_files:
            # Name the files: load_dataset(folder) keys its cache on the folder name and the card's
            # YAML config, not on the files, so two local corpora in folders of the same name would
            # share one stale cache entry.
            dataset = load_dataset("parquet", data_files={"train": data_files}, split="train")
        else:
            dataset = load_dataset(str(repo_id_or_path), split="train", revision=revision, token=token)
        meta: dict = {}
        if local.is_dir():
            meta = _read_metadata(local)
        else:
            from huggingface_hub import hf_hub_download

            try:
                meta_file = hf_hub_download(str(repo_id_or_path), METADATA_FILE, repo_type="dataset", revision=revision, token=token)
                meta = json.loads(Path(meta_file).read_text(encoding="utf-8"))
            except Exception as err:  # the corpus is usable without provenance metadata
                logger.warning("no %s in %s (%s); loading without metadata", METADATA_FILE, repo_id_or_path, err)
        # Extra columns (e.g. the generator's quality ``flags``) keep their own types.
        features = Features({**dataset.features, **CORPUS_FEATURES})
        return cls(dataset.cast(features), source_kg=meta.get("source_kg"), metadata=meta.get("metadata"))


def _read_metadata(directory: Path) -> dict:
    file = directory / METADATA_FILE
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def _resolve(fields: list[str], maps) -> TripleKey | None:
    entity_of, relation_of = maps
    head, tail, relation = fields[0], fields[1], fields[2]
    if head in entity_of and tail in entity_of and relation in relation_of:
        return (_as_id(entity_of, head), _as_id(relation_of, relation), _as_id(entity_of, tail))
    return None


def _as_id(mapping, key: str) -> str:
    value = mapping[key]
    return key if isinstance(value, int) else value  # source maps are id -> index; kgs2s maps are int -> id


def _kgs2s_maps(directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    from ..data.builder import KGBuilder
    from ..data.layouts.kgs2s import read_id_map

    builder = KGBuilder()
    return read_id_map(directory / "entity2id.txt", builder), read_id_map(directory / "relation2id.txt", builder)


_WHITESPACE = re.compile(r"\s+")


def normalize_context(text: str) -> str:
    """One line of text: newlines and runs of whitespace collapsed (contexts are stored one per row)."""
    return _WHITESPACE.sub(" ", text).strip()
