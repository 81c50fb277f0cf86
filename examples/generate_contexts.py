"""Generate LLM contexts for a KG's training triples with the Python API, then save (or push) the corpus.

Local model (the offline SmolLM2 here; any Hub id works)::

    python examples/generate_contexts.py --kg ../shared/data/WN18RR/kgbert_format --stop 20 \\
        --model smollm2-offline --max_new_tokens 160 --batch_size 16 --output_dir wn18rr_contexts

On a GPU, the static-cache loop with a compiled (CUDA-graph) decoding step is the fast choice::

    python examples/generate_contexts.py --kg ... --batch_size 2048 --decoding static --compile true

An OpenAI-compatible server (vLLM, TGI, llama.cpp, ``hf-ctxdistill serve``, a hosted API; the key is read
from the environment variable named by ``--api_key_env``)::

    python examples/generate_contexts.py --kg ... --base_url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct

Run it again with the same ``--cache_dir`` to resume; split a KG over machines with ``--shard i/n``.
The same is available as ``hf-ctxdistill generate`` (see ``hf-ctxdistill generate --help``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_ctxdistill import KnowledgeGraph
from hf_ctxdistill.context.backends import OpenAIBackend, TransformersBackend
from hf_ctxdistill.context.generator import ContextGenerator


@dataclass
class Arguments:
    kg: str = field(metadata={"help": "KG folder or file (any layout load_kg reads)"})
    model: str = field(default="smollm2-offline", metadata={"help": "Hub id, folder, .gguf file, smollm2-offline; or the served model name"})
    path: str = field(default="ed+td", metadata={"help": "generating path: ed+td (paper), ed, td, ra, ed->td, or a template .json"})
    split: str = field(default="train")
    cache_dir: str = field(default="context_cache", metadata={"help": "resumable cache folder"})
    output_dir: str = field(default="contexts", metadata={"help": "where the corpus is saved (save_to_disk)"})
    hub_dir: str | None = field(default=None, metadata={"help": "also write a Hub-ready folder (parquet + dataset card)"})
    push_to_hub: str | None = field(default=None, metadata={"help": "also push to this Hub dataset repo"})
    start: int | None = field(default=None)
    stop: int | None = field(default=None)
    shard: str | None = field(default=None, metadata={"help": "i/n: the i-th of n equal ranges"})
    max_new_tokens: int = field(default=256)
    temperature: float = field(default=0.7, metadata={"help": "the paper sampled at 0.7"})
    batch_size: int = field(default=32, metadata={"help": "local backend: prompts per generate call"})
    device: str = field(default="auto")
    decoding: str = field(default="generate", metadata={"help": "local backend: generate (model.generate) or static (lean static-cache loop)"})
    compile: bool = field(default=False, metadata={"help": "local backend, GPU: compile the decoding step (with decoding=static: a CUDA graph)"})
    base_url: str | None = field(default=None, metadata={"help": "use an OpenAI-compatible endpoint instead of a local model"})
    api_key_env: str = field(default="OPENAI_API_KEY")
    concurrency: int = field(default=8)


def main() -> None:
    (args,) = HfArgumentParser(Arguments).parse_args_into_dataclasses()
    kg = KnowledgeGraph.from_path(args.kg)
    if args.base_url:
        backend = OpenAIBackend(
            args.base_url, args.model, api_key_env=args.api_key_env, max_new_tokens=args.max_new_tokens,
            temperature=args.temperature, concurrency=args.concurrency,
        )
    else:
        backend = TransformersBackend(
            args.model, device=args.device, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
            temperature=args.temperature, decoding=args.decoding, compile=args.compile,
        )
    generator = ContextGenerator(backend, args.path, cache_dir=args.cache_dir)
    corpus = generator.generate(kg, args.split, args.start, args.stop, shard=args.shard)
    backend.close()
    print(generator.last_report)
    print(f"{backend.stats.completion_tokens:,} tokens in {backend.stats.seconds:,.1f} s of generation "
          f"({backend.stats.tokens_per_second:,.1f} tokens/s)")
    corpus.save_to_disk(args.output_dir)
    if args.hub_dir:
        corpus.save_for_hub(args.hub_dir, kg=kg)
    if args.push_to_hub:
        print(corpus.push_to_hub(args.push_to_hub, kg=kg))
    print(f"saved {corpus} to {args.output_dir}")


if __name__ == "__main__":
    main()
