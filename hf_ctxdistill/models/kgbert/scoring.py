"""``KGBertTripleScorer``: the ``score_fn(triples) -> scores`` callable that the link-prediction evaluator
takes, for a (trained) :class:`~hf_ctxdistill.models.kgbert.ContextualizedKGBert`."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .processing_kgbert import KGBertTripleEncoder

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ...data import KnowledgeGraph


class KGBertTripleScorer:
    """Score ``(n, 3)`` int64 (head, relation, tail) index arrays with a KG-BERT model.

    Inputs are built by the same :class:`KGBertTripleEncoder` as in training, with the model's
    ``config.max_seq_length`` unless ``max_length`` is given. Scores are float32, higher = more
    plausible; see :meth:`ContextualizedKGBert.score_triples` for ``score_type``. For speed, load the
    model with ``dtype=torch.bfloat16, attn_implementation="sdpa"`` on a GPU and use a large
    ``batch_size`` (thousands).

    Args:
        model: A ``ContextualizedKGBert`` (or a PEFT model wrapping one).
        kg: The knowledge graph whose indices the triples use.
        tokenizer: The encoder's tokenizer.
        batch_size: Triples per forward pass.
        max_length: Token budget per triple; defaults to the model's ``config.max_seq_length``.
        use_descriptions: Entity text with descriptions (must match training).
        use_token_type_ids: Segment ids; ``None`` follows the tokenizer (must match training).
        score_type: ``"log_odds"`` (default), ``"prob"`` or ``"logit"``.
        sort_by_length: Score triples in order of input length so that each batch pads little; the
            scores come back in the caller's order.
        prefetch_batches: Batches kept in flight on a GPU before their scores are fetched.
    """

    def __init__(
        self,
        model: Any,
        kg: KnowledgeGraph,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 512,
        max_length: int | None = None,
        use_descriptions: bool = True,
        use_token_type_ids: bool | None = None,
        score_type: str = "log_odds",
        sort_by_length: bool = True,
        prefetch_batches: int = 4,
    ) -> None:
        self.model = model
        config = getattr(model, "config", None)
        if max_length is None:
            max_length = getattr(config, "max_seq_length", 50)
        self.encoder = KGBertTripleEncoder(
            kg,
            tokenizer,
            max_length=max_length,
            use_descriptions=use_descriptions,
            use_token_type_ids=use_token_type_ids,
        )
        self.batch_size = int(batch_size)
        self.score_type = score_type
        self.sort_by_length = sort_by_length
        self.prefetch_batches = max(int(prefetch_batches), 0)

    def __call__(self, triples: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` float32 of an ``(n, 3)`` int64 array of (head, relation, tail) indices."""
        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        scores = np.empty(len(triples), dtype=np.float32)
        if len(triples) == 0:
            return scores
        order = np.arange(len(triples))
        if self.sort_by_length:
            h, r, t = self.encoder.truncated_lengths(triples)
            order = np.argsort(h + r + t, kind="stable")
        device = _device_of(self.model)
        on_gpu = device.type == "cuda"
        starts = list(range(0, len(triples), self.batch_size))

        def build(start: int) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
            rows = order[start : start + self.batch_size]
            inputs = self.encoder(triples[rows])
            if on_gpu:
                inputs = {k: v.pin_memory() for k, v in inputs.items()}
            return rows, inputs

        # On a GPU the next batch is built in a helper thread (numpy releases the GIL) while the model
        # runs, and scores are fetched a few batches late: each fetch waits for the GPU, which would
        # otherwise sit idle while the CPU tokenizes.
        pending: deque[tuple[np.ndarray, torch.Tensor]] = deque()

        def fetch_oldest() -> None:
            rows, values = pending.popleft()
            scores[rows] = values.float().cpu().numpy()

        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(build, starts[0]) if on_gpu else None
            for i, start in enumerate(starts):
                if on_gpu:
                    rows, inputs = future.result()
                    if i + 1 < len(starts):
                        future = pool.submit(build, starts[i + 1])
                    inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
                else:
                    rows, inputs = build(start)
                with torch.inference_mode():
                    pending.append((rows, self.model.score_triples(**inputs, score_type=self.score_type)))
                if len(pending) > self.prefetch_batches:
                    fetch_oldest()
        while pending:
            fetch_oldest()
        return scores


def _device_of(model: Any) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(model.parameters()).device


__all__ = ["KGBertTripleScorer"]
