"""MultiTaskTrainer + CtxDistillTrainingArguments: exact gradient accumulation, component logging,
argument parsing, LoRA, checkpoint resume, and a short real training run on MiniLM."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoModel, HfArgumentParser, Trainer, TrainerCallback

from hf_ctxdistill.data import KnowledgeGraph
from hf_ctxdistill.models import ContextualizedKGBert, KGBertTripleScorer, minilm_path
from hf_ctxdistill.training import CtxDistillTrainingArguments, KGBertCollator, MultiTaskTrainer
from tests.models.test_kgbert import tiny_bert
from tests.training.test_collators import one_thread, tiny_contexts, tiny_kg_dataset, tokenizer  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def kg_data():
    return tiny_kg_dataset(num_train=32)


@pytest.fixture(scope="module")
def kg(kg_data):
    return KnowledgeGraph.from_dataset(kg_data)


def make_args(tmp_path, **overrides) -> CtxDistillTrainingArguments:
    options = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        max_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        seed=11,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    options.update(overrides)
    return CtxDistillTrainingArguments(**options)


def make_collator(kg, kg_data, tokenizer, **kwargs):  # noqa: F811
    return KGBertCollator(kg, tokenizer, tiny_contexts(kg_data, every=3), num_negatives=2, seed=5, **kwargs)


def train_logs(trainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


# ---------------------------------------------------------------------------------------------- arguments
def test_hf_argument_parser_parses_real_booleans(tmp_path):
    parser = HfArgumentParser(CtxDistillTrainingArguments)
    (args,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir", str(tmp_path),
            "--use_reconstruction", "false",
            "--reconstruction_weight", "0.5",
            "--num_negatives", "3",
            "--negative_corruption", "tail",
            "--use_cpu", "true",
        ]
    )  # fmt: skip
    assert args.use_reconstruction is False  # not bool("false") == True
    assert args.reconstruction_weight == 0.5 and args.num_negatives == 3 and args.negative_corruption == "tail"
    assert args.remove_unused_columns is False and args.kgc_weight is None and args.use_contextualization is None
    assert args.loss_config_overrides() == {"use_reconstruction": False, "reconstruction_weight": 0.5}
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path), "--negative_corruption", "middle"])


# ---------------------------------------------------------------------------------------------- accumulation
def _one_sgd_step(trainer_class, tmp_path, kg, kg_data, tokenizer, batch, accumulation, name):  # noqa: F811
    model = tiny_bert()
    args = make_args(
        tmp_path / name,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        optim="sgd",
        learning_rate=0.5,
        max_grad_norm=0.0,
        lr_scheduler_type="constant",
    )
    trainer = trainer_class(model, args, data_collator=make_collator(kg, kg_data, tokenizer), train_dataset=kg_data["train"])
    trainer.train()
    return model, train_logs(trainer)[0]


def test_gradient_accumulation_equals_full_batch(tmp_path, kg, kg_data, tokenizer):  # noqa: F811
    full, full_log = _one_sgd_step(MultiTaskTrainer, tmp_path, kg, kg_data, tokenizer, 8, 1, "full")
    accumulated, acc_log = _one_sgd_step(MultiTaskTrainer, tmp_path, kg, kg_data, tokenizer, 4, 2, "acc")
    stock, _ = _one_sgd_step(Trainer, tmp_path, kg, kg_data, tokenizer, 4, 2, "stock")
    start = tiny_bert()
    for (name, a), b in zip(full.named_parameters(), accumulated.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4), name
    # the step moved the weights, and averaging per-micro-batch means (stock Trainer) would not match:
    # the two micro-batches hold different numbers of masked context tokens
    assert not torch.allclose(full.classifier.out_proj.weight, start.classifier.out_proj.weight)
    assert not torch.allclose(stock.encoder.cls.predictions.transform.dense.weight, full.encoder.cls.predictions.transform.dense.weight, atol=1e-6)
    for key in ("loss", "kgc_loss", "reconstruction_loss"):
        assert acc_log[key] == pytest.approx(full_log[key], rel=1e-5), key


# ---------------------------------------------------------------------------------------------- logging
def test_train_log_components_save_load(tmp_path, kg, kg_data, tokenizer):  # noqa: F811
    model = tiny_bert()
    args = make_args(tmp_path, max_steps=4, logging_steps=2, reconstruction_weight=0.3, bf16=True)
    collator = make_collator(kg, kg_data, tokenizer)
    trainer = MultiTaskTrainer(model, args, data_collator=collator, train_dataset=kg_data["train"], eval_dataset=kg_data["train"].select(range(8)))
    assert model.config.alpha == 0.3  # the argument reached the model config (and is saved with it)
    trainer.train()
    logs = train_logs(trainer)
    assert [entry["step"] for entry in logs] == [2, 4]
    for entry in logs:  # window averages of each term; the logged loss is their weighted sum
        assert np.isfinite(entry["loss"])
        assert entry["loss"] == pytest.approx(entry["kgc_loss"] + 0.3 * entry["reconstruction_loss"], rel=1e-3)
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] == pytest.approx(metrics["eval_kgc_loss"] + 0.3 * metrics["eval_reconstruction_loss"], rel=1e-3)
    assert metrics["eval_reconstruction_loss"] > 0
    # the trained model saves and reloads (Auto class) with the same scores and the overridden weight
    trainer.save_model(tmp_path / "trained")
    reloaded = AutoModel.from_pretrained(tmp_path / "trained")
    assert reloaded.config.alpha == 0.3
    triples = kg.triples("test")
    assert np.allclose(KGBertTripleScorer(reloaded, kg, tokenizer)(triples), KGBertTripleScorer(model, kg, tokenizer)(triples), atol=1e-5)
    # a triple-classification split (rows with labels, no corruptions): predictions are the logits alone
    labelled = kg_data["validation"].add_column("label", [1, 1, 0, 0])
    predictions = trainer.predict(labelled)
    assert predictions.predictions.shape == (4, 2) and predictions.label_ids.tolist() == [1, 1, 0, 0]


# ---------------------------------------------------------------------------------------------- LoRA
def test_lora_keeps_heads_trainable_and_saves_them(tmp_path, kg, kg_data, tokenizer):  # noqa: F811
    from peft import LoraConfig, PeftModel

    base_dir = tmp_path / "base"
    tiny_bert().save_pretrained(base_dir)
    model = ContextualizedKGBert.from_pretrained(base_dir)
    before = copy.deepcopy(model.state_dict())
    args = make_args(tmp_path, max_steps=3, learning_rate=5e-3)
    trainer = MultiTaskTrainer(
        model,
        args,
        data_collator=make_collator(kg, kg_data, tokenizer),
        train_dataset=kg_data["train"],
        peft_config=LoraConfig(r=4, lora_alpha=8),
    )
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert any("lora_" in n and "query" in n for n in trainable)  # default targets for BERT
    assert any("classifier" in n and "modules_to_save" in n for n in trainable)
    assert any("predictions.transform" in n and "modules_to_save" in n for n in trainable)
    assert not any("word_embeddings" in n or "attention.self.query.base_layer" in n for n in trainable)
    trainer.train()
    trained = trainer.model
    # the frozen encoder did not move; the heads did
    assert torch.equal(trained.get_base_model().encoder.bert.encoder.layer[0].attention.self.query.base_layer.weight, before["encoder.bert.encoder.layer.0.attention.self.query.weight"])
    assert not torch.equal(trained.get_base_model().classifier.modules_to_save["default"].out_proj.weight, before["classifier.out_proj.weight"])
    trainer.save_model(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(ContextualizedKGBert.from_pretrained(base_dir), tmp_path / "adapter")
    triples = kg.triples("test")
    expected = KGBertTripleScorer(trained, kg, tokenizer)(triples)
    assert np.allclose(KGBertTripleScorer(reloaded, kg, tokenizer)(triples), expected, atol=1e-5)
    assert not np.allclose(KGBertTripleScorer(ContextualizedKGBert.from_pretrained(base_dir), kg, tokenizer)(triples), expected, atol=1e-4)


# ---------------------------------------------------------------------------------------------- resume
class _StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def test_resume_from_checkpoint_continues_the_same_run(tmp_path, kg, kg_data, tokenizer):  # noqa: F811
    data = kg_data["train"].select(range(12))  # 3 batches per epoch: the run crosses an epoch boundary

    def run(output, callbacks=(), resume=None):
        model = tiny_bert()
        args = make_args(tmp_path / output, max_steps=5, save_strategy="steps", save_steps=2, learning_rate=5e-3)
        trainer = MultiTaskTrainer(model, args, data_collator=make_collator(kg, kg_data, tokenizer), train_dataset=data, callbacks=list(callbacks))
        trainer.train(resume_from_checkpoint=resume)
        return model, trainer

    straight, straight_trainer = run("straight")
    _, stopped = run("resumed", callbacks=[_StopAt(3)])  # interrupted after the checkpoint at step 2
    assert stopped.state.global_step == 3
    resumed, resumed_trainer = run("resumed", resume=str(tmp_path / "resumed" / "out" / "checkpoint-2"))
    assert resumed_trainer.state.global_step == straight_trainer.state.global_step == 5
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    straight_losses = {e["step"]: e["loss"] for e in train_logs(straight_trainer)}
    resumed_losses = {e["step"]: e["loss"] for e in train_logs(resumed_trainer)}
    assert all(resumed_losses[s] == pytest.approx(straight_losses[s], rel=1e-5) for s in (3, 4, 5))


# ---------------------------------------------------------------------------------------------- MiniLM
def test_minilm_training_loss_falls(tmp_path, kg, kg_data, tokenizer):  # noqa: F811
    model = ContextualizedKGBert.from_encoder(minilm_path())
    args = make_args(tmp_path, max_steps=8, learning_rate=4e-4, logging_steps=1)
    contexts = tiny_contexts(kg_data, every=4, words=6)
    collator = KGBertCollator(kg, tokenizer, contexts, num_negatives=3, context_max_length=32, seed=0)
    trainer = MultiTaskTrainer(model, args, data_collator=collator, train_dataset=kg_data["train"])
    trainer.train()
    logs = train_logs(trainer)
    assert len(logs) == 8
    first, last = logs[:3], logs[-3:]
    for key, factor in (("loss", 0.8), ("reconstruction_loss", 0.8), ("kgc_loss", 1.0)):
        before, after = np.mean([e[key] for e in first]), np.mean([e[key] for e in last])
        assert after < factor * before, (key, before, after)
