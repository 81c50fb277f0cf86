"""Batch construction for the discriminative pipeline (KG-BERT + reconstruction).

:class:`KGBertCollator` turns rows of true triples into one training batch:

- the KG-BERT classification inputs of every true triple and of ``num_negatives`` corruptions of it
  (head or tail replaced by a random entity), **filtered** so that no corruption is a known true triple;
- one dynamically masked copy of each true triple's LLM-written context (looked up by the
  ``(head_id, relation_id, tail_id)`` key, never by position) for the reconstruction loss; a triple
  without a context gets a placeholder row whose labels are all -100, so it adds nothing to the loss.

Randomness is reproducible and independent of batch composition: each example draws its negatives and
its mask from its own generator, seeded by ``(seed, epoch, head, relation, tail)``. The same example
therefore gets the same draw in a batch of 8 as in two batches of 4 (exact gradient-accumulation
checks), after a resume from a checkpoint (the skipped batches need not be replayed), and on any DDP
rank, while every epoch draws a fresh mask (dynamic masking, not masking once up front).
:class:`~hf_ctxdistill.training.MultiTaskTrainer` calls :meth:`KGBertCollator.set_epoch`; in a
hand-written loop call it yourself each epoch, otherwise every call to the collator counts as a new draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from ..data import KnowledgeGraph, ensure_knowledge_graph
from ..models.kgbert.processing_kgbert import KGBertTripleEncoder
from .triple_rows import EpochKeyedDraws, rows_to_triples

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from .ctxdistill_config import CtxDistillTrainingArguments

ContextKey = tuple[str, str, str]
Corruption = Literal["both", "head", "tail"]


class KGBertCollator(EpochKeyedDraws):
    """Data collator for :class:`~hf_ctxdistill.models.kgbert.ContextualizedKGBert`.

    Feed it rows with ``head``, ``relation``, ``tail`` (string ids of the KG, or integer indices), e.g.
    the ``train`` split of the canonical ``DatasetDict``; keep ``remove_unused_columns=False`` so the
    Trainer passes these columns through. Rows that carry a ``label`` (triple-classification splits) are
    classified as given and get no corruptions.

    Output (torch tensors): ``input_ids``, ``attention_mask``, ``token_type_ids`` (if the tokenizer uses
    them), ``labels`` (1 true / 0 corrupted; rows ordered ``[true_1, corruptions of 1..., true_2, ...]``)
    and, when ``contexts`` are given, ``mlm_input_ids``, ``mlm_attention_mask``, ``mlm_labels`` (one row
    per true triple).

    Args:
        kg: The knowledge graph (or its canonical ``DatasetDict``).
        tokenizer: The encoder's tokenizer.
        contexts: ``{(head_id, relation_id, tail_id): context}`` (e.g. a context corpus's
            ``context_map()``); ``None`` disables the reconstruction inputs.
        max_length: Token budget of a triple input (authors: 50).
        num_negatives: Corruptions per true triple (authors: 5); 0 for none.
        corruption: Replace the ``"head"``, the ``"tail"`` or, with even odds per corruption,
            ``"both"``.
        filter_negatives: Reject corruptions that are known true triples (train, validation or test
            of ``kg``), as KG-BERT does; ``False`` only rejects the true triple itself.
        mask_probability: Share of a context's tokens to mask (authors: 0.15); of those 80% become the
            mask token, 10% a random non-special token, 10% stay. Special tokens are never chosen.
        context_max_length: Token budget of a context, special tokens included.
        use_descriptions: Entity text ``"name, description"`` instead of the name alone.
        use_token_type_ids: Segment ids; ``None`` follows the tokenizer.
        seed: Base seed of all draws.
        max_resample_rounds: Redraw rounds for rejected corruptions before trying the other side and
            finally giving up with an error (only reachable on tiny, dense graphs).
    """

    def __init__(
        self,
        kg: KnowledgeGraph | Any,
        tokenizer: PreTrainedTokenizerBase,
        contexts: Mapping[ContextKey, str] | None = None,
        *,
        max_length: int = 50,
        num_negatives: int = 5,
        corruption: Corruption = "both",
        filter_negatives: bool = True,
        mask_probability: float = 0.15,
        context_max_length: int = 128,
        use_descriptions: bool = True,
        use_token_type_ids: bool | None = None,
        seed: int = 42,
        max_resample_rounds: int = 50,
    ) -> None:
        if corruption not in ("both", "head", "tail"):
            raise ValueError(f"corruption must be 'both', 'head' or 'tail', got {corruption!r}")
        if num_negatives < 0:
            raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
        if not 0.0 < mask_probability < 1.0:
            raise ValueError(f"mask_probability must be in (0, 1), got {mask_probability}")
        self.kg = ensure_knowledge_graph(kg)
        self.tokenizer = tokenizer
        self.triple_encoder = KGBertTripleEncoder(
            self.kg, tokenizer, max_length=max_length, use_descriptions=use_descriptions, use_token_type_ids=use_token_type_ids
        )
        self.contexts = contexts
        self.num_negatives = int(num_negatives)
        self.corruption = corruption
        self.filter_negatives = filter_negatives
        self.mask_probability = float(mask_probability)
        self.context_max_length = int(context_max_length)
        self.seed = int(seed)
        self.max_resample_rounds = int(max_resample_rounds)
        if contexts is not None:
            if tokenizer.mask_token_id is None:
                raise ValueError("the reconstruction task needs a tokenizer with a mask token")
            self.mask_token_id = int(tokenizer.mask_token_id)
            special = set(tokenizer.all_special_ids)
            self._random_vocabulary = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
            empty = tokenizer("", add_special_tokens=True)["input_ids"]
            self._empty_context = list(empty) if len(empty) else [self.triple_encoder.cls_id]

    @classmethod
    def from_training_args(
        cls,
        args: CtxDistillTrainingArguments,
        kg: KnowledgeGraph | Any,
        tokenizer: PreTrainedTokenizerBase,
        contexts: Mapping[ContextKey, str] | None = None,
        **kwargs: Any,
    ) -> KGBertCollator:
        """Build the collator from :class:`CtxDistillTrainingArguments` (negatives, masking, lengths,
        seed; ``use_reconstruction=False`` drops the contexts). ``kwargs`` override."""
        if args.use_reconstruction is False:
            contexts = None
        options = {
            "max_length": args.max_seq_length,
            "num_negatives": args.num_negatives,
            "corruption": args.negative_corruption,
            "filter_negatives": args.filter_negatives,
            "mask_probability": args.mask_probability,
            "context_max_length": args.context_max_length,
            "use_descriptions": args.use_descriptions,
            "seed": args.data_seed if args.data_seed is not None else args.seed,
        }
        options.update(kwargs)
        return cls(kg, tokenizer, contexts, **options)

    # ------------------------------------------------------------------ rows
    def _index_rows(self, features: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        triples = rows_to_triples(self.kg, features, type(self).__name__)
        labels = np.ones(len(features), dtype=np.int64)
        for row, feature in enumerate(features):
            if isinstance(feature, Mapping) and feature.get("label") is not None:
                labels[row] = -1 if int(feature["label"]) == 0 else 2  # given labels, see __call__
        return triples, labels

    def corrupt(self, triples: np.ndarray, generators: Sequence[np.random.Generator]) -> np.ndarray:
        """``num_negatives`` corruptions of each triple, ``(n * k, 3)`` example-major.

        Each corruption replaces the head or the tail with a uniformly drawn entity; draws equal to the
        true entity or (with ``filter_negatives``) giving a known true triple are redrawn from the same
        example's generator, so the result is reproducible.
        """
        k = self.num_negatives
        n = len(triples)
        if k == 0 or n == 0:
            return np.empty((0, 3), dtype=np.int64)
        num_entities = self.kg.num_entities
        sides = np.empty((n, k), dtype=np.int64)  # column replaced: 0 = head, 2 = tail
        draws = np.empty((n, k), dtype=np.int64)
        for i, gen in enumerate(generators):
            if self.corruption == "both":
                sides[i] = np.where(gen.random(k) < 0.5, 0, 2)
            else:
                sides[i] = 0 if self.corruption == "head" else 2
            draws[i] = gen.integers(0, num_entities, size=k)
        base = np.repeat(triples, k, axis=0)
        flat_sides = sides.reshape(-1)
        rows = np.arange(n * k)
        for attempt in range(2 * self.max_resample_rounds + 1):
            corrupted = base.copy()
            corrupted[rows, flat_sides] = draws.reshape(-1)
            rejected = corrupted[rows, flat_sides] == base[rows, flat_sides]
            if self.filter_negatives:
                rejected |= self.kg.is_known(corrupted)
            if not rejected.any():
                return corrupted
            if attempt == 2 * self.max_resample_rounds:
                break
            bad = rejected.reshape(n, k)
            for i in np.flatnonzero(bad.any(axis=1)):
                slots = np.flatnonzero(bad[i])
                if attempt >= self.max_resample_rounds and self.corruption == "both":
                    # This side looks saturated with true triples: try the other one.
                    sides[i, slots] = 2 - sides[i, slots]
                draws[i, slots] = generators[i].integers(0, num_entities, size=len(slots))
            flat_sides = sides.reshape(-1)
        stuck = self.kg.decode(base[rejected][:1])[0]
        raise RuntimeError(
            f"could not find a corruption of {stuck} that is not a known true triple after "
            f"{2 * self.max_resample_rounds} rounds; lower num_negatives or set filter_negatives=False"
        )

    def sample_negatives(self, triples: np.ndarray) -> np.ndarray:
        """The corruptions that :meth:`__call__` draws for these true index triples at the current epoch,
        ``(n * num_negatives, 3)`` example-major."""
        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        return self.corrupt(triples, [self._generator(t) for t in triples])

    def mask_context(self, token_ids: Sequence[int], special_mask: Sequence[int], gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """BERT-style masking of one tokenized context: ``max(1, round(p * n))`` of its ``n`` non-special
        tokens are chosen; 80% -> mask token, 10% -> random non-special token, 10% unchanged.
        Returns ``(input_ids, labels)`` with labels -100 except at chosen positions."""
        ids = np.asarray(token_ids, dtype=np.int64).copy()
        labels = np.full(len(ids), -100, dtype=np.int64)
        candidates = np.flatnonzero(np.asarray(special_mask, dtype=bool) == 0)
        if len(candidates) == 0:
            return ids, labels
        count = max(1, int(round(self.mask_probability * len(candidates))))
        chosen = np.sort(gen.choice(candidates, size=count, replace=False))
        labels[chosen] = ids[chosen]
        action = gen.random(count)
        to_mask = chosen[action < 0.8]
        to_random = chosen[(action >= 0.8) & (action < 0.9)]
        ids[to_mask] = self.mask_token_id
        if len(to_random):
            ids[to_random] = self._random_vocabulary[gen.integers(0, len(self._random_vocabulary), size=len(to_random))]
        return ids, labels

    def context_of(self, triple: np.ndarray) -> str | None:
        """The context of an index triple, looked up by its string-id key."""
        if self.contexts is None:
            return None
        kg = self.kg
        key = (kg.entity_ids[int(triple[0])], kg.relation_ids[int(triple[1])], kg.entity_ids[int(triple[2])])
        return self.contexts.get(key)

    # ------------------------------------------------------------------ batch
    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate rows of triples into a ``ContextualizedKGBert`` batch (see the class docstring)."""
        triples, given = self._index_rows(features)
        self._calls += 1
        # given: 1 = a true triple from a link-prediction split (gets corruptions and a context),
        # 2 = labelled true, -1 = labelled false (classification splits: used as they are).
        generators = [self._generator(t) for t in triples]
        sample = np.flatnonzero(given == 1)
        negatives = self.corrupt(triples[sample], [generators[i] for i in sample])
        k = self.num_negatives
        rows: list[np.ndarray] = []
        labels: list[int] = []
        neg_of = {int(i): negatives[j * k : (j + 1) * k] for j, i in enumerate(sample)}
        for i, triple in enumerate(triples):
            rows.append(triple[None, :])
            labels.append(0 if given[i] == -1 else 1)
            if i in neg_of:
                rows.append(neg_of[i])
                labels.extend([0] * len(neg_of[i]))
        batch = self.triple_encoder(np.concatenate(rows, axis=0))
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
        if self.contexts is not None and (given > 0).any():
            batch.update(self._context_batch(triples, given, generators))
        return batch

    def _context_batch(self, triples: np.ndarray, given: np.ndarray, generators: list[np.random.Generator]) -> dict[str, torch.Tensor]:
        true_rows = np.flatnonzero(given > 0)
        texts = {int(i): self.context_of(triples[i]) for i in true_rows}
        with_text = [i for i in true_rows if texts[int(i)]]
        encoded = (
            self.tokenizer(
                [texts[int(i)] for i in with_text],
                truncation=True,
                max_length=self.context_max_length,
                return_special_tokens_mask=True,
            )
            if with_text
            else {"input_ids": [], "special_tokens_mask": []}
        )
        position = {int(i): j for j, i in enumerate(with_text)}
        ids_rows, label_rows = [], []
        for i in true_rows:
            j = position.get(int(i))
            if j is None:
                ids_rows.append(np.asarray(self._empty_context, dtype=np.int64))
                label_rows.append(np.full(len(self._empty_context), -100, dtype=np.int64))
            else:
                ids, labels = self.mask_context(encoded["input_ids"][j], encoded["special_tokens_mask"][j], generators[i])
                ids_rows.append(ids)
                label_rows.append(labels)
        width = max((len(r) for r in ids_rows), default=1)
        pad = self.triple_encoder.pad_id
        m = len(ids_rows)
        mlm_ids = np.full((m, width), pad, dtype=np.int64)
        mlm_labels = np.full((m, width), -100, dtype=np.int64)
        attention = np.zeros((m, width), dtype=np.int64)
        for row, (ids, labels) in enumerate(zip(ids_rows, label_rows)):
            mlm_ids[row, : len(ids)] = ids
            mlm_labels[row, : len(ids)] = labels
            attention[row, : len(ids)] = 1
        return {
            "mlm_input_ids": torch.from_numpy(mlm_ids),
            "mlm_attention_mask": torch.from_numpy(attention),
            "mlm_labels": torch.from_numpy(mlm_labels),
        }


__all__ = ["KGBertCollator"]
