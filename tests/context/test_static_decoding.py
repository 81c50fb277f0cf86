"""The static-cache decoding loop against ``model.generate`` (tiny random Llama with grouped KV heads,
and the real offline SmolLM2 through the backend)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hf_ctxdistill.context.backends import TransformersBackend
from hf_ctxdistill.context.backends.static_decoding import (
    PACKED_GQA_ATTENTION,
    StaticCacheDecoder,
    packed_gqa_sdpa_forward,
)
from tests.context.llm_helpers import one_torch_thread, smollm2_backend

PAD, EOS = 0, 5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, pad_token_id=PAD, bos_token_id=1, eos_token_id=EOS,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def prompts():
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(6, 97, (n,), generator=generator).tolist() for n in (7, 3, 11, 5)]


def reference(model, prompts, eos, **kwargs):
    """``model.generate`` with transformers' own ``sdpa`` attention on the left-padded batch, each row cut
    at its first end-of-sequence id."""
    width = max(map(len, prompts))
    input_ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    attention_mask = (input_ids != PAD).long()
    current = model.config._attn_implementation
    model.set_attn_implementation("sdpa")
    try:
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask, pad_token_id=PAD, eos_token_id=eos, **kwargs)
    finally:
        model.set_attn_implementation(current)
    rows = []
    for row in output[:, width:].tolist():
        end = next((i for i, t in enumerate(row) if t == eos), None)
        rows.append(row if end is None else row[:end])
    return rows


def test_packed_gqa_attention_equals_sdpa_with_repeated_heads(tiny_llama):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    attention = tiny_llama.model.layers[0].self_attn
    assert attention.num_key_value_groups == 2
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(3, 4, 1, 8, generator=generator)
    key, value = torch.randn(2, 3, 2, 10, 8, generator=generator)
    mask = torch.rand(3, 1, 1, 10, generator=generator) > 0.3
    mask[:, :, :, 0] = True
    expected, _ = sdpa_attention_forward(attention, query, key, value, mask, scaling=0.35)
    got, _ = packed_gqa_sdpa_forward(attention, query, key, value, mask, scaling=0.35)
    assert got.shape == expected.shape == (3, 1, 4, 8)
    torch.testing.assert_close(got, expected)
    # Heads must map to their own key/value group: swapping the groups changes the answer.
    swapped, _ = packed_gqa_sdpa_forward(attention, query, key.flip(1), value.flip(1), mask, scaling=0.35)
    assert not torch.allclose(swapped, expected)


def test_greedy_matches_generate_with_padded_batch_and_bucketed_prompts(tiny_llama, prompts):
    # Up to 6 prompts per batch, prompt length 11 rounded up to 12.
    decoder = StaticCacheDecoder(tiny_llama, pad_token_id=PAD, eos_token_ids=[EOS], batch_size=6, prompt_bucket=4)
    assert decoder.packed_gqa and decoder.boolean_mask and tiny_llama.config._attn_implementation == PACKED_GQA_ATTENTION
    rows = decoder.decode(prompts, max_new_tokens=12, temperature=0)
    assert [r.tokens for r in rows] == reference(tiny_llama, prompts, EOS, max_new_tokens=12, do_sample=False)
    assert all(len(r.tokens) == 12 and not r.stopped for r in rows)
    # The cache is reused for the next batch of the same shape and must start clean.
    again = decoder.decode(prompts[::-1], max_new_tokens=12, temperature=0)
    assert [r.tokens for r in again] == [r.tokens for r in rows][::-1]
    # 3 prompts run as 4 rows (one padding row): the padding must not change the others.
    three = decoder.decode(prompts[:3], max_new_tokens=12, temperature=0)
    assert [r.tokens for r in three] == [r.tokens for r in rows][:3]
    assert decoder._state.shape[0] == 4


def test_end_of_sequence_and_min_new_tokens_match_generate(tiny_llama, prompts):
    greedy = reference(tiny_llama, prompts, EOS, max_new_tokens=12, do_sample=False)
    eos = greedy[0][3]  # a token the first row emits early: it must end that row there
    decoder = StaticCacheDecoder(tiny_llama, pad_token_id=PAD, eos_token_ids=[eos], batch_size=4, prompt_bucket=1)
    rows = decoder.decode(prompts, max_new_tokens=12, temperature=0)
    assert [r.tokens for r in rows] == reference(tiny_llama, prompts, eos, max_new_tokens=12, do_sample=False)
    assert rows[0].stopped and len(rows[0].tokens) <= 3
    forced = decoder.decode(prompts, max_new_tokens=12, temperature=0, min_new_tokens=6)
    assert [r.tokens for r in forced] == reference(tiny_llama, prompts, eos, max_new_tokens=12, min_new_tokens=6, do_sample=False)
    assert all(eos not in r.tokens[:6] for r in forced) and len(forced[0].tokens) >= 6


def test_sampling_is_seeded_and_a_tiny_top_p_is_greedy(tiny_llama, prompts):
    decoder = StaticCacheDecoder(tiny_llama, pad_token_id=PAD, eos_token_ids=[EOS], batch_size=4)
    torch.manual_seed(3)
    first = decoder.decode(prompts, max_new_tokens=10, temperature=1.0)
    torch.manual_seed(3)
    second = decoder.decode(prompts, max_new_tokens=10, temperature=1.0)
    assert [r.tokens for r in first] == [r.tokens for r in second]
    greedy = decoder.decode(prompts, max_new_tokens=10, temperature=0)
    assert [r.tokens for r in first] != [r.tokens for r in greedy]  # temperature 1 over 97 tokens does sample
    nucleus = decoder.decode(prompts, max_new_tokens=10, temperature=1.0, top_p=1e-6)
    assert [r.tokens for r in nucleus] == [r.tokens for r in greedy]  # only the top token survives


def test_too_many_prompts_and_unsupported_options_are_refused(tiny_llama, prompts):
    decoder = StaticCacheDecoder(tiny_llama, pad_token_id=PAD, eos_token_ids=[EOS], batch_size=2)
    with pytest.raises(ValueError, match="batch_size 2"):
        decoder.decode(prompts, max_new_tokens=2)
    with pytest.raises(ValueError, match="repetition_penalty"):
        TransformersBackend(tiny_llama, tokenizer=object(), decoding="static", generation_kwargs={"repetition_penalty": 1.2})


def test_backend_static_decoding_matches_generate_on_smollm2():
    """The real offline LLM: the backend's static loop and ``model.generate`` agree token for token."""
    loaded = smollm2_backend()
    static = TransformersBackend(loaded.model, tokenizer=loaded.tokenizer, decoding="static", batch_size=4, max_new_tokens=8)
    messages = [
        [{"role": "user", "content": "Name one colour."}],
        [{"role": "user", "content": "Describe a dog and a wolf in one sentence, and how they are related."}],
    ]
    expected = loaded.generate(messages, max_new_tokens=8, temperature=0.0)
    got = static.generate(messages, max_new_tokens=8, temperature=0.0)
    assert [r.text for r in got] == [r.text for r in expected]
    assert [r.completion_tokens for r in got] == [r.completion_tokens for r in expected]
    assert all(r.ok and r.text.strip() for r in got)
