"""Resumable, exact bookkeeping of LLM calls: an append-only JSONL cache.

Every finished call, successful or not, becomes one JSON line keyed by :class:`CacheKey`
``(path, head, relation, tail, model, prompt_hash)``; entity-level rows have ``relation`` and ``tail``
set to ``None`` and the entity id in ``head``, as in the corpus. Lines are flushed and ``fsync``-ed
after each batch, so a process killed at any moment leaves only whole records plus, at worst, one torn
final line, which the next load ignores, reports and cuts off before appending.

Why this is exact:

* a run only asks for keys that have no successful record, so nothing is generated twice;
* when a key has several records (a failure, then its retry), a success is never replaced by a failure
  and otherwise the later record wins (files in name order, lines in file order): one answer per key;
* failures are records too (with their error), so they are counted, reported and retried next run.

Several processes can share a cache folder as long as each writes its own file (the generator names the
file after the shard it works on); an advisory lock stops two processes from appending to the same file.
Reading merges every ``*.jsonl`` file in the folder.

Record fields: the key fields, ``status`` (``"ok"`` or ``"error"``), ``text`` (raw output), ``context``
(post-processed), ``flags`` (quality flags), ``error``, ``completion_tokens``, ``prompt_tokens``,
``finish_reason``, ``settings`` (sampling settings), ``attempt`` and ``created`` (UTC time).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

STATUSES = ("ok", "error")


class CacheKey(NamedTuple):
    """Identity of one LLM call: which path, which triple (or entity), which model, which prompt."""

    path: str
    head: str
    relation: str | None
    tail: str | None
    model: str
    prompt_hash: str

    @classmethod
    def from_record(cls, record: Mapping) -> CacheKey:
        """The key fields of a record (raises ``KeyError`` naming a missing one)."""
        return cls(*(record[name] for name in cls._fields))


@dataclass
class CacheLoadReport:
    """What loading a cache folder found.

    Attributes:
        files: JSONL files read.
        lines: complete lines read.
        torn: ``(file, line number, bytes)`` of a partially written final line (ignored).
        invalid: ``(file, line number, reason)`` of complete lines that are not valid records (ignored).
        superseded: records replaced by a later record of the same key (a retried failure, usually).
    """

    files: int = 0
    lines: int = 0
    torn: list[tuple[str, int, int]] = field(default_factory=list)
    invalid: list[tuple[str, int, str]] = field(default_factory=list)
    superseded: int = 0

    def __str__(self) -> str:
        parts = [f"{self.lines:,} record(s) in {self.files} file(s)"]
        if self.torn:
            parts.append(f"{len(self.torn)} torn final line(s) ignored: " + ", ".join(f"{f}:{n} ({b} bytes)" for f, n, b in self.torn))
        if self.invalid:
            parts.append(f"{len(self.invalid)} invalid line(s) ignored: " + ", ".join(f"{f}:{n} ({why})" for f, n, why in self.invalid[:5]))
        if self.superseded:
            parts.append(f"{self.superseded:,} record(s) superseded by a later one of the same key")
        return "; ".join(parts)


class ContextCache:
    """The merged view of a cache folder, and the writer for one file in it.

    Args:
        directory: the cache folder (created if needed); ``None`` keeps records in memory only (no resume).
        writer: name of this process's file in the folder (``{writer}.jsonl``).
        fsync: ``fsync`` after each :meth:`append` so that records survive a power loss, not only a kill.
    """

    def __init__(self, directory: str | Path | None, writer: str = "contexts", fsync: bool = True):
        if "/" in writer or writer.startswith("."):
            raise ValueError(f"writer must be a plain file name stem, got {writer!r}")
        self.directory = Path(directory) if directory is not None else None
        self.fsync = fsync
        self.writer_file = self.directory / f"{writer}.jsonl" if self.directory is not None else None
        self._records: dict[CacheKey, dict] = {}
        self._handle = None
        self.report = CacheLoadReport()
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._load()
            if self.report.torn or self.report.invalid:
                logger.warning("context cache %s: %s", self.directory, self.report)

    # ------------------------------------------------------------------ reading
    def _load(self) -> None:
        for file in sorted(self.directory.glob("*.jsonl")):
            self.report.files += 1
            data = file.read_bytes()
            lines = data.split(b"\n")
            # Text after the last newline is a record whose write was cut short: ignore and report it.
            tail = lines.pop()
            if tail:
                self.report.torn.append((file.name, len(lines) + 1, len(tail)))
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                    key = CacheKey.from_record(record)
                    if record.get("status") not in STATUSES:
                        raise ValueError(f"status {record.get('status')!r}")
                except (ValueError, KeyError, TypeError) as err:
                    self.report.invalid.append((file.name, number, f"{type(err).__name__}: {err}"[:200]))
                    continue
                self.report.lines += 1
                self._merge(key, record, loading=True)

    def _merge(self, key: CacheKey, record: dict, loading: bool = False) -> None:
        old = self._records.get(key)
        if old is not None and loading:
            self.report.superseded += 1
        if old is not None and old["status"] == "ok" and record["status"] != "ok":
            return  # a success is never replaced by a failure
        self._records[key] = record

    def get(self, key: CacheKey) -> dict | None:
        """The record that counts for ``key`` (or ``None``)."""
        return self._records.get(key)

    def status(self, key: CacheKey) -> str | None:
        """``"ok"``, ``"error"`` or ``None`` (never tried)."""
        record = self._records.get(key)
        return None if record is None else record["status"]

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[CacheKey]:
        return iter(self._records)

    def records(self) -> Iterator[dict]:
        """The record that counts for each key."""
        return iter(self._records.values())

    def status_counts(self, keys: Iterable[CacheKey]) -> dict[str, int]:
        """``{"done": ..., "failed": ..., "pending": ...}`` over ``keys``."""
        counts = Counter(self.status(key) for key in keys)
        return {"done": counts["ok"], "failed": counts["error"], "pending": counts[None]}

    # ------------------------------------------------------------------ writing
    def _open(self):
        if self._handle is not None:
            return self._handle
        handle = open(self.writer_file, "ab+")  # noqa: SIM115 - kept open across appends, closed in close()
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock, one writer per file is then the user's job
            pass
        except OSError:
            handle.close()
            raise RuntimeError(
                f"another process is writing {self.writer_file}; give each process its own shard (or writer name)"
            ) from None
        # Cut a torn final line off (already reported by _load) so the next record starts on a fresh line.
        size = handle.seek(0, os.SEEK_END)
        keep = _end_of_last_line(handle, size)
        if keep != size:
            logger.warning("cutting a torn final line (%d bytes) off %s", size - keep, self.writer_file)
            handle.truncate(keep)
            handle.seek(0, os.SEEK_END)
        self._handle = handle
        return handle

    def append(self, records: Iterable[Mapping]) -> None:
        """Persist records (one JSON line each), then flush and ``fsync`` once for the whole batch."""
        records = [dict(r) for r in records]
        keys = []
        for record in records:
            if record.get("status") not in STATUSES:
                raise ValueError(f"record status must be one of {STATUSES}, got {record.get('status')!r}")
            keys.append(CacheKey.from_record(record))
        if not records:
            return
        if self.writer_file is not None:
            payload = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
            handle = self._open()
            handle.write(payload.encode("utf-8"))
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
        for key, record in zip(keys, records):
            self._merge(key, record)

    def close(self) -> None:
        """Close this process's file (records are already on disk)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ContextCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        counts = Counter(r["status"] for r in self._records.values())
        return f"ContextCache(directory={str(self.directory)!r}, keys={len(self)}, ok={counts['ok']}, failed={counts['error']})"


def _end_of_last_line(handle, size: int, block: int = 1 << 16) -> int:
    """Offset just after the last newline of the file (0 when there is none)."""
    position = size
    while position > 0:
        start = max(0, position - block)
        handle.seek(start)
        chunk = handle.read(position - start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        position = start
    return 0


__all__ = ["CacheKey", "CacheLoadReport", "ContextCache"]
