"""benchmarks/bench_ranking.py runs its CPU smoke setting on a tiny random model and writes positive rates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.examples.test_train_kgbert import write_plain_kg
from tests.training.test_collators import one_thread, tokenizer  # noqa: F401 - fixtures

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ranking.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_ranking", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_setting_writes_positive_rates(tmp_path, capsys, tokenizer):  # noqa: F811 - the fixture skips without MiniLM
    bench = load_benchmark()
    kg = write_plain_kg(tmp_path / "kg")
    out = tmp_path / "ranking.json"
    bench.main([
        "--device", "cpu", "--random-config", "tiny", "--kg", str(kg), "--num-queries", "2", "--max-candidates", "12",
        "--batch-size", "16", "--min-seconds", "0", "--json", str(out),
    ])
    report = json.loads(out.read_text())
    # 2 sampled queries against a 12-entity sub-graph holding their triples
    assert report["ours"]["queries"] == 2 and report["ours"]["candidates_per_query"] == 12 and report["ours"]["pairs"] == 24
    assert report["naive"]["pairs"] == 24 and report["model_alone"]["pairs"] >= 3 * 16
    for key in ("naive", "ours", "model_alone"):
        assert report[key]["pairs_per_second"] > 0
    assert report["ceiling_pairs_per_second"] > 0 and report["gflops_per_pair"] > 0
    assert all(value > 0 for value in report["ratios"].values())
    assert report["projected_hours"]["ours"] > 0 and report["wn18rr_test_pairs"] == 256_630_724
    assert "ours / naive" in capsys.readouterr().out
