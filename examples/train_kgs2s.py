"""Train a generative link predictor (KG-S2S) with Contextualization Distillation and evaluate it.

The model is any seq2seq checkpoint (``--model_name_or_path t5-base``), or by default a BERT2BERT
``EncoderDecoderModel`` warm-started from the offline MiniLM (``--encoder_name_or_path`` for another
encoder). Tasks: link prediction (``predict tail/head: ...`` -> entity name) plus, with a context corpus,
contextualization and/or reconstruction of the LLM-written contexts (``--aux_task``). Evaluation is
filtered link prediction over all entities (train + validation + test filter, realistic tie rule) with
constrained beam search (``--decoding beam``, KG-S2S's protocol; answers outside the beam rank at their
expected position among the rest) or exact scoring of every entity (``--decoding exact``).

Example (CPU, a WN18RR slice; ``OMP_NUM_THREADS=1`` is faster on a busy two-core machine)::

    OMP_NUM_THREADS=1 python examples/train_kgs2s.py --kg_path ../shared/data/WN18RR/kgs2s_format \\
        --output_dir runs/kgs2s-wn18rr --max_train_triples 2000 --num_train_epochs 2 \\
        --per_device_train_batch_size 16 --learning_rate 3e-4 --warmup_steps 20 --save_strategy no \\
        --num_eval_queries 50 --beam_size 40

Writes ``<output_dir>/metrics.json``, the trained model (an adapter with ``--use_lora``) and the
tokenizer to ``<output_dir>``. ``--eval_only true --model_name_or_path <output_dir>`` evaluates a saved
model again (e.g. with ``--decoding exact`` or on another split) without training.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import AutoConfig, AutoTokenizer, HfArgumentParser

from hf_ctxdistill.data import KnowledgeGraph
from hf_ctxdistill.evaluation import LinkPredictionEvaluator
from hf_ctxdistill.models.kgs2s import ContextualizedKGS2S, EntityNames, KGS2SLinkPredictor
from hf_ctxdistill.models.offline import minilm_path
from hf_ctxdistill.training import CtxDistillTrainingArguments, MultiTaskTrainer
from hf_ctxdistill.training.kgs2s_collator import KGS2SCollator

logger = logging.getLogger("train_kgs2s")

AUX_TASKS = {
    "none": (False, False),
    "contextualization": (True, False),
    "reconstruction": (False, True),
    "both": (True, True),
}


@dataclass
class DataArguments:
    """Where the KG and its contexts come from, and how much of them to use."""

    kg_path: str = field(
        metadata={"help": "KG folder in any supported layout (KG-BERT, KG-S2S, ...) or a saved canonical DatasetDict."}
    )
    kg_format: str = field(default="auto", metadata={"help": "Layout of kg_path ('auto' detects it)."})
    context_corpus: str | None = field(
        default=None, metadata={"help": "Folder of a saved ContextCorpus (ContextCorpus.save_to_disk); none: KGC only."}
    )
    context_path: str | None = field(
        default=None, metadata={"help": "Use only the corpus rows of this generation path (e.g. 'ed+td')."}
    )
    max_train_triples: int | None = field(
        default=None, metadata={"help": "Train on a random sample of this many training triples (quick runs)."}
    )
    eval_split: str = field(default="test", metadata={"help": "Split whose triples become link-prediction queries."})
    num_eval_queries: int | None = field(
        default=None, metadata={"help": "Evaluate a fixed random sample of this many queries (head and tail queries count one each)."}
    )
    eval_only: bool = field(
        default=False,
        metadata={"help": "Skip training: evaluate the saved ContextualizedKGS2S given as --model_name_or_path."},
    )


@dataclass
class ModelArguments:
    """Which model to train and how to decode with it."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A seq2seq checkpoint (T5, BART...) or a saved ContextualizedKGS2S (which keeps its input format "
            "and task settings); none: BERT2BERT."
        },
    )
    encoder_name_or_path: str | None = field(
        default=None, metadata={"help": "Encoder checkpoint warm-starting BERT2BERT (default: the offline MiniLM)."}
    )
    aux_task: str = field(
        default="contextualization",
        metadata={"help": "Auxiliary task(s) when a context corpus is given.", "choices": list(AUX_TASKS)},
    )
    max_source_length: int = field(default=64, metadata={"help": "Token budget of a link-prediction source."})
    description_max_words: int = field(default=24, metadata={"help": "Description words appended to a query."})
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (fresh modules train in full)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    decoding: str = field(default="beam", metadata={"help": "Evaluation decoding.", "choices": ["beam", "exact"]})
    beam_size: int = field(default=40, metadata={"help": "Beam width of constrained decoding (authors: 40)."})
    queries_per_batch: int = field(default=8, metadata={"help": "Queries decoded together."})


def build_model(model_args: ModelArguments, data_args: DataArguments, args: CtxDistillTrainingArguments, tokenizer, use_ctx: bool, use_rec: bool):
    """The model: a saved ContextualizedKGS2S, a seq2seq checkpoint, or BERT2BERT."""
    settings = {
        "use_contextualization": use_ctx,
        "use_reconstruction": use_rec,
        "max_source_length": model_args.max_source_length,
        "context_max_length": args.context_max_length,
        "mask_probability": args.mask_probability,
        "use_descriptions": args.use_descriptions,
        "description_max_words": model_args.description_max_words,
        "beam_size": model_args.beam_size,
    }
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path)
        if config.model_type == "contextualized_kgs2s":
            # A trained model keeps the input format and task settings it was trained with.
            model = ContextualizedKGS2S.from_pretrained(model_args.model_name_or_path)
            model.config.beam_size = model_args.beam_size
            return model
        return ContextualizedKGS2S.from_seq2seq(model_args.model_name_or_path, **settings)
    encoder = model_args.encoder_name_or_path or minilm_path()
    return ContextualizedKGS2S.from_encoder_decoder(encoder, tokenizer=tokenizer, **settings)


def main() -> None:
    parser = HfArgumentParser((DataArguments, ModelArguments, CtxDistillTrainingArguments))
    data_args, model_args, args = parser.parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    if (Path(data_args.kg_path) / "dataset_dict.json").is_file():
        # A canonical DatasetDict saved with save_to_disk (e.g. a KG built or sampled in Python).
        from datasets import load_from_disk

        kg = KnowledgeGraph.from_dataset(load_from_disk(data_args.kg_path))
    else:
        kg = KnowledgeGraph.from_path(data_args.kg_path, format=data_args.kg_format)
    logger.info("KG: %r", kg)
    contexts = None
    if data_args.context_corpus:
        from hf_ctxdistill.context.corpus import ContextCorpus

        contexts = ContextCorpus.load_from_disk(data_args.context_corpus).context_map(path=data_args.context_path)
        logger.info("contexts: %d triples", len(contexts))
    use_ctx, use_rec = AUX_TASKS[model_args.aux_task] if contexts is not None else (False, False)

    tokenizer_source = model_args.model_name_or_path or model_args.encoder_name_or_path or minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    model = build_model(model_args, data_args, args, tokenizer, use_ctx, use_rec)
    # The same overrides MultiTaskTrainer applies, applied before the collator reads the config.
    for key, value in args.loss_config_overrides().items():
        setattr(model.config, key, value)

    names = EntityNames.build(kg, tokenizer=tokenizer)
    logger.info("entity names: %r (longest %d tokens)", names, names.max_tokens)
    train = kg.dataset["train"]
    if data_args.max_train_triples is not None and data_args.max_train_triples < len(train):
        pick = np.sort(np.random.default_rng(args.seed).choice(len(train), size=data_args.max_train_triples, replace=False))
        train = train.select(pick)
    collator = KGS2SCollator.from_model(model, kg, tokenizer, contexts, entity_names=names, seed=args.seed)
    if not data_args.eval_only:
        logger.info("training on %d triples, tasks %s", len(train), collator.tasks)

    peft_config = None
    if model_args.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=model_args.lora_r,
            lora_alpha=model_args.lora_alpha,
            lora_dropout=model_args.lora_dropout,
            target_modules=model.default_lora_target_modules(),
            modules_to_save=model.task_head_module_names(),
        )
    train_seconds, train_loss, trained = 0.0, None, model
    if data_args.eval_only:
        if not model_args.model_name_or_path or AutoConfig.from_pretrained(model_args.model_name_or_path).model_type != "contextualized_kgs2s":
            raise SystemExit("--eval_only needs --model_name_or_path pointing to a saved ContextualizedKGS2S")
    else:
        trainer = MultiTaskTrainer(model, args, train_dataset=train, data_collator=collator, peft_config=peft_config)
        train_started = time.time()
        train_loss = trainer.train().training_loss
        train_seconds = time.time() - train_started
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        trained = trainer.model

    predictor = KGS2SLinkPredictor(
        trained,
        tokenizer,
        kg,
        entity_names=names,
        mode=model_args.decoding,
        beam_size=model_args.beam_size,
        queries_per_batch=model_args.queries_per_batch,
    )
    evaluator = LinkPredictionEvaluator(
        kg,
        split=data_args.eval_split,
        num_queries=data_args.num_eval_queries,
        seed=args.seed,
        queries_per_call=model_args.queries_per_batch,
        progress=True,
    )
    eval_started = time.time()
    result = evaluator.run(predictor)
    eval_seconds = time.time() - eval_started
    metrics: dict[str, object] = dict(result.to_dict(data_args.eval_split))
    for rule in ("optimistic", "pessimistic"):
        # The rank rule for answers outside the beam matters in beam mode; report its bounds too.
        for key, value in result.to_dict(data_args.eval_split, tie_rule=rule).items():
            if key.endswith(("_mrr", "_hits@1", "_hits@10")) and "_head_" not in key and "_tail_" not in key:
                metrics[f"{key}_{rule}"] = value
    metrics.update(
        {
            "decoding": model_args.decoding,
            "beam_size": model_args.beam_size,
            "tie_rule": result.tie_rule,
            "train_triples": 0 if data_args.eval_only else len(train),
            "eval_split": data_args.eval_split,
            "tasks": list(collator.tasks),
            "train_loss": train_loss,
            "train_seconds": round(train_seconds, 1),
            "eval_seconds": round(eval_seconds, 1),
            "total_seconds": round(time.time() - started, 1),
            "model": model_args.model_name_or_path or f"bert2bert:{model_args.encoder_name_or_path or 'offline MiniLM'}",
            "lora": model_args.use_lora,
        }
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    split = data_args.eval_split
    print(
        f"{split}: filtered MRR {metrics[f'{split}_mrr']:.4f}  MR {metrics[f'{split}_mr']:.1f}  "
        f"Hits@1 {metrics[f'{split}_hits@1']:.4f}  Hits@3 {metrics[f'{split}_hits@3']:.4f}  "
        f"Hits@10 {metrics[f'{split}_hits@10']:.4f}  ({result.num_queries} queries, {model_args.decoding} decoding, "
        f"{result.tie_rule} ties)"
    )
    print(f"train {train_seconds:.0f} s, evaluation {eval_seconds:.0f} s; metrics in {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
