"""The one interface every LLM backend implements: a batch of prompts in, one result per prompt out."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

#: A prompt is either chat messages (``[{"role": ..., "content": ...}, ...]``), rendered with the model's
#: chat template, or a plain string sent as it is (``/v1/completions`` style).
Prompt = list[dict[str, str]] | str


@dataclass
class GenerationResult:
    """What one prompt produced.

    Attributes:
        text: the generated text, or ``None`` when the call failed.
        error: why the call failed (``None`` on success); failures are recorded and retried later.
        completion_tokens: tokens generated (as reported by the server for HTTP backends).
        prompt_tokens: tokens in the prompt, when known.
        finish_reason: ``"stop"`` (end of sequence) or ``"length"`` (hit ``max_new_tokens``: likely truncated).
    """

    text: str | None = None
    error: str | None = None
    completion_tokens: int = 0
    prompt_tokens: int | None = None
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when the call produced text."""
        return self.error is None and self.text is not None


@dataclass
class ThroughputStats:
    """Running totals a backend keeps, for progress bars and benchmarks."""

    prompts: int = 0
    failed: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    batches: int = 0
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of generation time (0 before the first batch)."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def add(self, results: Sequence[GenerationResult], seconds: float) -> None:
        """Count one finished batch."""
        self.batches += 1
        self.prompts += len(results)
        self.failed += sum(not r.ok for r in results)
        self.completion_tokens += sum(r.completion_tokens for r in results)
        self.seconds += seconds

    def as_dict(self) -> dict[str, float | int]:
        """Plain numbers for logs and JSON reports."""
        return {
            "prompts": self.prompts,
            "failed": self.failed,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


class GenerationBackend(ABC):
    """An LLM that turns prompts into text.

    Subclasses set :attr:`model_id` (the stable model name stored in caches and corpora: the same model
    on another machine must give the same id) and :attr:`batch_size` (how many prompts the generator
    hands over per :meth:`generate` call), and implement :meth:`_generate`.

    Per-prompt failures come back as results with ``error`` set; an exception from :meth:`generate`
    means the whole batch failed (the generator records every prompt of it as failed).
    """

    model_id: str = "unknown"
    batch_size: int = 8

    def __init__(self) -> None:
        self.stats = ThroughputStats()

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> list[GenerationResult]:
        """Generate one result per prompt, in the order given.

        ``max_new_tokens``, ``temperature`` and ``top_p`` override the backend's defaults for this call
        (``None`` keeps them); the server uses this to honour each request's own settings.
        """
        if not prompts:
            return []
        started = time.perf_counter()
        results = self._generate(list(prompts), max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        if len(results) != len(prompts):
            raise RuntimeError(f"{type(self).__name__} returned {len(results)} results for {len(prompts)} prompts")
        self.stats.add(results, time.perf_counter() - started)
        return results

    @abstractmethod
    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int | None, temperature: float | None, top_p: float | None
    ) -> list[GenerationResult]:
        """Backend-specific generation; same contract as :meth:`generate`."""

    @abstractmethod
    def settings(self) -> dict:
        """The sampling settings in effect (recorded with every generated context)."""

    def close(self) -> None:
        """Release resources (threads, connections); the default has nothing to release."""
        return None

    def __enter__(self) -> GenerationBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def messages_to_text(prompt: Prompt) -> str:
    """Flatten chat messages into one plain prompt, for models without a chat template and for
    completion-style endpoints."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(m["content"] for m in prompt)


__all__ = ["GenerationBackend", "GenerationResult", "Prompt", "ThroughputStats", "messages_to_text"]
