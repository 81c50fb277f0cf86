"""The local transformers backend with the real offline SmolLM2 (tiny settings: the CPU is shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_ctxdistill.context.backends import TransformersBackend, resolve_model
from hf_ctxdistill.context.prompts import get_prompt_template
from tests.context.llm_helpers import one_torch_thread, smollm2_backend

PROMPTS = [
    get_prompt_template("ed+td").messages({"head": "dog", "relation": "hypernym", "tail": "canine"}),
    [{"role": "user", "content": "Name one colour."}],
    get_prompt_template("td").messages({"head": "paris", "relation": "capital of", "tail": "france"}),
]



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield

@pytest.fixture(scope="module")
def backend() -> TransformersBackend:
    return smollm2_backend()


def test_resolve_model_names_gguf_checkpoints_by_file_name(tmp_path):
    gguf = tmp_path / "tiny.Q4.gguf"
    gguf.write_bytes(b"")
    assert resolve_model(str(gguf)) == (str(tmp_path), "tiny.Q4.gguf", "tiny.Q4.gguf")
    assert resolve_model("org/model") == ("org/model", None, "org/model")
    assert resolve_model(str(tmp_path)) == (str(tmp_path), None, tmp_path.name)
    folder, file, model_id = resolve_model("smollm2-offline")
    assert (Path(folder) / file).is_file() and model_id == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_left_padding_and_chat_template(backend):
    assert backend.tokenizer.padding_side == "left" and backend.tokenizer.pad_token is not None
    assert backend.has_chat_template
    ids = backend.encode(PROMPTS[:2])
    assert len(ids[0]) > len(ids[1])  # different lengths: a batch of them needs padding
    text = backend.tokenizer.decode(ids[1])
    assert "<|im_start|>user" in text and text.rstrip().endswith("<|im_start|>assistant")


def test_batched_greedy_generation_matches_one_at_a_time(backend):
    """Left padding with the attention mask, length sorting and reordering must not change what each
    prompt gets: greedy outputs of a mixed-length batch equal those of single-prompt calls."""
    backend.batch_size = 8
    batched = backend.generate(PROMPTS, max_new_tokens=6, temperature=0.0)
    backend.batch_size = 1
    try:
        single = [backend.generate([p], max_new_tokens=6, temperature=0.0)[0] for p in PROMPTS]
    finally:
        backend.batch_size = 8
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(r.ok and r.text.strip() for r in batched)
    assert len({r.text for r in batched}) == len(PROMPTS)  # each prompt got its own answer back


def test_token_counts_finish_reasons_and_stats(backend):
    before = backend.stats.completion_tokens
    results = backend.generate(PROMPTS[:2], max_new_tokens=6, temperature=0.7)
    for result in results:
        assert 0 < result.completion_tokens <= 6
        assert result.finish_reason in ("stop", "length")
        assert result.finish_reason == "stop" or result.completion_tokens == 6
        assert result.prompt_tokens and result.prompt_tokens > 20
    assert backend.stats.completion_tokens - before == sum(r.completion_tokens for r in results)
    assert backend.stats.tokens_per_second > 0
    assert backend.settings()["temperature"] == 0.0  # per-call overrides leave the defaults alone
