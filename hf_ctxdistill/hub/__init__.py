"""Sharing on the Hub: model cards (context corpora have theirs in :mod:`hf_ctxdistill.context`)."""

from .model_card import create_model_card, save_model_card

__all__ = ["create_model_card", "save_model_card"]
