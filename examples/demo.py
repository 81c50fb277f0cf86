"""The whole pipeline on a small real KG, on CPU: ``make demo``.

1. WordNet 3.0 (Debian's wordnet-base) read as a WN18RR-style KG; a connected subgraph sampled.
2. The offline LLM (SmolLM2-135M-Instruct) writes contexts for training triples (paper's ed+td prompt).
3. The offline MiniLM is trained KG-BERT style with the reconstruction auxiliary loss.
4. Filtered link prediction on the test split: MRR, MR, Hits@1/3/10 printed.

Every stage's output lands in ``--output_dir`` (default ``demo_output/``); a rerun reuses the
generated contexts (the generation cache is resumable).

The defaults are sized for a couple of CPU cores: contexts for a bounded number of training triples
(the others simply have no context: the reconstruction loss skips them), a few epochs, and a sample of
the test triples ranked against every entity. Raise them on a bigger machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import datasets
import torch
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from hf_ctxdistill import (
    ContextualizedKGBert,
    CtxDistillTrainingArguments,
    KGBertCollator,
    KGBertTripleScorer,
    KnowledgeGraph,
    LinkPredictionEvaluator,
    MultiTaskTrainer,
    minilm_path,
    read_wordnet,
    sample_subgraph,
)
from hf_ctxdistill.context import ContextGenerator, TransformersBackend


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--num_entities", type=int, default=300, help="size of the sampled WordNet subgraph")
    parser.add_argument("--num_context_triples", type=int, default=48, help="training triples the LLM writes contexts for")
    parser.add_argument("--max_new_tokens", type=int, default=64, help="tokens the LLM writes per context")
    parser.add_argument("--generation_batch_size", type=int, default=48, help="prompts per LLM generate call")
    parser.add_argument("--epochs", type=float, default=2, help="training epochs")
    parser.add_argument("--batch_size", type=int, default=16, help="true triples per training batch")
    parser.add_argument("--learning_rate", type=float, default=3e-4)
    parser.add_argument("--num_negatives", type=int, default=5, help="corrupted triples per true triple")
    parser.add_argument("--num_test_triples", type=int, default=20, help="test triples ranked (head and tail queries)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.time()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()  # keep the demo output to the stages
    hf_logging.set_verbosity_error()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    timings: dict[str, float] = {}

    # ------------------------------------------------------------------ 1. data
    t0 = stage("[1/4] Reading WordNet 3.0 and sampling a connected subgraph")
    wordnet = read_wordnet()
    subgraph = sample_subgraph(wordnet, args.num_entities, seed=args.seed, validation_size=0.05, test_size=0.1)
    subgraph.save_to_disk(str(out / "kg"))
    kg = KnowledgeGraph.from_dataset(subgraph)
    print(f"full WordNet: {len(wordnet['entities']):,} entities, {len(wordnet['train']):,} triples")
    print(f"sampled: {kg}")
    (out / "statistics.json").write_text(json.dumps(kg.statistics(), indent=2))
    timings["data"] = time.time() - t0
    print(f"stage 1 done in {timings['data']:.0f} s")

    # ------------------------------------------------------------------ 2. contexts
    t0 = stage(f"[2/4] The offline LLM writes ed+td contexts for {args.num_context_triples} training triples")
    backend = TransformersBackend(
        "smollm2-offline", device="cpu", batch_size=args.generation_batch_size,
        max_new_tokens=args.max_new_tokens, seed=args.seed,
    )
    generator = ContextGenerator(backend, "ed+td", cache_dir=out / "generation_cache", min_words=30)
    try:
        corpus = generator.generate(kg, split="train", start=0, stop=args.num_context_triples)
    finally:
        backend.close()
    corpus.save_to_disk(out / "contexts")
    print(generator.last_report)
    coverage = corpus.coverage(kg, "train")
    print(
        f"corpus: {len(corpus)} contexts; {coverage['triples_with_context']}/{coverage['triples']} training triples "
        f"covered ({coverage['triple_coverage']:.1%}); the rest train without the reconstruction loss"
    )
    contexts = corpus.context_map()
    if contexts:
        (h, r, t), text = next(iter(contexts.items()))
        names = kg.entity_names[kg.entity_index[h]], r, kg.entity_names[kg.entity_index[t]]
        print(f"example ({' | '.join(names)}):\n  {text[:300]}{'...' if len(text) > 300 else ''}")
    timings["contexts"] = time.time() - t0
    print(f"stage 2 done in {timings['contexts']:.0f} s")

    # ------------------------------------------------------------------ 3. training
    t0 = stage("[3/4] Training MiniLM KG-BERT style with the reconstruction loss")
    encoder = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    training_args = CtxDistillTrainingArguments(
        output_dir=str(out / "model"), num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_steps=0.1, num_negatives=args.num_negatives, seed=args.seed,
        use_reconstruction=bool(contexts), logging_steps=10, save_strategy="no", report_to="none", use_cpu=True,
    )
    model = ContextualizedKGBert.from_encoder(
        encoder, use_reconstruction=bool(contexts), max_seq_length=training_args.max_seq_length,
    )
    collator = KGBertCollator.from_training_args(training_args, kg, tokenizer, contexts or None)
    trainer = MultiTaskTrainer(model=model, args=training_args, train_dataset=kg.dataset["train"], data_collator=collator)
    train_result = trainer.train()
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(str(out / "model"))
    timings["training"] = time.time() - t0
    print(f"train loss {train_result.training_loss:.4f}; stage 3 done in {timings['training']:.0f} s")

    # ------------------------------------------------------------------ 4. evaluation
    num_test = len(kg.dataset["test"])
    num_ranked = min(args.num_test_triples, num_test)
    t0 = stage(f"[4/4] Filtered link prediction: {num_ranked} of {num_test} test triples x 2 directions "
               f"vs {kg.num_entities} entities")
    scorer = KGBertTripleScorer(trainer.model.eval(), kg, tokenizer, batch_size=256,
                                use_descriptions=training_args.use_descriptions)
    evaluator = LinkPredictionEvaluator(kg, "test", num_triples=num_ranked, seed=args.seed, batch_size=256)
    metrics = evaluator.evaluate(scorer, metric_key_prefix="test")
    timings["evaluation"] = time.time() - t0
    print(f"stage 4 done in {timings['evaluation']:.0f} s")

    total = time.time() - started
    summary = {
        "num_entities": kg.num_entities, "train_triples": len(kg.dataset["train"]),
        "context_coverage": coverage, "train_loss": train_result.training_loss,
        "ranked_test_triples": num_ranked, "seconds": {k: round(v, 1) for k, v in timings.items()},
        "total_seconds": round(total, 1), "args": vars(args), **metrics,
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    print(
        f"\nfiltered test: MRR {metrics['test_mrr']:.4f}  MR {metrics['test_mr']:.1f}  "
        f"Hits@1 {metrics['test_hits@1']:.4f}  Hits@3 {metrics['test_hits@3']:.4f}  Hits@10 {metrics['test_hits@10']:.4f}"
    )
    print(f"Done in {total:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}); outputs in {out}/")


if __name__ == "__main__":
    main()
