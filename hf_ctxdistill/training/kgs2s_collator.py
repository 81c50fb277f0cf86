"""Batch construction for the generative pipeline (KG-S2S + contextualization/reconstruction).

:class:`KGS2SCollator` turns rows of true triples into the three per-task sub-batches that
:class:`~hf_ctxdistill.models.kgs2s.ContextualizedKGS2S` expects (formats in
:mod:`hf_ctxdistill.models.kgs2s.inputs`):

- ``input_ids``, ``attention_mask``, ``labels``: link prediction, one tail query and one head query per
  triple (``directions``), the target being the answer's disambiguated name followed by EOS;
- ``context_input_ids``, ``context_attention_mask``, ``context_labels``: contextualization, one example
  per triple that has a context (``contextualize: h | r | t`` -> context + EOS);
- ``reconstruction_input_ids``, ``reconstruction_attention_mask``, ``reconstruction_labels``:
  reconstruction, one example per triple that has a context, whose spans are masked afresh in every
  batch (T5 span corruption: ``mask_probability`` of the tokens in spans of mean length
  ``mean_noise_span_length``, each span replaced by a single mask token) -> context + EOS.

Contexts are looked up by the triple's ``(head_id, relation_id, tail_id)`` key, never by position; a
triple without a context gets no auxiliary example (its auxiliary sub-batch may be empty, ``(0, 1)``,
which the model counts as a zero loss term). Labels are -100 at padding.

Randomness (the reconstruction masks) is reproducible and independent of batch composition: each
example draws from its own generator seeded by ``(seed, epoch, head, relation, tail)``;
:class:`~hf_ctxdistill.training.MultiTaskTrainer` calls :meth:`KGS2SCollator.set_epoch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..data import KnowledgeGraph, ensure_knowledge_graph
from ..models.kgs2s.entity_names import EntityNames
from ..models.kgs2s.inputs import RECONSTRUCT_PREFIX, SIDES, KGS2SInputFormatter
from .triple_rows import EpochKeyedDraws, rows_to_triples

ContextKey = tuple[str, str, str]
COLLATOR_TASKS: tuple[str, ...] = ("kgc", "contextualization", "reconstruction")


def random_spans_noise_mask(length: int, noise_density: float, mean_noise_span_length: float, gen: np.random.Generator) -> np.ndarray:
    """T5's span-corruption mask: a boolean array of ``length`` with ``round(length * noise_density)``
    True positions (at least 1, at most ``length - 1``) grouped in ``round(noise / mean_span)`` spans whose
    lengths, and the gaps between them, are drawn uniformly at random; the pattern is then rotated by a
    random offset (T5's ``random_roll``), so that a short context's single span is not always its last
    tokens (a span may thereby wrap around into two). Sequences shorter than 2 tokens get no noise."""
    if length < 2:
        return np.zeros(length, dtype=bool)
    num_noise = int(np.clip(round(length * noise_density), 1, length - 1))
    num_spans = max(1, int(round(num_noise / mean_noise_span_length)))
    num_keep = length - num_noise
    num_spans = min(num_spans, num_noise, num_keep)

    def partition(total: int, parts: int) -> np.ndarray:
        # `parts` positive integers summing to `total`: cut 1..total-1 at parts-1 distinct places.
        if parts == 1:
            return np.array([total])
        cuts = np.sort(gen.choice(np.arange(1, total), size=parts - 1, replace=False))
        return np.diff(np.concatenate([[0], cuts, [total]]))

    noise_lengths = partition(num_noise, num_spans)
    keep_lengths = partition(num_keep, num_spans)
    mask = np.zeros(length, dtype=bool)
    position = 0
    for keep, noise in zip(keep_lengths, noise_lengths):
        position += int(keep)
        mask[position : position + int(noise)] = True
        position += int(noise)
    return np.roll(mask, int(gen.integers(length)))


class KGS2SCollator(EpochKeyedDraws):
    """Data collator for :class:`~hf_ctxdistill.models.kgs2s.ContextualizedKGS2S`.

    Feed it rows with ``head``, ``relation``, ``tail`` (string ids of the KG, or integer indices): dicts,
    e.g. the ``train`` split of the canonical ``DatasetDict`` (keep ``remove_unused_columns=False``, the
    default of :class:`~hf_ctxdistill.training.CtxDistillTrainingArguments`), or ``(head, relation, tail)``
    tuples. Build it with :meth:`from_model` to take every setting from the model's configuration.

    Args:
        kg: The knowledge graph (or its canonical ``DatasetDict``).
        tokenizer: The model's tokenizer.
        contexts: ``{(head_id, relation_id, tail_id): context}`` (e.g. ``ContextCorpus.context_map()``), or
            a ``ContextCorpus``; ``None``: link prediction only.
        entity_names: Disambiguated names (default: ``EntityNames.build(kg, tokenizer=tokenizer)``; the
            predictor must use the same).
        tasks: Sub-batches to build among ``"kgc"``, ``"contextualization"``, ``"reconstruction"``
            (default: kgc, plus contextualization when ``contexts`` are given).
        directions: Link-prediction queries per triple: ``("tail", "head")`` (default) or one of them.
        use_descriptions, description_max_words: Append the known entity's description to queries.
        max_source_length: Token budget of link-prediction and contextualization sources.
        context_max_length: Token budget of a context, as target and as masked source.
        mask_probability, mean_noise_span_length: Span corruption of the reconstruction task.
        eos_token_id: Token ending every target: the model's (``from_model`` sets it); default the
            tokenizer's EOS, else its ``[SEP]``.
        mask_token_id: Token replacing a masked span; default the tokenizer's mask token, else its first
            additional special token (T5's ``<extra_id_0>``).
        seed: Base seed of the masks.
    """

    def __init__(
        self,
        kg: KnowledgeGraph | Any,
        tokenizer: Any,
        contexts: Mapping[ContextKey, str] | Any | None = None,
        *,
        entity_names: EntityNames | None = None,
        tasks: Sequence[str] | None = None,
        directions: Sequence[str] = SIDES,
        use_descriptions: bool = True,
        description_max_words: int = 24,
        max_source_length: int = 96,
        context_max_length: int = 256,
        mask_probability: float = 0.15,
        mean_noise_span_length: float = 3.0,
        eos_token_id: int | None = None,
        mask_token_id: int | None = None,
        seed: int = 42,
    ) -> None:
        self.kg = ensure_knowledge_graph(kg)
        self.tokenizer = tokenizer
        if contexts is not None and hasattr(contexts, "context_map"):
            contexts = contexts.context_map()
        self.contexts: Mapping[ContextKey, str] | None = contexts
        if tasks is None:
            tasks = ("kgc", "contextualization") if contexts is not None else ("kgc",)
        unknown = [t for t in tasks if t not in COLLATOR_TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; expected some of {COLLATOR_TASKS}")
        self.tasks = tuple(tasks)
        if self.contexts is None and any(t != "kgc" for t in self.tasks):
            raise ValueError(f"tasks {self.tasks} need contexts")
        bad = [d for d in directions if d not in SIDES]
        if bad or not directions:
            raise ValueError(f"directions must be a non-empty subset of {SIDES}, got {tuple(directions)}")
        self.directions = tuple(directions)
        if not 0.0 < mask_probability < 1.0:
            raise ValueError(f"mask_probability must be in (0, 1), got {mask_probability}")
        self.names = entity_names if entity_names is not None else EntityNames.build(self.kg, tokenizer=tokenizer)
        if self.names.token_ids is None or len(self.names) != self.kg.num_entities:
            raise ValueError("entity_names must cover every entity of the KG and be built with the tokenizer")
        self.formatter = KGS2SInputFormatter(
            self.kg, self.names, use_descriptions=use_descriptions, description_max_words=description_max_words
        )
        self.max_source_length = int(max_source_length)
        self.context_max_length = int(context_max_length)
        self.mask_probability = float(mask_probability)
        self.mean_noise_span_length = float(mean_noise_span_length)
        if eos_token_id is None:
            eos_token_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        if eos_token_id is None:
            raise ValueError("no EOS token: pass eos_token_id (the model's), or build with from_model")
        self.eos_token_id = int(eos_token_id)
        self.pad_token_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.seed = int(seed)
        if "reconstruction" in self.tasks:
            if mask_token_id is None:
                mask_token_id = tokenizer.mask_token_id
            if mask_token_id is None:
                extra = list(getattr(tokenizer, "additional_special_tokens", None) or getattr(tokenizer, "extra_special_tokens", None) or [])
                if extra:
                    mask_token_id = tokenizer.convert_tokens_to_ids(str(extra[0]))
            if mask_token_id is None:
                raise ValueError("the reconstruction task needs a mask token: pass mask_token_id")
            self.mask_token_id = int(mask_token_id)
            # Special tokens the tokenizer wraps a sequence in (BERT: [CLS] ... [SEP]; T5: ... </s>),
            # found once by encoding a probe, so masked token lists can be wrapped the same way.
            bare = tokenizer("probe", add_special_tokens=False)["input_ids"]
            full = tokenizer("probe", add_special_tokens=True)["input_ids"]
            start = next((i for i in range(len(full) - len(bare) + 1) if full[i : i + len(bare)] == bare), 0)
            self._special_prefix = list(full[:start])
            self._special_suffix = list(full[start + len(bare) :])
            self._reconstruct_prefix = tokenizer(RECONSTRUCT_PREFIX.strip(), add_special_tokens=False)["input_ids"]

    @classmethod
    def from_model(
        cls,
        model: Any,
        kg: KnowledgeGraph | Any,
        tokenizer: Any,
        contexts: Mapping[ContextKey, str] | Any | None = None,
        **kwargs: Any,
    ) -> KGS2SCollator:
        """Take tasks (``use_contextualization``/``use_reconstruction``, when ``contexts`` are given), source
        format, lengths, masking and the EOS token from ``model`` (a ``ContextualizedKGS2S``, also under
        PEFT). ``kwargs`` override."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = base.config
        tasks = ["kgc"]
        if contexts is not None:
            if config.use_contextualization:
                tasks.append("contextualization")
            if config.use_reconstruction:
                tasks.append("reconstruction")
        options: dict[str, Any] = {
            "tasks": tuple(tasks),
            "use_descriptions": config.use_descriptions,
            "description_max_words": config.description_max_words,
            "max_source_length": config.max_source_length,
            "context_max_length": config.context_max_length,
            "mask_probability": config.mask_probability,
            "mean_noise_span_length": config.mean_noise_span_length,
            "eos_token_id": config.eos_token_id,
        }
        options.update(kwargs)
        return cls(kg, tokenizer, contexts, **options)

    def _index_rows(self, features: Sequence[Any]) -> np.ndarray:
        return rows_to_triples(self.kg, features, type(self).__name__)

    def context_of(self, triple: np.ndarray) -> str | None:
        """The context of an index triple, looked up by its string-id key (``None`` when it has none)."""
        if self.contexts is None:
            return None
        kg = self.kg
        key = (kg.entity_ids[int(triple[0])], kg.relation_ids[int(triple[1])], kg.entity_ids[int(triple[2])])
        text = self.contexts.get(key)
        return text if text and text.strip() else None

    def _pad(self, rows: list[list[int]], value: int) -> torch.Tensor:
        width = max((len(r) for r in rows), default=1)
        out = torch.full((len(rows), max(width, 1)), value, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        return out

    def _sources(self, texts: list[str], prefix: str) -> dict[str, torch.Tensor]:
        if not texts:
            empty = torch.zeros((0, 1), dtype=torch.long)
            return {f"{prefix}input_ids": empty, f"{prefix}attention_mask": empty.clone()}
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_source_length, padding=True, return_tensors="pt")
        return {f"{prefix}input_ids": encoded["input_ids"], f"{prefix}attention_mask": encoded["attention_mask"]}

    def mask_context(self, token_ids: Sequence[int], gen: np.random.Generator) -> list[int]:
        """Span-corrupt a tokenized context (no special tokens): each masked span becomes one mask token."""
        noise = random_spans_noise_mask(len(token_ids), self.mask_probability, self.mean_noise_span_length, gen)
        out: list[int] = []
        previous = False
        for token, masked in zip(token_ids, noise):
            if masked:
                if not previous:
                    out.append(self.mask_token_id)
            else:
                out.append(int(token))
            previous = bool(masked)
        return out

    # ------------------------------------------------------------------ batch
    def __call__(self, features: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Collate rows of triples into a ``ContextualizedKGS2S`` batch (see the module docstring)."""
        triples = self._index_rows(features)
        self._calls += 1
        batch: dict[str, torch.Tensor] = {}
        if "kgc" in self.tasks:
            sources, targets = [], []
            for head, relation, tail in triples:
                for side in self.directions:
                    known, answer = (head, tail) if side == "tail" else (tail, head)
                    sources.append(self.formatter.query(known, relation, side))
                    targets.append(self.names.token_ids[answer] + [self.eos_token_id])
            batch.update(self._sources(sources, ""))
            batch["labels"] = self._pad(targets, -100)
        aux = [t for t in self.tasks if t != "kgc"]
        if aux:
            with_context = [(i, text) for i, text in ((i, self.context_of(t)) for i, t in enumerate(triples)) if text]
            encoded = (
                self.tokenizer([text for _, text in with_context], add_special_tokens=False)["input_ids"] if with_context else []
            )
            if "contextualization" in self.tasks:
                sources = [self.formatter.contextualize(*triples[i]) for i, _ in with_context]
                batch.update(self._sources(sources, "context_"))
                budget = self.context_max_length - 1  # room for EOS
                batch["context_labels"] = self._pad([ids[:budget] + [self.eos_token_id] for ids in encoded], -100)
            if "reconstruction" in self.tasks:
                batch.update(self._reconstruction([i for i, _ in with_context], encoded, triples))
        return batch

    def _reconstruction(self, rows: list[int], encoded: list[list[int]], triples: np.ndarray) -> dict[str, torch.Tensor]:
        # The source holds the prefix, the masked context and the special tokens within context_max_length;
        # the target is the same (truncated) context, so it never asks for text the source lacks.
        overhead = len(self._special_prefix) + len(self._reconstruct_prefix) + len(self._special_suffix)
        budget = max(1, min(self.context_max_length - overhead, self.context_max_length - 1))
        sources, targets = [], []
        for i, ids in zip(rows, encoded):
            ids = list(ids[:budget])
            masked = self.mask_context(ids, self._generator(triples[i]))
            sources.append(self._special_prefix + self._reconstruct_prefix + masked + self._special_suffix)
            targets.append(ids + [self.eos_token_id])
        input_ids = self._pad(sources, self.pad_token_id) if sources else torch.zeros((0, 1), dtype=torch.long)
        attention = self._pad([[1] * len(s) for s in sources], 0) if sources else torch.zeros((0, 1), dtype=torch.long)
        labels = self._pad(targets, -100) if targets else torch.zeros((0, 1), dtype=torch.long)
        return {
            "reconstruction_input_ids": input_ids,
            "reconstruction_attention_mask": attention,
            "reconstruction_labels": labels,
        }


__all__ = ["COLLATOR_TASKS", "KGS2SCollator", "random_spans_noise_mask"]
