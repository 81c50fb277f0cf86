"""Readers for the on-disk layouts that KGC releases use; each feeds a :class:`~..builder.KGBuilder`."""

from .kgbert import read_kgbert
from .kgs2s import read_kgs2s
from .pkgc import read_pkgc
from .plain import read_plain

__all__ = ["read_kgbert", "read_kgs2s", "read_pkgc", "read_plain"]
