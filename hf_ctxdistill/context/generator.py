"""``ContextGenerator``: prompt an LLM for every training triple (or entity) of a KG and collect the
answers into a :class:`~hf_ctxdistill.context.ContextCorpus`, resumably.

Work is keyed, never positional: each triple's context is stored under (path, head, relation, tail,
model, prompt hash) in an append-only cache (:mod:`hf_ctxdistill.context.cache`), so a killed run resumes
where it stopped, several processes can split one KG by index range, and failed calls are recorded and
retried on the next run instead of disappearing.

Post-processing collapses newlines and whitespace and checks each answer: both entity names present, a
minimum length, not cut off by ``max_new_tokens``. Answers that fail a check are kept and FLAGGED (the
corpus ``flags`` column and a summary in its metadata), never dropped silently.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset, Features, List, Value

from ..data.knowledge_graph import KnowledgeGraph, ensure_knowledge_graph
from .backends.base import GenerationBackend, GenerationResult
from .cache import CacheKey, ContextCache
from .corpus import CORPUS_FEATURES, ContextCorpus, normalize_context
from .prompts import PromptTemplate, get_prompt_template

logger = logging.getLogger(__name__)

#: The corpus columns plus the quality flags of each context (empty list: passed every check).
GENERATED_CORPUS_FEATURES = Features({**CORPUS_FEATURES, "flags": List(Value("string"))})

FLAG_EMPTY = "empty"
FLAG_TOO_SHORT = "too_short"
FLAG_TRUNCATED = "truncated"
FLAG_MISSING_HEAD = "missing_head"
FLAG_MISSING_TAIL = "missing_tail"
FLAG_MISSING_ENTITY = "missing_entity"

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _normalize_name(text: str) -> str:
    # "take_a_breath", "Take a breath." and "take-a-breath" all match: compare word sequences.
    return " " + " ".join(_NON_WORD.sub(" ", text.lower()).split()) + " "


def postprocess_context(
    text: str,
    names: Sequence[tuple[str, str]] = (),
    min_words: int = 50,
    finish_reason: str | None = None,
) -> tuple[str, list[str]]:
    """Clean one answer and check it.

    Args:
        text: the raw LLM output.
        names: ``(flag, name)`` pairs, e.g. ``[("missing_head", "dog"), ("missing_tail", "canine")]``;
            the flag is raised when the name does not occur (case, punctuation and ``_`` ignored).
        min_words: fewer words than this raises ``too_short``.
        finish_reason: ``"length"`` (the model hit ``max_new_tokens``) raises ``truncated``.

    Returns:
        The one-line context and the list of flags (empty when it passed every check).
    """
    context = normalize_context(text or "")
    flags = []
    if not context:
        flags.append(FLAG_EMPTY)
    elif len(context.split()) < min_words:
        flags.append(FLAG_TOO_SHORT)
    if finish_reason == "length":
        flags.append(FLAG_TRUNCATED)
    haystack = _normalize_name(context)
    for flag, name in names:
        needle = _normalize_name(name)
        if needle.strip() and needle not in haystack and flag not in flags:
            flags.append(flag)
    return context, flags


@dataclass
class StepReport:
    """Counts for one step of a generating path over the selected work."""

    path: str
    level: str
    total: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    flagged: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    generated: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per wall-clock second of this run's generation (0 when nothing ran)."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class CoverageReport:
    """How many triples/entities have a context, failed, or are pending: one :class:`StepReport` per
    step (``ed->td`` has an entity step and a triple step)."""

    split: str
    start: int
    stop: int
    steps: list[StepReport] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every selected unit of every step has a context."""
        return all(s.done == s.total for s in self.steps)

    def as_dict(self) -> dict:
        """Plain dict (stored in the corpus metadata)."""
        return {
            "split": self.split,
            "start": self.start,
            "stop": self.stop,
            "steps": [{**asdict(s), "tokens_per_second": round(s.tokens_per_second, 2)} for s in self.steps],
        }

    def __str__(self) -> str:
        lines = [f"coverage of {self.split}[{self.start}:{self.stop}]:"]
        for s in self.steps:
            unit = "triples" if s.level == "triple" else "entities"
            line = (
                f"  {s.path} ({unit}): {s.done:,}/{s.total:,} with context, {s.failed:,} failed, {s.pending:,} pending, "
                f"{s.flagged:,} flagged"
            )
            if s.flags:
                line += " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(s.flags.items())) + ")"
            if s.generated:
                line += f"; generated {s.generated:,} now, {s.completion_tokens:,} tokens, {s.tokens_per_second:,.1f} tokens/s"
            lines.append(line)
        return "\n".join(lines)


@dataclass
class _Unit:
    key: CacheKey
    values: dict
    names: list[tuple[str, str]]
    row: dict


class ContextGenerator:
    """Generate contexts for a KG with any :class:`~hf_ctxdistill.context.backends.GenerationBackend`.

    Args:
        backend: the LLM (local ``TransformersBackend`` or ``OpenAIBackend``).
        path: a generating path name (``"ed+td"``, the paper's main path; ``"ed"``, ``"td"``, ``"ra"``,
            ``"ed->td"``), a :class:`PromptTemplate`, or a template JSON file.
        cache_dir: folder of the resumable cache; ``None`` keeps results in memory only (no resume).
        min_words: answers shorter than this are flagged ``too_short``.
        check_names: flag answers that do not mention the entity names.
        chunk_size: prompts per backend call (default: the backend's ``batch_size``); results are
            persisted after each chunk, so this is also the most work a crash can lose.
        progress: show a tqdm progress bar (ETA and tokens/s).
        max_consecutive_failures: stop after this many chunks in a row failed completely (a wrong URL or
            model name should not burn through the whole KG recording failures); the failures are saved,
            and the next run retries them.
        fsync: ``fsync`` the cache after each chunk.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        path: str | PromptTemplate | Path = "ed+td",
        *,
        cache_dir: str | Path | None = None,
        min_words: int = 50,
        check_names: bool = True,
        chunk_size: int | None = None,
        progress: bool = True,
        max_consecutive_failures: int = 3,
        fsync: bool = True,
    ):
        self.backend = backend
        self.template = get_prompt_template(path)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.min_words = min_words
        self.check_names = check_names
        self.chunk_size = chunk_size
        self.progress = progress
        self.max_consecutive_failures = max_consecutive_failures
        self.fsync = fsync
        self.last_report: CoverageReport | None = None
        self._memory_cache: ContextCache | None = None

    def __repr__(self) -> str:
        return f"ContextGenerator(path={self.template.name!r}, backend={self.backend!r}, cache_dir={str(self.cache_dir)!r})"

    # ------------------------------------------------------------------ selection
    @staticmethod
    def select_range(total: int, start: int | None = None, stop: int | None = None, shard: tuple[int, int] | str | None = None) -> tuple[int, int]:
        """The ``[start, stop)`` range of work units for explicit bounds or for shard ``i`` of ``n``
        (contiguous, sizes differing by at most one)."""
        if shard is not None:
            if start is not None or stop is not None:
                raise ValueError("pass either start/stop or shard, not both")
            if isinstance(shard, str):
                index, _, count = shard.partition("/")
                shard = (int(index), int(count))
            index, count = shard
            if count < 1 or not 0 <= index < count:
                raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
            return index * total // count, (index + 1) * total // count
        begin = 0 if start is None else start
        end = total if stop is None else min(stop, total)
        if begin < 0 or begin > end:
            raise ValueError(f"bad range start={start} stop={stop} for {total} work unit(s)")
        return begin, end

    def work_units(self, kg: KnowledgeGraph, split: str = "train") -> list[tuple[int, ...]]:
        """The ordered units that start/stop index: distinct triples of ``split`` in file order for
        triple-level paths, or the distinct entities occurring in ``split`` (KG order) for entity-level ones."""
        triples = kg.triples(split)
        if self.template.level == "entity":
            return [(e,) for e in sorted({int(x) for x in triples[:, 0]} | {int(x) for x in triples[:, 2]})]
        seen: dict[tuple[int, int, int], None] = {}
        for h, r, t in triples.tolist():
            seen.setdefault((h, r, t), None)
        return list(seen)

    # ------------------------------------------------------------------ units and keys
    def _entity_unit(self, kg: KnowledgeGraph, template: PromptTemplate, entity: int) -> _Unit:
        name = kg.entity_names[entity]
        key = CacheKey(template.name, kg.entity_ids[entity], None, None, self.backend.model_id, template.prompt_hash)
        values = {"entity": name, "entity_description": kg.entity_descriptions[entity]}
        names = [(FLAG_MISSING_ENTITY, name)] if self.check_names else []
        return _Unit(key, values, names, {"head": key.head, "relation": None, "tail": None, "path": template.name, "prompt": template.template})

    def _triple_unit(self, kg: KnowledgeGraph, template: PromptTemplate, triple: tuple[int, int, int], extra: dict | None = None) -> _Unit:
        h, r, t = triple
        key = CacheKey(template.name, kg.entity_ids[h], kg.relation_ids[r], kg.entity_ids[t], self.backend.model_id, template.prompt_hash)
        values = {
            "head": kg.entity_names[h],
            "relation": kg.relation_names[r],
            "tail": kg.entity_names[t],
            "head_description": kg.entity_descriptions[h],
            "tail_description": kg.entity_descriptions[t],
            **(extra or {}),
        }
        names = [(FLAG_MISSING_HEAD, values["head"]), (FLAG_MISSING_TAIL, values["tail"])] if self.check_names else []
        return _Unit(key, values, names, {"head": key.head, "relation": key.relation, "tail": key.tail, "path": template.name, "prompt": template.template})

    # ------------------------------------------------------------------ main entry points
    def generate(
        self,
        kg: KnowledgeGraph | str | Path,
        split: str = "train",
        start: int | None = None,
        stop: int | None = None,
        *,
        shard: tuple[int, int] | str | None = None,
        retry_failed: bool = True,
        generate_missing: bool = True,
    ) -> ContextCorpus:
        """Generate the missing contexts of ``split`` (or of a range / shard of it) and return the corpus.

        Args:
            kg: the KG (or a path :func:`~hf_ctxdistill.data.load_kg` reads).
            split: the triple split to contextualize (the paper: ``"train"``).
            start, stop: the range of work units (see :meth:`work_units`) this process covers.
            shard: ``(i, n)`` or ``"i/n"``: this process covers the i-th of n equal ranges.
            retry_failed: also retry units whose earlier call failed (they are recorded in the cache).
            generate_missing: ``False`` only collects what the cache already holds (e.g. to merge the
                caches of several shards into one corpus).

        Returns:
            A :class:`ContextCorpus` with one row per unit that has a context (flagged ones included, see
            the ``flags`` column); the coverage report (also in ``self.last_report`` and the corpus
            metadata) counts the failed and pending ones.
        """
        kg = ensure_knowledge_graph(kg)
        units = self.work_units(kg, split)
        begin, end = self.select_range(len(units), start, stop, shard)
        selected = units[begin:end]
        writer = "contexts"
        if shard is not None:
            index, count = (int(x) for x in shard.split("/")) if isinstance(shard, str) else shard
            writer = f"shard-{index:05d}-of-{count:05d}"
        elif (begin, end) != (0, len(units)):
            writer = f"range-{begin}-{end}"
        report = CoverageReport(split=split, start=begin, stop=end)
        template = self.template
        rows: list[dict] = []
        cache = self._open_cache(writer)
        try:
            if template.level == "entity":
                step = [self._entity_unit(kg, template, e) for (e,) in selected]
                rows += self._run_step(cache, template, step, report, retry_failed, generate_missing)
            else:
                extra_by_triple: dict[tuple, dict] = {}
                blocked = 0
                if template.requires is not None:
                    entities = sorted({h for h, _, _ in selected} | {t for _, _, t in selected})
                    step = [self._entity_unit(kg, template.requires, e) for e in entities]
                    rows += self._run_step(cache, template.requires, step, report, retry_failed, generate_missing)
                    described = {u.key.head: cache.get(u.key) for u in step}
                    ready = []
                    for triple in selected:
                        head_record = described[kg.entity_ids[triple[0]]]
                        tail_record = described[kg.entity_ids[triple[2]]]
                        if _ok(head_record) and _ok(tail_record):
                            extra_by_triple[triple] = {"head_context": head_record["context"], "tail_context": tail_record["context"]}
                            ready.append(triple)
                    blocked = len(selected) - len(ready)
                    if blocked:
                        logger.warning("%d triple(s) wait for the descriptions of their entities (failed or pending)", blocked)
                    selected_for_step = ready
                else:
                    selected_for_step = selected
                step = [self._triple_unit(kg, template, triple, extra_by_triple.get(triple)) for triple in selected_for_step]
                rows += self._run_step(cache, template, step, report, retry_failed, generate_missing)
                report.steps[-1].total += blocked
                report.steps[-1].pending += blocked
        finally:
            if cache is not self._memory_cache:
                cache.close()
        self.last_report = report
        logger.info("%s", report)
        metadata = {
            "path": template.name,
            "prompt_templates": {template.name: template.to_dict()},
            "generator": self.backend.model_id,
            "settings": self.backend.settings(),
            "coverage": report.as_dict(),
            "created": _now(),
        }
        dataset = Dataset.from_dict({name: [row.get(name) for row in rows] for name in GENERATED_CORPUS_FEATURES}, features=GENERATED_CORPUS_FEATURES)
        return ContextCorpus(dataset, source_kg=kg.source, metadata=metadata)

    def coverage(
        self, kg: KnowledgeGraph | str | Path, split: str = "train", start: int | None = None, stop: int | None = None,
        *, shard: tuple[int, int] | str | None = None,
    ) -> CoverageReport:
        """Count done / failed / pending units from the cache, without calling the LLM."""
        self.generate(kg, split, start, stop, shard=shard, generate_missing=False)
        return self.last_report  # type: ignore[return-value]

    # ------------------------------------------------------------------ internals
    def _open_cache(self, writer: str) -> ContextCache:
        if self.cache_dir is None:
            # Without a folder, results live as long as this generator: reruns still skip finished work.
            if self._memory_cache is None:
                self._memory_cache = ContextCache(None)
            return self._memory_cache
        cache = ContextCache(self.cache_dir, writer=writer, fsync=self.fsync)
        if cache.report.files:
            logger.info("context cache %s: %s", self.cache_dir, cache.report)
        return cache

    def _run_step(
        self, cache: ContextCache, template: PromptTemplate, units: list[_Unit], report: CoverageReport,
        retry_failed: bool, generate_missing: bool,
    ) -> list[dict]:
        step = StepReport(path=template.name, level=template.level, total=len(units))
        report.steps.append(step)
        todo = [u for u in units if cache.status(u.key) != "ok" and (retry_failed or cache.status(u.key) is None)]
        if todo and generate_missing:
            self._generate_units(cache, template, todo, step)
        settings = self.backend.settings()
        mismatched = 0
        rows, flags = [], Counter()
        for unit in units:
            record = cache.get(unit.key)
            if record is None:
                step.pending += 1
            elif record["status"] != "ok":
                step.failed += 1
            else:
                step.done += 1
                unit_flags = list(record.get("flags") or [])
                flags.update(unit_flags)
                step.flagged += bool(unit_flags)
                mismatched += record.get("settings") not in (None, settings)
                rows.append({**unit.row, "context": record["context"], "generator": unit.key.model, "flags": unit_flags})
        step.flags = dict(flags)
        if mismatched and generate_missing:
            logger.warning(
                "%d cached context(s) of path %r were generated with other sampling settings than %s; use a new "
                "cache_dir to regenerate them", mismatched, template.name, settings,
            )
        return rows

    def _generate_units(self, cache: ContextCache, template: PromptTemplate, todo: list[_Unit], step: StepReport) -> None:
        from tqdm.auto import tqdm

        rendered = [(unit, template.messages(unit.values)) for unit in todo]
        # Similar lengths in one chunk pad little; the backend sorts again within its batches.
        rendered.sort(key=lambda pair: sum(len(m["content"]) for m in pair[1]))
        chunk_size = self.chunk_size or max(1, self.backend.batch_size)
        settings = self.backend.settings()
        failed_in_a_row, last_error = 0, None
        started = time.perf_counter()
        bar = tqdm(total=len(rendered), desc=f"contexts [{template.name}]", unit="ctx", disable=not self.progress, dynamic_ncols=True)
        try:
            for begin in range(0, len(rendered), chunk_size):
                chunk = rendered[begin : begin + chunk_size]
                try:
                    results = self.backend.generate([messages for _, messages in chunk])
                except Exception as err:  # recorded per unit below; the next run retries them
                    logger.exception("a batch of %d prompt(s) failed", len(chunk))
                    results = [GenerationResult(error=f"{type(err).__name__}: {err}"[:1000]) for _ in chunk]
                records = [self._record(unit, result, cache.get(unit.key), settings) for (unit, _), result in zip(chunk, results)]
                cache.append(records)
                step.generated += sum(r["status"] == "ok" for r in records)
                step.completion_tokens += sum(r["completion_tokens"] for r in records)
                step.seconds = time.perf_counter() - started
                bar.update(len(chunk))
                bar.set_postfix(tok_s=f"{step.tokens_per_second:,.0f}", failed=sum(r['status'] != 'ok' for r in records), refresh=False)
                if all(r["status"] != "ok" for r in records):
                    failed_in_a_row += 1
                    last_error = records[-1]["error"]
                    if failed_in_a_row >= self.max_consecutive_failures:
                        raise RuntimeError(
                            f"{failed_in_a_row} batches in a row failed completely; stopping (failures are saved and "
                            f"retried next run). Last error: {last_error}"
                        )
                else:
                    failed_in_a_row = 0
        finally:
            bar.close()

    def _record(self, unit: _Unit, result: GenerationResult, previous: dict | None, settings: dict) -> dict:
        record = {
            **unit.key._asdict(),
            "attempt": (previous or {}).get("attempt", 0) + 1,
            "created": _now(),
            "settings": settings,
            "completion_tokens": int(result.completion_tokens or 0),
            "prompt_tokens": result.prompt_tokens,
            "finish_reason": result.finish_reason,
        }
        if not result.ok:
            return {**record, "status": "error", "error": result.error or "no text returned", "text": None, "context": None, "flags": []}
        context, flags = postprocess_context(result.text, unit.names, self.min_words, result.finish_reason)
        return {**record, "status": "ok", "error": None, "text": result.text, "context": context, "flags": flags}


def _ok(record: dict | None) -> bool:
    return record is not None and record["status"] == "ok"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


__all__ = [
    "ContextGenerator",
    "CoverageReport",
    "GENERATED_CORPUS_FEATURES",
    "StepReport",
    "postprocess_context",
]
