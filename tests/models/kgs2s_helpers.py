"""Shared pieces of the KG-S2S tests: a 20-entity KG written inline, its contexts, the MiniLM WordPiece
tokenizer and tiny random T5/BART models over that tokenizer's vocabulary."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import pytest
import torch
from datasets import DatasetDict
from transformers import AutoTokenizer, BartConfig, BertTokenizer, T5Config

from hf_ctxdistill.data import KnowledgeGraph
from hf_ctxdistill.data.schema import (
    ENTITY_FEATURES,
    RELATION_FEATURES,
    TRIPLE_FEATURES,
    dataset_from_columns,
)
from hf_ctxdistill.models.kgs2s import ContextualizedKGS2S, ContextualizedKGS2SConfig
from hf_ctxdistill.models.offline import minilm_path


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    """Run a test module's small models on one thread (import this fixture into the module). On a shared
    two-core machine, OpenMP threads that wait for each other made these tiny steps 10-40x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# id: (name, description). Two "bank"s and two "mercury"s collide; "new york" is a prefix of "new york city".
ENTITIES = {
    "paris": ("paris", "capital and largest city of france"),
    "france": ("france", "a country in western europe"),
    "berlin": ("berlin", "capital city of germany"),
    "germany": ("germany", "a country in central europe"),
    "rome": ("rome", "capital city of italy"),
    "italy": ("italy", "a country in southern europe"),
    "madrid": ("madrid", "capital city of spain"),
    "spain": ("spain", "a country on the iberian peninsula"),
    "europe": ("europe", "a continent of the northern hemisphere"),
    "nyc": ("new york city", "the most populous city of the united states"),
    "nys": ("new york", "a state of the united states"),
    "usa": ("united states", "a country in north america"),
    "america": ("north america", "a continent of the western hemisphere"),
    "seine": ("seine", "a river flowing through paris"),
    "bank_river": ("bank", "sloping land beside a body of water"),
    "bank_money": ("bank", "a financial institution that accepts deposits"),
    "mercury_planet": ("mercury", "the smallest planet of the solar system"),
    "mercury_metal": ("Mercury", "the smallest planet of the solar system"),
    "river": ("river", "a large natural stream of water"),
    "water": ("water", None),
}
RELATIONS = {"capital_of": "capital of", "part_of": "part of", "flows_through": "flows through", "borders": "borders"}
TRAIN = [
    ("paris", "capital_of", "france"),
    ("berlin", "capital_of", "germany"),
    ("rome", "capital_of", "italy"),
    ("france", "part_of", "europe"),
    ("germany", "part_of", "europe"),
    ("italy", "part_of", "europe"),
    ("spain", "part_of", "europe"),
    ("nyc", "part_of", "nys"),
    ("nys", "part_of", "usa"),
    ("usa", "part_of", "america"),
    ("seine", "flows_through", "paris"),
    ("france", "borders", "germany"),
    ("france", "borders", "spain"),
    ("france", "borders", "italy"),
    ("bank_river", "part_of", "river"),
    ("river", "part_of", "water"),
]
VALID = [("madrid", "capital_of", "spain"), ("germany", "borders", "france")]
TEST = [("spain", "borders", "france"), ("italy", "borders", "france"), ("nyc", "part_of", "usa")]

CONTEXTS = {
    ("paris", "capital_of", "france"): "Paris is the capital of France and its largest city, on the river Seine.",
    ("berlin", "capital_of", "germany"): "Berlin is the capital of Germany, a city with a long and divided history.",
    ("rome", "capital_of", "italy"): "Rome is the capital of Italy and was the centre of an ancient empire.",
    ("france", "part_of", "europe"): "France is a country in western Europe with coasts on two seas.",
    ("germany", "part_of", "europe"): "Germany lies in central Europe and has more people than any other country there.",
    ("nyc", "part_of", "nys"): "New York City is the largest city in the state of New York.",
    ("seine", "flows_through", "paris"): "The Seine flows through Paris before it reaches the English Channel.",
    ("france", "borders", "spain"): "France borders Spain along the Pyrenees mountains in the south west.",
}


def kg_dataset() -> DatasetDict:
    """The inline KG as a canonical ``DatasetDict``."""

    def triples(rows):
        return dataset_from_columns({"head": [r[0] for r in rows], "relation": [r[1] for r in rows], "tail": [r[2] for r in rows]}, TRIPLE_FEATURES)

    return DatasetDict(
        {
            "entities": dataset_from_columns(
                {"id": list(ENTITIES), "name": [v[0] for v in ENTITIES.values()], "description": [v[1] for v in ENTITIES.values()]},
                ENTITY_FEATURES,
            ),
            "relations": dataset_from_columns({"id": list(RELATIONS), "name": list(RELATIONS.values())}, RELATION_FEATURES),
            "train": triples(TRAIN),
            "validation": triples(VALID),
            "test": triples(TEST),
        }
    )


@lru_cache(maxsize=1)
def knowledge_graph() -> KnowledgeGraph:
    """The inline KG (cached: tests must not modify it)."""
    return KnowledgeGraph.from_dataset(kg_dataset())


@lru_cache(maxsize=1)
def minilm_tokenizer():
    """The offline MiniLM's uncased WordPiece tokenizer (30,522 tokens)."""
    return AutoTokenizer.from_pretrained(minilm_path())


@lru_cache(maxsize=1)
def tokenizer():
    """The MiniLM WordPiece tokenizer cut down to the few hundred tokens the test KG's texts use (plus single
    letters and digits, so other words still tokenize), with ``[PAD]`` = 0. The texts tokenize exactly as
    under the full vocabulary (a longer WordPiece match would be in the full vocabulary too), while tiny
    models' vocabulary-sized tensors (LM head, log-softmax, generation masks) shrink a hundredfold."""
    full = minilm_tokenizer()
    texts = [n for n, _ in ENTITIES.values()] + [d for _, d in ENTITIES.values() if d] + list(ENTITIES)
    texts += list(RELATIONS.values()) + list(CONTEXTS.values())
    texts += ["predict tail:", "predict head:", "contextualize:", "reconstruct:", "| ( ) [ ] , ; . _"]
    used = {token for text in texts for token in full.tokenize(text)}
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    used |= set(chars) | {f"##{c}" for c in chars}
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials + sorted(used - set(specials)))}
    return BertTokenizer(vocab=vocab, do_lower_case=True)


def tiny_t5_config(**kwargs) -> T5Config:
    """A 2-layer, 32-wide T5 over the MiniLM vocabulary ([PAD]=0 starts decoding, [SEP] ends)."""
    tok = tokenizer()
    return T5Config(
        vocab_size=len(tok), d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, dropout_rate=0.0,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.pad_token_id, **kwargs,
    )


def tiny_bart_config(**kwargs) -> BartConfig:
    """A 1+1-layer, 32-wide BART over the MiniLM vocabulary ([SEP] starts decoding and ends, BART-style)."""
    tok = tokenizer()
    return BartConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256, dropout=0.0,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
        decoder_start_token_id=tok.sep_token_id, forced_eos_token_id=None, **kwargs,
    )


def tiny_model(kind: str = "t5", seed: int = 0, **config_kwargs) -> ContextualizedKGS2S:
    """A seeded random ContextualizedKGS2S around a tiny T5 or BART."""
    torch.manual_seed(seed)
    seq2seq = tiny_t5_config() if kind == "t5" else tiny_bart_config()
    return ContextualizedKGS2S(ContextualizedKGS2SConfig(seq2seq, **config_kwargs))
