"""Tokens/s of batched local generation against one prompt at a time, same model, one run.

Prompts are the paper's ``ed+td`` prompt filled with triples of a KG (``--kg``) or with synthetic names.
Both runs force exactly ``--max-new-tokens`` tokens per prompt (``min_new_tokens``), so the ratio compares
equal work. Examples::

    # CPU smoke test
    python benchmarks/bench_generation.py --device cpu --batch-size 4 --num-prompts 8 --sequential-prompts 2 --max-new-tokens 8
    # GPU (the 135M model; try batch 256..4096, --static-cache, --compile)
    python benchmarks/bench_generation.py --device cuda --batch-size 1024 --num-prompts 4096 --max-new-tokens 160
    # GPU, the static-cache loop with its decoding step as a CUDA graph (the fast setting)
    python benchmarks/bench_generation.py --device cuda --batch-size 2048 --num-prompts 8192 --decoding static --compile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hf_ctxdistill.context.backends import TransformersBackend  # noqa: E402
from hf_ctxdistill.context.prompts import get_prompt_template  # noqa: E402

NAMES = ["dog", "cat", "paris", "france", "violin", "music", "oak", "tree", "river", "water", "iron", "metal"]
RELATIONS = ["hypernym", "part of", "has part", "member of domain usage", "derivationally related form"]


def build_prompts(count: int, kg_path: str | None, path: str) -> list:
    """``count`` chat prompts of generating path ``path``."""
    template = get_prompt_template(path)
    values = []
    if kg_path:
        from hf_ctxdistill.data.knowledge_graph import KnowledgeGraph

        kg = KnowledgeGraph.from_path(kg_path)
        for h, r, t in kg.triples("train")[:count].tolist():
            values.append({"head": kg.entity_names[h], "relation": kg.relation_names[r], "tail": kg.entity_names[t]})
    while len(values) < count:
        i = len(values)
        values.append({"head": NAMES[i % len(NAMES)], "relation": RELATIONS[i % len(RELATIONS)], "tail": NAMES[(i * 7 + 3) % len(NAMES)]})
    return [template.messages(v) for v in values[:count]]


def timed(backend: TransformersBackend, prompts: list, batch_size: int) -> dict:
    """Generate all ``prompts`` at ``batch_size``; tokens, seconds, tokens/s."""
    import torch

    backend.batch_size = batch_size
    if backend.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    results = backend.generate(prompts)
    if backend.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = sum(r.completion_tokens for r in results)
    return {"batch_size": batch_size, "prompts": len(prompts), "tokens": tokens, "seconds": round(seconds, 3), "tokens_per_second": round(tokens / seconds, 1)}


@contextlib.contextmanager
def plain_generate(backend: TransformersBackend, baseline: str):
    """With ``baseline="plain"``, the one-at-a-time run uses plain ``model.generate`` (dynamic cache, no
    compilation): the naive way to call an LLM, which the batched setting is measured against."""
    saved = backend.decoding, backend.static_cache, backend.compile
    if baseline == "plain":
        backend.decoding, backend.static_cache, backend.compile = "generate", False, False
    try:
        yield
    finally:
        backend.decoding, backend.static_cache, backend.compile = saved


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-offline", help="Hub id, folder, .gguf file or smollm2-offline")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-prompts", type=int, default=1024, help="prompts in the batched run")
    parser.add_argument("--sequential-prompts", type=int, default=4, help="prompts in the one-at-a-time run")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--path", default="ed+td", help="generating path whose prompt is used")
    parser.add_argument("--kg", default=None, help="fill the prompts with this KG's training triples")
    parser.add_argument("--static-cache", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--attn-implementation", default=None)
    parser.add_argument("--decoding", choices=("generate", "static"), default="generate", help="model.generate or the static-cache loop")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of the whole set before timing (compile, CUDA init)")
    parser.add_argument(
        "--baseline", choices=("plain", "same"), default="plain",
        help="one-at-a-time run: plain model.generate (default) or the same settings as the batched run",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (1 can be faster on a busy machine)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    load_started = time.perf_counter()
    backend = TransformersBackend(
        args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        temperature=0.7, static_cache=args.static_cache, compile=args.compile, attn_implementation=args.attn_implementation,
        decoding=args.decoding, seed=0, generation_kwargs={"min_new_tokens": args.max_new_tokens},  # equal work per prompt in both runs
    )
    load_seconds = time.perf_counter() - load_started
    prompts = build_prompts(max(args.num_prompts, args.sequential_prompts), args.kg, args.path)
    for _ in range(args.warmup):
        # The whole batched set: a compiled step meets every prompt-length bucket before timing starts.
        timed(backend, prompts[: args.num_prompts], args.batch_size)
        with plain_generate(backend, args.baseline):
            timed(backend, prompts[:1], 1)
    with plain_generate(backend, args.baseline):
        sequential = timed(backend, prompts[: args.sequential_prompts], 1)
    batched = timed(backend, prompts[: args.num_prompts], args.batch_size)
    report = {
        "model": backend.model_id,
        "device": str(backend.device),
        "dtype": str(backend.dtype),
        "static_cache": backend.static_cache,
        "compile": backend.compile,
        "decoding": backend.decoding,
        "max_new_tokens": args.max_new_tokens,
        "threads": __import__("torch").get_num_threads(),
        "load_seconds": round(load_seconds, 1),
        "baseline": args.baseline,
        "sequential": sequential,
        "batched": batched,
        "speedup": round(batched["tokens_per_second"] / sequential["tokens_per_second"], 2) if sequential["tokens_per_second"] else None,
        "python": platform.python_version(),
    }
    try:
        import torch
        import transformers

        report.update(torch=torch.__version__, transformers=transformers.__version__)
        if backend.device.type == "cuda":
            report["gpu"] = torch.cuda.get_device_name(backend.device)
            report["max_memory_gib"] = round(torch.cuda.max_memory_allocated(backend.device) / 2**30, 2)
    except Exception:  # versions are informative only
        pass
    print(
        f"one at a time: {sequential['tokens_per_second']:,.1f} tokens/s | batch {args.batch_size}: "
        f"{batched['tokens_per_second']:,.1f} tokens/s | ratio {report['speedup']}x"
    )
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
