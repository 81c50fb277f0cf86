"""What both KG collators share: turning dataset rows into index triples, and per-example random draws
that depend only on (seed, epoch, triple)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def rows_to_triples(kg: Any, features: Sequence[Any], collator: str) -> np.ndarray:
    """``(n, 3)`` int64 (head, relation, tail) indices of rows given as dicts with ``head``/``relation``/
    ``tail`` (string ids or indices) or as 3-tuples; ``collator`` names the caller in errors."""
    triples = np.empty((len(features), 3), dtype=np.int64)
    maps = (kg.entity_index, kg.relation_index, kg.entity_index)
    for row, feature in enumerate(features):
        if isinstance(feature, Mapping):
            try:
                values = (feature["head"], feature["relation"], feature["tail"])
            except KeyError:
                raise KeyError(
                    f"{collator} needs 'head', 'relation' and 'tail' in every row, got {sorted(feature)}; "
                    "with the Trainer keep `remove_unused_columns=False`"
                ) from None
        else:
            values = tuple(feature)
            if len(values) != 3:
                raise ValueError(f"a row must be (head, relation, tail), got {feature!r}")
        for col, (value, index) in enumerate(zip(values, maps)):
            triples[row, col] = index[value] if isinstance(value, str) else int(value)
    return triples


def example_generator(seed: int, epoch: int | None, calls: int, triple: np.ndarray) -> np.random.Generator:
    """The random generator of one example: keyed by (seed, epoch, triple) once the trainer has set the
    epoch, so the example gets the same draws in any batch, on any process and after a resume; keyed by
    the collator's call count otherwise (still fresh draws each batch)."""
    key = [seed, 0, epoch] if epoch is not None else [seed, 1, calls]
    return np.random.default_rng(key + [int(x) for x in triple])


class EpochKeyedDraws:
    """What both KG collators share about randomness: :meth:`set_epoch` (called by the trainer) and a
    per-example generator from :func:`example_generator`. Subclasses set ``seed`` and count their calls
    in ``_calls``."""

    seed: int = 0
    _epoch: int | None = None
    _calls: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Key all following draws (negatives, masks) to ``epoch``: the same example gets the same draws
        within an epoch, on any process and after a resume."""
        self._epoch = int(epoch)

    def _generator(self, triple: np.ndarray) -> np.random.Generator:
        return example_generator(self.seed, self._epoch, self._calls, triple)
