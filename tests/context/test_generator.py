"""ContextGenerator: keyed bookkeeping, retries of failures, sharding, entity-level paths, flags, the corpus
it returns, and a SIGKILL in the middle of a real generation run."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hf_ctxdistill import KnowledgeGraph
from hf_ctxdistill.context import ContextCorpus
from hf_ctxdistill.context.backends import OpenAIBackend
from hf_ctxdistill.context.generator import ContextGenerator, postprocess_context
from hf_ctxdistill.context.prompts import get_prompt_template
from hf_ctxdistill.context.server import ContextServer
from tests.conftest import TINY_TRAIN
from tests.context.llm_helpers import EchoBackend, animal_kg, one_torch_thread, smollm2_backend

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kg(tiny_kgbert_dir) -> KnowledgeGraph:
    return KnowledgeGraph.from_path(tiny_kgbert_dir)


def test_postprocess_strips_newlines_and_flags_without_dropping():
    context, flags = postprocess_context("Paris is\n\nthe capital.\n", [("missing_head", "paris"), ("missing_tail", "france")], min_words=5)
    assert context == "Paris is the capital."
    assert flags == ["too_short", "missing_tail"]
    _, flags = postprocess_context("the Take-A-Breath exercise " * 10, [("missing_head", "take_a_breath")], min_words=5, finish_reason="length")
    assert flags == ["truncated"]  # names match across case, '_' and punctuation
    assert postprocess_context("  ", [], min_words=5)[1] == ["empty"]


def test_one_row_per_triple_keyed_and_flagged(kg, tmp_path):
    backend = EchoBackend(repeat=1)
    generator = ContextGenerator(backend, "ed+td", cache_dir=tmp_path / "cache", min_words=40, progress=False)
    corpus = generator.generate(kg)
    assert len(corpus) == len(TINY_TRAIN) and len(backend.prompts_seen) == len(TINY_TRAIN)
    contexts = corpus.context_map("ed+td")
    assert set(contexts) == set(TINY_TRAIN)
    # Keyed, not positional: the context of (e2, part_of, e5) is the prompt about france and europe.
    assert 'introduce "france" and "europe"' in contexts[("e2", "part_of", "e5")]
    rows = corpus.dataset.to_list()
    assert all(row["generator"] == "echo-model" and row["prompt"] == get_prompt_template("ed+td").template for row in rows)
    assert all(row["flags"] == ["too_short"] for row in rows)  # the paper prompt alone is < 40 words: flagged, kept
    assert corpus.metadata["prompt_templates"]["ed+td"]["prompt_hash"] == get_prompt_template("ed+td").prompt_hash
    step = generator.last_report.steps[0]
    assert (step.total, step.done, step.failed, step.pending, step.flagged) == (3, 3, 0, 0, 3)
    # A second run finds everything in the cache and calls the model for nothing.
    again = ContextGenerator(EchoBackend(repeat=1), "ed+td", cache_dir=tmp_path / "cache", progress=False)
    assert len(again.generate(kg)) == 3 and again.backend.prompts_seen == []


def test_failures_are_recorded_reported_and_retried(kg, tmp_path):
    flaky = EchoBackend(fail_if=lambda text: '"france"' in text)  # both triples that mention france fail
    generator = ContextGenerator(flaky, "td", cache_dir=tmp_path, progress=False)
    corpus = generator.generate(kg)
    assert set(corpus.context_map()) == {("e4", "part_of", "e5")}
    step = generator.last_report.steps[0]
    assert (step.done, step.failed, step.pending) == (1, 2, 0) and not generator.last_report.complete
    lines = [json.loads(x) for x in (tmp_path / "contexts.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in lines) == ["error", "error", "ok"]
    assert all(r["error"] == "simulated failure" for r in lines if r["status"] == "error")

    healthy = EchoBackend()
    retry = ContextGenerator(healthy, "td", cache_dir=tmp_path, progress=False)
    corpus = retry.generate(kg)
    assert len(healthy.prompts_seen) == 2  # only the failed ones were asked again
    assert set(corpus.context_map()) == set(TINY_TRAIN) and retry.last_report.complete
    lines = [json.loads(x) for x in (tmp_path / "contexts.jsonl").read_text().splitlines()]
    assert sorted(r["attempt"] for r in lines if r["status"] == "ok") == [1, 2, 2]


def test_whole_batch_exception_is_recorded_and_repeated_failure_stops_the_run(kg, tmp_path):
    class Broken(EchoBackend):
        def _generate(self, prompts, **kwargs):
            raise ConnectionError("endpoint down")

    generator = ContextGenerator(Broken(batch_size=1), "td", cache_dir=tmp_path, progress=False, max_consecutive_failures=2)
    with pytest.raises(RuntimeError, match="2 batches in a row failed.*endpoint down"):
        generator.generate(kg)
    lines = [json.loads(x) for x in (tmp_path / "contexts.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all("ConnectionError: endpoint down" in r["error"] for r in lines)


def test_shards_split_the_work_and_collect_merges_them(tmp_path):
    kg = KnowledgeGraph.from_path(animal_kg(tmp_path / "kg", 12))
    cache = tmp_path / "cache"
    seen = []
    for shard in ("0/3", "1/3", "2/3"):
        backend = EchoBackend()
        corpus = ContextGenerator(backend, "td", cache_dir=cache, progress=False).generate(kg, shard=shard)
        assert len(corpus) == 4 and len(backend.prompts_seen) == 4
        seen += list(corpus.context_map())
    assert len(seen) == len(set(seen)) == 12  # disjoint ranges covering everything
    assert sorted(p.name for p in cache.glob("*.jsonl")) == [f"shard-0000{i}-of-00003.jsonl" for i in range(3)]
    collector = EchoBackend()
    merged = ContextGenerator(collector, "td", cache_dir=cache, progress=False).generate(kg, generate_missing=False)
    assert set(merged.context_map()) == set(seen) and collector.prompts_seen == []
    partial = ContextGenerator(EchoBackend(), "td", cache_dir=tmp_path / "other", progress=False).generate(kg, start=3, stop=5)
    assert list(partial.context_map()) == [tuple(kg.decode(kg.triples("train")[i : i + 1])[0]) for i in (3, 4)]
    with pytest.raises(ValueError, match="either start/stop or shard"):
        ContextGenerator(EchoBackend(), "td", progress=False).generate(kg, start=1, shard="0/2")


def test_entity_path_calls_once_per_entity(kg, tmp_path):
    backend = EchoBackend()
    corpus = ContextGenerator(backend, "ed", cache_dir=tmp_path, progress=False).generate(kg)
    entities = {h for h, _, t in TINY_TRAIN} | {t for _, _, t in TINY_TRAIN}
    assert len(backend.prompts_seen) == len(entities) == 4  # 3 triples, 4 distinct entities
    assert set(corpus.entity_context_map("ed")) == entities and corpus.context_map() == {}
    assert 'introduces "paris"' in corpus.entity_context_map()["e1"]


def test_two_step_path_conditions_on_entity_descriptions_and_reuses_them(kg, tmp_path):
    first = EchoBackend()
    ContextGenerator(first, "ed", cache_dir=tmp_path, progress=False).generate(kg)
    backend = EchoBackend(repeat=1)
    corpus = ContextGenerator(backend, "ed->td", cache_dir=tmp_path, progress=False).generate(kg)
    # The ed step is the same template, so its cached descriptions are reused: only 3 triple calls.
    assert len(backend.prompts_seen) == 3
    entity_rows = corpus.entity_context_map("ed")
    triple_rows = corpus.context_map("ed->td")
    assert len(entity_rows) == 4 and set(triple_rows) == set(TINY_TRAIN)
    paris_description = entity_rows["e1"]
    assert paris_description in triple_rows[("e1", "capital_of", "e2")]


def test_edited_template_is_not_served_from_the_old_cache(kg, tmp_path):
    ContextGenerator(EchoBackend(), "td", cache_dir=tmp_path, progress=False).generate(kg)
    edited = dataclasses.replace(get_prompt_template("td"), template=get_prompt_template("td").template + " Be vivid.")
    backend = EchoBackend()
    corpus = ContextGenerator(backend, edited, cache_dir=tmp_path, progress=False).generate(kg)
    assert len(backend.prompts_seen) == 3 and all("Be vivid." in c for c in corpus.context_map().values())
    other_model = EchoBackend(model_id="another-model")
    ContextGenerator(other_model, "td", cache_dir=tmp_path, progress=False).generate(kg)
    assert len(other_model.prompts_seen) == 3  # the model is part of the key too


def test_flags_survive_disk_and_hub_round_trips(kg, tmp_path):
    corpus = ContextGenerator(EchoBackend(repeat=1), "ed+td", min_words=40, progress=False).generate(kg)
    corpus.save_to_disk(tmp_path / "disk")
    from_disk = ContextCorpus.load_from_disk(tmp_path / "disk")
    corpus.save_for_hub(tmp_path / "hub", kg=kg)
    from_hub = ContextCorpus.from_hub(tmp_path / "hub")
    for loaded in (from_disk, from_hub):
        assert loaded.context_map() == corpus.context_map()
        assert loaded.dataset["flags"] == corpus.dataset["flags"] == [["too_short"]] * 3
    assert from_hub.metadata["coverage"]["steps"][0]["done"] == 3
    assert "ed+td" in (tmp_path / "hub" / "README.md").read_text()


# ---------------------------------------------------------------------- real model
@pytest.fixture
def one_thread():
    with one_torch_thread():
        yield


def test_real_smollm2_generates_contexts_for_a_few_triples(kg, tmp_path, one_thread):
    backend = smollm2_backend()
    generator = ContextGenerator(backend, "ed+td", cache_dir=tmp_path, progress=False)
    corpus = generator.generate(kg, stop=2)
    rows = corpus.dataset.to_list()
    assert [(r["head"], r["relation"], r["tail"]) for r in rows] == TINY_TRAIN[:2]
    for row in rows:
        assert row["context"] and "\n" not in row["context"]
        assert row["generator"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert "too_short" in row["flags"]  # 16 new tokens cannot reach 50 words: flagged, not dropped
    step = generator.last_report.steps[0]
    assert step.generated == 2 and 0 < step.completion_tokens <= 2 * 16


def test_sigkill_mid_generation_then_rerun_has_every_triple_exactly_once(tmp_path, one_thread):
    """A real run (the CLI in a subprocess, SmolLM2 behind the loopback server) is killed after its
    first results are on disk; a second run completes it without repeating any triple."""
    kg_dir = animal_kg(tmp_path / "kg", 12)
    kg = KnowledgeGraph.from_path(kg_dir)
    cache = tmp_path / "cache"
    with ContextServer(smollm2_backend(), batch_wait=0.01) as server:
        command = [
            sys.executable, "-m", "hf_ctxdistill.cli", "generate", str(kg_dir), "--path", "td", "--backend", "openai",
            "--base-url", server.url, "--model", server.model_name, "--cache-dir", str(cache), "--chunk-size", "1",
            "--concurrency", "1", "--max-new-tokens", "8", "--no-progress",
        ]
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        file = cache / "contexts.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and (not file.exists() or file.read_bytes().count(b"\n") < 2):
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        stderr = process.communicate()[1].decode()
        assert process.returncode == -signal.SIGKILL, stderr[-2000:]
        before = file.read_bytes().count(b"\n")
        assert 2 <= before < 12, "the run should have been killed mid-way"

        backend = OpenAIBackend(server.url, server.model_name, max_new_tokens=8, concurrency=2)
        generator = ContextGenerator(backend, "td", cache_dir=cache, progress=False)
        corpus = generator.generate(kg)
        backend.close()
    assert generator.last_report.complete
    assert generator.last_report.steps[0].generated == 12 - before  # nothing done twice
    keys = kg.decode(kg.triples("train"))
    assert sorted(corpus.context_map()) == sorted(keys)
    lines = [json.loads(x) for x in file.read_bytes().splitlines()]
    per_key = Counter((r["head"], r["relation"], r["tail"]) for r in lines if r["status"] == "ok")
    assert set(per_key) == set(keys) and set(per_key.values()) == {1}
