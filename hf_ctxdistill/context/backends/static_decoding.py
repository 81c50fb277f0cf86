"""A lean sampling loop over a pre-allocated KV cache, for generating contexts at scale.

``model.generate`` pays a fixed host cost per generated token (logits processors, stopping criteria,
mask building, a device sync to test for the end), which for a small LLM is most of the time of a
decoding step even at batch sizes in the thousands. This loop keeps only what context generation
needs (temperature / top-p sampling, end-of-sequence ids, a minimum length) and fixes every shape:
the batch is padded to a constant size, the prompt length is rounded up to a bucket, and the whole
attention mask of the cache is built once per batch.

Models with grouped key/value heads (Llama, SmolLM, Qwen, Mistral...) attend with
:func:`packed_gqa_sdpa_forward` while decoding: the query heads that share a key/value head are
stacked as rows of one query, so the cache is read once per step instead of being copied once per
query head first (``repeat_kv``), which is most of a decoding step's GPU time at large batch sizes.
With ``cuda_graph=True`` on a GPU the one-token decoding step is captured once as a CUDA graph and
replayed for every token: its inputs live in fixed buffers and the attention mask is given as a
ready 4D tensor, so a step costs its GPU work alone rather than thousands of kernel launches from
Python. A model whose forward pass cannot be captured falls back to eager steps, with a warning.

Greedy decoding gives the same tokens as ``model.generate`` (tested); sampling draws from the same
distribution but not the same random numbers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

logger = logging.getLogger(__name__)


#: Name under which :func:`packed_gqa_sdpa_forward` is registered with transformers' attention interfaces.
PACKED_GQA_ATTENTION = "sdpa_packed_gqa"


def packed_gqa_sdpa_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """SDPA attention that, for a single query position, folds the query heads of each key/value group
    into query rows instead of repeating the keys and values per head. Same result as transformers'
    ``sdpa`` attention (which it calls for everything else); returns ``(output [batch, 1, heads, dim], None)``."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1 or dropout or kwargs.get("output_attentions"):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    batch, heads, _, dim = query.shape
    mask = attention_mask[:, :, :, : key.shape[-2]] if attention_mask is not None and attention_mask.dim() == 4 else attention_mask
    # Query head h uses key/value head h // groups (transformers' repeat_kv order): a view, no copy.
    output = torch.nn.functional.scaled_dot_product_attention(
        query.reshape(batch, heads // groups, groups, dim), key, value, attn_mask=mask, scale=scaling
    )
    return output.reshape(batch, 1, heads, dim), None


def use_packed_gqa_attention(model) -> bool:
    """Switch ``model`` from ``sdpa`` to :func:`packed_gqa_sdpa_forward` when it has grouped key/value
    heads (registering it with transformers once). Returns whether it switched; other attention
    implementations (flash attention, eager...) are left alone."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    config = model.config
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    if getattr(config, "_attn_implementation", None) != "sdpa" or not heads or kv_heads == heads:
        return False
    AttentionInterface.register(PACKED_GQA_ATTENTION, packed_gqa_sdpa_forward)
    AttentionMaskInterface.register(PACKED_GQA_ATTENTION, sdpa_mask)
    model.set_attn_implementation(PACKED_GQA_ATTENTION)
    return config._attn_implementation == PACKED_GQA_ATTENTION


@dataclass
class DecodedRow:
    """Generated token ids of one prompt (end-of-sequence excluded) and whether it stopped by itself."""

    tokens: list[int]
    stopped: bool

    @classmethod
    def from_tokens(cls, row: list[int], eos_token_ids) -> DecodedRow:
        """``row`` up to its first end-of-sequence id (excluded), and whether it had one."""
        end = next((i for i, token in enumerate(row) if token in eos_token_ids), None)
        return cls(tokens=row if end is None else row[:end], stopped=end is not None)


#: Attention implementations that take a boolean 4D mask (True = attend) as it is.
_BOOLEAN_MASK_ATTENTION = {"sdpa", PACKED_GQA_ATTENTION}


class _StepState:
    """The cache and the fixed input/output buffers of the one-token step for one (rows, length) shape;
    a captured CUDA graph reads and writes exactly these tensors."""

    def __init__(self, model, rows: int, length: int, device):
        import torch
        from transformers import StaticCache

        self.shape = (rows, length)
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        self.tokens = torch.zeros((rows, 1), dtype=torch.long, device=device)
        self.positions = torch.zeros((rows, 1), dtype=torch.long, device=device)
        self.cache_position = torch.zeros((1,), dtype=torch.long, device=device)
        self.valid = torch.ones((rows, 1, 1, length), dtype=torch.bool, device=device)
        self.slots = torch.arange(length, device=device).view(1, 1, 1, length)
        self.mask = torch.ones((rows, 1, 1, length), dtype=torch.bool, device=device)
        self.graph = None
        self.logits = None


class StaticCacheDecoder:
    """Batched sampling over a :class:`transformers.StaticCache`, optionally replayed as a CUDA graph.

    Args:
        model: a loaded causal LM whose architecture supports a static cache (Llama, Mistral, Qwen,
            SmolLM, Gemma...). It stays in the caller's device and dtype.
        pad_token_id: id written into padding positions.
        eos_token_ids: ids that end a sequence.
        batch_size: the most prompts per batch. A batch is padded to the next power of two of rows
            (at most ``batch_size``), so full batches share one shape and a smaller one (the last, an
            out-of-memory retry at half the size) adds few others.
        prompt_bucket: prompt lengths are rounded up to a multiple of this (fewer distinct shapes, each
            of which needs its own cache and graph, for a little extra padding).
        cuda_graph: capture the decoding step as a CUDA graph (CUDA devices with ``sdpa`` attention;
            otherwise ignored). Captured again when the (rows, cache length) shape changes: one cache
            and one graph are kept at a time.
        packed_gqa: attend with :func:`packed_gqa_sdpa_forward` when the model uses ``sdpa`` and has
            grouped key/value heads (switches the model's attention implementation; same results).
    """

    def __init__(
        self,
        model,
        *,
        pad_token_id: int,
        eos_token_ids,
        batch_size: int,
        prompt_bucket: int = 64,
        cuda_graph: bool = False,
        packed_gqa: bool = True,
    ):
        import torch

        self.model = model
        self.pad_token_id = int(pad_token_id)
        self.eos_token_ids = sorted(int(t) for t in eos_token_ids)
        self.batch_size = batch_size
        self.prompt_bucket = max(1, prompt_bucket)
        self.device = next(model.parameters()).device
        self.packed_gqa = bool(packed_gqa) and use_packed_gqa_attention(model)
        self.boolean_mask = getattr(model.config, "_attn_implementation", None) in _BOOLEAN_MASK_ATTENTION
        self.cuda_graph = bool(cuda_graph) and self.device.type == "cuda" and self.boolean_mask
        self._state: _StepState | None = None
        self._eos = torch.tensor(self.eos_token_ids or [-1], device=self.device)

    # ------------------------------------------------------------------ pieces
    def _state_for(self, rows: int, length: int) -> _StepState:
        """The step state of this shape; one at a time (a cache of another shape is freed first)."""
        import torch

        if self._state is not None and self._state.shape == (rows, length):
            self._state.cache.reset()
            return self._state
        self._state = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self._state = _StepState(self.model, rows, length, self.device)
        return self._state

    def _forward_one(self, state: _StepState):
        # ``cache_position`` is read by transformers versions that index the cache with it; newer ones
        # keep the write position inside the cache and ignore it.
        output = self.model(
            input_ids=state.tokens,
            position_ids=state.positions,
            cache_position=state.cache_position,
            attention_mask=state.mask if self.boolean_mask else state.valid.view(state.valid.shape[0], -1).long(),
            past_key_values=state.cache,
            use_cache=True,
        )
        return output.logits[:, -1, :]

    def _step(self, state: _StepState):
        """Logits of the step whose inputs are in ``state``'s buffers."""
        import torch

        if self.boolean_mask:  # slots written so far (prompt padding excluded), as a ready 4D mask
            torch.logical_and(state.valid, state.slots <= state.cache_position, out=state.mask)
        if self.cuda_graph and state.graph is None:
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    state.logits = self._forward_one(state)
                state.graph = graph
            except Exception as err:  # some model code cannot be captured: decode eagerly instead
                logger.warning("decoding step could not be captured as a CUDA graph (%s: %s); decoding eagerly", type(err).__name__, err)
                self.cuda_graph = False
                state.logits = None
        if state.graph is not None:
            state.graph.replay()
            return state.logits.clone()  # the next replay overwrites the graph's output
        return self._forward_one(state)

    @staticmethod
    def _sample(logits, temperature: float, top_p: float):
        import torch

        logits = logits.float()
        if not temperature or temperature <= 0:
            return logits.argmax(dim=-1)
        logits = logits / temperature
        if top_p < 1.0:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            # Drop a token once the mass before it already reaches top_p (the first token always stays).
            drop = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
        return torch.multinomial(logits.softmax(dim=-1), 1).squeeze(-1)

    # ------------------------------------------------------------------ decoding
    def decode(
        self,
        prompts: list[list[int]],
        *,
        max_new_tokens: int,
        temperature: float = 0.7,
        top_p: float = 1.0,
        min_new_tokens: int = 0,
    ) -> list[DecodedRow]:
        """Generate for up to ``batch_size`` tokenised prompts; one :class:`DecodedRow` per prompt."""
        import torch

        if not prompts:
            return []
        if len(prompts) > self.batch_size:
            raise ValueError(f"{len(prompts)} prompts for a decoder of batch_size {self.batch_size}")
        real = len(prompts)
        # Pad the batch with copies of its first prompt to a bucketed row count (their output is dropped).
        rows = prompts + [prompts[0]] * (min(self.batch_size, 1 << (real - 1).bit_length()) - real)
        prompt_length = self.prompt_bucket * math.ceil(max(len(p) for p in rows) / self.prompt_bucket)
        length = prompt_length + max_new_tokens
        device = self.device

        input_ids = torch.full((len(rows), prompt_length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.ones((len(rows), length), dtype=torch.long)
        for i, prompt in enumerate(rows):  # left padding: the last prompt token sits at prompt_length - 1
            input_ids[i, prompt_length - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention_mask[i, : prompt_length - len(prompt)] = 0
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        real_lengths = attention_mask[:, :prompt_length].sum(-1)
        prompt_positions = (attention_mask[:, :prompt_length].cumsum(-1) - 1).clamp(min=0)

        generated = torch.full((len(rows), max_new_tokens), self.pad_token_id, dtype=torch.long, device=device)
        finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
        # no_grad rather than inference_mode: the cache outlives this call and is reset in place later.
        with torch.no_grad():
            state = self._state_for(len(rows), length)
            state.valid.copy_(attention_mask.bool().view(len(rows), 1, 1, length))
            logits = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=prompt_positions,
                cache_position=torch.arange(prompt_length, device=device),
                past_key_values=state.cache,
                use_cache=True,
                logits_to_keep=1,
            ).logits[:, -1, :]
            steps = 0
            for step in range(max_new_tokens):
                if step < min_new_tokens and self.eos_token_ids:
                    logits = logits.float().index_fill(-1, self._eos, float("-inf"))
                token = self._sample(logits, temperature, top_p)
                token = torch.where(finished, self.pad_token_id, token)
                generated[:, step] = token
                finished |= torch.isin(token, self._eos)
                steps = step + 1
                # Test for the end now and then only: each test waits for the device.
                if step + 1 == max_new_tokens or (step % 16 == 15 and bool(finished[:real].all())):
                    break
                state.tokens.copy_(token.unsqueeze(-1))
                torch.add(real_lengths, step, out=state.positions.view(-1))
                state.cache_position.fill_(prompt_length + step)
                logits = self._step(state)
        eos = set(self.eos_token_ids)
        return [DecodedRow.from_tokens(row, eos) for row in generated[:real, :steps].tolist()]


__all__ = ["PACKED_GQA_ATTENTION", "DecodedRow", "StaticCacheDecoder", "packed_gqa_sdpa_forward", "use_packed_gqa_attention"]
