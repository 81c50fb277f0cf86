"""Constrained decoding over entity names, and link-prediction scores for the filtered-ranking evaluator.

A generative link predictor answers ``predict tail: <head> | <relation>`` with text. Three pieces turn that
into ranks over the KG's entities:

- :class:`EntityTrie`: a prefix tree over the tokenized (disambiguated, see
  :mod:`~hf_ctxdistill.models.kgs2s.entity_names`) entity names, each followed by EOS. Decoding through
  ``generate(prefix_allowed_tokens_fn=trie.prefix_allowed_tokens_fn())`` can only produce entity names.
- :class:`KGS2SLinkPredictor` in ``mode="beam"`` (KG-S2S's protocol): constrained beam search of width
  ``beam_size`` (authors: 40). Every entity the beam returns is scored by its sequence log-likelihood;
  every other entity gets ``-inf``.
- :class:`KGS2SLinkPredictor` in ``mode="exact"``: every entity is scored by its teacher-forced sequence
  log-likelihood (the encoder runs once per query, the decoder over all candidates in batches), which
  gives true ranks and a true MRR.

Both modes expose ``score_tails(heads, relations)`` / ``score_heads(relations, tails)`` -> ``(b,
num_entities)``, the candidate-scorer protocol of
:class:`~hf_ctxdistill.evaluation.LinkPredictionEvaluator`, which applies the filter and the tie rule.

**Score.** The score of entity ``e`` for a query is ``sum_t log p(y_t | y_<t, source)`` over the tokens of
``e``'s name and the EOS, under the model's *unconstrained* distribution: the quantity beam search
accumulates (``transformers`` applies the prefix constraint after the log-softmax) with
``length_penalty=0``. Beam entries are re-scored by teacher forcing, so a beam entry has exactly the
score the exact mode gives it.

**Answers outside the beam (beam mode).** They all score ``-inf`` and so tie with each other. Under the
evaluator's tie rules the rank of such an answer, with ``k`` unfiltered beam entries and ``n`` unfiltered
candidates in all, is:

- ``"realistic"`` (default): ``k + (n - k + 1) / 2``, the expected position among the candidates outside
  the beam if those were ordered at random;
- ``"pessimistic"``: ``n`` (worst case, last);
- ``"optimistic"``: ``k + 1`` (right after the beam).

A common practice gives such answers reciprocal rank 0 (and Hits@k 0), which is close to the pessimistic
rule; the realistic rule's MRR is a little higher. Use ``mode="exact"`` for true ranks.

**Cost of exact mode.** One decoder pass per (query, entity) pair: ``num_queries * num_entities *
mean_name_tokens`` decoder tokens, each projected on the whole vocabulary. For WN18RR (40,943 entities,
~5 tokens with EOS) that is ~0.2M decoder tokens per query: seconds per query on a GPU, minutes on two
CPU cores. Beam mode costs ``beam_size * name_length`` decoder steps per query.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from .entity_names import EntityNames
from .inputs import SIDES, KGS2SInputFormatter
from .modeling_kgs2s import ContextualizedKGS2S

MODES: tuple[str, ...] = ("beam", "exact")


class _Node:
    __slots__ = ("children", "entity", "_allowed")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.entity: int | None = None  # set on the node reached by a name's EOS
        self._allowed: list[int] | None = None

    @property
    def allowed(self) -> list[int]:
        if self._allowed is None:
            self._allowed = list(self.children)
        return self._allowed


class EntityTrie:
    """Prefix tree over token sequences ``name + [eos]``, one per entity (index = position).

    Args:
        token_ids: ``token_ids[i]`` = entity ``i``'s name tokenized without special tokens.
        eos_token_id: Appended to every name; the only token allowed after a complete name (besides
            continuations into longer names that start with it).
    """

    def __init__(self, token_ids: Sequence[Sequence[int]], eos_token_id: int) -> None:
        self.eos_token_id = int(eos_token_id)
        self.root = _Node()
        self.num_entities = len(token_ids)
        self.max_length = 0
        for entity, ids in enumerate(token_ids):
            ids = [int(t) for t in ids]
            if not ids:
                raise ValueError(f"entity {entity} has an empty name")
            if self.eos_token_id in ids:
                raise ValueError(f"entity {entity}'s name contains the EOS token {self.eos_token_id}")
            node = self.root
            for token in ids + [self.eos_token_id]:
                child = node.children.get(token)
                if child is None:
                    child = node.children[token] = _Node()
                node = child
            if node.entity is not None:
                raise ValueError(f"entities {node.entity} and {entity} have the same token sequence {ids}")
            node.entity = entity
            self.max_length = max(self.max_length, len(ids) + 1)

    def _walk(self, prefix: Sequence[int]) -> _Node | None:
        node = self.root
        for token in prefix:
            node = node.children.get(int(token))
            if node is None:
                return None
        return node

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Tokens that may follow ``prefix`` (empty when ``prefix`` is not a prefix of any name + EOS)."""
        node = self._walk(prefix)
        return node.allowed if node is not None else []

    def lookup(self, sequence: Sequence[int]) -> int | None:
        """Entity whose ``name + [eos]`` starts ``sequence`` (tokens after the EOS, e.g. padding, are
        ignored); ``None`` if there is none."""
        node = self.root
        for token in sequence:
            node = node.children.get(int(token))
            if node is None:
                return None
            if int(token) == self.eos_token_id:
                return node.entity
        return None

    def prefix_allowed_tokens_fn(self, prompt_length: int = 1) -> Callable[[int, torch.Tensor], list[int]]:
        """A ``prefix_allowed_tokens_fn`` for ``generate``: decoder sequences start with ``prompt_length``
        tokens (the decoder start token) that are not part of the name. A sequence that has left the trie
        (possible only for beams that already score ``-inf``) may only end."""
        eos = [self.eos_token_id]

        def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            node = self._walk(input_ids[prompt_length:].tolist())
            if node is None or not node.children:
                return eos
            return node.allowed

        return allowed


@contextlib.contextmanager
def _generation_config_swapped(model: Any, config: GenerationConfig) -> Iterator[None]:
    """Make ``config`` the model's generation config for the duration: ``generate`` fills unset values from
    ``model.generation_config``, and a checkpoint's defaults (BART's ``forced_bos_token_id`` and
    ``no_repeat_ngram_size``...) would fight the trie constraint."""
    previous = model.generation_config
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = previous


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


class KGS2SLinkPredictor:
    """Scores every entity as the answer of link-prediction queries with a trained :class:`ContextualizedKGS2S`.

    Pass it to :meth:`hf_ctxdistill.evaluation.LinkPredictionEvaluator.run` (it implements
    ``score_tails``/``score_heads``), or ask it single queries with :meth:`predict`.

    Args:
        model: A :class:`ContextualizedKGS2S` (or a PEFT model wrapping one).
        tokenizer: The tokenizer the model was trained with.
        graph: The :class:`~hf_ctxdistill.data.KnowledgeGraph` whose entities are the candidates.
        entity_names: The names the model was trained on (default: ``EntityNames.build(graph,
            tokenizer=tokenizer)``, the collator's default too).
        mode: ``"beam"`` (constrained beam search; entities outside the beam score ``-inf``) or ``"exact"``
            (every entity scored). See the module docstring for the rank rule and the cost.
        beam_size: Beam width (default: ``model.config.beam_size``, 40 as the authors).
        use_descriptions, description_max_words, max_source_length: Source format (default: the model
            configuration's, i.e. what the collator trained with).
        queries_per_batch: Queries encoded and decoded together.
        max_logits_elements: Budget of one teacher-forced scoring pass, in ``rows * target_length * vocab``
            logits; candidates are batched up to it (memory is about 8 bytes per element).
        progress: Show a progress bar over candidate batches in exact mode.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        graph: Any,
        *,
        entity_names: EntityNames | None = None,
        mode: str = "beam",
        beam_size: int | None = None,
        use_descriptions: bool | None = None,
        description_max_words: int | None = None,
        max_source_length: int | None = None,
        queries_per_batch: int = 8,
        max_logits_elements: int = 2**25,
        progress: bool = False,
    ) -> None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if not isinstance(base, ContextualizedKGS2S):
            raise TypeError(f"expected a ContextualizedKGS2S (or a PEFT model of one), got {type(base).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.model = base
        self.tokenizer = tokenizer
        self.graph = graph
        self.mode = mode
        config = base.config
        self.beam_size = int(beam_size if beam_size is not None else config.beam_size)
        if self.beam_size < 1:
            raise ValueError("beam_size must be >= 1")
        self.max_source_length = int(max_source_length if max_source_length is not None else config.max_source_length)
        self.names = entity_names if entity_names is not None else EntityNames.build(graph, tokenizer=tokenizer)
        if self.names.token_ids is None:
            raise ValueError("entity_names must be built with the tokenizer (EntityNames.build(..., tokenizer=...))")
        if len(self.names) != graph.num_entities:
            raise ValueError(f"{len(self.names)} entity names for {graph.num_entities} entities")
        self.formatter = KGS2SInputFormatter(
            graph,
            self.names,
            use_descriptions=config.use_descriptions if use_descriptions is None else use_descriptions,
            description_max_words=config.description_max_words if description_max_words is None else description_max_words,
        )
        self.trie = EntityTrie(self.names.token_ids, base.eos_token_id)
        self.queries_per_batch = int(queries_per_batch)
        self.max_logits_elements = int(max_logits_elements)
        self.progress = progress
        lengths = np.array([len(t) + 1 for t in self.names.token_ids])
        # Candidates sorted by length, so a batch of them wastes little on padding.
        self._order = np.argsort(lengths, kind="stable")
        self._lengths = lengths
        self._chunks: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    # ------------------------------------------------------------------ protocol of the evaluator
    @property
    def num_entities(self) -> int:
        """Number of candidate entities (the width of every score row)."""
        return self.graph.num_entities

    def score_tails(self, heads: np.ndarray, relations: np.ndarray) -> torch.Tensor:
        """``(b,)`` heads and relations -> ``(b, num_entities)`` scores of every tail (float32, CPU)."""
        return self.score_queries(heads, relations, "tail")

    def score_heads(self, relations: np.ndarray, tails: np.ndarray) -> torch.Tensor:
        """``(b,)`` relations and tails -> ``(b, num_entities)`` scores of every head (float32, CPU)."""
        return self.score_queries(tails, relations, "head")

    def score_queries(self, entities: Sequence[int], relations: Sequence[int], side: str) -> torch.Tensor:
        """Scores of every entity as the missing ``side`` of ``(entity, relation, ?)`` (tail) or
        ``(?, relation, entity)`` (head) queries."""
        if side not in SIDES:
            raise ValueError(f"side must be 'tail' or 'head', got {side!r}")
        entities = np.asarray(entities, dtype=np.int64).reshape(-1)
        relations = np.asarray(relations, dtype=np.int64).reshape(-1)
        sources = [self.formatter.query(e, r, side) for e, r in zip(entities, relations)]
        parts = []
        for begin in range(0, len(sources), self.queries_per_batch):
            batch = sources[begin : begin + self.queries_per_batch]
            parts.append(self._exact_scores(batch) if self.mode == "exact" else self._beam_scores(batch))
        return torch.cat(parts) if parts else torch.zeros(0, self.num_entities)

    # ------------------------------------------------------------------ single queries
    def predict(
        self, entity: int | str, relation: int | str, side: str = "tail", top_k: int = 10
    ) -> list[tuple[str, str, float]]:
        """Best answers of one query, e.g. ``predict("00260881", "_hypernym")`` for ``(00260881, _hypernym, ?)``.

        Args:
            entity, relation: Indices or the KG's string ids.
            side: ``"tail"`` or ``"head"``: which end of the triple is missing.
            top_k: Number of answers.

        Returns:
            ``[(entity_id, name, score), ...]`` best first (only entities with a finite score: in beam mode,
            at most ``beam_size``). Known true answers are not filtered out.
        """
        if isinstance(entity, str):
            entity = self.graph.entity_index[entity]
        if isinstance(relation, str):
            relation = self.graph.relation_index[relation]
        scores = self.score_queries([entity], [relation], side)[0]
        finite = torch.isfinite(scores)
        values, order = scores[finite].sort(descending=True)
        indices = torch.nonzero(finite).flatten()[order][:top_k]
        return [(self.graph.entity_ids[i], self.names[i], float(v)) for i, v in zip(indices.tolist(), values[:top_k].tolist())]

    # ------------------------------------------------------------------ internals
    def _encode(self, sources: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = self.model.device
        batch = self.tokenizer(
            sources, truncation=True, max_length=self.max_source_length, padding=True, return_tensors="pt"
        )
        input_ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device)
        hidden = self.model.encode(input_ids, mask).last_hidden_state
        return input_ids, mask, hidden

    def _targets(self, entities: Sequence[int]) -> torch.Tensor:
        """``(n, T)`` name + EOS targets of ``entities``, padded with -100."""
        eos = self.model.eos_token_id
        width = max(int(self._lengths[e]) for e in entities)
        out = torch.full((len(entities), width), -100, dtype=torch.long)
        for row, entity in enumerate(entities):
            ids = self.names.token_ids[entity] + [eos]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def _vocab_size(self) -> int:
        embeddings = self.model.get_output_embeddings()
        return int(embeddings.weight.shape[0]) if embeddings is not None else int(self.model.config.seq2seq.vocab_size)

    def _candidate_chunks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """All entities as ``(indices, targets)`` batches within the logits budget (built once)."""
        if self._chunks is None:
            vocab = self._vocab_size()
            chunks = []
            position, total = 0, len(self._order)
            while position < total:
                # Sorted by length: the last candidate of a chunk is its longest.
                size = max(1, self.max_logits_elements // (vocab * int(self._lengths[self._order[position]])))
                while size > 1 and size * vocab * int(self._lengths[self._order[min(position + size, total) - 1]]) > self.max_logits_elements:
                    size = max(1, size * 3 // 4)
                chosen = self._order[position : position + size]
                chunks.append((torch.as_tensor(chosen, dtype=torch.long), self._targets(chosen.tolist())))
                position += len(chosen)
            self._chunks = chunks
        return self._chunks

    def _score_rows(self, hidden: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of ``targets[i]`` given query ``rows[i]``'s encoder states."""
        device = hidden.device
        rows = rows.to(device)
        return self.model.sequence_log_likelihood(hidden[rows], mask[rows], targets.to(device)).float().cpu()

    def _exact_scores(self, sources: list[str]) -> torch.Tensor:
        with _eval_mode(self.model):
            _, mask, hidden = self._encode(sources)
            count = len(sources)
            scores = torch.empty(count, self.num_entities, dtype=torch.float32)
            vocab = self._vocab_size()
            chunks = self._candidate_chunks()
            bar = tqdm(total=len(chunks) * count, desc="exact scoring", unit="batch", disable=not self.progress)
            for indices, targets in chunks:
                per_query = len(indices)
                # Several queries share one pass when the candidate batch is small (small KGs).
                group = max(1, self.max_logits_elements // (vocab * targets.shape[1] * per_query))
                for first in range(0, count, group):
                    queries = torch.arange(first, min(first + group, count))
                    rows = queries.repeat_interleave(per_query)
                    values = self._score_rows(hidden, mask, rows, targets.repeat(len(queries), 1))
                    scores[first : first + len(queries), indices] = values.view(len(queries), per_query)
                    bar.update(len(queries))
            bar.close()
        return scores

    def _generation_config(self) -> GenerationConfig:
        model = self.model
        return GenerationConfig(
            decoder_start_token_id=model.decoder_start_token_id,
            eos_token_id=model.eos_token_id,
            pad_token_id=model.pad_token_id,
            num_beams=self.beam_size,
            num_return_sequences=self.beam_size,
            max_new_tokens=self.trie.max_length,
            # Sum of log-probabilities, as in the exact mode; and with it, early_stopping=False stops
            # exactly when no running beam can still beat the worst finished one.
            length_penalty=0.0,
            early_stopping=False,
            do_sample=False,
            use_cache=True,
        )

    def beam_entities(self, sources: list[str]) -> list[list[int]]:
        """Entities found by constrained beam search for each source text (in beam order, deduplicated)."""
        with _eval_mode(self.model):
            input_ids, mask, _ = self._encode(sources)
            return self._beam_search(input_ids, mask)

    def _beam_search(self, input_ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        seq2seq = self.model.seq2seq
        config = self._generation_config()
        with _generation_config_swapped(seq2seq, config):
            sequences = seq2seq.generate(
                input_ids=input_ids,
                attention_mask=mask,
                generation_config=config,
                prefix_allowed_tokens_fn=self.trie.prefix_allowed_tokens_fn(prompt_length=1),
            )
        sequences = sequences[:, 1:].tolist()  # drop the decoder start token
        found: list[list[int]] = []
        for query in range(input_ids.shape[0]):
            seen: dict[int, None] = {}
            for sequence in sequences[query * self.beam_size : (query + 1) * self.beam_size]:
                entity = self.trie.lookup(sequence)
                if entity is not None:
                    seen.setdefault(entity, None)
            found.append(list(seen))
        return found

    def _beam_scores(self, sources: list[str]) -> torch.Tensor:
        with _eval_mode(self.model):
            input_ids, mask, hidden = self._encode(sources)
            found = self._beam_search(input_ids, mask)
            scores = torch.full((len(sources), self.num_entities), float("-inf"), dtype=torch.float32)
            rows = [q for q, entities in enumerate(found) for _ in entities]
            entities = [e for found_entities in found for e in found_entities]
            if entities:
                vocab = self._vocab_size()
                width = max(int(self._lengths[e]) for e in entities)
                step = max(1, self.max_logits_elements // (vocab * width))
                for begin in range(0, len(entities), step):
                    part = entities[begin : begin + step]
                    part_rows = torch.as_tensor(rows[begin : begin + step], dtype=torch.long)
                    values = self._score_rows(hidden, mask, part_rows, self._targets(part))
                    scores[part_rows, torch.as_tensor(part, dtype=torch.long)] = values
        return scores


__all__ = ["MODES", "EntityTrie", "KGS2SLinkPredictor"]
