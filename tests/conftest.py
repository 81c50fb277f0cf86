"""Shared fixtures: the benchmark data folder (optional) and small KGs written by the tests themselves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the public benchmarks live: $HF_CTXDISTILL_SHARED_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("HF_CTXDISTILL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark folder; tests that need it are skipped, saying why, when it is absent."""
    path = shared_data_dir()
    if not (path / "WN18RR").is_dir():
        pytest.skip(f"benchmark data not found at {path} (set HF_CTXDISTILL_SHARED_DATA to a folder holding WN18RR/, FB15k-237N/)")
    return path


def write(path: Path, text: str | bytes) -> Path:
    """Write a file, creating folders; bytes are written as they are (for encoding tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


TINY_ENTITIES = {
    "e1": ("paris", "capital of France"),
    "e2": ("france", "country in western Europe"),
    "e3": ("berlin", "capital of Germany"),
    "e4": ("germany", "country in central Europe"),
    "e5": ("europe", "a continent"),
}
TINY_RELATIONS = {"capital_of": "capital of", "part_of": "part of"}
TINY_TRAIN = [("e1", "capital_of", "e2"), ("e2", "part_of", "e5"), ("e4", "part_of", "e5")]
TINY_VALID = [("e3", "capital_of", "e4")]
TINY_TEST = [("e1", "part_of", "e5")]


@pytest.fixture
def tiny_kgbert_dir(tmp_path: Path) -> Path:
    """A five-entity KG in the KG-BERT layout (WordNet-style "name, description" entity texts are not
    used: ids are not synset offsets, so entity2text holds names and entity2textlong descriptions)."""
    d = tmp_path / "kgbert"
    write(d / "entity2text.txt", "".join(f"{k}\t{n}\n" for k, (n, _) in TINY_ENTITIES.items()))
    write(d / "entity2textlong.txt", "".join(f"{k}\t{t}\n" for k, (_, t) in TINY_ENTITIES.items()))
    write(d / "relation2text.txt", "".join(f"{k}\t{v}\n" for k, v in TINY_RELATIONS.items()))
    for name, rows in (("train.tsv", TINY_TRAIN), ("dev.tsv", TINY_VALID), ("test.tsv", TINY_TEST)):
        write(d / name, "".join("\t".join(r) + "\n" for r in rows))
    return d


@pytest.fixture
def tiny_kgs2s_dir(tmp_path: Path) -> Path:
    """The same KG in the KG-S2S layout (integer ids, count lines, HEAD TAIL RELATION rows)."""
    d = tmp_path / "kgs2s"
    ents, rels = list(TINY_ENTITIES), list(TINY_RELATIONS)
    write(d / "entity2id.txt", f"{len(ents)}\n" + "".join(f"{e}\t{i}\n" for i, e in enumerate(ents)))
    write(d / "entityid2name.txt", f"{len(ents)}\n" + "".join(f"{i}\t{TINY_ENTITIES[e][0]}\n" for i, e in enumerate(ents)))
    write(d / "entityid2description.txt", f"{len(ents)}\n" + "".join(f"{i}\t{TINY_ENTITIES[e][1]}\n" for i, e in enumerate(ents)))
    write(d / "relation2id.txt", f"{len(rels)}\n" + "".join(f"{r}\t{i}\n" for i, r in enumerate(rels)))
    write(d / "relationid2name.txt", f"{len(rels)}\n" + "".join(f"{i}\t{TINY_RELATIONS[r]}\n" for i, r in enumerate(rels)))
    for name, rows in (("train2id.txt", TINY_TRAIN), ("valid2id.txt", TINY_VALID), ("test2id.txt", TINY_TEST)):
        body = "".join(f"{ents.index(h)} {ents.index(t)} {rels.index(r)}\n" for h, r, t in rows)
        write(d / name, f"{len(rows)}\n" + body)
    return d
