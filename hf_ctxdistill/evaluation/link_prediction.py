"""Exact filtered link-prediction evaluation for any model that can score triples.

A *query* is one test triple asked in one direction: a tail query ``(h, r, ?)`` ranks the true tail
against every entity, a head query ``(?, r, t)`` the true head. The evaluator:

- builds the candidate triples of many queries with numpy broadcasting and feeds them to the model in
  fixed-size batches that may span query boundaries (so the accelerator always gets full batches);
- ranks each query as soon as all its candidates are scored, with the filter taken from a
  :class:`~hf_ctxdistill.evaluation.ranking.FilterIndex` (train + validation + test by default);
- stores optimistic and pessimistic ranks, so any tie rule can be applied afterwards;
- shards by query range and saves progress atomically, so long runs (KG-BERT on WN18RR is 256.6M
  model calls' worth of pairs) can be split across machines and resumed after an interruption.

Two scorer protocols are understood (see :class:`TripleScorer` and :class:`CandidateScorer`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from .metrics import DEFAULT_KS, SIDE_NAMES, flatten_metrics, metrics_breakdown, side_codes
from .ranking import FilterIndex, check_tie_rule, combine_rank_bounds, compute_rank_bounds

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SHARD_PREFIX = "lp-ranks"
"""Shard files are named ``lp-ranks-<start>-<stop>.npz`` inside the output directory."""


@runtime_checkable
class TripleScorer(Protocol):
    """Scores arbitrary triples: ``(n, 3)`` int64 (head, relation, tail) indices -> ``(n,)`` scores,
    higher = more plausible. This is how cross-encoders such as KG-BERT work (one forward per triple)."""

    def __call__(self, triples: np.ndarray) -> np.ndarray | torch.Tensor: ...


@runtime_checkable
class CandidateScorer(Protocol):
    """Scores every entity as the answer of a batch of queries at once (embedding models, or models
    that encode the query once and compare it with cached entity representations)."""

    def score_tails(self, heads: np.ndarray, relations: np.ndarray) -> np.ndarray | torch.Tensor:
        """``(b,)`` heads and relations -> ``(b, num_entities)`` scores of every tail."""
        ...

    def score_heads(self, relations: np.ndarray, tails: np.ndarray) -> np.ndarray | torch.Tensor:
        """``(b,)`` relations and tails -> ``(b, num_entities)`` scores of every head."""
        ...


def _to_numpy_scores(values: Any, expected: tuple[int, ...], what: str) -> np.ndarray:
    """Model output -> numpy array of the expected shape. Half precision is widened (exactly, so ties
    are preserved); other dtypes are kept so that no distinct scores collapse into ties."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        array = tensor.cpu().numpy()
    else:
        array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{what} returned scores of dtype {array.dtype}; expected real numbers")
    if array.shape != expected:
        if len(expected) == 1 and array.size == expected[0]:
            array = array.reshape(expected)  # (n, 1) logits and similar
        else:
            raise ValueError(f"{what} returned scores of shape {array.shape}, expected {expected}")
    return array


def _triple_score_fn(scorer: Any) -> Callable[[np.ndarray], Any]:
    method = getattr(scorer, "score_triples", None)
    if callable(method):
        return method
    if isinstance(scorer, torch.nn.Module):
        raise TypeError(
            f"{type(scorer).__name__} is a torch module without a score_triples method; wrap it in a "
            "function that maps (n, 3) int64 triples to (n,) scores"
        )
    if callable(scorer):
        return scorer
    raise TypeError(
        "a scorer must be a callable on (n, 3) int64 triples, or have score_triples(triples), "
        "or score_tails(heads, relations) and score_heads(relations, tails)"
    )


def fixed_sample(size: int, count: int | None, seed: int, name: str = "count") -> np.ndarray | None:
    """Sorted positions of a fixed random sample of ``count`` of ``size`` items (drawn with ``seed``,
    without replacement), or ``None`` when ``count`` is ``None`` or covers all of them. ``name`` names
    the argument in the error for a count below 1."""
    if count is None:
        return None
    if count < 1:
        raise ValueError(f"{name} must be >= 1")
    if count >= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(size, size=count, replace=False))


def score_in_batches(
    scorer: Any, triples: np.ndarray, batch_size: int = 1024, *, progress: bool = False, desc: str = "scoring"
) -> np.ndarray:
    """Score ``(n, 3)`` triples with a :class:`TripleScorer` (or an object with ``score_triples``) in
    chunks of ``batch_size``, under ``torch.no_grad()``. Returns an ``(n,)`` numpy array."""
    fn = _triple_score_fn(scorer)
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    parts = []
    with (
        torch.no_grad(),
        tqdm(total=len(triples), unit="triple", unit_scale=True, desc=desc, disable=not progress) as bar,
    ):
        for begin in range(0, len(triples), batch_size):
            chunk = triples[begin : begin + batch_size]
            parts.append(_to_numpy_scores(fn(chunk), (len(chunk),), "the scorer"))
            bar.update(len(chunk))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)


# --------------------------------------------------------------------------------------------- results
@dataclass
class LinkPredictionResult:
    """Ranks of (part of) a link-prediction evaluation, one entry per query, sorted by ``query_ids``.

    Attributes:
        query_ids: position of each query in the evaluator's query list (what shards split).
        triple_index: row of the query's triple in the evaluated split.
        triples: ``(n, 3)`` the query triples (head, relation, tail).
        sides: 0 = head query ``(?, r, t)``, 1 = tail query ``(h, r, ?)``.
        optimistic, pessimistic: the rank bounds (see :mod:`hf_ctxdistill.evaluation.ranking`).
        total_queries: size of the full query list; the result is complete when every query is present.
        fingerprint: identifies the evaluation set-up (queries, filter, entity count); shards with
            different fingerprints are never merged.
        seconds, pairs_scored: scoring work done to produce these ranks (summed over shards).
    """

    query_ids: np.ndarray
    triple_index: np.ndarray
    triples: np.ndarray
    sides: np.ndarray
    optimistic: np.ndarray
    pessimistic: np.ndarray
    num_entities: int
    total_queries: int
    fingerprint: str = ""
    split: str = "test"
    relation_ids: list[str] | None = None
    tie_rule: str = "realistic"
    ks: tuple[int, ...] = DEFAULT_KS
    seconds: float = 0.0
    pairs_scored: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_queries(self) -> int:
        """Number of queries ranked in this result."""
        return len(self.query_ids)

    @property
    def complete(self) -> bool:
        """True when every query of the evaluation is present."""
        return self.num_queries == self.total_queries

    @property
    def pairs_per_second(self) -> float:
        """Scoring throughput of the run(s) that produced this result (0 when nothing was scored)."""
        return self.pairs_scored / self.seconds if self.seconds > 0 else 0.0

    def ranks(self, tie_rule: str | None = None) -> np.ndarray:
        """1-based ranks under ``tie_rule`` (default: the result's ``tie_rule``)."""
        return combine_rank_bounds(self.optimistic, self.pessimistic, tie_rule or self.tie_rule)

    def metrics(self, tie_rule: str | None = None, ks: Sequence[int] | None = None) -> dict[str, Any]:
        """Overall, head, tail and per-relation metrics (see :func:`metrics_breakdown`); per-relation
        keys are the relation ids when known, else relation indices."""
        if self.num_queries == 0:
            raise ValueError("no ranked queries in this result")
        return metrics_breakdown(
            self.ranks(tie_rule),
            self.sides,
            self.triples[:, 1],
            ks=tuple(ks) if ks is not None else self.ks,
            relation_names=self.relation_ids,
        )

    def to_dict(
        self, prefix: str | None = "eval", *, per_relation: bool = False, tie_rule: str | None = None
    ) -> dict[str, float]:
        """Flat metrics for logging, e.g. ``{"eval_mrr": ..., "eval_hits@10": ..., "eval_head_mrr": ...}``."""
        return flatten_metrics(self.metrics(tie_rule), prefix, per_relation=per_relation)

    def _meta(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "num_entities": int(self.num_entities),
            "total_queries": int(self.total_queries),
            "fingerprint": self.fingerprint,
            "split": self.split,
            "relation_ids": self.relation_ids,
            "tie_rule": self.tie_rule,
            "ks": [int(k) for k in self.ks],
            "seconds": float(self.seconds),
            "pairs_scored": int(self.pairs_scored),
            "extra": self.extra,
        }

    def save(self, path: str | Path) -> Path:
        """Write the result to an ``.npz`` file atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:  # a file handle stops numpy from appending ".npz"
            np.savez(
                handle,
                query_ids=self.query_ids.astype(np.int64),
                triple_index=self.triple_index.astype(np.int64),
                triples=self.triples.astype(np.int64).reshape(-1, 3),
                sides=self.sides.astype(np.int8),
                optimistic=self.optimistic.astype(np.int64),
                pessimistic=self.pessimistic.astype(np.int64),
                meta=np.array(json.dumps(self._meta())),
            )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinkPredictionResult:
        """Read a result written by :meth:`save` (or a shard file of :class:`LinkPredictionEvaluator`)."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported rank file version {meta.get('format_version')!r}")
            return cls(
                query_ids=data["query_ids"],
                triple_index=data["triple_index"],
                triples=data["triples"].reshape(-1, 3),
                sides=data["sides"],
                optimistic=data["optimistic"],
                pessimistic=data["pessimistic"],
                num_entities=meta["num_entities"],
                total_queries=meta["total_queries"],
                fingerprint=meta["fingerprint"],
                split=meta["split"],
                relation_ids=meta["relation_ids"],
                tie_rule=meta["tie_rule"],
                ks=tuple(meta["ks"]),
                seconds=meta["seconds"],
                pairs_scored=meta["pairs_scored"],
                extra=meta.get("extra", {}),
            )


def _shard_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{SHARD_PREFIX}-*.npz"))


def merge_results(
    sources: str | Path | LinkPredictionResult | Iterable[str | Path | LinkPredictionResult],
    *,
    require_complete: bool = False,
) -> LinkPredictionResult:
    """Combine shard results (result objects, ``.npz`` files, or directories of shard files) into one.

    Shards must share a fingerprint. A query present in several shards must have identical ranks in
    all of them (otherwise they were produced by different models and ``ValueError`` is raised); it is
    kept once. With ``require_complete=True`` a missing query raises ``ValueError``.
    """
    if isinstance(sources, (str, Path, LinkPredictionResult)):
        sources = [sources]
    results: list[LinkPredictionResult] = []
    for source in sources:
        if isinstance(source, LinkPredictionResult):
            results.append(source)
            continue
        source = Path(source)
        if source.is_dir():
            results.extend(LinkPredictionResult.load(p) for p in _shard_files(source))
        else:
            results.append(LinkPredictionResult.load(source))
    if not results:
        raise ValueError("nothing to merge: no shard results found")
    first = results[0]
    for other in results[1:]:
        if other.fingerprint != first.fingerprint or other.total_queries != first.total_queries:
            raise ValueError(
                "cannot merge results of different evaluations (split, query selection, filter or "
                f"entity count differ): fingerprints {first.fingerprint[:12]} and {other.fingerprint[:12]}"
            )
    ids = np.concatenate([r.query_ids for r in results])
    order = np.argsort(ids, kind="stable")
    ids = ids[order]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(r, name) for r in results])[order]

    triple_index, triples, sides = cat("triple_index"), cat("triples"), cat("sides")
    optimistic, pessimistic = cat("optimistic"), cat("pessimistic")
    keep = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        repeat = ids[1:] == ids[:-1]
        if repeat.any():
            at = np.flatnonzero(repeat) + 1
            clash = (optimistic[at] != optimistic[at - 1]) | (pessimistic[at] != pessimistic[at - 1])
            if clash.any():
                raise ValueError(
                    f"shards disagree on the rank of query {int(ids[at[clash][0]])}: were they scored by "
                    "different models? Use one output directory per model."
                )
            keep[at] = False
    merged = LinkPredictionResult(
        query_ids=ids[keep],
        triple_index=triple_index[keep],
        triples=triples[keep],
        sides=sides[keep],
        optimistic=optimistic[keep],
        pessimistic=pessimistic[keep],
        num_entities=first.num_entities,
        total_queries=first.total_queries,
        fingerprint=first.fingerprint,
        split=first.split,
        relation_ids=first.relation_ids,
        tie_rule=first.tie_rule,
        ks=first.ks,
        seconds=float(sum(r.seconds for r in results)),
        pairs_scored=int(sum(r.pairs_scored for r in results)),
    )
    if require_complete and not merged.complete:
        raise ValueError(f"merged result has {merged.num_queries} of {merged.total_queries} queries")
    return merged


# --------------------------------------------------------------------------------------------- evaluator
class _RunState:
    """Ranks of one query range, and the bookkeeping for periodic saving and progress."""

    def __init__(
        self, evaluator: LinkPredictionEvaluator, start: int, stop: int, path: Path | None, bar: Any
    ):
        self.evaluator = evaluator
        self.start, self.stop = start, stop
        self.path = path
        self.bar = bar
        size = stop - start
        self.optimistic = np.zeros(size, dtype=np.int64)
        self.pessimistic = np.zeros(size, dtype=np.int64)
        self.done = np.zeros(size, dtype=bool)
        self.pairs_scored = 0
        self.seconds_before = 0.0  # scoring time of earlier runs of this range (from the shard file)
        self.pairs_before = 0
        self.began = time.perf_counter()
        self.last_save = self.began

    def advance(self, pairs: int) -> None:
        self.pairs_scored += pairs
        self.bar.update(pairs)

    def commit(self, query_ids: np.ndarray, optimistic: np.ndarray, pessimistic: np.ndarray) -> None:
        local = query_ids - self.start
        self.optimistic[local] = optimistic
        self.pessimistic[local] = pessimistic
        self.done[local] = True
        if (
            self.path is not None
            and time.perf_counter() - self.last_save >= self.evaluator.save_every_seconds
        ):
            self.save()

    def result(self) -> LinkPredictionResult:
        ev = self.evaluator
        ids = self.start + np.flatnonzero(self.done)
        return LinkPredictionResult(
            query_ids=ids,
            triple_index=ev.query_rows[ids],
            triples=ev.query_triples[ids],
            sides=ev.query_sides[ids],
            optimistic=self.optimistic[self.done],
            pessimistic=self.pessimistic[self.done],
            num_entities=ev.num_entities,
            total_queries=ev.num_queries,
            fingerprint=ev.fingerprint,
            split=ev.split,
            relation_ids=ev.relation_ids,
            tie_rule=ev.tie_rule,
            ks=ev.ks,
            seconds=self.seconds_before + (time.perf_counter() - self.began),
            pairs_scored=self.pairs_before + self.pairs_scored,
            extra={"range": [self.start, self.stop]},
        )

    def save(self) -> None:
        assert self.path is not None
        self.result().save(self.path)
        self.last_save = time.perf_counter()


class LinkPredictionEvaluator:
    """Filtered link prediction (MRR, MR, Hits@k) against all entities, for any scorer.

    Args:
        graph: a :class:`~hf_ctxdistill.data.KnowledgeGraph` (or anything with ``num_entities``,
            ``num_relations``, ``triples(split)``, ``known_triples()`` and optionally ``relation_ids``;
            a canonical ``DatasetDict`` or a path is converted).
        split: the split whose triples become queries.
        triples: explicit ``(n, 3)`` query triples instead of ``split``.
        triple_indices: evaluate only these rows of the split.
        num_triples: evaluate a fixed random sample of this many triples (rows of the split, or of
            ``triple_indices``; drawn with ``seed``, without replacement, kept in split order), each in
            every direction of ``sides``; deterministic for a given seed.
        num_queries: evaluate a fixed random sample of this many queries (drawn with ``seed``, without
            replacement, kept in query-list order); deterministic for a given seed.
        sides: which queries to ask per triple: ``("head", "tail")`` (default), or one of them.
        filtered: filtered setting (default) or raw ranks (``False``).
        filter_triples: the known true triples; default ``graph.known_triples()`` = train + valid + test.
        tie_rule: ``"realistic"`` (default), ``"optimistic"`` or ``"pessimistic"`` for reported metrics.
        ks: the k of Hits@k.
        batch_size: triples per call of a :class:`TripleScorer`; candidate batches span query boundaries.
        queries_per_call: queries per call of a :class:`CandidateScorer`.
        output_dir: where shard files are saved and resumed from (one directory per model checkpoint).
        save_every_seconds: how often progress is saved during a run (it is also saved at the end and
            when the run is interrupted by an exception, KeyboardInterrupt included).
        progress: show a tqdm bar (unit: scored (query, candidate) pairs).

    Query order: for each selected triple (in row order) its head query, then its tail query. A shard
    ``[start, stop)`` is a contiguous range of this list.
    """

    def __init__(
        self,
        graph: Any,
        split: str = "test",
        *,
        triples: np.ndarray | None = None,
        triple_indices: Sequence[int] | np.ndarray | None = None,
        num_triples: int | None = None,
        num_queries: int | None = None,
        seed: int = 0,
        sides: Sequence[str] = SIDE_NAMES,
        filtered: bool = True,
        filter_triples: np.ndarray | None = None,
        tie_rule: str = "realistic",
        ks: Sequence[int] = DEFAULT_KS,
        batch_size: int = 1024,
        queries_per_call: int = 64,
        output_dir: str | Path | None = None,
        save_every_seconds: float = 60.0,
        progress: bool = True,
    ):
        if not hasattr(graph, "num_entities"):
            from ..data.knowledge_graph import ensure_knowledge_graph

            graph = ensure_knowledge_graph(graph)
        self.graph = graph
        self.num_entities = int(graph.num_entities)
        self.num_relations = int(graph.num_relations)
        relation_ids = getattr(graph, "relation_ids", None)
        self.relation_ids: list[str] | None = (
            [str(r) for r in relation_ids] if relation_ids is not None else None
        )
        self.tie_rule = check_tie_rule(tie_rule)
        self.ks = tuple(int(k) for k in ks)
        if batch_size < 1 or queries_per_call < 1:
            raise ValueError("batch_size and queries_per_call must be >= 1")
        self.batch_size = int(batch_size)
        self.queries_per_call = int(queries_per_call)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.save_every_seconds = float(save_every_seconds)
        self.progress = progress
        self.filtered = filtered

        if triples is None:
            self.split = split
            split_triples = np.asarray(graph.triples(split), dtype=np.int64).reshape(-1, 3)
        else:
            self.split = "custom"
            split_triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        if len(split_triples):
            entities, relations = split_triples[:, [0, 2]], split_triples[:, 1]
            if (
                entities.min() < 0
                or entities.max() >= self.num_entities
                or relations.min() < 0
                or relations.max() >= self.num_relations
            ):
                raise ValueError("query triples reference entity or relation indices outside the graph")

        rows = np.arange(len(split_triples), dtype=np.int64)
        if triple_indices is not None:
            rows = np.asarray(triple_indices, dtype=np.int64).reshape(-1)
            if len(rows) and (rows.min() < 0 or rows.max() >= len(split_triples)):
                raise ValueError(f"triple_indices must lie in [0, {len(split_triples)})")
        pick = fixed_sample(len(rows), num_triples, seed, "num_triples")
        if pick is not None:
            rows = rows[pick]
        codes = side_codes(list(sides))
        if len(codes) == 0 or len(set(codes.tolist())) != len(codes):
            raise ValueError(
                f"sides must be a non-empty subset of {SIDE_NAMES} without repeats, got {sides!r}"
            )
        self.sides = tuple(SIDE_NAMES[c] for c in codes)
        query_rows = np.repeat(rows, len(codes))
        query_sides = np.tile(codes, len(rows)).astype(np.int8)
        pick = fixed_sample(len(query_rows), num_queries, seed, "num_queries")
        if pick is not None:
            query_rows, query_sides = query_rows[pick], query_sides[pick]
        self.query_rows = query_rows
        self.query_sides = query_sides
        self.query_triples = split_triples[query_rows]

        self.filter_index: FilterIndex | None = None
        if filtered:
            known = graph.known_triples() if filter_triples is None else filter_triples
            self.filter_index = FilterIndex(known, self.num_entities, self.num_relations)
        self.fingerprint = self._fingerprint()

    # ------------------------------------------------------------------ set-up
    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        header = {"v": FORMAT_VERSION, "entities": self.num_entities, "filtered": self.filtered}
        digest.update(json.dumps(header, sort_keys=True).encode())
        for array in (self.query_rows, self.query_sides, self.query_triples):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        if self.filter_index is not None:
            digest.update(np.ascontiguousarray(self.filter_index.triples, dtype=np.int64).tobytes())
        return digest.hexdigest()

    @property
    def num_queries(self) -> int:
        """Number of queries in the (possibly sampled) query list."""
        return len(self.query_rows)

    @property
    def num_pairs(self) -> int:
        """(query, candidate) pairs of a full run: ``num_queries * num_entities`` model inputs for a
        :class:`TripleScorer`."""
        return self.num_queries * self.num_entities

    def query_range(
        self,
        shard_index: int | None = None,
        num_shards: int | None = None,
        start: int | None = None,
        stop: int | None = None,
    ) -> tuple[int, int]:
        """The ``[start, stop)`` range of query positions for a shard (contiguous, near-equal sizes) or
        an explicit range; by default all queries."""
        total = self.num_queries
        if shard_index is not None or num_shards is not None:
            if start is not None or stop is not None:
                raise ValueError("give either shard_index/num_shards or start/stop, not both")
            if (
                shard_index is None
                or num_shards is None
                or num_shards < 1
                or not 0 <= shard_index < num_shards
            ):
                raise ValueError(f"need 0 <= shard_index < num_shards, got {shard_index}/{num_shards}")
            return total * shard_index // num_shards, total * (shard_index + 1) // num_shards
        start = 0 if start is None else int(start)
        stop = total if stop is None else int(stop)
        if not 0 <= start <= stop <= total:
            raise ValueError(f"need 0 <= start <= stop <= {total}, got start={start}, stop={stop}")
        return start, stop

    def shard_path(self, start: int, stop: int) -> Path | None:
        """File where the ranks of query range ``[start, stop)`` are saved (None without output_dir)."""
        if self.output_dir is None:
            return None
        return self.output_dir / f"{SHARD_PREFIX}-{start:09d}-{stop:09d}.npz"

    def _resume(self, state: _RunState) -> None:
        """Mark queries of the range already ranked in any shard file of output_dir as done."""
        assert self.output_dir is not None
        for path in _shard_files(self.output_dir):
            saved = LinkPredictionResult.load(path)
            if saved.fingerprint != self.fingerprint:
                raise ValueError(
                    f"{path} holds ranks of a different evaluation (split, query selection, filter or "
                    "entity count differ); use a fresh output_dir for this evaluation"
                )
            inside = (saved.query_ids >= state.start) & (saved.query_ids < state.stop)
            local = saved.query_ids[inside] - state.start
            state.optimistic[local] = saved.optimistic[inside]
            state.pessimistic[local] = saved.pessimistic[inside]
            state.done[local] = True
            if path == state.path:
                state.seconds_before, state.pairs_before = saved.seconds, saved.pairs_scored

    def _resolve_protocol(self, scorer: Any, protocol: str) -> str:
        has_candidates = all(
            callable(getattr(scorer, "score_tails" if side == "tail" else "score_heads", None))
            for side in self.sides
        )
        if protocol == "auto":
            return "candidates" if has_candidates else "triples"
        if protocol == "candidates" and not has_candidates:
            raise TypeError(
                "protocol='candidates' needs a scorer with score_tails(heads, relations) / score_heads(relations, tails)"
            )
        if protocol not in ("candidates", "triples"):
            raise ValueError(f"protocol must be 'auto', 'triples' or 'candidates', got {protocol!r}")
        return protocol

    # ------------------------------------------------------------------ running
    def run(
        self,
        scorer: Any,
        *,
        shard_index: int | None = None,
        num_shards: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        protocol: str = "auto",
    ) -> LinkPredictionResult:
        """Rank the queries of one range (default: all) and return their ranks.

        With ``output_dir`` set, queries already ranked in any shard file there are skipped, and
        progress is saved to this range's shard file periodically, at the end and on interruption.
        ``protocol``: ``"auto"`` uses ``score_tails``/``score_heads`` when the scorer has them, else
        scores candidate triples; ``"triples"`` or ``"candidates"`` force one.
        """
        start, stop = self.query_range(shard_index, num_shards, start, stop)
        mode = self._resolve_protocol(scorer, protocol)
        score_fn = _triple_score_fn(scorer) if mode == "triples" else None
        path = self.shard_path(start, stop)
        bar = tqdm(
            total=0,
            unit="pair",
            unit_scale=True,
            desc=f"link prediction [{start}:{stop})",
            disable=not self.progress,
        )
        state = _RunState(self, start, stop, path, bar)
        if path is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._resume(state)
        todo = start + np.flatnonzero(~state.done)
        bar.total = len(todo) * self.num_entities
        bar.refresh()
        if len(todo) < stop - start:
            logger.info(
                "resuming: %d of %d queries of [%d, %d) already ranked",
                stop - start - len(todo),
                stop - start,
                start,
                stop,
            )
        try:
            with torch.no_grad():
                if mode == "candidates":
                    self._run_candidates(scorer, todo, state)
                else:
                    self._run_triples(score_fn, todo, state)
        finally:
            bar.close()
            if path is not None:
                state.save()
        result = state.result()
        if state.pairs_scored:
            seconds = time.perf_counter() - state.began
            logger.info(
                "scored %d pairs in %.1f s (%.0f pairs/s)",
                state.pairs_scored,
                seconds,
                state.pairs_scored / max(seconds, 1e-9),
            )
        return result

    def _rank(self, scores: Any, query_ids: np.ndarray, state: _RunState) -> None:
        triples = self.query_triples[query_ids]
        predict_tail = self.query_sides[query_ids] == 1
        targets = np.where(predict_tail, triples[:, 2], triples[:, 0])
        pairs = (
            self.filter_index.query_filter(triples, predict_tail) if self.filter_index is not None else None
        )
        optimistic, pessimistic = compute_rank_bounds(scores, targets, filter_pairs=pairs)
        state.commit(query_ids, optimistic, pessimistic)

    def _run_triples(self, score_fn: Callable[[np.ndarray], Any], todo: np.ndarray, state: _RunState) -> None:
        num_entities = self.num_entities
        queries = self.query_triples[todo]
        # Column of the triple that the candidate replaces: 2 for tail queries, 0 for head queries.
        column = np.where(self.query_sides[todo] == 1, 2, 0)
        total_pairs = len(todo) * num_entities
        pending: list[np.ndarray] = []  # scores of pairs [ranked * E, position) not yet ranked
        ranked = 0
        position = 0
        while position < total_pairs:
            end = min(position + self.batch_size, total_pairs)
            flat = np.arange(position, end, dtype=np.int64)
            query = flat // num_entities
            candidates = queries[query]  # fancy indexing copies, so the query table stays intact
            candidates[np.arange(len(flat)), column[query]] = flat - query * num_entities
            pending.append(_to_numpy_scores(score_fn(candidates), (len(flat),), "the scorer"))
            state.advance(len(flat))
            position = end
            complete = end // num_entities
            if complete > ranked:
                scores = np.concatenate(pending) if len(pending) > 1 else pending[0]
                cut = (complete - ranked) * num_entities
                rest = scores[cut:]
                pending = [rest] if len(rest) else []
                self._rank(
                    scores[:cut].reshape(complete - ranked, num_entities), todo[ranked:complete], state
                )
                ranked = complete

    def _run_candidates(self, scorer: Any, todo: np.ndarray, state: _RunState) -> None:
        num_entities = self.num_entities
        for begin in range(0, len(todo), self.queries_per_call):
            block = todo[begin : begin + self.queries_per_call]
            triples = self.query_triples[block]
            predict_tail = self.query_sides[block] == 1
            for wanted in (True, False):
                ids = block[predict_tail == wanted]
                if len(ids) == 0:
                    continue
                chosen = triples[predict_tail == wanted]
                if wanted:
                    scores = scorer.score_tails(chosen[:, 0].copy(), chosen[:, 1].copy())
                    what = "score_tails"
                else:
                    scores = scorer.score_heads(chosen[:, 1].copy(), chosen[:, 2].copy())
                    what = "score_heads"
                if tuple(scores.shape) != (len(ids), num_entities):
                    raise ValueError(
                        f"{what} returned shape {tuple(scores.shape)}, expected {(len(ids), num_entities)}"
                    )
                if not isinstance(scores, torch.Tensor):
                    scores = _to_numpy_scores(scores, (len(ids), num_entities), what)
                state.advance(len(ids) * num_entities)
                self._rank(scores, ids, state)

    def evaluate(
        self,
        scorer: Any,
        metric_key_prefix: str | None = "eval",
        *,
        per_relation: bool = False,
        **run_kwargs: Any,
    ) -> dict[str, float]:
        """Run and return flat metrics, e.g. ``{"eval_mrr", "eval_mr", "eval_hits@1", ..., "eval_head_mrr",
        ..., "eval_tail_mrr", ..., "eval_num_queries"}`` (the HF ``Trainer`` key convention; pass
        ``metric_key_prefix=None`` for bare keys). ``run_kwargs`` go to :meth:`run` (shards, protocol)."""
        return self.run(scorer, **run_kwargs).to_dict(metric_key_prefix, per_relation=per_relation)

    def merge(self, sources: Any | None = None, *, require_complete: bool = False) -> LinkPredictionResult:
        """Merge shard results of this evaluation (default: every shard file in ``output_dir``);
        shard files of a different evaluation raise ``ValueError``."""
        if sources is None:
            if self.output_dir is None:
                raise ValueError("no sources given and no output_dir set")
            sources = self.output_dir
        merged = merge_results(sources, require_complete=require_complete)
        if merged.fingerprint != self.fingerprint:
            raise ValueError("these shard results belong to a different evaluation (fingerprint mismatch)")
        merged.tie_rule, merged.ks = self.tie_rule, self.ks
        return merged

    def estimate_cost(self, pairs_per_second: float) -> dict[str, float]:
        """Pairs to score and the expected hours at a measured throughput (TripleScorer protocol)."""
        pairs = self.num_pairs
        return {
            "pairs": float(pairs),
            "hours": pairs / pairs_per_second / 3600 if pairs_per_second > 0 else math.inf,
        }

    def __repr__(self) -> str:
        return (
            f"LinkPredictionEvaluator(split={self.split!r}, queries={self.num_queries:,}, "
            f"entities={self.num_entities:,}, pairs={self.num_pairs:,}, filtered={self.filtered}, tie_rule={self.tie_rule!r})"
        )
