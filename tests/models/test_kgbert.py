"""ContextualizedKGBert: configuration, losses, save/load (also as remote code), other encoders, scoring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    RobertaConfig,
)

from hf_ctxdistill.data import KnowledgeGraph
from hf_ctxdistill.models import (
    ContextualizedKGBert,
    ContextualizedKGBertConfig,
    KGBertTripleScorer,
    minilm_path,
)
from hf_ctxdistill.training import KGBertCollator
from tests.training.test_collators import one_thread, tiny_contexts, tiny_kg_dataset, tokenizer  # noqa: F401 - fixtures

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)


def tiny_bert(vocab_size: int = 30522, dropout: float = 0.0, encoder_kwargs: dict | None = None, **config_kwargs) -> ContextualizedKGBert:
    """A 2-layer, 32-wide random BERT under the MiniLM tokenizer's vocabulary (seeded)."""
    torch.manual_seed(0)
    encoder = BertConfig(
        vocab_size=vocab_size, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, **SMALL, **(encoder_kwargs or {})
    )
    return ContextualizedKGBert(ContextualizedKGBertConfig(encoder=encoder, **config_kwargs))


@pytest.fixture(scope="module")
def kg_data():
    return tiny_kg_dataset()


@pytest.fixture(scope="module")
def kg(kg_data):
    return KnowledgeGraph.from_dataset(kg_data)


@pytest.fixture
def batch(kg, kg_data, tokenizer):  # noqa: F811 - pytest fixture injection
    collator = KGBertCollator(kg, tokenizer, tiny_contexts(kg_data, every=2), num_negatives=2, seed=0)
    collator.set_epoch(0)
    return collator([kg_data["train"][i] for i in range(4)])


# ---------------------------------------------------------------------------------------------- config
def test_config_round_trip_keeps_a_non_bert_encoder(tmp_path):
    # hidden_size=768 equals BERT's default: a diff against the default BERT encoder would drop it and
    # reload DeBERTa-v2's own default (1536).
    encoder = DebertaV2Config(hidden_size=768, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100)
    config = ContextualizedKGBertConfig(encoder=encoder, alpha=0.25, max_seq_length=40, use_reconstruction=False)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "contextualized_kgbert" and saved["encoder"]["model_type"] == "deberta-v2"
    assert saved["auto_map"]["AutoConfig"].endswith("ContextualizedKGBertConfig")
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ContextualizedKGBertConfig) and isinstance(loaded.encoder, DebertaV2Config)
    assert loaded.encoder.hidden_size == 768 and loaded.encoder.num_hidden_layers == 2
    assert (loaded.alpha, loaded.reconstruction_weight, loaded.max_seq_length, loaded.use_reconstruction) == (0.25, 0.25, 40, False)
    assert loaded.num_labels == 2 and loaded.lm_head_type == "masked_lm"
    with pytest.raises(ValueError, match="num_labels"):
        ContextualizedKGBertConfig(num_labels=3)


# ---------------------------------------------------------------------------------------------- losses
def test_loss_is_kgc_plus_alpha_times_reconstruction(batch):
    model = tiny_bert(alpha=0.5).eval()
    out = model(**batch)
    assert out.logits.shape == (len(batch["labels"]), 2) and out.logits.dtype == torch.float32
    expected_kgc = torch.nn.functional.cross_entropy(out.logits, batch["labels"])
    assert torch.allclose(out.kgc_loss, expected_kgc)
    assert out.reconstruction_loss > 0
    assert torch.allclose(out.loss, out.kgc_loss + 0.5 * out.reconstruction_loss)
    model.config.use_reconstruction = False
    plain = model(**batch)
    assert plain.reconstruction_loss is None and torch.allclose(plain.loss, plain.kgc_loss)


def test_rows_without_context_add_nothing_and_no_nan(batch):
    model = tiny_bert().eval()
    has_target = (batch["mlm_labels"] != -100).any(dim=1)
    assert has_target.any() and not has_target.all()  # the batch mixes triples with and without context
    mlm = {k: batch[k] for k in ("mlm_input_ids", "mlm_attention_mask", "mlm_labels")}
    with_empty_rows = model(**mlm).reconstruction_loss
    only_context_rows = model(**{k: v[has_target] for k, v in mlm.items()}).reconstruction_loss
    assert torch.allclose(with_empty_rows, only_context_rows)  # the -100 rows change neither sum nor count
    # a batch where no triple has a context: exactly zero, finite, and gradients stay finite
    model.train()
    empty = dict(batch, mlm_labels=torch.full_like(batch["mlm_labels"], -100))
    out = model(**empty)
    assert out.reconstruction_loss.item() == 0.0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    # every parameter takes part in the graph (DDP without find_unused_parameters)
    assert all(p.grad is not None for p in model.parameters())


def test_num_items_in_batch_mapping_normalises_each_term(batch):
    model = tiny_bert().eval()
    mean = model(**batch)
    n_labels, n_masked = len(batch["labels"]), int((batch["mlm_labels"] != -100).sum())
    scaled = model(**batch, num_items_in_batch={"labels": 2 * n_labels, "mlm_labels": 4 * n_masked})
    assert torch.allclose(scaled.kgc_loss, mean.kgc_loss / 2)
    assert torch.allclose(scaled.reconstruction_loss, mean.reconstruction_loss / 4)


# ---------------------------------------------------------------------------------------------- save / load
def test_save_load_auto_model_and_remote_code(tmp_path, batch):
    model = tiny_bert().eval()
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "modeling_kgbert.py", "configuration_kgbert.py"} <= set(os.listdir(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"]["AutoModel"] == "modeling_kgbert.ContextualizedKGBert"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is ContextualizedKGBert
    # the masked-LM decoder is still tied to the input embeddings after loading
    assert loaded.encoder.cls.predictions.decoder.weight.data_ptr() == loaded.get_input_embeddings().weight.data_ptr()
    expected = model(**batch)
    got = loaded(**batch)
    assert torch.allclose(expected.logits, got.logits, atol=1e-6)
    assert torch.allclose(expected.reconstruction_loss, got.reconstruction_loss, atol=1e-5)
    # without this package: the saved code loads with trust_remote_code
    np.save(tmp_path / "ids.npy", batch["input_ids"].numpy())
    np.save(tmp_path / "logits.npy", model(input_ids=batch["input_ids"]).logits.detach().numpy())
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        assert "hf_ctxdistill" not in sys.modules, "the package was imported"
        logits = model(input_ids=torch.from_numpy(np.load({str(tmp_path / "ids.npy")!r}))).logits
        print(type(model).__module__, float((logits.detach().numpy() - np.load({str(tmp_path / "logits.npy")!r})).__abs__().max()))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    module, diff = result.stdout.split()[-2:]
    assert "hf_ctxdistill" not in module and float(diff) < 1e-5


@pytest.mark.parametrize(
    "encoder",
    [
        RobertaConfig(vocab_size=99, **SMALL),
        DebertaV2Config(vocab_size=99, **SMALL),
        ElectraConfig(vocab_size=99, embedding_size=16, **SMALL),
        DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=2, hidden_dim=37),
        "generic",
    ],
    ids=["roberta", "deberta-v2", "electra", "distilbert", "generic-head"],
)
def test_any_encoder_trains_and_round_trips(tmp_path, encoder):
    if encoder == "generic":
        config = ContextualizedKGBertConfig(encoder=BertConfig(vocab_size=99, **SMALL), lm_head_type="generic")
    else:
        config = ContextualizedKGBertConfig(encoder=encoder)
    torch.manual_seed(0)
    model = ContextualizedKGBert(config)
    ids = torch.randint(5, 90, (3, 9))
    mlm_labels = torch.full_like(ids, -100)
    mlm_labels[0, 2], mlm_labels[2, 5] = 7, 8
    out = model(input_ids=ids, labels=torch.tensor([1, 0, 0]), mlm_input_ids=ids, mlm_labels=mlm_labels)
    out.loss.backward()
    assert out.reconstruction_loss > 0 and all(p.grad is not None for p in model.parameters())
    if encoder == "generic":
        # the generic head projects with the input embedding matrix: its gradient gets the MLM signal
        assert type(model.encoder).__name__ == "BertModel" and model.get_output_embeddings() is None
        assert model.task_head_module_names() == ["classifier", "lm_head"]
    model.save_pretrained(tmp_path)
    loaded = ContextualizedKGBert.from_pretrained(tmp_path).eval()
    model.eval()
    a = model(input_ids=ids, mlm_input_ids=ids, mlm_labels=mlm_labels)
    b = loaded(input_ids=ids, mlm_input_ids=ids, mlm_labels=mlm_labels)
    assert torch.allclose(a.logits, b.logits, atol=1e-6)
    assert torch.allclose(a.reconstruction_loss, b.reconstruction_loss, atol=1e-5)


# ---------------------------------------------------------------------------------------------- real encoder
def test_from_encoder_reuses_minilm_weights():
    from safetensors import safe_open

    path = minilm_path()
    model = ContextualizedKGBert.from_encoder(path, alpha=0.5)
    assert model.config.alpha == 0.5 and model.config.encoder.hidden_size == 384
    with safe_open(os.path.join(path, "model.safetensors"), "pt") as checkpoint:
        for key in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight"):
            assert torch.equal(model.encoder.bert.get_parameter(key), checkpoint.get_tensor(key))
    # the checkpoint has no MLM head: a fresh transform, the decoder tied to the embeddings
    assert model.encoder.cls.predictions.decoder.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert model.task_head_module_names() == ["classifier", "encoder.cls.predictions.transform"]


# ---------------------------------------------------------------------------------------------- scoring
def test_score_triples_and_scorer_bf16_sdpa(tmp_path, kg, kg_data, tokenizer):  # noqa: F811
    # large random weights, so that scores of different triples differ clearly (std ~ 4)
    model = tiny_bert(encoder_kwargs={"initializer_range": 0.3})
    model.save_pretrained(tmp_path)
    triples = np.concatenate([kg.triples("train")[:6], kg.triples("test")])
    scorer = KGBertTripleScorer(model, kg, tokenizer, batch_size=4)
    scores = scorer(triples)
    assert scores.shape == (len(triples),) and scores.dtype == np.float32 and model.training  # mode restored
    # the scorer tokenizes exactly as the training collator does (and keeps the caller's order)
    collator = KGBertCollator(kg, tokenizer, num_negatives=0)
    batch = collator([{"head": int(h), "relation": int(r), "tail": int(t)} for h, r, t in triples])
    direct = model.score_triples(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert np.allclose(scores, direct.numpy(), atol=1e-5)
    logits = model.eval()(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert torch.allclose(model.score_triples(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], score_type="prob"), logits.softmax(-1)[:, 1], atol=1e-6)
    # bf16 weights + SDPA attention: classifier kept in float32, scores close to float32 ones
    fast = ContextualizedKGBert.from_pretrained(tmp_path, dtype=torch.bfloat16, attn_implementation="sdpa")
    assert fast.encoder.bert.embeddings.word_embeddings.weight.dtype == torch.bfloat16
    assert fast.classifier.out_proj.weight.dtype == torch.float32
    assert fast.config.encoder._attn_implementation == "sdpa"
    fast_scores = KGBertTripleScorer(fast, kg, tokenizer, batch_size=5)(triples)
    assert fast_scores.dtype == np.float32
    assert scores.std() > 1.0
    assert np.corrcoef(fast_scores, scores)[0, 1] > 0.99 and np.abs(fast_scores - scores).max() < 0.1 * scores.std()
