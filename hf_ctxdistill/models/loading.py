"""What the model constructors share when they load pretrained checkpoints."""

from __future__ import annotations

from typing import Any

import torch

#: Keyword arguments of the ``from_*`` constructors that go to ``from_pretrained``, not to the config.
LOAD_KWARGS = (
    "dtype",
    "torch_dtype",
    "attn_implementation",
    "revision",
    "cache_dir",
    "token",
    "trust_remote_code",
    "local_files_only",
    "device_map",
    "subfolder",
)
#: The subset that ``AutoConfig`` / ``AutoTokenizer.from_pretrained`` also accept.
CONFIG_LOAD_KWARGS = ("revision", "cache_dir", "token", "trust_remote_code", "local_files_only", "subfolder")


def split_load_kwargs(model_kwargs: dict[str, Any] | None, config_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Move loading arguments out of ``config_kwargs`` (in place) into a copy of ``model_kwargs``.

    Weights load in float32 unless a dtype is asked for: transformers 5 otherwise keeps the checkpoint's
    storage dtype, and training fp16/bf16 parameters directly (no float32 master copy) underflows Adam's
    updates or overflows to NaN; ``Trainer``'s ``--bf16`` is mixed precision over float32 weights.
    """
    model_kwargs = dict(model_kwargs or {})
    for key in LOAD_KWARGS:
        if key in config_kwargs:
            model_kwargs[key] = config_kwargs.pop(key)
    if "torch_dtype" in model_kwargs:  # the pre-5 name
        model_kwargs.setdefault("dtype", model_kwargs.pop("torch_dtype"))
    model_kwargs.setdefault("dtype", torch.float32)
    return model_kwargs
