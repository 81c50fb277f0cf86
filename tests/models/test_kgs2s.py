"""ContextualizedKGS2S: configuration, per-task losses, save/load, Trainer + evaluator end to end (tiny T5 and
BART), and BERT2BERT warm-started from the offline MiniLM learning all three tasks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, BertConfig

from hf_ctxdistill.evaluation import LinkPredictionEvaluator
from hf_ctxdistill.models.kgs2s import (
    ContextualizedKGS2S,
    ContextualizedKGS2SConfig,
    EntityNames,
    KGS2SLinkPredictor,
)
from hf_ctxdistill.models.offline import minilm_path
from hf_ctxdistill.training import CtxDistillTrainingArguments, MultiTaskTrainer
from hf_ctxdistill.training.kgs2s_collator import KGS2SCollator
from tests.models.kgs2s_helpers import (
    CONTEXTS,
    kg_dataset,
    knowledge_graph,
    minilm_tokenizer,
    single_thread,  # noqa: F401 - autouse fixture
    tiny_model,
    tiny_t5_config,
    tokenizer,
)

ROWS = [("paris", "capital_of", "france"), ("seine", "flows_through", "paris"), ("france", "borders", "italy")]


def full_batch(model: ContextualizedKGS2S, tok=None) -> dict[str, torch.Tensor]:
    collator = KGS2SCollator(
        knowledge_graph(), tok or tokenizer(), CONTEXTS, tasks=("kgc", "contextualization", "reconstruction"),
        eos_token_id=model.config.eos_token_id, seed=0,
    )
    collator.set_epoch(0)
    return collator(ROWS)


def test_config_validation_and_round_trip(tmp_path):
    config = ContextualizedKGS2SConfig(tiny_t5_config(), kgc_weight=1.0, contextualization_weight=0.25, beam_size=7)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ContextualizedKGS2SConfig)
    assert (loaded.kgc_weight, loaded.contextualization_weight, loaded.beam_size) == (1.0, 0.25, 7)
    assert loaded.seq2seq.d_model == 32 and loaded.eos_token_id == tokenizer().sep_token_id
    assert loaded.decoder_start_token_id == 0 and loaded.pad_token_id == 0
    from_dict = ContextualizedKGS2SConfig(seq2seq=config.seq2seq.to_dict())
    assert from_dict.seq2seq.num_layers == 2
    with pytest.raises(ValueError, match="encoder-decoder"):
        ContextualizedKGS2SConfig(BertConfig())
    with pytest.raises(ValueError, match="mask_probability"):
        ContextualizedKGS2SConfig(tiny_t5_config(), mask_probability=1.5)
    with pytest.raises(ValueError, match="model_type"):
        ContextualizedKGS2SConfig(seq2seq={"d_model": 8})


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_loss_is_the_weighted_sum_of_task_losses(kind):
    model = tiny_model(kind, use_reconstruction=True, kgc_weight=1.0, contextualization_weight=0.3, reconstruction_weight=0.2)
    batch = full_batch(model)
    out = model(**batch)
    for term in (out.kgc_loss, out.contextualization_loss, out.reconstruction_loss):
        assert torch.isfinite(term) and term.item() > 0
    expected = 1.0 * out.kgc_loss + 0.3 * out.contextualization_loss + 0.2 * out.reconstruction_loss
    torch.testing.assert_close(out.loss, expected)
    assert out.logits.shape[:2] == batch["labels"].shape
    # the kgc term is the wrapped model's own token-mean cross-entropy (same decoder-input convention)
    native = model.seq2seq(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    torch.testing.assert_close(out.kgc_loss, native)
    # each auxiliary term equals the kgc computation run on that task's sub-batch alone
    alone = model(
        input_ids=batch["context_input_ids"], attention_mask=batch["context_attention_mask"], labels=batch["context_labels"]
    )
    torch.testing.assert_close(out.contextualization_loss, alone.kgc_loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_switched_off_or_absent_tasks():
    model = tiny_model("t5", use_contextualization=False, use_reconstruction=False)
    batch = full_batch(model)
    out = model(**batch)
    assert out.contextualization_loss is None and out.reconstruction_loss is None
    torch.testing.assert_close(out.loss, 0.5 * out.kgc_loss)
    kgc_only = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    torch.testing.assert_close(kgc_only.loss, out.loss)
    assert model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=None).loss is None
    # a batch with only auxiliary examples still trains (no kgc term, no NaN)
    model.config.use_contextualization = True
    aux = model(context_input_ids=batch["context_input_ids"], context_attention_mask=batch["context_attention_mask"], context_labels=batch["context_labels"])
    assert aux.kgc_loss is None and torch.isfinite(aux.loss)


def test_num_items_in_batch_normalises_each_term():
    model = tiny_model("bart", use_reconstruction=True)
    batch = full_batch(model)
    counts = {key: int(batch[key].ne(-100).sum()) for key in model.loss_normalization_keys}
    plain = model(**batch)
    doubled = model(**batch, num_items_in_batch={k: 2 * v for k, v in counts.items()})
    for name in ("kgc_loss", "contextualization_loss", "reconstruction_loss", "loss"):
        torch.testing.assert_close(getattr(doubled, name), getattr(plain, name) / 2)


def test_save_and_reload(tmp_path):
    model = tiny_model("bart", use_reconstruction=True, beam_size=5).eval()
    batch = full_batch(model)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "modeling_kgs2s.py").is_file()  # loadable with trust_remote_code=True
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, ContextualizedKGS2S) and reloaded.config.beam_size == 5
    torch.testing.assert_close(reloaded(**batch).loss, model(**batch).loss)
    kg = knowledge_graph()
    scores = [KGS2SLinkPredictor(m, tokenizer(), kg, beam_size=3).score_tails([0, 3], [0, 1]) for m in (model, reloaded)]
    torch.testing.assert_close(scores[0], scores[1])


def test_from_seq2seq_wraps_a_checkpoint(tmp_path):
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(0)
    T5ForConditionalGeneration(tiny_t5_config()).save_pretrained(tmp_path / "t5")
    model = ContextualizedKGS2S.from_seq2seq(str(tmp_path / "t5"), kgc_weight=1.0, use_descriptions=False)
    original = T5ForConditionalGeneration.from_pretrained(tmp_path / "t5")
    assert model.config.kgc_weight == 1.0 and model.config.use_descriptions is False
    torch.testing.assert_close(model.seq2seq.shared.weight, original.shared.weight)
    assert model.task_head_module_names() == []  # a pretrained seq2seq has no fresh modules


def test_trainer_then_filtered_evaluation(tmp_path):
    """MultiTaskTrainer over the canonical train split, logging each task loss; then both decoding modes."""
    model = tiny_model("t5", seed=3)
    kg = knowledge_graph()
    names = EntityNames.build(kg, tokenizer=tokenizer())
    collator = KGS2SCollator.from_model(model, kg, tokenizer(), CONTEXTS, entity_names=names)
    args = CtxDistillTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=24, per_device_train_batch_size=4, learning_rate=1e-2,
        logging_steps=8, save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
    )
    trainer = MultiTaskTrainer(model, args, train_dataset=kg_dataset()["train"], data_collator=collator)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and all("kgc_loss" in e and "contextualization_loss" in e for e in logged)
    # each log averages 8 steps = 2 epochs, so consecutive windows see the same examples
    assert logged[-1]["loss"] < logged[0]["loss"] and logged[-1]["kgc_loss"] < logged[0]["kgc_loss"]
    results = {}
    for mode in ("beam", "exact"):
        predictor = KGS2SLinkPredictor(trainer.model, tokenizer(), kg, entity_names=names, mode=mode, beam_size=5)
        evaluator = LinkPredictionEvaluator(kg, split="test", progress=False)
        results[mode] = evaluator.run(predictor)
        metrics = results[mode].to_dict("test")
        assert metrics["test_num_queries"] == 2 * len(kg.triples("test"))
        assert 0 < metrics["test_mrr"] <= 1 and 1 <= metrics["test_mr"] <= kg.num_entities
    # an answer inside the beam never ranks worse than its true rank (only better, if the search missed
    # better-scoring names); the exact ranks are what the beam approximates
    in_beam = results["beam"].optimistic == results["beam"].pessimistic
    assert (results["beam"].optimistic[in_beam] <= results["exact"].optimistic[in_beam]).all()
    assert (results["exact"].optimistic == results["exact"].pessimistic).all()  # no ties among exact scores


# ---------------------------------------------------------------------------------------------- BERT2BERT
@pytest.fixture(scope="module")
def bert2bert() -> ContextualizedKGS2S:
    try:
        path = minilm_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    torch.manual_seed(0)
    return ContextualizedKGS2S.from_encoder_decoder(path, tokenizer=minilm_tokenizer(), use_reconstruction=True)


def test_bert2bert_special_tokens_and_fresh_modules(bert2bert):
    tok = minilm_tokenizer()
    config = bert2bert.config
    assert (config.decoder_start_token_id, config.eos_token_id, config.pad_token_id) == (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
    fresh = bert2bert.task_head_module_names()
    assert sum("crossattention" in name for name in fresh) == 6 and any(name.endswith("predictions.transform") for name in fresh)
    assert not any(name.startswith("seq2seq.encoder") for name in fresh)  # the encoder is fully pretrained
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        copy.deepcopy(bert2bert),
        LoraConfig(r=4, target_modules=bert2bert.default_lora_target_modules(), modules_to_save=fresh),
    )
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n and "encoder.layer.0.attention.self.query" in n for n in trainable)
    assert any("crossattention" in n and "lora" not in n for n in trainable)  # fresh modules train in full
    assert not any("crossattention" in n and "lora" in n for n in trainable)
    assert not any(n.endswith("word_embeddings.weight") for n in trainable)


def test_bert2bert_learns_all_three_tasks_and_decodes_names(bert2bert):
    model = copy.deepcopy(bert2bert).train()
    tok = minilm_tokenizer()
    kg = knowledge_graph()
    names = EntityNames.build(kg, tokenizer=tok)
    collator = KGS2SCollator.from_model(model, kg, tok, CONTEXTS, entity_names=names, seed=0)
    assert collator.tasks == ("kgc", "contextualization", "reconstruction")
    rows = [t for t in kg.decode(kg.triples("train")) if t in CONTEXTS][:4]
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    history = []
    for step in range(5):
        collator.set_epoch(step)  # fresh reconstruction masks every step
        out = model(**collator(rows))
        history.append({k: float(getattr(out, k).detach()) for k in ("loss", "kgc_loss", "contextualization_loss", "reconstruction_loss")})
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    first, last = history[0], history[-1]
    assert last["loss"] < 0.5 * first["loss"], history
    for key in ("kgc_loss", "contextualization_loss", "reconstruction_loss"):
        assert last[key] < first[key], (key, history)
    # constrained beam search through the EncoderDecoderModel's cache returns only KG entities
    predictor = KGS2SLinkPredictor(model, tok, kg, entity_names=names, beam_size=4)
    scores = predictor.score_tails(np.array([kg.entity_index["paris"]]), np.array([kg.relation_index["capital_of"]]))
    assert 1 <= int(torch.isfinite(scores).sum()) <= 4
    assert predictor.predict("paris", "capital_of", top_k=1)[0][0] in kg.entity_index
