"""The append-only JSONL cache: merge rules, torn lines, one writer per file, and SIGKILL mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from hf_ctxdistill.context.cache import CacheKey, ContextCache

REPO_ROOT = Path(__file__).resolve().parents[2]


def record(i: int, status: str = "ok", **extra) -> dict:
    return {
        "path": "td", "head": f"h{i}", "relation": "r", "tail": f"t{i}", "model": "m", "prompt_hash": "abc",
        "status": status, "context": f"context {i}" if status == "ok" else None, "error": None if status == "ok" else "boom",
        **extra,
    }


def key(i: int) -> CacheKey:
    return CacheKey("td", f"h{i}", "r", f"t{i}", "m", "abc")


def test_records_survive_reopening_and_count(tmp_path):
    with ContextCache(tmp_path) as cache:
        cache.append([record(0), record(1, "error")])
    cache = ContextCache(tmp_path)
    assert cache.status(key(0)) == "ok" and cache.status(key(1)) == "error" and cache.status(key(2)) is None
    assert cache.status_counts([key(0), key(1), key(2)]) == {"done": 1, "failed": 1, "pending": 1}
    assert cache.get(key(0))["context"] == "context 0"
    assert cache.report.lines == 2 and not cache.report.torn


def test_success_wins_over_failure_and_later_record_wins(tmp_path):
    with ContextCache(tmp_path, writer="a") as cache:
        cache.append([record(0, "error"), record(0), record(0, "error")])  # error, success, late error
        cache.append([record(1, "error", attempt=1), record(1, "error", attempt=2)])
    with ContextCache(tmp_path, writer="b") as cache:
        cache.append([record(1, attempt=3)])
    cache = ContextCache(tmp_path)
    assert cache.get(key(0))["status"] == "ok"  # a later failure never replaces a success
    assert cache.get(key(1))["attempt"] == 3  # files are read in name order: b after a
    assert cache.report.superseded == 4 and len(cache) == 2  # two older records of each key


def test_torn_final_line_is_ignored_reported_and_cut_before_appending(tmp_path):
    with ContextCache(tmp_path) as cache:
        cache.append([record(0), record(1)])
    file = tmp_path / "contexts.jsonl"
    whole = file.read_bytes()
    partial = json.dumps(record(2)).encode()[:25]
    file.write_bytes(whole + partial)  # what a kill in the middle of a write leaves
    cache = ContextCache(tmp_path)
    assert cache.report.torn == [("contexts.jsonl", 3, len(partial))]
    assert cache.status(key(2)) is None and len(cache) == 2
    cache.append([record(2)])
    cache.close()
    lines = file.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(x)["head"] for x in lines[:-1]] == ["h0", "h1", "h2"]
    assert not ContextCache(tmp_path).report.torn


def test_invalid_complete_lines_are_reported_not_fatal(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"not": "a record"}\n' + json.dumps(record(0)) + "\n" + '{"status": "maybe"\n', encoding="utf-8")
    cache = ContextCache(tmp_path)
    assert [n for _, n, _ in cache.report.invalid] == [1, 3]
    assert cache.status(key(0)) == "ok"


def test_two_writers_cannot_share_a_file(tmp_path):
    pytest.importorskip("fcntl")
    first = ContextCache(tmp_path, writer="same")
    first.append([record(0)])
    second = ContextCache(tmp_path, writer="same")
    with pytest.raises(RuntimeError, match="another process"):
        second.append([record(1)])
    first.close()
    second.append([record(1)])  # the lock is released with the first writer
    second.close()


def test_bad_records_are_refused(tmp_path):
    with ContextCache(tmp_path) as cache:
        with pytest.raises(ValueError, match="status"):
            cache.append([record(0, status="done")])
        with pytest.raises(KeyError):
            cache.append([{"status": "ok", "head": "h"}])
    assert not (tmp_path / "contexts.jsonl").exists() or (tmp_path / "contexts.jsonl").read_text() == ""


WRITER = textwrap.dedent(
    """
    import importlib.util, sys, time

    # cache.py needs only the standard library: load it alone, so the process starts in milliseconds.
    spec = importlib.util.spec_from_file_location("ctx_cache", sys.argv[3])
    module = sys.modules["ctx_cache"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    CacheKey, ContextCache = module.CacheKey, module.ContextCache

    directory, total = sys.argv[1], int(sys.argv[2])
    cache = ContextCache(directory, writer="w")
    keys = [CacheKey("td", f"h{i}", "r", f"t{i}", "m", "abc") for i in range(total)]
    todo = [k for k in keys if cache.status(k) != "ok"]
    for start in range(0, len(todo), 3):
        batch = todo[start:start + 3]
        # Big records: a kill is likely to land while a batch is being written or synced.
        cache.append([{**k._asdict(), "status": "ok", "context": "x" * 50_000} for k in batch])
        print(len(batch), flush=True)
        time.sleep(0.01)
    cache.close()
    """
)


def test_sigkill_of_the_writer_then_rerun_gives_every_key_exactly_once(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    cache_dir, total = tmp_path / "cache", 200
    command = [sys.executable, str(script), str(cache_dir), str(total), str(REPO_ROOT / "hf_ctxdistill" / "context" / "cache.py")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    file = cache_dir / "w.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and (not file.exists() or file.stat().st_size < 20 * 50_000):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted = ContextCache(cache_dir)
    done = interrupted.status_counts(CacheKey("td", f"h{i}", "r", f"t{i}", "m", "abc") for i in range(total))["done"]
    assert 20 <= done < total, "the writer should have been killed mid-run"

    rerun = subprocess.run(command, capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert sum(int(n) for n in rerun.stdout.split()) == total - done  # only the missing keys were written
    lines = [json.loads(line) for line in file.read_bytes().split(b"\n") if line.strip()]
    per_key = Counter(r["head"] for r in lines if r["status"] == "ok")
    assert set(per_key) == {f"h{i}" for i in range(total)}
    assert set(per_key.values()) == {1}
