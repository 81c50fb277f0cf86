"""Filtered ranks with an explicit rule for tied scores, and a fast index of the filter set.

Conventions used throughout the package:

- Higher score = more plausible. Ranks are 1-based: rank 1 is the best possible.
- For a query with candidate scores ``s`` (one per entity) and true answer ``y``:

  * **optimistic** rank = 1 + #{candidates ``e`` with ``s[e] > s[y]``} (the target wins every tie);
  * **pessimistic** rank = #{candidates ``e`` with ``s[e] >= s[y]``}, the target itself included
    (the target loses every tie);
  * **realistic** rank = (optimistic + pessimistic) / 2: the expected rank when ties are broken
    uniformly at random. This is PyKEEN's reference definition and the default here.

- **Filtered setting**: the other known true answers of the query (e.g. every ``t'`` with
  ``(h, r, t')`` in train + validation + test for a tail query) are removed from the candidate list
  before counting; the target itself is never removed, even if it appears in the filter.

Why the tie rule matters: a model that outputs the same score for every entity gets optimistic rank
1 (MRR 1.0) for every query, which is how "too good to be true" results appear in papers that rank
with ``argsort`` and place the true answer first. The realistic rank of such a model is
``(num_candidates + 1) / 2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

TieRule = Literal["realistic", "optimistic", "pessimistic"]
TIE_RULES: tuple[str, ...] = ("realistic", "optimistic", "pessimistic")

ArrayLike = np.ndarray | torch.Tensor


def check_tie_rule(tie_rule: str) -> str:
    """Return ``tie_rule`` if it is one of :data:`TIE_RULES`, else raise ``ValueError``."""
    if tie_rule not in TIE_RULES:
        raise ValueError(f"unknown tie_rule {tie_rule!r}; expected one of {TIE_RULES}")
    return tie_rule


def combine_rank_bounds(
    optimistic: ArrayLike, pessimistic: ArrayLike, tie_rule: str = "realistic"
) -> np.ndarray:
    """Turn optimistic and pessimistic ranks into the ranks of one tie rule (float64 array).

    ``"optimistic"`` and ``"pessimistic"`` return the bounds themselves; ``"realistic"`` returns their
    mean, which is a multiple of 0.5.
    """
    check_tie_rule(tie_rule)
    lo = np.asarray(optimistic, dtype=np.float64)
    hi = np.asarray(pessimistic, dtype=np.float64)
    if tie_rule == "optimistic":
        return lo
    if tie_rule == "pessimistic":
        return hi
    return (lo + hi) / 2.0


def _as_score_tensor(scores: ArrayLike) -> torch.Tensor:
    """View scores as a 2-D torch tensor without copying when possible (numpy arrays stay on CPU,
    tensors stay on their device, so GPU scores are ranked on the GPU)."""
    if isinstance(scores, torch.Tensor):
        tensor = scores.detach()
    else:
        array = np.asarray(scores)
        if array.dtype.kind == "u" or array.dtype.kind == "b":
            array = array.astype(np.int64)
        elif array.dtype.kind not in "if":
            raise TypeError(f"scores must be numeric, got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"scores must be real numbers, got {tensor.dtype}")
    return tensor


def _check_no_nan(scores: torch.Tensor) -> None:
    if not scores.is_floating_point():
        return
    nan_rows = torch.isnan(scores).any(dim=1)
    if bool(nan_rows.any()):
        rows = nan_rows.nonzero().flatten()
        first = rows[:5].tolist()
        raise ValueError(
            f"NaN scores in {rows.numel()} of {scores.shape[0]} queries (query rows {first}"
            f"{' ...' if rows.numel() > 5 else ''}): a NaN cannot be ranked against other scores. "
            "Common causes: overflow in fp16 (try bf16 or fp32) or invalid inputs to the model."
        )


def compute_rank_bounds(
    scores: ArrayLike,
    targets: ArrayLike | int,
    *,
    filter_mask: ArrayLike | None = None,
    filter_indices: Sequence[ArrayLike] | ArrayLike | None = None,
    filter_pairs: tuple[ArrayLike, ArrayLike] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimistic and pessimistic filtered ranks of the targets, vectorised over a batch of queries.

    Args:
        scores: ``(b, num_candidates)`` scores (numpy array or torch tensor, any real dtype, any
            device), higher = more plausible; a 1-D array is a single query. ``+inf``/``-inf`` are
            allowed; NaN raises ``ValueError``.
        targets: ``(b,)`` column index of the true answer of each query (an int for a single query).
        filter_mask: ``(b, num_candidates)`` booleans, True = a known true answer to remove.
        filter_indices: for each query, the candidate indices to remove (a list of ``b`` arrays; for
            a single query, one array).
        filter_pairs: ``(rows, cols)``: remove candidate ``cols[i]`` from query ``rows[i]`` (the
            sparse form that :class:`FilterIndex` produces). Duplicated pairs count once.

    At most one of the three filter arguments may be given. The target of each query is never
    removed, whatever the filter says.

    Returns:
        ``(optimistic, pessimistic)`` int64 arrays of shape ``(b,)`` (see the module docstring):
        optimistic = 1 + #kept candidates with a strictly higher score; pessimistic = #kept candidates
        with a higher or equal score, the target included. Always ``1 <= optimistic <= pessimistic``.
    """
    tensor = _as_score_tensor(scores)
    single = tensor.dim() == 1
    if single:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2:
        raise ValueError(f"scores must have shape (num_queries, num_candidates), got {tuple(tensor.shape)}")
    num_queries, num_candidates = tensor.shape
    device = tensor.device

    target_t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    target_t = target_t.reshape(-1).to(device=device, dtype=torch.int64)
    if target_t.numel() != num_queries:
        raise ValueError(f"got {target_t.numel()} targets for {num_queries} queries")
    if num_queries == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    if bool(((target_t < 0) | (target_t >= num_candidates)).any()):
        raise ValueError(
            f"targets must lie in [0, {num_candidates}), got {target_t.min().item()}..{target_t.max().item()}"
        )
    _check_no_nan(tensor)

    given = sum(x is not None for x in (filter_mask, filter_indices, filter_pairs))
    if given > 1:
        raise ValueError("pass at most one of filter_mask, filter_indices, filter_pairs")

    true_scores = tensor.gather(1, target_t.unsqueeze(1))  # (b, 1)
    better = (tensor > true_scores).sum(dim=1)
    better_or_equal = (tensor >= true_scores).sum(dim=1)

    rows_t: torch.Tensor | None = None
    cols_t: torch.Tensor | None = None
    if filter_mask is not None:
        mask = (
            filter_mask.detach()
            if isinstance(filter_mask, torch.Tensor)
            else torch.from_numpy(np.asarray(filter_mask))
        )
        mask = mask.to(device=device, dtype=torch.bool)
        if single:
            mask = mask.reshape(1, -1)
        if tuple(mask.shape) != (num_queries, num_candidates):
            raise ValueError(
                f"filter_mask has shape {tuple(mask.shape)}, expected {(num_queries, num_candidates)}"
            )
        rows_t, cols_t = mask.nonzero(as_tuple=True)
    elif filter_indices is not None:
        per_query = [filter_indices] if single else list(filter_indices)
        if len(per_query) != num_queries:
            raise ValueError(f"filter_indices has {len(per_query)} entries for {num_queries} queries")
        arrays = [
            np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=np.int64).reshape(-1)
            for x in per_query
        ]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        rows_np = np.repeat(np.arange(num_queries, dtype=np.int64), lengths)
        cols_np = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        rows_t, cols_t = torch.from_numpy(rows_np).to(device), torch.from_numpy(cols_np).to(device)
    elif filter_pairs is not None:
        rows_in, cols_in = filter_pairs
        rows_t = torch.as_tensor(np.asarray(rows_in) if not isinstance(rows_in, torch.Tensor) else rows_in)
        cols_t = torch.as_tensor(np.asarray(cols_in) if not isinstance(cols_in, torch.Tensor) else cols_in)
        rows_t = rows_t.reshape(-1).to(device=device, dtype=torch.int64)
        cols_t = cols_t.reshape(-1).to(device=device, dtype=torch.int64)
        if rows_t.numel() != cols_t.numel():
            raise ValueError("filter_pairs: rows and cols must have the same length")

    if rows_t is not None and cols_t is not None and rows_t.numel() > 0:
        if bool(((rows_t < 0) | (rows_t >= num_queries)).any()):
            raise ValueError(f"filter rows must lie in [0, {num_queries})")
        if bool(((cols_t < 0) | (cols_t >= num_candidates)).any()):
            raise ValueError(f"filtered candidate indices must lie in [0, {num_candidates})")
        # A candidate listed twice must be removed once, otherwise counts go below the truth.
        keys = torch.unique(rows_t * num_candidates + cols_t)
        rows_t, cols_t = keys // num_candidates, keys % num_candidates
        keep = cols_t != target_t[rows_t]  # the target always stays in the candidate list
        rows_t, cols_t = rows_t[keep], cols_t[keep]
        removed = tensor[rows_t, cols_t]
        reference = true_scores[rows_t, 0]
        better = better.scatter_add(0, rows_t, -(removed > reference).to(better.dtype))
        better_or_equal = better_or_equal.scatter_add(0, rows_t, -(removed >= reference).to(better.dtype))

    optimistic = (better + 1).cpu().numpy().astype(np.int64)
    pessimistic = better_or_equal.cpu().numpy().astype(np.int64)
    return optimistic, pessimistic


def compute_ranks(
    scores: ArrayLike,
    targets: ArrayLike | int,
    *,
    tie_rule: str = "realistic",
    filter_mask: ArrayLike | None = None,
    filter_indices: Sequence[ArrayLike] | ArrayLike | None = None,
    filter_pairs: tuple[ArrayLike, ArrayLike] | None = None,
) -> np.ndarray | float:
    """Filtered 1-based rank of each target under a tie rule, vectorised over queries.

    Same arguments as :func:`compute_rank_bounds`, plus ``tie_rule``:

    - ``"realistic"`` (default): (optimistic + pessimistic) / 2, PyKEEN's reference definition;
    - ``"optimistic"``: 1 + #kept candidates scored strictly higher than the target;
    - ``"pessimistic"``: #kept candidates scored higher than or equal to the target, target included.

    Example: scores ``[3, 5, 5, 5, 1]`` with target 1 (score 5) and candidate 2 filtered out: the kept
    candidates are ``[3, 5, 5, 1]``; none is strictly better, so optimistic = 1; two (the target and
    candidate 3) are >= 5, so pessimistic = 2; realistic = 1.5.

    Returns a float64 array of shape ``(b,)``, or a float for a single 1-D query.
    """
    check_tie_rule(tie_rule)
    single = (scores.dim() if isinstance(scores, torch.Tensor) else np.ndim(scores)) == 1
    optimistic, pessimistic = compute_rank_bounds(
        scores, targets, filter_mask=filter_mask, filter_indices=filter_indices, filter_pairs=filter_pairs
    )
    ranks = combine_rank_bounds(optimistic, pessimistic, tie_rule)
    return float(ranks[0]) if single else ranks


class FilterIndex:
    """CSR-style index of known true triples, answering "which tails / heads are true for these
    (head, relation) / (relation, tail) pairs" for a whole batch of queries with numpy only.

    Built once in ``O(n log n)`` from an ``(n, 3)`` array of (head, relation, tail) indices; duplicates
    are ignored. A lookup for ``b`` queries costs two ``searchsorted`` calls plus the size of the
    answer, which keeps filtering negligible next to model scoring.
    """

    def __init__(self, known_triples: np.ndarray, num_entities: int, num_relations: int | None = None):
        known = np.asarray(known_triples, dtype=np.int64).reshape(-1, 3)
        if known.size and (known.min() < 0):
            raise ValueError("known triples must be non-negative indices")
        if known.size and max(known[:, 0].max(), known[:, 2].max()) >= num_entities:
            raise ValueError(f"known triples reference entity indices >= num_entities={num_entities}")
        if num_relations is None:
            num_relations = int(known[:, 1].max()) + 1 if len(known) else 1
        elif known.size and known[:, 1].max() >= num_relations:
            raise ValueError(f"known triples reference relation indices >= num_relations={num_relations}")
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        self.triples = np.unique(known, axis=0) if len(known) else known
        # Tail index: group by (head, relation); head index: group by (relation, tail).
        self._tail_keys, self._tail_starts, self._tail_values = self._build(
            self.triples[:, 0] * self.num_relations + self.triples[:, 1], self.triples[:, 2]
        )
        self._head_keys, self._head_starts, self._head_values = self._build(
            self.triples[:, 1] * self.num_entities + self.triples[:, 2], self.triples[:, 0]
        )

    @staticmethod
    def _build(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.lexsort((values, keys))
        keys, values = keys[order], values[order]
        unique_keys, starts = np.unique(keys, return_index=True)
        starts = np.append(starts, len(keys)).astype(np.int64)
        return unique_keys, starts, values

    @staticmethod
    def _lookup(
        unique_keys: np.ndarray,
        starts: np.ndarray,
        values: np.ndarray,
        query_keys: np.ndarray,
        valid: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        num = len(query_keys)
        if len(unique_keys) == 0 or num == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        position = np.searchsorted(unique_keys, query_keys)
        position_c = np.minimum(position, len(unique_keys) - 1)
        found = valid & (position < len(unique_keys)) & (unique_keys[position_c] == query_keys)
        begin = np.where(found, starts[position_c], 0)
        length = np.where(found, starts[position_c + 1] - starts[position_c], 0)
        rows = np.repeat(np.arange(num, dtype=np.int64), length)
        # Offset of each output element inside its group, without a Python loop.
        group_first = np.cumsum(length) - length
        within = np.arange(len(rows), dtype=np.int64) - np.repeat(group_first, length)
        cols = values[np.repeat(begin, length) + within]
        return rows, cols

    def true_tails(self, heads: np.ndarray, relations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Known true tails of the queries ``(heads[i], relations[i], ?)`` as ``(rows, tails)`` pairs."""
        heads = np.asarray(heads, dtype=np.int64).reshape(-1)
        relations = np.asarray(relations, dtype=np.int64).reshape(-1)
        # Out-of-range relations would alias another (head, relation) key, so they match nothing.
        valid = (relations >= 0) & (relations < self.num_relations)
        return self._lookup(
            self._tail_keys,
            self._tail_starts,
            self._tail_values,
            heads * self.num_relations + relations,
            valid,
        )

    def true_heads(self, relations: np.ndarray, tails: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Known true heads of the queries ``(?, relations[i], tails[i])`` as ``(rows, heads)`` pairs."""
        relations = np.asarray(relations, dtype=np.int64).reshape(-1)
        tails = np.asarray(tails, dtype=np.int64).reshape(-1)
        valid = (tails >= 0) & (tails < self.num_entities)
        return self._lookup(
            self._head_keys,
            self._head_starts,
            self._head_values,
            relations * self.num_entities + tails,
            valid,
        )

    def query_filter(self, triples: np.ndarray, predict_tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter pairs for a mixed batch: query ``i`` asks for the tail of ``triples[i]`` when
        ``predict_tail[i]`` is True, else for its head. Returns ``(rows, candidate_entities)``."""
        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        predict_tail = np.asarray(predict_tail, dtype=bool).reshape(-1)
        tail_rows = np.flatnonzero(predict_tail)
        head_rows = np.flatnonzero(~predict_tail)
        r1, c1 = self.true_tails(triples[tail_rows, 0], triples[tail_rows, 1])
        r2, c2 = self.true_heads(triples[head_rows, 1], triples[head_rows, 2])
        return np.concatenate([tail_rows[r1], head_rows[r2]]), np.concatenate([c1, c2])

    def __len__(self) -> int:
        return len(self.triples)

    def __repr__(self) -> str:
        return f"FilterIndex(triples={len(self):,}, entities={self.num_entities:,}, relations={self.num_relations:,})"
