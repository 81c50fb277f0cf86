"""A small OpenAI-compatible HTTP server over a local :class:`~hf_ctxdistill.context.backends.TransformersBackend`.

It turns a machine with a GPU into an endpoint that :class:`~hf_ctxdistill.context.backends.OpenAIBackend`
(or any OpenAI client) can call from elsewhere: ``hf-ctxdistill serve --model <hub id>``. Requests that
arrive together are batched into one ``generate`` call (up to ``max_batch`` prompts, waiting at most
``batch_wait`` seconds for a batch to fill), which is what makes a small model fast on a GPU.

Routes: ``GET /v1/models``, ``GET /health``, ``POST /v1/chat/completions`` (the server applies the model's
chat template) and ``POST /v1/completions`` (plain text; ``prompt`` may be a list, answered with one choice
per prompt). No streaming, ``n`` must be 1. Only the standard library is used (``http.server``).

For testing clients against real failures, ``fail_first`` answers the first N generation requests with
HTTP 503 and ``delay`` holds every generation request for that many seconds before answering.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .backends.base import GenerationBackend, GenerationResult, Prompt

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    prompt: Prompt
    settings: tuple
    done: threading.Event = field(default_factory=threading.Event)
    result: GenerationResult | None = None


class _Batcher:
    """One worker thread that owns the backend: it gathers queued prompts with the same sampling settings
    into batches, so concurrent requests share a ``generate`` call (and the model is never used by two
    threads at once)."""

    def __init__(self, backend: GenerationBackend, max_batch: int, batch_wait: float):
        self.backend = backend
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self.queue: queue.Queue[_Job] = queue.Queue()
        self._held: list[_Job] = []  # jobs with other settings than the batch being formed
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ctxdistill-batcher", daemon=True)
        self.thread.start()

    def submit(self, prompts: list[Prompt], settings: tuple) -> list[_Job]:
        jobs = [_Job(prompt, settings) for prompt in prompts]
        for job in jobs:
            self.queue.put(job)
        return jobs

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)

    def _next(self, timeout: float | None) -> _Job | None:
        if self._held:
            return self._held.pop(0)
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            first = self._next(timeout=0.1)
            if first is None:
                continue
            batch, deadline = [first], time.monotonic() + self.batch_wait
            held = []
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                if self._held:
                    job = self._held.pop(0)
                else:
                    try:
                        job = self.queue.get(timeout=max(0.0, remaining)) if remaining > 0 else self.queue.get_nowait()
                    except queue.Empty:
                        break
                (batch if job.settings == first.settings else held).append(job)
            self._held = held + self._held
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        max_new_tokens, temperature, top_p = batch[0].settings
        try:
            results = self.backend.generate(
                [job.prompt for job in batch], max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
            )
        except Exception as err:  # reported to each waiting request as a server error
            logger.exception("generation failed for a batch of %d", len(batch))
            results = [GenerationResult(error=f"{type(err).__name__}: {err}") for _ in batch]
        for job, result in zip(batch, results):
            job.result = result
            job.done.set()


class ContextServer(ThreadingHTTPServer):
    """The HTTP server; see the module docstring. Start it in the background with :meth:`start` (tests,
    notebooks) or in the foreground with :func:`serve`.

    Args:
        backend: the local model (any :class:`GenerationBackend`).
        host, port: where to listen; port 0 picks a free port (see :attr:`url`).
        model_name: the name clients use (default: the backend's ``model_id``).
        max_batch: most prompts per ``generate`` call (default: the backend's ``batch_size``).
        batch_wait: seconds to wait for more requests before running a batch that is not full.
        fail_first: answer the first N generation requests with HTTP 503 (for resilience tests).
        delay: hold each generation request this many seconds first (for timeout tests).
        api_key_env: when set, the environment variable whose value clients must send as a Bearer token.
        request_timeout: seconds a request waits for its generation before answering 504.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        backend: GenerationBackend,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        model_name: str | None = None,
        max_batch: int | None = None,
        batch_wait: float = 0.02,
        fail_first: int = 0,
        delay: float = 0.0,
        api_key_env: str | None = None,
        request_timeout: float = 3600.0,
    ):
        super().__init__((host, port), _Handler)
        self.backend = backend
        self.model_name = model_name or backend.model_id
        self.max_batch = max_batch or backend.batch_size
        self.fail_first = fail_first
        self.delay = delay
        self.request_timeout = request_timeout
        self._api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not self._api_key:
            raise ValueError(f"api_key_env={api_key_env!r} is set but that environment variable is empty")
        self.batcher = _Batcher(backend, self.max_batch, batch_wait)
        self.lock = threading.Lock()
        self.generation_requests = 0  # POSTs to a generation route, including injected failures
        self.injected_failures = 0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The API root to give clients, e.g. ``http://127.0.0.1:41234/v1``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ContextServer:
        """Serve in a background thread and return at once."""
        self._thread = threading.Thread(target=self.serve_forever, name="ctxdistill-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and the batching thread."""
        self.shutdown()
        self.server_close()
        self.batcher.stop()

    def __enter__(self) -> ContextServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def authorized(self, header: str | None) -> bool:
        """Whether a request's ``Authorization`` header carries the key (always true without a key)."""
        if self._api_key is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self._api_key}".encode())

    def take_injected_failure(self) -> bool:
        """Count one generation request; true while it is one of the first ``fail_first``."""
        with self.lock:
            self.generation_requests += 1
            if self.injected_failures < self.fail_first:
                self.injected_failures += 1
                return True
        return False


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind


class _Handler(BaseHTTPRequestHandler):
    server: ContextServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # route http.server's access log to logging, not stderr
        logger.debug("%s - %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ helpers
    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        payload = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client went away (killed, timed out)
            logger.debug("client %s disconnected before the answer", self.address_string())

    def _error(self, status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    def _read_json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as err:
            raise _BadRequest(400, f"the request body is not JSON: {err}") from None
        if not isinstance(body, dict):
            raise _BadRequest(400, "the request body must be a JSON object")
        return body

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self.server.authorized(self.headers.get("Authorization")):
            return self._error(401, "missing or wrong API key", "authentication_error")
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": self.server.model_name, "object": "model", "created": 0, "owned_by": "hf_ctxdistill"}
            return self._send(200, {"object": "list", "data": [model]})
        if self.path.rstrip("/") == "/health":
            return self._send(200, {"status": "ok"})
        return self._error(404, f"no route {self.path}", "not_found_error")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        route = self.path.rstrip("/")
        if route not in ("/v1/chat/completions", "/v1/completions"):
            self._read_json_quietly()
            return self._error(404, f"no route {self.path}", "not_found_error")
        try:
            body = self._read_json()
            if not self.server.authorized(self.headers.get("Authorization")):
                return self._error(401, "missing or wrong API key", "authentication_error")
            chat = route.endswith("chat/completions")
            prompts, settings = self._parse(body, chat)
        except _BadRequest as err:
            return self._error(err.status, str(err), err.kind)
        if self.server.take_injected_failure():
            return self._error(503, "injected failure (fail_first); retry later", "server_error")
        if self.server.delay:
            time.sleep(self.server.delay)
        jobs = self.server.batcher.submit(prompts, settings)
        for job in jobs:
            if not job.done.wait(self.server.request_timeout):
                return self._error(504, "generation timed out on the server", "server_error")
        failed = [job.result for job in jobs if not job.result.ok]
        if failed:
            return self._error(500, f"generation failed: {failed[0].error}", "server_error")
        self._send(200, self._response(jobs, chat))

    def _read_json_quietly(self) -> None:
        try:
            self._read_json()
        except _BadRequest:
            pass

    def _parse(self, body: dict, chat: bool) -> tuple[list[Prompt], tuple]:
        model = body.get("model")
        if model is not None and model not in (self.server.model_name, self.server.backend.model_id):
            raise _BadRequest(404, f"model {model!r} is not served here; available: {self.server.model_name!r}", "not_found_error")
        if body.get("stream"):
            raise _BadRequest(400, "stream=true is not supported by this server")
        if int(body.get("n") or 1) != 1:
            raise _BadRequest(400, "only n=1 is supported")
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
            ):
                raise _BadRequest(400, "'messages' must be a non-empty list of {role, content} objects with string content")
            prompts: list[Prompt] = [[{"role": m["role"], "content": m["content"]} for m in messages]]
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, str):
                prompts = [prompt]
            elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
                prompts = list(prompt)
            else:
                raise _BadRequest(400, "'prompt' must be a string or a non-empty list of strings")
        try:
            max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
            max_tokens = None if max_tokens is None else int(max_tokens)
            temperature = None if body.get("temperature") is None else float(body["temperature"])
            top_p = None if body.get("top_p") is None else float(body["top_p"])
        except (TypeError, ValueError) as err:
            raise _BadRequest(400, f"bad sampling parameter: {err}") from None
        if max_tokens is not None and max_tokens < 1:
            raise _BadRequest(400, "max_tokens must be >= 1")
        return prompts, (max_tokens, temperature, top_p)

    def _response(self, jobs: list[_Job], chat: bool) -> dict:
        prompt_tokens = sum(job.result.prompt_tokens or 0 for job in jobs)
        completion_tokens = sum(job.result.completion_tokens for job in jobs)
        if chat:
            choices = [
                {"index": 0, "message": {"role": "assistant", "content": jobs[0].result.text}, "finish_reason": jobs[0].result.finish_reason}
            ]
        else:
            choices = [
                {"index": i, "text": job.result.text, "logprobs": None, "finish_reason": job.result.finish_reason}
                for i, job in enumerate(jobs)
            ]
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.server.model_name,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }


def serve(backend: GenerationBackend, host: str = "127.0.0.1", port: int = 8000, **options) -> None:
    """Serve in the foreground until interrupted (what ``hf-ctxdistill serve`` runs)."""
    server = ContextServer(backend, host, port, **options)
    logger.info("serving %r at %s (max batch %d)", server.model_name, server.url, server.max_batch)
    print(f"serving {server.model_name!r} at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.batcher.stop()


__all__ = ["ContextServer", "serve"]
