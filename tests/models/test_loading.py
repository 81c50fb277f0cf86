"""Pretrained weights stored in 16 bits still load as float32 master weights for training."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForMaskedLM

from hf_ctxdistill.models import ContextualizedKGBert
from hf_ctxdistill.models.loading import split_load_kwargs


def tiny_fp16_bert(path):
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertForMaskedLM(config).to(torch.float16).save_pretrained(path)
    return str(path)


def test_half_precision_checkpoint_loads_as_float32(tmp_path):
    path = tiny_fp16_bert(tmp_path / "bert16")
    model = ContextualizedKGBert.from_encoder(path)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    # An explicit dtype is still honoured (e.g. bf16 for scoring only).
    scoring = ContextualizedKGBert.from_encoder(path, dtype=torch.bfloat16)
    assert next(scoring.encoder.parameters()).dtype == torch.bfloat16


def test_split_load_kwargs_moves_loading_arguments():
    config_kwargs = {"alpha": 0.5, "attn_implementation": "sdpa", "torch_dtype": torch.float16}
    model_kwargs = split_load_kwargs(None, config_kwargs)
    assert config_kwargs == {"alpha": 0.5}
    assert model_kwargs == {"attn_implementation": "sdpa", "dtype": torch.float16}
    assert split_load_kwargs({}, {})["dtype"] == torch.float32
