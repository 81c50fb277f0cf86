"""Turn index triples into KG-BERT inputs: ``[CLS] head text [SEP] relation text [SEP] tail text [SEP]``.

One class, :class:`KGBertTripleEncoder`, does this for training (the collator) and for evaluation (the
scorer), so both tokenize identically. Entity and relation texts are tokenized once and cached; a batch
is assembled with numpy indexing, not a Python loop per triple, because filtered ranking scores hundreds
of millions of (head, relation, candidate) pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ...data import KnowledgeGraph


def _special_id(tokenizer: PreTrainedTokenizerBase, *names: str) -> int:
    for name in names:
        value = getattr(tokenizer, f"{name}_token_id", None)
        if value is not None:
            return int(value)
    raise ValueError(f"the tokenizer has none of the special tokens {names}; KG-BERT inputs need them")


class KGBertTripleEncoder:
    """Tokenize ``(head, relation, tail)`` index triples of a :class:`~hf_ctxdistill.data.KnowledgeGraph`.

    Layout: ``[CLS] h [SEP] r [SEP] t [SEP]`` with the tokenizer's own CLS/SEP tokens (BOS/EOS where a
    tokenizer has no CLS/SEP, e.g. ``<s>``/``</s>`` for RoBERTa), segment ids 0 / 1 / 0 as in KG-BERT
    (emitted only when the tokenizer uses ``token_type_ids``), right padding to the longest row.

    Truncation keeps the structure: all four special tokens stay, the relation text keeps its tokens
    while the entities can give way, and the longer of the two entity texts is shortened first (the
    result of KG-BERT's "pop from the longest" rule, computed in closed form).

    Args:
        kg: The knowledge graph (entity names/descriptions, relation names).
        tokenizer: Any Hugging Face tokenizer of the encoder.
        max_length: Token budget per triple including special tokens (authors: 50).
        use_descriptions: Entity text ``"name, description"`` (KG-BERT) instead of the name alone.
        use_token_type_ids: Emit segment ids; ``None`` follows ``tokenizer.model_input_names``.
    """

    def __init__(
        self,
        kg: KnowledgeGraph,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int = 50,
        use_descriptions: bool = True,
        use_token_type_ids: bool | None = None,
    ) -> None:
        if max_length < 7:
            raise ValueError(f"max_length must leave room for 4 special tokens and some text, got {max_length}")
        self.kg = kg
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.use_descriptions = use_descriptions
        if use_token_type_ids is None:
            use_token_type_ids = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        self.use_token_type_ids = bool(use_token_type_ids)
        self.cls_id = _special_id(tokenizer, "cls", "bos")
        self.sep_id = _special_id(tokenizer, "sep", "eos")
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else 0
        # Text longer than the whole budget can never be used, so cache at most `budget` tokens.
        self._budget = self.max_length - 4
        # int32 halves the cache (millions of entities x budget); batches come out as int64.
        self._entity_ids = np.full((kg.num_entities, self._budget), self.pad_id, dtype=np.int32)
        self._entity_len = np.full(kg.num_entities, -1, dtype=np.int64)  # -1 = not tokenized yet
        self._relation_ids, self._relation_len = self._tokenize_matrix(list(kg.relation_names))

    # ------------------------------------------------------------------ texts
    def entity_text(self, index: int) -> str:
        """Text of one entity (``"name, description"`` or the name)."""
        return self.kg.entity_text(int(index), with_description=self.use_descriptions)

    def relation_text(self, index: int) -> str:
        """Text of one relation."""
        return self.kg.relation_names[int(index)]

    def _tokenize_matrix(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"] if texts else []
        matrix = np.full((len(texts), self._budget), self.pad_id, dtype=np.int32)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, tokens in enumerate(ids):
            tokens = tokens[: self._budget]
            matrix[row, : len(tokens)] = tokens
            lengths[row] = len(tokens)
        return matrix, lengths

    def _ensure_entities(self, indices: np.ndarray) -> None:
        missing = np.unique(indices[self._entity_len[indices] < 0])
        if len(missing):
            matrix, lengths = self._tokenize_matrix([self.entity_text(i) for i in missing])
            self._entity_ids[missing] = matrix
            self._entity_len[missing] = lengths

    def prepare_all_entities(self, batch_size: int = 4096) -> None:
        """Tokenize every entity text now (evaluation does this once instead of per batch)."""
        for start in range(0, self.kg.num_entities, batch_size):
            self._ensure_entities(np.arange(start, min(start + batch_size, self.kg.num_entities)))

    # ------------------------------------------------------------------ batches
    def truncated_lengths(self, triples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kept token counts of head, relation and tail text for each triple (see the class docstring)."""
        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        self._ensure_entities(np.concatenate([triples[:, 0], triples[:, 2]]))
        h = self._entity_len[triples[:, 0]]
        r = self._relation_len[triples[:, 1]]
        t = self._entity_len[triples[:, 2]]
        budget = self._budget
        # The relation yields only what the entities need to keep one token each.
        r_keep = np.minimum(r, np.maximum(budget - np.minimum(h, 1) - np.minimum(t, 1), 0))
        room = budget - r_keep
        h_keep = np.minimum(h, np.maximum(room - t, (room + 1) // 2))
        t_keep = np.minimum(t, room - h_keep)
        return h_keep, r_keep, t_keep

    def __call__(self, triples: np.ndarray, return_tensors: str = "pt") -> dict[str, Any]:
        """Encode an ``(n, 3)`` array of (head, relation, tail) indices.

        Returns ``input_ids``, ``attention_mask`` and (when used) ``token_type_ids``, ``(n, L)`` with ``L``
        the longest row; torch tensors for ``return_tensors="pt"``, numpy arrays for ``"np"``.
        """
        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        n = len(triples)
        h_keep, r_keep, t_keep = self.truncated_lengths(triples)
        head_end = 1 + h_keep  # position of the first [SEP]
        rel_start = head_end + 1
        rel_end = rel_start + r_keep  # second [SEP]
        tail_start = rel_end + 1
        tail_end = tail_start + t_keep  # last [SEP]
        width = int(tail_end.max()) + 1 if n else 4
        cols = np.arange(width)[None, :]
        last = self._budget - 1

        def gather(matrix: np.ndarray, rows: np.ndarray, start: np.ndarray) -> np.ndarray:
            return matrix[rows[:, None], np.clip(cols - start[:, None], 0, last)]

        ids = np.full((n, width), self.pad_id, dtype=np.int32)
        in_head = (cols >= 1) & (cols < head_end[:, None])
        in_rel = (cols >= rel_start[:, None]) & (cols < rel_end[:, None])
        in_tail = (cols >= tail_start[:, None]) & (cols < tail_end[:, None])
        ids = np.where(in_head, gather(self._entity_ids, triples[:, 0], np.ones(n, dtype=np.int64)), ids)
        ids = np.where(in_rel, gather(self._relation_ids, triples[:, 1], rel_start), ids)
        ids = np.where(in_tail, gather(self._entity_ids, triples[:, 2], tail_start), ids)
        is_sep = (cols == head_end[:, None]) | (cols == rel_end[:, None]) | (cols == tail_end[:, None])
        ids = np.where(is_sep, self.sep_id, ids)
        ids = ids.astype(np.int64)
        ids[:, 0] = self.cls_id
        attention = (cols <= tail_end[:, None]).astype(np.int64)
        out: dict[str, Any] = {"input_ids": ids, "attention_mask": attention}
        if self.use_token_type_ids:
            # KG-BERT: segment 1 covers the relation and the [SEP] after it.
            out["token_type_ids"] = ((cols >= rel_start[:, None]) & (cols <= rel_end[:, None])).astype(np.int64)
        if return_tensors == "pt":
            return {k: torch.from_numpy(v) for k, v in out.items()}
        if return_tensors == "np":
            return out
        raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")

    def decode(self, input_ids: Any) -> list[str]:
        """Decode rows back to text with special tokens (for inspecting what the model sees)."""
        rows = input_ids.tolist() if hasattr(input_ids, "tolist") else list(input_ids)
        return [self.tokenizer.decode([t for t in row if t != self.pad_id]) for row in rows]


__all__ = ["KGBertTripleEncoder"]
