"""Rank-based link-prediction metrics (MRR, MR, Hits@k) and their breakdowns by direction and relation.

Definitions, for ranks ``r_1 .. r_n`` (1-based; realistic ranks may be halves):

- ``mrr`` = mean of ``1 / r_i`` (higher is better, in (0, 1]);
- ``mr`` = mean of ``r_i`` (lower is better, >= 1);
- ``hits@k`` = fraction of queries with ``r_i <= k`` (a realistic rank of 1.5 is *not* a hit at 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_KS: tuple[int, ...] = (1, 3, 10)
SIDE_NAMES: tuple[str, str] = ("head", "tail")
"""Query directions: code 0 = head query ``(?, r, t)``, code 1 = tail query ``(h, r, ?)``."""


def _as_ranks(ranks: Any) -> np.ndarray:
    if hasattr(ranks, "detach"):  # torch tensor
        ranks = ranks.detach().cpu().numpy()
    array = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if len(array) and not (np.all(np.isfinite(array)) and array.min() >= 1):
        raise ValueError("ranks must be finite and >= 1 (ranks are 1-based)")
    return array


def rank_metrics(ranks: Any, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """MRR, MR and Hits@k of a set of 1-based ranks.

    Returns a dict with exactly the keys ``"mrr"``, ``"mr"`` and ``"hits@<k>"`` for each ``k`` in ``ks``
    (by default ``"hits@1"``, ``"hits@3"``, ``"hits@10"``). Raises ``ValueError`` on an empty input,
    since a mean over no queries would silently read as a score.
    """
    array = _as_ranks(ranks)
    if len(array) == 0:
        raise ValueError("rank_metrics needs at least one rank")
    out = {"mrr": float(np.mean(1.0 / array)), "mr": float(np.mean(array))}
    for k in ks:
        if int(k) != k or k < 1:
            raise ValueError(f"hits@k needs a positive integer k, got {k!r}")
        out[f"hits@{int(k)}"] = float(np.mean(array <= k))
    return out


def side_codes(sides: Any) -> np.ndarray:
    """Normalise query directions to int8 codes (0 = head query, 1 = tail query).

    Accepts codes, booleans (True = tail) or the strings ``"head"``/``"tail"``.
    """
    array = np.asarray(sides)
    if array.dtype.kind in "US":
        bad = ~np.isin(array, SIDE_NAMES)
        if bad.any():
            raise ValueError(f"query sides must be 'head' or 'tail', got {array[bad][0]!r}")
        return (array == "tail").astype(np.int8)
    codes = array.astype(np.int8)
    if len(codes) and (codes.min() < 0 or codes.max() > 1):
        raise ValueError("query side codes must be 0 (head) or 1 (tail)")
    return codes


def _group(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    out: dict[str, float] = rank_metrics(ranks, ks)
    out["num_queries"] = int(len(ranks))
    return out


def metrics_breakdown(
    ranks: Any,
    sides: Any | None = None,
    relations: Any | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    relation_names: Sequence[str] | Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Metrics overall, per query direction and per relation.

    Args:
        ranks: ``(n,)`` 1-based ranks.
        sides: ``(n,)`` direction of each query (see :func:`side_codes`); omit to skip the head/tail split.
        relations: ``(n,)`` relation index of each query; omit to skip the per-relation split.
        relation_names: names to key the per-relation dict with (index -> name); default: the index.

    Returns:
        ``{"overall": m, "head": m, "tail": m, "per_relation": {rel: {"overall": m, "head": m, "tail": m}}}``
        where each ``m`` is :func:`rank_metrics` plus ``"num_queries"``. ``"head"`` holds head queries
        ``(?, r, t)``, ``"tail"`` tail queries ``(h, r, ?)``. Groups without queries are left out.
    """
    array = _as_ranks(ranks)
    codes = side_codes(sides) if sides is not None else None
    if codes is not None and len(codes) != len(array):
        raise ValueError(f"{len(codes)} sides for {len(array)} ranks")

    def by_side(selection: np.ndarray) -> dict[str, Any]:
        block: dict[str, Any] = {}
        if selection.any():
            block["overall"] = _group(array[selection], ks)
        if codes is not None:
            for code, name in enumerate(SIDE_NAMES):
                chosen = selection & (codes == code)
                if chosen.any():
                    block[name] = _group(array[chosen], ks)
        return block

    result = by_side(np.ones(len(array), dtype=bool))
    if relations is not None:
        rel = np.asarray(relations, dtype=np.int64).reshape(-1)
        if len(rel) != len(array):
            raise ValueError(f"{len(rel)} relations for {len(array)} ranks")
        per_relation: dict[Any, Any] = {}
        for r in np.unique(rel):
            key: Any = int(r)
            if relation_names is not None:
                key = relation_names[int(r)]
            per_relation[key] = by_side(rel == r)
        result["per_relation"] = per_relation
    return result


def flatten_metrics(
    breakdown: Mapping[str, Any], prefix: str | None = "eval", *, per_relation: bool = False
) -> dict[str, float]:
    """Flatten :func:`metrics_breakdown` output into scalar keys for logging (e.g. the HF ``Trainer``).

    Keys: ``{prefix}_mrr``, ``{prefix}_hits@1`` ... for the overall group, ``{prefix}_head_mrr`` ... and
    ``{prefix}_tail_mrr`` ... per direction, ``{prefix}_num_queries``; with ``per_relation=True`` also
    ``{prefix}_rel_<relation>_mrr`` ... With ``prefix=None`` the keys have no prefix (``"mrr"``).
    """
    lead = f"{prefix}_" if prefix else ""
    flat: dict[str, float] = {}
    for group in ("overall", *SIDE_NAMES):
        if group not in breakdown:
            continue
        middle = "" if group == "overall" else f"{group}_"
        for key, value in breakdown[group].items():
            flat[f"{lead}{middle}{key}"] = value
    if per_relation:
        for rel, block in breakdown.get("per_relation", {}).items():
            for group, values in block.items():
                middle = "" if group == "overall" else f"{group}_"
                for key, value in values.items():
                    flat[f"{lead}rel_{rel}_{middle}{key}"] = value
    return flat
