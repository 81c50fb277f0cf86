"""LoRA without explicit targets: the trainer asks the model first, then PEFT's per-architecture table."""

from __future__ import annotations

from transformers import BertConfig, T5Config, T5ForConditionalGeneration

from hf_ctxdistill.models import (
    ContextualizedKGBert,
    ContextualizedKGBertConfig,
    ContextualizedKGS2S,
    ContextualizedKGS2SConfig,
)
from hf_ctxdistill.training.multitask_trainer import _default_lora_targets


def test_seq2seq_wrapper_supplies_its_own_targets():
    t5 = T5ForConditionalGeneration(
        T5Config(vocab_size=64, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8, decoder_start_token_id=0)
    )
    model = ContextualizedKGS2S(ContextualizedKGS2SConfig(seq2seq=t5.config), seq2seq=t5)
    assert _default_lora_targets(model) == model.default_lora_target_modules()
    assert _default_lora_targets(model)  # not empty: PEFT would fail on a model type it does not know


def test_encoder_wrapper_uses_peft_table_for_the_inner_encoder():
    encoder = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    model = ContextualizedKGBert(ContextualizedKGBertConfig(encoder=encoder))
    assert set(_default_lora_targets(model)) == {"query", "value"}
