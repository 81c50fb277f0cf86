"""Train a KG-BERT-style model with Contextualization Distillation and report filtered link prediction.

    python examples/train_kgbert.py --kg_path WN18RR/kgbert_format --output_dir runs/wn18rr \
        --context_source glosses --max_train_triples 2000 --num_test_triples 5 --num_train_epochs 1

``--num_test_triples N`` ranks N sampled test triples in both directions (2N queries); ``--num_test_queries N``
ranks N sampled queries, each (head, relation, ?) or (?, relation, tail), against all entities.

Every ``TrainingArguments`` / ``CtxDistillTrainingArguments`` flag works (``--bf16``, ``--learning_rate``,
``--per_device_train_batch_size``, ``--use_reconstruction``, ``--reconstruction_weight``...).
Writes the trained model (with its model card), ``metrics.json`` and the evaluator's partial ranks
(so an interrupted evaluation resumes) to ``--output_dir``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, HfArgumentParser, set_seed

from hf_ctxdistill import KnowledgeGraph, LinkPredictionEvaluator
from hf_ctxdistill.context import ContextCorpus
from hf_ctxdistill.hub import save_model_card
from hf_ctxdistill.models import ContextualizedKGBert, KGBertTripleScorer, minilm_path
from hf_ctxdistill.training import CtxDistillTrainingArguments, KGBertCollator, MultiTaskTrainer

logger = logging.getLogger("train_kgbert")


@dataclass
class ScriptArguments:
    """What to train on and how to evaluate (the rest are ``CtxDistillTrainingArguments``)."""

    kg_path: str = field(metadata={"help": "A KG folder in any supported layout (KG-BERT, KG-S2S, PKGC, plain)."})
    kg_format: str = field(default="auto", metadata={"help": "Layout of --kg_path (auto-detected by default)."})
    encoder: str | None = field(default=None, metadata={"help": "Encoder checkpoint (Hub id or folder); default: the offline MiniLM."})
    context_source: str = field(
        default="none",
        metadata={"help": "Contexts for reconstruction: 'corpus' (--context_corpus), 'glosses' (the entities' "
                  "own descriptions joined per triple) or 'none' (no auxiliary task)."},
    )
    context_corpus: str | None = field(default=None, metadata={"help": "A ContextCorpus folder or Hub id."})
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (task heads stay fully trainable)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    max_train_triples: int | None = field(default=None, metadata={"help": "Train on a random subset of this many triples."})
    num_test_triples: int | None = field(
        default=None, metadata={"help": "Rank a fixed random sample of this many test triples (both directions); all by default."}
    )
    num_test_queries: int | None = field(
        default=None,
        metadata={"help": "Rank a fixed random sample of this many queries (drawn with --seed). A query is one direction "
                  "of a test triple, (head, relation, ?) or (?, relation, tail), so N queries cost N x num_entities "
                  "model inputs, while --num_test_triples N samples triples and ranks both directions of each "
                  "(2N queries). Given both, the queries are drawn from the sampled triples. All by default."},
    )
    eval_split: str = field(default="test", metadata={"help": "Split to rank."})
    eval_batch_size: int = field(default=1024, metadata={"help": "Triples per forward pass when ranking."})
    tie_rule: str = field(default="realistic", metadata={"help": "realistic (default), optimistic or pessimistic."})
    attn_implementation: str = field(default="sdpa", metadata={"help": "Attention kernel of the encoder."})


def gloss_contexts(kg: KnowledgeGraph, triples: np.ndarray) -> dict[tuple[str, str, str], str]:
    """Contexts built from the KG's own entity descriptions, for runs without LLM contexts: the two
    entities' "name, description" texts joined (a triple whose entities have no description gets none)."""
    contexts = {}
    for h, r, t in triples:
        if kg.entity_descriptions[h] or kg.entity_descriptions[t]:
            key = (kg.entity_ids[h], kg.relation_ids[r], kg.entity_ids[t])
            contexts[key] = f"{kg.entity_text(h)}. {kg.entity_text(t)}."
    return contexts


def main() -> None:
    parser = HfArgumentParser((ScriptArguments, CtxDistillTrainingArguments))
    script, args = parser.parse_args_into_dataclasses()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.time()

    kg = KnowledgeGraph.from_path(script.kg_path, format=script.kg_format)
    logger.info("loaded %s", kg)
    train = kg.dataset["train"]
    if script.max_train_triples is not None and script.max_train_triples < len(train):
        train = train.shuffle(seed=args.seed).select(range(script.max_train_triples))
    contexts = None
    if script.context_source == "corpus":
        if script.context_corpus is None:
            raise SystemExit("--context_source corpus needs --context_corpus")
        corpus_path = Path(script.context_corpus)
        corpus = ContextCorpus.load_from_disk(corpus_path) if corpus_path.is_dir() and (corpus_path / "dataset_info.json").exists() \
            else ContextCorpus.from_hub(script.context_corpus)
        contexts = corpus.context_map()
    elif script.context_source == "glosses":
        contexts = gloss_contexts(kg, kg.triples("train"))
    elif script.context_source != "none":
        raise SystemExit(f"--context_source must be corpus, glosses or none, got {script.context_source!r}")
    if contexts is not None:
        covered = sum(key in contexts for key in kg.decode(kg.encode(train)))
        logger.info("contexts (%s): %d of %d training triples covered", script.context_source, covered, len(train))
    use_reconstruction = contexts is not None and args.use_reconstruction is not False

    encoder = script.encoder or str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    set_seed(args.seed)  # the new heads are initialised here, before the Trainer seeds: same seed, same start
    model = ContextualizedKGBert.from_encoder(
        encoder, use_reconstruction=use_reconstruction, max_seq_length=args.max_seq_length,
        attn_implementation=script.attn_implementation,
    )
    peft_config = None
    if script.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=script.lora_r, lora_alpha=script.lora_alpha, lora_dropout=0.1, target_modules=["query", "key", "value", "dense"])
    collator = KGBertCollator.from_training_args(args, kg, tokenizer, contexts if use_reconstruction else None)
    trainer = MultiTaskTrainer(model=model, args=args, train_dataset=train, data_collator=collator, peft_config=peft_config)
    train_result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    train_seconds = time.time() - started
    trainer.save_model(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)

    # Ranking: the trained model in eval mode; on a GPU after bf16 training the encoder runs in bf16
    # (the classifier stays float32 so close scores do not collapse into ties).
    scoring_model = trainer.model.eval()
    if torch.cuda.is_available() and args.bf16:
        base = scoring_model.get_base_model() if hasattr(scoring_model, "get_base_model") else scoring_model
        base.encoder.to(torch.bfloat16)
    scorer = KGBertTripleScorer(scoring_model, kg, tokenizer, batch_size=script.eval_batch_size, use_descriptions=args.use_descriptions)
    evaluator = LinkPredictionEvaluator(
        kg, script.eval_split, num_triples=script.num_test_triples, num_queries=script.num_test_queries, seed=args.seed,
        batch_size=script.eval_batch_size, tie_rule=script.tie_rule, output_dir=Path(args.output_dir) / "ranks",
    )
    eval_started = time.time()
    metrics = evaluator.evaluate(scorer, metric_key_prefix=script.eval_split)
    eval_seconds = time.time() - eval_started

    summary = {
        "kg": script.kg_path, "encoder": encoder, "context_source": script.context_source if use_reconstruction else "none",
        "train_triples": len(train), "train_loss": train_result.training_loss, "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1), "ranked_triples": len(np.unique(evaluator.query_rows)),
        "ranked_queries": evaluator.num_queries,
        "num_entities": kg.num_entities, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        **metrics, "script_args": asdict(script),
    }
    Path(args.output_dir, "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    p = script.eval_split
    save_model_card(
        args.output_dir, trainer.model, kg_name=kg.source or script.kg_path, training_args=args,
        metrics={k: v for k, v in metrics.items() if isinstance(v, float)},
        corpus_description=script.context_corpus if script.context_source == "corpus" else script.context_source,
    )
    ranked = (f"{summary['ranked_triples']} triples x 2 directions" if script.num_test_queries is None
              else f"{summary['ranked_queries']} queries")
    print(
        f"filtered {p}: MRR {metrics[f'{p}_mrr']:.4f}  MR {metrics[f'{p}_mr']:.1f}  "
        f"Hits@1 {metrics[f'{p}_hits@1']:.4f}  Hits@3 {metrics[f'{p}_hits@3']:.4f}  Hits@10 {metrics[f'{p}_hits@10']:.4f}  "
        f"({ranked} vs {kg.num_entities:,} entities; train {train_seconds:.0f} s, ranking {eval_seconds:.0f} s)"
    )


if __name__ == "__main__":
    main()
