"""``hf-ctxdistill``: the command line.

Subcommands:

* ``generate`` - write LLM contexts for a KG split into a resumable cache and save the corpus;
* ``serve`` - an OpenAI-compatible endpoint over a local model (batched generation);
* ``prompts`` - print the generating paths' prompt templates (``--save`` one as JSON to edit).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence


def _add_sampling(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling")
    group.add_argument("--max-new-tokens", type=int, default=256, help="tokens to generate per context (default 256)")
    group.add_argument("--temperature", type=float, default=0.7, help="sampling temperature; 0 = greedy (default 0.7, as in the paper)")
    group.add_argument("--top-p", type=float, default=None, help="nucleus sampling (default: off)")
    group.add_argument("--seed", type=int, default=None, help="seed for local sampling")


def _add_local_model(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("local model (transformers backend)")
    group.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    group.add_argument("--dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), bfloat16, float16, float32")
    group.add_argument("--batch-size", type=int, default=32, help="prompts per generate call (default 32; hundreds+ on a GPU)")
    group.add_argument("--gguf-file", default=None, help="GGUF file name inside --model (a folder or Hub repo)")
    group.add_argument("--static-cache", action="store_true", help="pre-allocated KV cache (fixed shapes)")
    group.add_argument("--compile", action="store_true", help="torch.compile the decoding step (GPU; implies --static-cache)")
    group.add_argument(
        "--decoding", choices=("generate", "static"), default="generate",
        help="generate: model.generate (default); static: the lean static-cache loop, with --compile a CUDA graph (fastest on a GPU)",
    )
    group.add_argument("--attn-implementation", default=None, help="e.g. sdpa, flash_attention_2")
    group.add_argument("--no-sort", action="store_true", help="do not sort prompts by length before batching")
    group.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice; 1 can be faster on a busy machine)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hf-ctxdistill``."""
    parser = argparse.ArgumentParser(prog="hf-ctxdistill", description="Contextualization Distillation for KG completion")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate contexts for a KG split (resumable)")
    gen.add_argument("kg", help="KG folder or file (any layout load_kg reads)")
    gen.add_argument("--kg-format", default="auto", help="KG layout (default: detected)")
    gen.add_argument("--split", default="train", help="triple split to contextualize (default train)")
    gen.add_argument("--path", default="ed+td", help="generating path: ed+td (paper), ed, td, ra, ed->td, or a template .json")
    gen.add_argument("--backend", choices=("transformers", "openai"), default="transformers")
    gen.add_argument("--model", required=True, help="Hub id, local folder, .gguf file or smollm2-offline (transformers); the served model name (openai)")
    gen.add_argument("--cache-dir", required=True, help="resumable cache folder (rerun with the same folder to resume)")
    gen.add_argument("--output", default=None, help="folder to save the corpus to")
    gen.add_argument("--output-format", choices=("disk", "hub"), default="disk", help="save_to_disk folder, or a Hub-ready folder (parquet + card)")
    gen.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="also push the corpus to this Hub dataset repo")
    shard = gen.add_argument_group("sharding (split one KG over processes or machines)")
    shard.add_argument("--start", type=int, default=None, help="first work unit (triple, or entity for entity-level paths)")
    shard.add_argument("--stop", type=int, default=None, help="one past the last work unit")
    shard.add_argument("--shard", default=None, metavar="I/N", help="cover the I-th of N equal ranges (0-based)")
    shard.add_argument("--collect-only", action="store_true", help="do not call the LLM: build the corpus from the cache (e.g. after all shards ran)")
    shard.add_argument("--no-retry-failed", action="store_true", help="leave earlier failures alone")
    quality = gen.add_argument_group("quality checks (answers are flagged, never dropped)")
    quality.add_argument("--min-words", type=int, default=50, help="flag answers shorter than this (default 50)")
    quality.add_argument("--no-name-check", action="store_true", help="do not flag answers that miss an entity name")
    gen.add_argument("--chunk-size", type=int, default=None, help="prompts per backend call and per cache flush (default: batch size)")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    http = gen.add_argument_group("OpenAI-compatible endpoint (openai backend)")
    http.add_argument("--base-url", default=None, help="API root, e.g. http://127.0.0.1:8000/v1")
    http.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (default OPENAI_API_KEY)")
    http.add_argument("--endpoint", choices=("chat", "completions"), default="chat")
    http.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    http.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    http.add_argument("--max-retries", type=int, default=5, help="retries of a transient failure (default 5)")
    http.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds, doubled each retry (default 1)")
    _add_sampling(gen)
    _add_local_model(gen)

    srv = sub.add_parser("serve", help="OpenAI-compatible server over a local model")
    srv.add_argument("--model", required=True, help="Hub id, local folder, .gguf file or smollm2-offline")
    srv.add_argument("--model-name", default=None, help="name clients use (default: the model id)")
    srv.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1; 0.0.0.0 for all)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    srv.add_argument("--batch-wait", type=float, default=0.02, help="seconds to wait for a batch to fill (default 0.02)")
    srv.add_argument("--api-key-env", default=None, help="require clients to send the key held in this environment variable")
    srv.add_argument("--fail-first", type=int, default=0, help="answer the first N generation requests with 503 (resilience tests)")
    srv.add_argument("--delay", type=float, default=0.0, help="hold each generation request this many seconds (timeout tests)")
    _add_sampling(srv)
    _add_local_model(srv)

    prm = sub.add_parser("prompts", help="show the generating paths' prompt templates")
    prm.add_argument("name", nargs="?", default=None, help="one path (default: all)")
    prm.add_argument("--save", default=None, metavar="FILE.json", help="write the template as JSON, to edit and pass to generate --path")
    return parser


def _local_backend(args):
    from .context.backends import TransformersBackend

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    return TransformersBackend(
        args.model,
        gguf_file=args.gguf_file,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=1.0 if args.top_p is None else args.top_p,
        sort_by_length=not args.no_sort,
        static_cache=args.static_cache,
        compile=args.compile,
        attn_implementation=args.attn_implementation,
        decoding=args.decoding,
        seed=args.seed,
    )


def _generate(args) -> int:
    from .context.generator import ContextGenerator
    from .data.knowledge_graph import KnowledgeGraph

    kg = KnowledgeGraph.from_path(args.kg, format=args.kg_format)
    if args.backend == "openai":
        from .context.backends import OpenAIBackend

        if not args.base_url:
            raise SystemExit("--backend openai needs --base-url")
        backend = OpenAIBackend(
            args.base_url, args.model, api_key_env=args.api_key_env, endpoint=args.endpoint,
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
            concurrency=args.concurrency, timeout=args.timeout, max_retries=args.max_retries, backoff=args.backoff,
            extra_body={"seed": args.seed} if args.seed is not None else None,
        )
    elif args.collect_only:
        backend = _CollectOnlyBackend(args.model, args.gguf_file)
    else:
        backend = _local_backend(args)
    generator = ContextGenerator(
        backend, args.path, cache_dir=args.cache_dir, min_words=args.min_words, check_names=not args.no_name_check,
        chunk_size=args.chunk_size, progress=not args.no_progress,
    )
    started = time.perf_counter()
    try:
        corpus = generator.generate(
            kg, args.split, args.start, args.stop, shard=args.shard,
            retry_failed=not args.no_retry_failed, generate_missing=not args.collect_only,
        )
    finally:
        backend.close()
    wall = time.perf_counter() - started
    report = generator.last_report
    if args.output:
        if args.output_format == "hub":
            corpus.save_for_hub(args.output, kg=kg)
        else:
            corpus.save_to_disk(args.output)
    if args.push_to_hub:
        corpus.push_to_hub(args.push_to_hub, kg=kg)
    summary = {
        "rows": len(corpus),
        "output": args.output,
        "wall_seconds": round(wall, 1),
        "backend": backend.stats.as_dict(),
        "coverage": report.as_dict() if report else None,
    }
    print(json.dumps(summary, indent=2))
    return 0 if report is None or report.complete else 3


class _CollectOnlyBackend:
    """Stands in for a model when only reading the cache: gives the model id that keys the records."""

    batch_size = 1

    def __init__(self, model: str, gguf_file: str | None = None):
        from .context.backends import resolve_model
        from .context.backends.base import ThroughputStats

        self.model_id = resolve_model(model, gguf_file)[2]
        self.stats = ThroughputStats()

    def settings(self) -> dict:
        return {}

    def generate(self, prompts, **kwargs):
        raise RuntimeError("--collect-only does not generate")

    def close(self) -> None:
        pass


def _serve(args) -> int:
    from .context.server import serve

    backend = _local_backend(args)
    serve(
        backend, args.host, args.port, model_name=args.model_name, max_batch=args.batch_size, batch_wait=args.batch_wait,
        fail_first=args.fail_first, delay=args.delay, api_key_env=args.api_key_env,
    )
    return 0


def _prompts(args) -> int:
    from .context.prompts import PROMPT_TEMPLATES, get_prompt_template, save_prompt_template

    names = [args.name] if args.name else list(PROMPT_TEMPLATES)
    for name in names:
        template = get_prompt_template(name)
        if args.save:
            save_prompt_template(template, args.save)
            print(f"wrote {args.save}")
            continue
        print(json.dumps(template.to_dict(), indent=2, ensure_ascii=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hf-ctxdistill`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "prompts" and args.save and not args.name:
        raise SystemExit("--save needs one template name")
    handler = {"generate": _generate, "serve": _serve, "prompts": _prompts}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
