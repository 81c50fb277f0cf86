"""The OpenAI-compatible HTTP backend against a real server on loopback (``ContextServer`` serving the
offline SmolLM2): chat and completions routes, retries with backoff, timeouts, API keys."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from hf_ctxdistill.context.backends import OpenAIBackend
from hf_ctxdistill.context.server import ContextServer
from tests.context.llm_helpers import one_torch_thread, smollm2_backend

PROMPT = [{"role": "user", "content": "Name one colour."}]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture
def server():
    with ContextServer(smollm2_backend(), batch_wait=0.05) as running:
        yield running


def client(server: ContextServer, **kwargs) -> OpenAIBackend:
    options = {"max_new_tokens": 6, "temperature": 0.0, "backoff": 0.01, "max_retries": 3, "timeout": 60.0, **kwargs}
    return OpenAIBackend(server.url, server.model_name, **options)


def test_chat_completions_batched_on_the_server(server):
    backend = client(server, concurrency=3)
    assert backend.list_models() == [server.model_name]
    prompts = [PROMPT, [{"role": "user", "content": "Name one animal."}], [{"role": "user", "content": "Name one city."}]]
    results = backend.generate(prompts)
    backend.close()
    assert all(r.ok and r.text.strip() for r in results), [r.error for r in results]
    assert all(0 < r.completion_tokens <= 6 and r.finish_reason in ("stop", "length") for r in results)
    # The same greedy request answered alone gives the same text: the server's batching changes nothing.
    assert client(server).generate([prompts[1]])[0].text == results[1].text
    assert server.batcher.backend.stats.batches >= 1 and server.generation_requests == 4


def test_completions_route_answers_a_list_of_prompts(server):
    body = json.dumps({"model": server.model_name, "prompt": ["The sky is", "Grass is"], "max_tokens": 4, "temperature": 0}).encode()
    request = urllib.request.Request(f"{server.url}/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert answer["object"] == "text_completion" and [c["index"] for c in answer["choices"]] == [0, 1]
    assert all(c["text"] for c in answer["choices"]) and 0 < answer["usage"]["completion_tokens"] <= 8
    result = client(server, endpoint="completions", max_new_tokens=4).generate(["The sky is"])[0]
    assert result.ok and result.text == answer["choices"][0]["text"]


def test_transient_failures_are_retried_with_backoff(server):
    server.fail_first = 2
    backend = client(server, concurrency=1)
    started = time.monotonic()
    result = backend.generate([PROMPT])[0]
    assert result.ok, result.error
    assert backend.retries == 2 and server.injected_failures == 2 and server.generation_requests == 3
    assert time.monotonic() - started >= 0.01 * 0.5 + 0.02 * 0.5  # two jittered waits: 0.01 s, then 0.02 s


def test_gives_up_after_max_retries_and_reports_the_error(server):
    server.fail_first = 10
    backend = client(server, max_retries=1)
    result = backend.generate([PROMPT])[0]
    assert not result.ok
    assert "HTTP 503" in result.error and "injected failure" in result.error and "gave up after 2 attempt(s)" in result.error
    assert server.generation_requests == 2


def test_timeout_is_a_recorded_failure(server):
    server.delay = 2.0
    backend = client(server, timeout=0.3, max_retries=0)
    started = time.monotonic()
    result = backend.generate([PROMPT])[0]
    assert time.monotonic() - started < 1.5
    assert not result.ok and "timed out" in result.error.lower()


def test_client_errors_are_not_retried(server):
    backend = OpenAIBackend(server.url, "no-such-model", max_retries=3, backoff=0.01)
    result = backend.generate([PROMPT])[0]
    assert not result.ok and "HTTP 404" in result.error and "no-such-model" in result.error
    assert backend.retries == 0


def test_api_key_comes_from_the_environment_and_never_shows(monkeypatch):
    secret = "sk-test-1234567890-secret"
    monkeypatch.setenv("CTX_SERVER_KEY", secret)
    monkeypatch.setenv("CTX_CLIENT_KEY", secret)
    monkeypatch.setenv("CTX_WRONG_KEY", "sk-wrong-0987654321-secret")
    with ContextServer(smollm2_backend(), api_key_env="CTX_SERVER_KEY") as server:
        good = OpenAIBackend(server.url, server.model_name, api_key_env="CTX_CLIENT_KEY", max_new_tokens=4, temperature=0.0)
        assert good.generate([PROMPT])[0].ok
        wrong = OpenAIBackend(server.url, server.model_name, api_key_env="CTX_WRONG_KEY", max_retries=2, backoff=0.01)
        failed = wrong.generate([PROMPT])[0]
        missing = OpenAIBackend(server.url, server.model_name, api_key_env="CTX_UNSET_KEY")
        assert "HTTP 401" in missing.generate([PROMPT])[0].error
    assert "HTTP 401" in failed.error and wrong.retries == 0
    for text in (repr(good), repr(wrong), failed.error, str(vars(good)), json.dumps(good.settings())):
        assert secret not in text and "sk-wrong-0987654321-secret" not in text
    assert "api_key_set=True" in repr(good) and "api_key_set=False" in repr(missing)
