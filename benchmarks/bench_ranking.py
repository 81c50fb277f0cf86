"""(query, candidate) pairs/s of exact KG-BERT ranking: a naive baseline, ours, the model alone, the FLOP ceiling.

One run, one encoder, sequence length 50 (the model's ``max_seq_length``), the same batch size for every row:

1. **naive** (KG-BERT style): float32 weights, eager attention; every batch of (h, r, candidate) triples
   is turned into texts and tokenised there and then, one triple at a time, with KG-BERT's
   ``_truncate_seq_triple`` rule and padding to the full length, as the original KG-BERT code does (with
   the encoder's fast tokenizer, which if anything flatters the baseline);
2. **ours**: the library's ranking path as ``examples/train_kgbert.py`` runs it, end to end:
   ``LinkPredictionEvaluator`` (filtered ranks) over a fixed random sample of queries, scored by
   ``KGBertTripleScorer`` (entity/relation pieces tokenised once and assembled with numpy, batches sorted
   by length, input building overlapped with the GPU), with the encoder in bf16 + SDPA on a GPU (the
   classifier stays float32) and float32 + SDPA on a CPU;
3. **model alone**: ``score_triples`` at the same batch on ready-made inputs of exactly the sequence
   length, already on the device, in ours' dtype and attention: what the model costs without any host work;
4. **FLOP ceiling**: pairs/s at the device's peak, with ``2 * non-embedding params * seq_len +
   4 * layers * seq_len**2 * hidden`` FLOPs per pair (``--peak-tflops``, default 787 = H100/H200 dense bf16).
   On a CPU the peak is a measured float32 matmul rate instead, unless ``--peak-tflops`` is given.

The naive and ours rows score the candidates of the same queries. Each rate is also projected to the
full filtered ranking of the WN18RR test split (3,134 triples x 2 directions x 40,943 candidates =
256.6M pairs). Examples::

    # CPU smoke test
    python benchmarks/bench_ranking.py --device cpu --num-queries 2 --max-candidates 256
    # GPU, the offline MiniLM on WN18RR (defaults), or random BERT-base weights
    python benchmarks/bench_ranking.py --json ranking_minilm.json
    python benchmarks/bench_ranking.py --random-config bert-base --json ranking_bert_base.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WN18RR_TEST_TRIPLES = 3134
WN18RR_ENTITIES = 40943
WN18RR_TEST_PAIRS = WN18RR_TEST_TRIPLES * 2 * WN18RR_ENTITIES  # 256,630,724
RANDOM_CONFIGS = {
    # name: (hidden, layers, heads, intermediate)
    "bert-base": (768, 12, 12, 3072),
    "minilm": (384, 6, 12, 1536),
    "tiny": (32, 2, 2, 37),  # for tests
}


def default_kg_path() -> Path:
    data = Path(os.environ.get("HF_CTXDISTILL_SHARED_DATA", REPO.parent / "shared" / "data"))
    return data / "WN18RR" / "kgbert_format"


# ------------------------------------------------------------------------------------------ models
def load_model(args, attn_implementation: str):
    """A float32 ``ContextualizedKGBert`` with the given attention (same weights on every call)."""
    from transformers import AutoConfig, BertConfig

    from hf_ctxdistill.models import ContextualizedKGBert, ContextualizedKGBertConfig

    if args.random_config:
        hidden, layers, heads, intermediate = RANDOM_CONFIGS[args.random_config]
        encoder = BertConfig(
            vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=intermediate,
        )
        torch.manual_seed(0)
        model = ContextualizedKGBert(ContextualizedKGBertConfig(encoder=encoder, max_seq_length=args.seq_len))
        model.set_attn_implementation(attn_implementation)
        return model
    config = AutoConfig.from_pretrained(args.model)
    if getattr(config, "model_type", None) == ContextualizedKGBertConfig.model_type:  # a trained checkpoint
        return ContextualizedKGBert.from_pretrained(args.model, dtype=torch.float32, attn_implementation=attn_implementation)
    torch.manual_seed(0)  # the new classification head
    return ContextualizedKGBert.from_encoder(
        args.model, max_seq_length=args.seq_len, dtype=torch.float32, attn_implementation=attn_implementation
    )


def flops_per_pair(model, seq_len: int) -> tuple[float, int]:
    """FLOPs of one (query, candidate) pair and the non-embedding parameter count behind them."""
    body = model.encoder_model
    embedding_params = sum(p.numel() for p in body.embeddings.parameters())
    params = sum(p.numel() for p in body.parameters()) - embedding_params
    params += sum(p.numel() for p in model.classifier.parameters())  # BERT's pooler + KG-BERT's linear layer
    encoder = model.config.encoder
    attention = 4 * encoder.num_hidden_layers * seq_len**2 * encoder.hidden_size
    return 2.0 * params * seq_len + attention, params


def measured_matmul_tflops(device: torch.device, seconds: float = 1.0) -> float:
    """Dense matmul rate on the device: bf16 8192^2 on a GPU, float32 1024^2 on a CPU."""
    size, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    synchronize(device)
    count, started = 0, time.perf_counter()
    while True:
        a @ b
        count += 1
        if count % 4 == 0:
            synchronize(device)
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return 2 * size**3 * count / elapsed / 1e12


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------ queries
def candidate_graph(kg, args):
    """The KG whose entities are the candidates: the whole KG, or (``--max-candidates``) a sub-graph of
    that many entities holding ``--num-queries`` sampled test triples, with the known triples among them."""
    from datasets import DatasetDict

    from hf_ctxdistill import KnowledgeGraph

    if args.max_candidates is None or args.max_candidates >= kg.num_entities:
        return kg
    rng = np.random.default_rng(args.seed)
    test = kg.triples("test")
    chosen = np.sort(rng.choice(len(test), size=min(args.num_queries, len(test)), replace=False))
    keep = np.zeros(kg.num_entities, dtype=bool)
    keep[test[chosen][:, [0, 2]].ravel()] = True
    others = np.flatnonzero(~keep)
    fill = max(args.max_candidates - int(keep.sum()), 0)
    keep[rng.choice(others, size=min(fill, len(others)), replace=False)] = True

    def inside(split: str) -> np.ndarray:
        triples = kg.triples(split)
        return keep[triples[:, 0]] & keep[triples[:, 2]]

    parts = {"entities": kg.dataset["entities"].select(np.flatnonzero(keep)), "relations": kg.dataset["relations"]}
    parts["test"] = kg.dataset["test"].select(chosen)
    parts["train"] = kg.dataset["train"].select(np.flatnonzero(inside("train")))
    other_test = inside("test")
    other_test[chosen] = False
    known = [kg.dataset["test"].select(np.flatnonzero(other_test))]
    if "validation" in kg.dataset:
        known.insert(0, kg.dataset["validation"].select(np.flatnonzero(inside("validation"))))
    from datasets import concatenate_datasets

    parts["validation"] = concatenate_datasets(known)  # only filters: every known triple stays known
    return KnowledgeGraph.from_dataset(DatasetDict(parts))


def candidate_triples(evaluator, limit: int) -> np.ndarray:
    """The first ``limit`` (query, candidate) triples in the evaluator's order (query by query)."""
    queries = min(math.ceil(limit / evaluator.num_entities), evaluator.num_queries)
    flat = np.arange(queries * evaluator.num_entities, dtype=np.int64)[:limit]
    query = flat // evaluator.num_entities
    triples = evaluator.query_triples[query].copy()
    column = np.where(evaluator.query_sides[query] == 1, 2, 0)
    triples[np.arange(len(flat)), column] = flat - query * evaluator.num_entities
    return triples


# ------------------------------------------------------------------------------------------ naive
def _truncate_seq_triple(tokens_a: list, tokens_b: list, tokens_c: list, max_length: int) -> None:
    """KG-BERT's rule: pop from the end of the longest sequence until the three fit (in place)."""
    while len(tokens_a) + len(tokens_b) + len(tokens_c) > max_length:
        if len(tokens_a) > len(tokens_b) and len(tokens_a) > len(tokens_c):
            tokens_a.pop()
        elif len(tokens_b) > len(tokens_a) and len(tokens_b) > len(tokens_c):
            tokens_b.pop()
        elif len(tokens_c) > len(tokens_a) and len(tokens_c) > len(tokens_b):
            tokens_c.pop()
        else:
            tokens_c.pop()


def kgbert_features(kg, tokenizer, triples: np.ndarray, max_length: int) -> dict[str, torch.Tensor]:
    """KG-BERT's ``convert_examples_to_features`` for one batch: texts -> tokens -> ids, one triple at a time."""
    cls, sep, pad = tokenizer.cls_token, tokenizer.sep_token, tokenizer.pad_token_id or 0
    input_ids, masks, segments = [], [], []
    for h, r, t in triples.tolist():
        tokens_a = tokenizer.tokenize(kg.entity_text(h))
        tokens_b = tokenizer.tokenize(kg.relation_names[r])
        tokens_c = tokenizer.tokenize(kg.entity_text(t))
        _truncate_seq_triple(tokens_a, tokens_b, tokens_c, max_length - 4)
        tokens = [cls, *tokens_a, sep]
        segment = [0] * len(tokens)
        tokens += [*tokens_b, sep]
        segment += [1] * (len(tokens_b) + 1)
        tokens += [*tokens_c, sep]
        segment += [0] * (len(tokens_c) + 1)
        ids = tokenizer.convert_tokens_to_ids(tokens)
        padding = max_length - len(ids)
        input_ids.append(ids + [pad] * padding)
        masks.append([1] * len(ids) + [0] * padding)
        segments.append(segment + [0] * padding)
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "attention_mask": torch.tensor(masks, dtype=torch.long),
        "token_type_ids": torch.tensor(segments, dtype=torch.long),
    }


def run_naive(model, kg, tokenizer, triples: np.ndarray, batch_size: int, seq_len: int, device: torch.device) -> dict:
    """Score ``triples`` the KG-BERT way; pairs/s including tokenisation (after one warm-up batch)."""

    def score(batch: np.ndarray) -> np.ndarray:
        features = {k: v.to(device) for k, v in kgbert_features(kg, tokenizer, batch, seq_len).items()}
        with torch.no_grad():
            logits = model(**features).logits
        return torch.softmax(logits, dim=-1)[:, 1].cpu().numpy()  # KG-BERT's score

    score(triples[: min(batch_size, len(triples))])
    synchronize(device)
    started = time.perf_counter()
    for begin in range(0, len(triples), batch_size):
        score(triples[begin : begin + batch_size])
    seconds = time.perf_counter() - started
    return {"pairs": len(triples), "seconds": round(seconds, 3), "pairs_per_second": len(triples) / seconds}


# ------------------------------------------------------------------------------------------ ours
def prepare_ours(model, device: torch.device, dtype: torch.dtype):
    """The model as ``examples/train_kgbert.py`` ranks with it: eval mode, encoder in ``dtype``."""
    model = model.to(device).eval()
    if dtype != torch.float32:
        model.encoder.to(dtype)  # the classifier stays float32 so close scores do not collapse into ties
    return model


def run_ours(model, graph, tokenizer, args, device: torch.device) -> tuple[dict, object, object]:
    """Rank the sampled queries through ``LinkPredictionEvaluator`` + ``KGBertTripleScorer``."""
    from hf_ctxdistill import LinkPredictionEvaluator
    from hf_ctxdistill.models import KGBertTripleScorer

    scorer = KGBertTripleScorer(model, graph, tokenizer, batch_size=args.batch_size, max_length=args.seq_len)
    evaluator = LinkPredictionEvaluator(
        graph, "test", num_queries=args.num_queries, seed=args.seed, batch_size=args.batch_size, progress=False
    )
    started = time.perf_counter()
    scorer.encoder.prepare_all_entities()  # once per evaluation; the lazy path would do it on the way
    tokenize_seconds = time.perf_counter() - started
    scorer(candidate_triples(evaluator, min(args.batch_size, evaluator.num_pairs)))  # warm-up batch
    synchronize(device)
    started = time.perf_counter()
    result = evaluator.run(scorer)
    synchronize(device)
    seconds = time.perf_counter() - started
    h, r, t = scorer.encoder.truncated_lengths(candidate_triples(evaluator, evaluator.num_pairs))
    report = {
        "queries": result.num_queries,
        "candidates_per_query": graph.num_entities,
        "pairs": result.pairs_scored,
        "seconds": round(seconds, 3),
        "pairs_per_second": result.pairs_scored / seconds,
        "entity_tokenization_seconds": round(tokenize_seconds, 3),
        "mean_tokens_per_pair": round(float(np.mean(h + r + t + 4)), 1),
        "mrr": round(float(result.to_dict(None)["mrr"]), 4),
    }
    return report, evaluator, scorer


def run_model_alone(model, args, device: torch.device, vocab_size: int, min_seconds: float) -> dict:
    """``score_triples`` on ready inputs of exactly ``seq_len`` tokens already on the device."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab_size, (args.batch_size, args.seq_len), generator=generator)
    inputs = {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "token_type_ids": torch.zeros_like(ids).to(device),
    }
    for _ in range(2):
        model.score_triples(**inputs)
    synchronize(device)
    count, started = 0, time.perf_counter()
    while True:
        model.score_triples(**inputs)
        count += 1
        synchronize(device)
        seconds = time.perf_counter() - started
        if count >= 3 and seconds >= min_seconds:
            break
    pairs = count * args.batch_size
    return {"pairs": pairs, "batches": count, "seconds": round(seconds, 3), "pairs_per_second": pairs / seconds}


# ------------------------------------------------------------------------------------------ report
def hours(pairs_per_second: float) -> float:
    return WN18RR_TEST_PAIRS / pairs_per_second / 3600 if pairs_per_second > 0 else math.inf


def format_duration(h: float) -> str:
    if not math.isfinite(h):
        return "-"
    if h >= 48:
        return f"{h / 24:.1f} d"
    if h >= 1:
        return f"{h:.1f} h"
    return f"{h * 60:.1f} min"


def print_table(report: dict) -> None:
    rows = [
        ("naive (KG-BERT style, fp32 eager, tokenise per batch)", report["naive"]["pairs_per_second"]),
        (f"ours (LinkPredictionEvaluator, {report['dtype']} + SDPA)", report["ours"]["pairs_per_second"]),
        (f"model alone ({report['dtype']} + SDPA, ready inputs)", report["model_alone"]["pairs_per_second"]),
        (f"FLOP ceiling ({report['peak_tflops']:.3g} TFLOP/s, {report['peak_source']})", report["ceiling_pairs_per_second"]),
    ]
    naive = report["naive"]["pairs_per_second"]
    ceiling = report["ceiling_pairs_per_second"]
    print(f"\n{report['model']} on {report['device_name']}, batch {report['batch_size']}, sequence length {report['seq_len']}, "
          f"{report['gflops_per_pair']:.3f} GFLOP/pair ({report['non_embedding_params'] / 1e6:.2f}M non-embedding params)")
    print(f"ours: {report['ours']['queries']} queries x {report['ours']['candidates_per_query']:,} candidates, "
          f"{report['ours']['mean_tokens_per_pair']} tokens per pair on average")
    header = f"{'':58s} {'pairs/s':>12s} {'vs naive':>9s} {'vs ceiling':>11s} {'WN18RR test (256.6M pairs)':>27s}"
    print(header)
    print("-" * len(header))
    for name, rate in rows:
        print(f"{name:58s} {rate:12,.0f} {rate / naive:8.2f}x {rate / ceiling:10.1%} {format_duration(hours(rate)):>27s}")
    print(f"\nours / naive: {report['ratios']['ours_vs_naive']:.2f}x   ours / ceiling: {report['ratios']['ours_vs_ceiling']:.1%}   "
          f"model alone / ceiling: {report['ratios']['model_alone_vs_ceiling']:.1%}   ours / model alone: {report['ratios']['ours_vs_model_alone']:.1%}")
    print(f"projected full filtered WN18RR test ranking: ours {format_duration(report['projected_hours']['ours'])}, "
          f"naive {format_duration(report['projected_hours']['naive'])}, at the ceiling {format_duration(report['projected_hours']['ceiling'])}")
    if report.get("note"):
        print(f"note: {report['note']}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="encoder checkpoint (Hub id or folder, any BERT-like model) or a trained "
                        "ContextualizedKGBert folder; default: the offline MiniLM")
    parser.add_argument("--random-config", choices=sorted(RANDOM_CONFIGS), default=None,
                        help="random weights of this BERT shape instead of --model (with the MiniLM tokenizer)")
    parser.add_argument("--kg", default=None, help="KG folder whose test queries are ranked; default: WN18RR (KG-BERT layout) "
                        "in $HF_CTXDISTILL_SHARED_DATA or ../shared/data")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
    parser.add_argument("--num-queries", type=int, default=24, help="queries ranked by ours (a fixed random sample, --seed)")
    parser.add_argument("--max-candidates", type=int, default=None,
                        help="rank against a sub-graph of this many entities holding the sampled queries (smoke tests); default all")
    parser.add_argument("--naive-pairs", type=int, default=None,
                        help="pairs scored by the naive baseline (the first ones of ours' queries); default 4 batches")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per forward pass, every row; default 16384 (GPU), 256 (CPU)")
    parser.add_argument("--seq-len", type=int, default=50, help="token budget per pair")
    parser.add_argument("--dtype", default="auto", help="ours' encoder dtype: auto (bf16 on a GPU, float32 on a CPU), bfloat16, float32")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak for the ceiling; default 787 (H100/H200 dense bf16) on a GPU, a measured float32 matmul on a CPU")
    parser.add_argument("--min-seconds", type=float, default=None, help="model-alone timing window; default 3 (GPU), 1 (CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.model and args.random_config:
        parser.error("give --model or --random-config, not both")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    on_gpu = device.type == "cuda"
    args.batch_size = args.batch_size or (16384 if on_gpu else 256)
    dtype = {"auto": torch.bfloat16 if on_gpu else torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float32": torch.float32, "fp32": torch.float32}[args.dtype]
    min_seconds = args.min_seconds if args.min_seconds is not None else (3.0 if on_gpu else 1.0)

    from transformers import AutoTokenizer

    from hf_ctxdistill import KnowledgeGraph
    from hf_ctxdistill.models import minilm_path

    if not args.random_config and args.model is None:
        args.model = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()) if args.random_config else args.model)
    kg_path = Path(args.kg) if args.kg else default_kg_path()
    kg = KnowledgeGraph.from_path(kg_path)
    graph = candidate_graph(kg, args)

    # ours first: its evaluator fixes the queries whose candidates every row scores
    ours_model = prepare_ours(load_model(args, "sdpa"), device, dtype)
    flops, params = flops_per_pair(ours_model, args.seq_len)
    ours, evaluator, scorer = run_ours(ours_model, graph, tokenizer, args, device)
    alone = run_model_alone(ours_model, args, device, ours_model.config.encoder.vocab_size, min_seconds)
    del ours_model, scorer
    if on_gpu:
        torch.cuda.empty_cache()

    naive_model = load_model(args, "eager").to(device).eval()
    naive_pairs = args.naive_pairs or 4 * args.batch_size
    naive = run_naive(naive_model, graph, tokenizer, candidate_triples(evaluator, min(naive_pairs, evaluator.num_pairs)),
                      args.batch_size, args.seq_len, device)
    del naive_model

    matmul = measured_matmul_tflops(device, seconds=min(max(min_seconds, 0.2), 1.0))
    note = None
    if args.peak_tflops is not None:
        peak, source = args.peak_tflops, "given"
    elif on_gpu:
        peak, source = 787.0, "H100/H200 dense bf16 datasheet"
    else:
        peak, source = matmul, "measured fp32 matmul"
        note = ("CPU: the ceiling is a measured float32 1024^2 matmul rate on this machine's threads, not a datasheet "
                "peak; ratios to it say how close the ranking comes to the matmul speed the CPU delivered in this run")
    ceiling = peak * 1e12 / flops
    report = {
        "model": args.model if not args.random_config else f"random {args.random_config}",
        "kg": str(kg_path),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_gpu else f"CPU ({torch.get_num_threads()} threads)",
        "dtype": str(dtype).replace("torch.", ""),
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "non_embedding_params": params,
        "gflops_per_pair": flops / 1e9,
        "naive": naive,
        "ours": ours,
        "model_alone": alone,
        "peak_tflops": peak,
        "peak_source": source,
        "measured_matmul_tflops": round(matmul, 3),
        "ceiling_pairs_per_second": ceiling,
        "ratios": {
            "ours_vs_naive": ours["pairs_per_second"] / naive["pairs_per_second"],
            "ours_vs_ceiling": ours["pairs_per_second"] / ceiling,
            "model_alone_vs_ceiling": alone["pairs_per_second"] / ceiling,
            "ours_vs_model_alone": ours["pairs_per_second"] / alone["pairs_per_second"],
            "naive_vs_ceiling": naive["pairs_per_second"] / ceiling,
        },
        "wn18rr_test_pairs": WN18RR_TEST_PAIRS,
        "projected_hours": {
            "naive": hours(naive["pairs_per_second"]),
            "ours": hours(ours["pairs_per_second"]),
            "model_alone": hours(alone["pairs_per_second"]),
            "ceiling": hours(ceiling),
        },
        "note": note,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    import transformers

    report["transformers"] = transformers.__version__
    print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
