"""``hf-ctxdistill``: the prompts subcommand and collecting a corpus from a cache (no model needed)."""

from __future__ import annotations

import json

from hf_ctxdistill import KnowledgeGraph
from hf_ctxdistill.cli import main
from hf_ctxdistill.context import ContextCorpus, ContextGenerator, load_prompt_template
from hf_ctxdistill.context.prompts import PAPER_ED_TD_PROMPT
from tests.conftest import TINY_TRAIN
from tests.context.llm_helpers import EchoBackend


def test_prompts_lists_and_saves_templates(tmp_path, capsys):
    assert main(["prompts", "ed+td"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["template"] == PAPER_ED_TD_PROMPT and shown["name"] == "ed+td"
    assert main(["prompts", "ra", "--save", str(tmp_path / "ra.json")]) == 0
    assert load_prompt_template(tmp_path / "ra.json").name == "ra"


def test_collect_only_builds_the_corpus_from_the_cache_and_exit_status_tells_coverage(tiny_kgbert_dir, tmp_path, capsys):
    kg = KnowledgeGraph.from_path(tiny_kgbert_dir)
    ContextGenerator(EchoBackend(), "td", cache_dir=tmp_path / "cache", progress=False).generate(kg, stop=2)
    common = [
        "generate", str(tiny_kgbert_dir), "--path", "td", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
        "--model", "echo-model", "--cache-dir", str(tmp_path / "cache"), "--collect-only", "--no-progress",
    ]
    assert main([*common, "--output", str(tmp_path / "partial")]) == 3  # one triple is still pending
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 2 and summary["coverage"]["steps"][0]["pending"] == 1
    assert set(ContextCorpus.load_from_disk(tmp_path / "partial").context_map()) == set(TINY_TRAIN[:2])

    ContextGenerator(EchoBackend(), "td", cache_dir=tmp_path / "cache", progress=False).generate(kg)
    assert main([*common, "--output", str(tmp_path / "hub"), "--output-format", "hub"]) == 0
    assert set(ContextCorpus.from_hub(tmp_path / "hub").context_map()) == set(TINY_TRAIN)
