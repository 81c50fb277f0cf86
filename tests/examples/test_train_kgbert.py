"""examples/train_kgbert.py end to end on a small KG with a tiny random encoder: query sampling."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from hf_ctxdistill.evaluation import LinkPredictionResult
from tests.training.test_collators import one_thread, tiny_kg_dataset, tokenizer  # noqa: F401 - fixtures

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_kgbert.py"


def write_plain_kg(directory: Path) -> Path:
    """The collators' small KG (20 entities, 4 test triples = 8 queries) in the plain layout."""
    data = tiny_kg_dataset()
    directory.mkdir(parents=True)
    for split, stem in (("train", "train"), ("validation", "valid"), ("test", "test")):
        rows = data[split]
        (directory / f"{stem}.tsv").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in zip(rows["head"], rows["relation"], rows["tail"])))
    (directory / "entities.jsonl").write_text("".join(json.dumps(row) + "\n" for row in data["entities"]))
    (directory / "relations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in data["relations"]))
    return directory


@pytest.fixture
def tiny_encoder(tmp_path, tokenizer):  # noqa: F811 - pytest fixture injection
    """A 2-layer, 32-wide random BERT with the MiniLM tokenizer, saved as a checkpoint folder."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    path = tmp_path / "encoder"
    BertForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def run_script(monkeypatch, capsys, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.parametrize("sample", [("--num_test_queries", "3"), ("--num_test_triples", "2")], ids=["queries", "triples"])
def test_num_test_queries_limits_the_ranked_queries(tmp_path, monkeypatch, capsys, tiny_encoder, sample):
    kg_path = write_plain_kg(tmp_path / "kg")
    out_dir = tmp_path / "run"
    printed = run_script(
        monkeypatch, capsys,
        "--kg_path", str(kg_path), "--encoder", str(tiny_encoder), "--output_dir", str(out_dir),
        "--max_steps", "1", "--per_device_train_batch_size", "4", "--num_negatives", "1", "--save_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true", "--seed", "3", "--eval_batch_size", "64",
        *sample,
    )
    metrics = json.loads((out_dir / "metrics.json").read_text())
    ranks = LinkPredictionResult.load(next((out_dir / "ranks").glob("lp-ranks-*.npz")))
    expected = 3 if sample[0] == "--num_test_queries" else 4  # 2 triples x 2 directions
    assert metrics["test_num_queries"] == metrics["ranked_queries"] == ranks.num_queries == ranks.total_queries == expected
    assert ranks.pairs_scored == expected * 20  # each query against all 20 entities, nothing more
    if sample[0] == "--num_test_queries":
        assert "(3 queries vs 20 entities;" in printed
        # a fixed sample: the triple rows come from the 4 test triples, seeded by --seed
        assert set(ranks.triple_index.tolist()) <= {0, 1, 2, 3} and metrics["ranked_triples"] == len(np.unique(ranks.triple_index))
    else:
        assert "(2 triples x 2 directions vs 20 entities;" in printed and metrics["ranked_triples"] == 2
