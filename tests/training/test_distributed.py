"""Multi-process code paths on CPU: two processes over gloo, started by ``torch.multiprocessing.spawn``.

One spawn runs both checks in each worker (process start-up and imports dominate the cost):

- **DDP training.** ``MultiTaskTrainer`` trains a tiny random ``ContextualizedKGBert`` with
  reconstruction (contexts for two triples in three) on 2 processes at per-device batch ``B``; the
  reference is 1 process at batch ``2B``. Both see the same data in the same order (accelerate's
  seedable sampler gives the same permutation for any process count, and rank ``r`` takes batch
  ``2s + r`` of size ``B``, i.e. one half of the reference's step-``s`` batch); the collator draws
  negatives and masks per example from ``(seed, epoch, triple)``, so the halves carry the same
  corruptions and masks as the whole; dropout is 0. What remains is float summation order.
- **Sharded ranking.** Each rank ranks its half of the test queries with ``LinkPredictionEvaluator``
  (``shard_index=rank``), writing a shard file; the shards, merged from the folder and from
  ``all_gather_object``, must equal one process ranking everything.

A third run trains with ``average_tokens_across_devices=False`` (each process divides its loss terms by
its own counts, DDP then averages): it must *not* match the reference, which shows the comparison can
tell global from per-process normalisation.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_ctxdistill.data import KnowledgeGraph
from hf_ctxdistill.evaluation import LinkPredictionEvaluator, LinkPredictionResult, merge_results
from hf_ctxdistill.models import KGBertTripleScorer
from hf_ctxdistill.training import MultiTaskTrainer
from tests.models.test_kgbert import tiny_bert
from tests.training.test_collators import one_thread, tiny_kg_dataset, tokenizer  # noqa: F401 - fixtures
from tests.training.test_multitask_trainer import make_args, make_collator, train_logs

WORLD = 2
BATCH = 4  # per process; the one-process reference uses WORLD * BATCH
NUM_TRAIN = 16  # two optimizer steps per epoch
STEPS = 4  # so the runs cross an epoch boundary (new permutation, new negatives and masks)
LOG_KEYS = ("loss", "kgc_loss", "reconstruction_loss", "grad_norm")
RUNS = {"global": {}, "per_process": {"average_tokens_across_devices": False}}


def tiny_data():
    return tiny_kg_dataset(num_train=NUM_TRAIN)


class RecordingCollator:
    """Wraps a collator and records, per batch, its rows and the number of masked context tokens."""

    def __init__(self, collator):
        self.collator = collator
        self.batches: list[dict] = []

    def __getattr__(self, name):
        return getattr(self.collator, name)

    def set_epoch(self, epoch: int) -> None:
        self.collator.set_epoch(epoch)

    def __call__(self, features):
        batch = self.collator(features)
        rows = [[f["head"], f["relation"], f["tail"]] for f in features]
        self.batches.append({"rows": rows, "masked": int(batch["mlm_labels"].ne(-100).sum())})
        return batch


def train(out: Path, kg, kg_data, tokenizer, batch: int, **overrides):  # noqa: F811
    """SGD (an update linear in the gradient: Adam's g / (|g| + eps) would turn summation-order noise in
    near-zero gradients into differences of the size of the learning rate) with clipping, constant lr."""
    model = tiny_bert()
    args = make_args(
        out,
        per_device_train_batch_size=batch,
        max_steps=STEPS,
        optim="sgd",
        learning_rate=0.2,
        lr_scheduler_type="constant",
        **overrides,
    )
    collator = RecordingCollator(make_collator(kg, kg_data, tokenizer))
    trainer = MultiTaskTrainer(model, args, data_collator=collator, train_dataset=kg_data["train"])
    trainer.train()
    return model, train_logs(trainer), collator.batches[:STEPS]


def rank_evaluator(kg, output_dir=None) -> LinkPredictionEvaluator:
    # 50 pairs per call over 20 entities: scorer batches span query boundaries
    return LinkPredictionEvaluator(kg, "test", batch_size=50, output_dir=output_dir, progress=False)


def rank_scorer(kg, tokenizer):  # noqa: F811
    return KGBertTripleScorer(tiny_bert().eval(), kg, tokenizer, batch_size=32)


# ---------------------------------------------------------------------------------------------- workers
def _worker(rank: int, world: int, port: int, out: str) -> None:
    """One DDP process: rank its query shard, then train once per entry of RUNS; rank 0 saves results."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world), ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1",
    )  # fmt: skip
    torch.set_num_threads(1)
    # Initialised here (accelerate reuses the group) so that a stuck collective fails within a minute.
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=90))
    try:
        from transformers import AutoTokenizer

        from hf_ctxdistill.models import minilm_path

        out_dir = Path(out)
        tok = AutoTokenizer.from_pretrained(minilm_path())
        kg_data = tiny_data()
        kg = KnowledgeGraph.from_dataset(kg_data)

        shard = rank_evaluator(kg, out_dir / "ranks").run(
            rank_scorer(kg, tok), shard_index=rank, num_shards=world
        )
        gathered: list = [None] * world
        torch.distributed.all_gather_object(gathered, shard)
        if rank == 0:
            merge_results(gathered, require_complete=True).save(out_dir / "gathered.npz")

        for name, overrides in RUNS.items():
            # ddp_backend only here (with one process accelerate would look for a process group to use);
            # no search for unused parameters: the model puts every parameter in the graph of each step
            model, logs, batches = train(
                out_dir / name,
                kg,
                kg_data,
                tok,
                BATCH,
                ddp_backend="gloo",
                ddp_find_unused_parameters=False,
                **overrides,
            )
            (out_dir / f"{name}-batches-{rank}.json").write_text(json.dumps(batches))
            if rank == 0:
                torch.save(model.state_dict(), out_dir / f"{name}.pt")
                (out_dir / f"{name}-logs.json").write_text(json.dumps(logs))
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, tokenizer):  # noqa: F811 - the tokenizer fixture skips without MiniLM
    out = tmp_path_factory.mktemp("ddp")
    torch.multiprocessing.spawn(_worker, args=(WORLD, _free_port(), str(out)), nprocs=WORLD, join=True)
    return out


@pytest.fixture(scope="module")
def data():
    kg_data = tiny_data()
    return kg_data, KnowledgeGraph.from_dataset(kg_data)


# ---------------------------------------------------------------------------------------------- tests
def test_ddp_training_equals_one_process_at_double_batch(two_processes, data, tokenizer, tmp_path):  # noqa: F811
    kg_data, kg = data
    reference, reference_logs, reference_batches = train(tmp_path, kg, kg_data, tokenizer, WORLD * BATCH)
    shards = [json.loads((two_processes / f"global-batches-{r}.json").read_text()) for r in range(WORLD)]

    # Same data: at every step the ranks' batches are the halves of the reference batch, and they hold
    # different numbers of masked tokens (so per-process and global normalisation differ).
    assert len(reference_batches) == STEPS and all(len(s) == STEPS for s in shards)
    for step, whole in enumerate(reference_batches):
        assert sum((s[step]["rows"] for s in shards), []) == whole["rows"], step
        assert sum(s[step]["masked"] for s in shards) == whole["masked"], step
    assert sum(shards[0][s]["masked"] != shards[1][s]["masked"] for s in range(STEPS)) >= STEPS - 1

    # Same training: per-step losses (mean over processes of the globally normalised terms) ...
    logs = json.loads((two_processes / "global-logs.json").read_text())
    assert [e["step"] for e in logs] == [e["step"] for e in reference_logs] == list(range(1, STEPS + 1))
    for got, want in zip(logs, reference_logs):
        for key in LOG_KEYS:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (got["step"], key)
    assert len({round(e["loss"], 6) for e in logs}) == STEPS  # the loss moved from step to step
    # ... and the same weights after STEPS updates (all-reduced gradients vs one full batch: float
    # summation order is the only difference).
    ddp = torch.load(two_processes / "global.pt")
    start = tiny_bert().state_dict()
    for name, value in reference.state_dict().items():
        assert torch.allclose(ddp[name], value, atol=1e-6, rtol=1e-4), name
    assert not torch.allclose(reference.classifier.out_proj.weight, start["classifier.out_proj.weight"])
    assert not torch.allclose(
        reference.encoder.cls.predictions.transform.dense.weight,
        start["encoder.cls.predictions.transform.dense.weight"],
    )

    # Per-process normalisation (each rank divides by its own counts) is what the check must catch.
    per_process_logs = json.loads((two_processes / "per_process-logs.json").read_text())
    # (The loss values barely move: a random model's token losses are all near log(vocabulary size), so
    # averaging per-process means is close to the global mean; the gradient norm shows the difference.)
    differs = [
        abs(got["grad_norm"] - want["grad_norm"]) > 1e-2 * want["grad_norm"]
        for got, want in zip(per_process_logs, reference_logs)
    ]
    assert differs[0] and sum(differs) >= STEPS - 1, (per_process_logs, reference_logs)
    per_process = torch.load(two_processes / "per_process.pt")
    weight = "encoder.cls.predictions.transform.dense.weight"
    assert not torch.allclose(per_process[weight], reference.state_dict()[weight], atol=1e-4, rtol=1e-3)


def test_sharded_ranking_merges_to_the_one_process_ranking(two_processes, data, tokenizer):  # noqa: F811
    _, kg = data
    evaluator = rank_evaluator(kg)
    full = evaluator.run(rank_scorer(kg, tokenizer))
    assert full.complete and full.num_queries == 8

    files = sorted((two_processes / "ranks").glob("lp-ranks-*.npz"))
    shards = [LinkPredictionResult.load(f) for f in files]
    assert [s.extra["range"] for s in shards] == [[0, 4], [4, 8]]  # one contiguous range per rank
    assert all(s.pairs_scored == 4 * kg.num_entities for s in shards)  # each rank scored its own queries only
    from_files = evaluator.merge(two_processes / "ranks", require_complete=True)
    from_gather = LinkPredictionResult.load(two_processes / "gathered.npz")
    for merged in (from_files, from_gather):
        np.testing.assert_array_equal(merged.query_ids, full.query_ids)
        np.testing.assert_array_equal(merged.triples, full.triples)
        np.testing.assert_array_equal(merged.optimistic, full.optimistic)
        np.testing.assert_array_equal(merged.pessimistic, full.pessimistic)
        assert merged.metrics() == full.metrics()
    assert len(set(full.ranks().tolist())) > 2  # a real ranking, not all ties
