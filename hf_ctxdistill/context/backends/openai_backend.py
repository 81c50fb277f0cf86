"""Generation through any OpenAI-compatible HTTP endpoint (vLLM, TGI, llama.cpp server, hosted APIs,
or ``hf-ctxdistill serve``), with concurrent requests, retries with exponential backoff and timeouts.

Only the standard library is used (``urllib`` + a thread pool): no new dependency.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from .base import GenerationBackend, GenerationResult, Prompt, messages_to_text

logger = logging.getLogger(__name__)

#: HTTP statuses worth retrying: rate limits, timeouts and server-side failures.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_TRANSIENT_ERRORS = (
    urllib.error.URLError,
    TimeoutError,
    socket.timeout,
    ConnectionError,
    http.client.HTTPException,
)


class _Secret:
    """Holds the API key so that no repr, log line or error message can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>" if self._value else "<none>"

    def __reduce__(self):  # never pickle the key into worker processes or caches
        raise TypeError("the API key holder cannot be pickled")


class OpenAIBackend(GenerationBackend):
    """Calls ``{base_url}/chat/completions`` (or ``/completions``) concurrently.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` or ``https://api.openai.com/v1``.
        model: the model name the server knows (also the recorded model id unless ``model_id`` is given).
        api_key_env: name of the environment variable holding the API key (read once, here; never logged,
            never shown in reprs or errors). Unset: no ``Authorization`` header (local servers).
        endpoint: ``"chat"`` (the server applies the model's chat template) or ``"completions"`` (plain
            text prompts; chat messages are joined).
        max_new_tokens, temperature, top_p: sampling settings sent with each request.
        concurrency: requests in flight at once.
        batch_size: prompts handed over per :meth:`generate` call (default ``4 * concurrency``): the
            generator persists results after each call, so this bounds the work a crash can lose.
        timeout: seconds to wait for one response.
        max_retries: retries of a request after a transient failure (connection error, timeout, HTTP 408,
            429, 5xx); other HTTP errors fail at once. A request that still fails comes back as a failed
            result, which the generator records and retries on its next run.
        backoff, max_backoff: the n-th retry waits ``min(max_backoff, backoff * 2**n)`` seconds, jittered
            to 50-100% so that many clients do not retry in lockstep; a ``Retry-After`` header is honoured
            up to ``max_backoff``.
        extra_body: more JSON fields for each request (e.g. ``{"seed": 0}`` or vLLM's ``{"min_tokens": 50}``).
        model_id: the model name recorded with every context (default: ``model``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        endpoint: str = "chat",
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float | None = None,
        concurrency: int = 8,
        batch_size: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        extra_body: dict | None = None,
        model_id: str | None = None,
    ):
        super().__init__()
        if endpoint not in ("chat", "completions"):
            raise ValueError(f"endpoint must be 'chat' or 'completions', got {endpoint!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = model_id or model
        self.api_key_env = api_key_env
        self._api_key = _Secret(os.environ.get(api_key_env) or None)
        self.endpoint = endpoint
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.concurrency = concurrency
        self.batch_size = batch_size or 4 * concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.extra_body = dict(extra_body or {})
        self.retries = 0  # transient failures retried so far (all threads)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, endpoint={self.endpoint!r}, "
            f"api_key_env={self.api_key_env!r}, api_key_set={self._api_key.get() is not None}, "
            f"concurrency={self.concurrency}, max_retries={self.max_retries}, timeout={self.timeout})"
        )

    def settings(self) -> dict:
        """Sampling settings recorded with each context."""
        out = {"backend": "openai", "endpoint": self.endpoint, "max_new_tokens": self.max_new_tokens, "temperature": self.temperature}
        if self.top_p is not None:
            out["top_p"] = self.top_p
        out.update({k: v for k, v in self.extra_body.items() if isinstance(v, (int, float, str, bool))})
        return out

    def close(self) -> None:
        """Stop the worker threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # ------------------------------------------------------------------ HTTP
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key.get()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _scrub(self, text: str) -> str:
        # A server may echo request headers in an error body; never let the key reach a log or a cache.
        key = self._api_key.get()
        return text.replace(key, "<hidden>") if key else text

    def request(self, method: str, route: str, payload: dict | None = None) -> dict:
        """One HTTP call (no retry) returning the decoded JSON body; raises ``urllib.error.HTTPError``,
        ``URLError`` or a timeout error on failure."""
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(f"{self.base_url}{route}", data=data, headers=self._headers(), method=method)
        with urllib.request.urlopen(req, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))

    def list_models(self) -> list[str]:
        """Model names the server offers (``GET /models``): a quick connectivity and key check."""
        return [m["id"] for m in self.request("GET", "/models").get("data", [])]

    def _payload(self, prompt: Prompt, max_new_tokens: int, temperature: float, top_p: float | None) -> tuple[str, dict]:
        body: dict = {"model": self.model, "max_tokens": max_new_tokens, "temperature": temperature, "n": 1}
        if top_p is not None:
            body["top_p"] = top_p
        body.update(self.extra_body)
        if self.endpoint == "chat":
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            return "/chat/completions", {**body, "messages": messages}
        return "/completions", {**body, "prompt": messages_to_text(prompt)}

    def _call(self, prompt: Prompt, max_new_tokens: int, temperature: float, top_p: float | None) -> GenerationResult:
        route, payload = self._payload(prompt, max_new_tokens, temperature, top_p)
        attempt = 0
        while True:
            retry_after = None
            try:
                body = self.request("POST", route, payload)
                return self._parse(body)
            except urllib.error.HTTPError as err:
                detail = _read_error(err)
                error = self._scrub(f"HTTP {err.code} from {route}: {detail}")
                if err.code not in RETRY_STATUSES:
                    return GenerationResult(error=error)
                retry_after = _retry_after(err)
            except _TRANSIENT_ERRORS as err:
                error = self._scrub(f"{type(err).__name__} calling {route}: {err}")
            except (ValueError, KeyError, IndexError, TypeError) as err:
                # A malformed answer is not retried here; the generator records it and a later run retries.
                return GenerationResult(error=self._scrub(f"bad response from {route}: {type(err).__name__}: {err}"))
            if attempt >= self.max_retries:
                return GenerationResult(error=f"{error} (gave up after {attempt + 1} attempt(s))")
            delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_backoff))
            with self._lock:
                self.retries += 1
            logger.debug("retrying %s in %.2fs after: %s", route, delay, error)
            time.sleep(delay)
            attempt += 1

    def _parse(self, body: dict) -> GenerationResult:
        choice = body["choices"][0]
        text = choice["message"]["content"] if self.endpoint == "chat" else choice["text"]
        if text is None:
            raise ValueError("the response has no text")
        usage = body.get("usage") or {}
        return GenerationResult(
            text=text,
            completion_tokens=int(usage.get("completion_tokens") or 0),
            prompt_tokens=usage.get("prompt_tokens"),
            finish_reason=choice.get("finish_reason"),
        )

    def _generate(self, prompts, *, max_new_tokens, temperature, top_p):
        max_new_tokens = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        temperature = self.temperature if temperature is None else temperature
        top_p = self.top_p if top_p is None else top_p
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai-backend")
        futures = [self._pool.submit(self._call, p, max_new_tokens, temperature, top_p) for p in prompts]
        return [f.result() for f in futures]


def _read_error(err: urllib.error.HTTPError) -> str:
    try:
        raw = err.read().decode("utf-8", errors="replace")
    except Exception:  # the body is only a hint; the status code says enough
        return err.reason or ""
    try:
        message = json.loads(raw).get("error", {})
        raw = message.get("message", raw) if isinstance(message, dict) else str(message)
    except (ValueError, AttributeError):
        pass
    return raw[:500]


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: rare for APIs, fall back to our own backoff
        return None


__all__ = ["OpenAIBackend", "RETRY_STATUSES"]
