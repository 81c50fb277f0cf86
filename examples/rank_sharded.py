"""Exact filtered ranking with a trained KG-BERT model, one query shard per process, then one merge.

    torchrun --nproc_per_node=4 examples/rank_sharded.py --model_dir runs/wn18rr \
        --kg_path WN18RR/kgbert_format --output_dir runs/wn18rr/ranks-4gpu --bf16

Process ``RANK`` of ``WORLD_SIZE`` (set by ``torchrun``; a plain ``python`` run is one process) ranks the
contiguous query range ``shard_index=RANK, num_shards=WORLD_SIZE`` of a ``LinkPredictionEvaluator`` on
``cuda:LOCAL_RANK`` (or the CPU) and saves it as a shard file in ``--output_dir``. Rank 0 waits for the
others, merges the shard files (every query must be present) and writes ``metrics.json``: the metrics,
the wall time of the ranking (from a common start after model loading to the last shard's end) and
each rank's time. A rerun resumes: queries already ranked in ``--output_dir`` are not scored again.

``--reference DIR`` compares the merged ranks with another run's (e.g. the same model on one GPU):
how many queries got identical rank bounds, and the wall-time ratio. The processes only synchronise
over gloo (CPU), so no NCCL set-up is needed. Plain ``ContextualizedKGBert`` folders only (no adapters).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from hf_ctxdistill import KnowledgeGraph, LinkPredictionEvaluator
from hf_ctxdistill.evaluation import merge_results
from hf_ctxdistill.models import ContextualizedKGBert, KGBertTripleScorer

logger = logging.getLogger("rank_sharded")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model_dir", required=True, help="A trained ContextualizedKGBert folder (with its tokenizer)."
    )
    parser.add_argument("--kg_path", required=True, help="The KG folder (any supported layout).")
    parser.add_argument("--kg_format", default="auto")
    parser.add_argument(
        "--output_dir", required=True, help="Shard files and metrics.json of this run (one folder per model)."
    )
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--num_test_triples",
        type=int,
        default=None,
        help="Rank a fixed random sample of this many triples (all by default).",
    )
    parser.add_argument(
        "--num_test_queries",
        type=int,
        default=None,
        help="Rank a fixed random sample of this many queries (of the sampled triples).",
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="Seed of the samples (as train_kgbert.py's --seed)."
    )
    parser.add_argument("--eval_batch_size", type=int, default=1024, help="Triples per forward pass.")
    parser.add_argument("--tie_rule", default="realistic")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="On a GPU, run the encoder in bf16 (the classifier stays float32).",
    )
    parser.add_argument("--cpu", action="store_true", help="Rank on the CPU even when a GPU is present.")
    parser.add_argument(
        "--reference", default=None, help="Another run's --output_dir to compare ranks and wall time with."
    )
    parser.add_argument(
        "--require_identical",
        action="store_true",
        help="Exit with an error when ranks differ from --reference.",
    )
    parser.add_argument(
        "--timeout_minutes", type=float, default=240.0, help="How long a rank waits for the others."
    )
    parser.add_argument("--progress", action="store_true", help="Progress bar on rank 0.")
    return parser.parse_args(argv)


def compare(merged, reference_dir: Path, wall_seconds: float) -> dict:
    """Rank agreement with a reference run and the wall-time ratio (reference / this run)."""
    reference = merge_results(reference_dir, require_complete=True)
    if reference.fingerprint != merged.fingerprint:
        raise SystemExit(
            f"{reference_dir} ranked a different evaluation (queries, filter or entities differ)"
        )
    same = (reference.optimistic == merged.optimistic) & (reference.pessimistic == merged.pessimistic)
    delta = np.abs(reference.ranks() - merged.ranks())
    out = {
        "reference": str(reference_dir),
        "identical_queries": int(same.sum()),
        "queries": int(len(same)),
        "max_abs_rank_difference": float(delta.max()),
        "reference_mrr": reference.metrics()["overall"]["mrr"],
    }
    info = reference_dir / "metrics.json"
    if info.exists():
        reference_wall = json.loads(info.read_text())["wall_seconds"]
        out["reference_wall_seconds"] = reference_wall
        out["speedup"] = reference_wall / wall_seconds if wall_seconds > 0 else float("nan")
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING, format=f"%(asctime)s [rank {rank}] %(message)s"
    )
    if world > 1:
        torch.distributed.init_process_group("gloo", timeout=timedelta(minutes=args.timeout_minutes))
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() and not args.cpu else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)

    kg = KnowledgeGraph.from_path(args.kg_path, format=args.kg_format)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = ContextualizedKGBert.from_pretrained(args.model_dir, attn_implementation="sdpa").to(device).eval()
    if device.type == "cuda" and args.bf16:
        model.encoder.to(torch.bfloat16)
    scorer = KGBertTripleScorer(model, kg, tokenizer, batch_size=args.eval_batch_size)
    output_dir = Path(args.output_dir)
    evaluator = LinkPredictionEvaluator(  # the same samples as train_kgbert.py with the same --seed
        kg,
        args.split,
        num_triples=args.num_test_triples,
        num_queries=args.num_test_queries,
        seed=args.seed,
        batch_size=args.eval_batch_size,
        tie_rule=args.tie_rule,
        output_dir=output_dir,
        progress=args.progress and rank == 0,
    )
    start, stop = evaluator.query_range(shard_index=rank, num_shards=world)
    logger.info(
        "%r: %d processes, this one ranks queries [%d, %d) on %s", evaluator, world, start, stop, device
    )

    if world > 1:
        torch.distributed.barrier()  # a common start: every rank has loaded its model
    began = time.perf_counter()
    shard = evaluator.run(scorer, shard_index=rank, num_shards=world)
    seconds = time.perf_counter() - began
    times = [None] * world
    differs = False
    if world > 1:
        torch.distributed.all_gather_object(
            times, {"rank": rank, "seconds": seconds, "pairs": shard.pairs_scored, "device": str(device)}
        )
    else:
        times = [{"rank": 0, "seconds": seconds, "pairs": shard.pairs_scored, "device": str(device)}]

    if rank == 0:
        merged = evaluator.merge(require_complete=True)
        wall = max(t["seconds"] for t in times)
        metrics = merged.to_dict(args.split)
        summary = {
            "model_dir": args.model_dir, "kg": args.kg_path, "split": args.split, "processes": world,
            "queries": merged.num_queries, "pairs": evaluator.num_pairs, "wall_seconds": round(wall, 2),
            "pairs_per_second": evaluator.num_pairs / wall if wall > 0 else None, "ranks": times,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            **metrics,
        }  # fmt: skip
        if args.reference:
            summary["comparison"] = compare(merged, Path(args.reference), wall)
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        p = args.split
        print(
            f"{world} process(es): {merged.num_queries} queries x {kg.num_entities:,} entities in {wall:.1f} s "
            f"({summary['pairs_per_second'] or 0:,.0f} pairs/s); filtered {p} MRR {metrics[f'{p}_mrr']:.4f}  "
            f"MR {metrics[f'{p}_mr']:.1f}  Hits@1 {metrics[f'{p}_hits@1']:.4f}  Hits@10 {metrics[f'{p}_hits@10']:.4f}"
        )
        if "comparison" in summary:
            c = summary["comparison"]
            print(
                f"vs {c['reference']}: identical ranks for {c['identical_queries']}/{c['queries']} queries "
                f"(max |rank difference| {c['max_abs_rank_difference']:g}); "
                f"wall-time ratio {c.get('speedup', float('nan')):.2f}x"
            )
            differs = c["identical_queries"] != c["queries"]
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if args.require_identical and differs:
        raise SystemExit("ranks differ from the reference run")


if __name__ == "__main__":
    main()
