"""KGS2SCollator: task formats and targets, contexts keyed by triple, dynamic span masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_ctxdistill.models.kgs2s import EntityNames
from hf_ctxdistill.training.kgs2s_collator import KGS2SCollator, random_spans_noise_mask
from tests.models.kgs2s_helpers import (
    CONTEXTS,
    TRAIN,
    kg_dataset,
    knowledge_graph,
    single_thread,  # noqa: F401 - autouse fixture
    tiny_model,
    tokenizer,
)


def decode(ids: torch.Tensor) -> str:
    return tokenizer().decode([int(i) for i in ids if int(i) >= 0], skip_special_tokens=False)


def collator(**kwargs) -> KGS2SCollator:
    kwargs.setdefault("tasks", ("kgc", "contextualization", "reconstruction"))
    return KGS2SCollator(knowledge_graph(), tokenizer(), CONTEXTS, seed=0, **kwargs)


def test_kgc_examples_are_tail_and_head_queries_with_name_targets():
    col = collator(tasks=("kgc",))
    batch = col([("paris", "capital_of", "france"), {"head": "seine", "relation": "flows_through", "tail": "paris"}])
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape[0] == 4  # two triples x (tail query, head query)
    sources = [decode(row[mask.bool()]) for row, mask in zip(batch["input_ids"], batch["attention_mask"])]
    assert sources[0] == "[CLS] predict tail : paris | capital of | capital and largest city of france [SEP]"
    assert sources[1] == "[CLS] predict head : france | capital of | a country in western europe [SEP]"
    assert sources[3].startswith("[CLS] predict head : paris | flows through")
    targets = [decode(row) for row in batch["labels"]]
    assert targets == ["france [SEP]", "paris [SEP]", "paris [SEP]", "seine [SEP]"]
    # -100 exactly at the padding after each target's EOS
    assert (batch["labels"][0] == -100).sum() == batch["labels"].shape[1] - 2


def test_descriptions_off_and_single_direction():
    col = collator(tasks=("kgc",), use_descriptions=False, directions=("tail",))
    batch = col([("paris", "capital_of", "france")])
    assert decode(batch["input_ids"][0]) == "[CLS] predict tail : paris | capital of [SEP]"
    assert batch["labels"].shape[0] == 1


def test_disambiguated_names_are_targets():
    col = collator(tasks=("kgc",))
    batch = col([("bank_river", "part_of", "river")])
    assert decode(batch["labels"][1]) == "bank ( sloping land beside ) [SEP]"


def test_contexts_follow_the_triple_not_the_position():
    col = collator()
    rows = [("france", "borders", "germany"), ("berlin", "capital_of", "germany"), ("paris", "capital_of", "france")]
    batch = col(rows)
    # one auxiliary example per triple WITH a context (the first has none), in row order
    assert batch["context_input_ids"].shape[0] == 2
    assert batch["reconstruction_input_ids"].shape[0] == 2
    sources = [decode(r[m.bool()]) for r, m in zip(batch["context_input_ids"], batch["context_attention_mask"])]
    assert sources == [
        "[CLS] contextualize : berlin | capital of | germany [SEP]",
        "[CLS] contextualize : paris | capital of | france [SEP]",
    ]
    assert decode(batch["context_labels"][0]).startswith("berlin is the capital of germany")
    assert decode(batch["context_labels"][1]).startswith("paris is the capital of france")
    assert decode(batch["reconstruction_labels"][1]) == decode(batch["context_labels"][1])
    # reversing the rows reverses the auxiliary examples (lookup by key)
    flipped = col(rows[::-1])
    assert decode(flipped["context_labels"][0]).startswith("paris is the capital")


def test_batch_without_contexts_has_empty_auxiliary_sub_batches():
    batch = collator()([("france", "borders", "germany")])
    for key in ("context_input_ids", "context_labels", "reconstruction_input_ids", "reconstruction_labels"):
        assert batch[key].shape[0] == 0
    model = tiny_model("t5", use_reconstruction=True)
    out = model(**batch)
    assert out.contextualization_loss.item() == 0.0 and out.reconstruction_loss.item() == 0.0
    assert torch.isfinite(out.loss) and torch.allclose(out.loss, 0.5 * out.kgc_loss)


def test_reconstruction_masks_are_dynamic_and_reproducible():
    col = collator(tasks=("kgc", "reconstruction"))
    mask_id = tokenizer().mask_token_id
    row = ("paris", "capital_of", "france")
    col.set_epoch(0)
    a = col([row])["reconstruction_input_ids"][0]
    b = col([("berlin", "capital_of", "germany"), row])["reconstruction_input_ids"][1]  # other batch company
    col.set_epoch(1)
    c = col([row])["reconstruction_input_ids"][0]
    strip = lambda t: [int(i) for i in t if int(i) != tokenizer().pad_token_id]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)
    assert mask_id in strip(a) and decode(torch.tensor(strip(a))).startswith("[CLS] reconstruct :")


def test_span_mask_statistics():
    gen = np.random.default_rng(0)
    for length in (2, 7, 20, 100, 257):
        mask = random_spans_noise_mask(length, 0.15, 3.0, gen)
        assert mask.sum() == int(np.clip(round(length * 0.15), 1, length - 1))
        # spans counted cyclically (the pattern is rotated by a random offset)
        spans = int(np.sum(mask & ~np.roll(mask, 1)))
        assert spans == min(max(1, round(mask.sum() / 3.0)), mask.sum(), length - mask.sum())
    # the rotation lets a single span fall anywhere, not always on the last tokens
    starts = {int(np.argmax(random_spans_noise_mask(20, 0.15, 3.0, gen))) for _ in range(50)}
    assert len(starts) > 5
    assert random_spans_noise_mask(1, 0.15, 3.0, gen).sum() == 0
    # masking collapses each span to one mask token
    col = collator(tasks=("kgc", "reconstruction"))
    ids = list(range(1000, 1040))
    masked = col.mask_context(ids, np.random.default_rng(3))
    noise = random_spans_noise_mask(40, 0.15, 3.0, np.random.default_rng(3))
    assert masked.count(col.mask_token_id) == int(np.sum(noise[1:] & ~noise[:-1]) + noise[0])
    assert len(masked) == 40 - noise.sum() + masked.count(col.mask_token_id)


def test_from_model_reads_the_configuration():
    model = tiny_model("bart", use_contextualization=True, use_reconstruction=False, use_descriptions=False, context_max_length=12)
    col = KGS2SCollator.from_model(model, knowledge_graph(), tokenizer(), CONTEXTS)
    assert col.tasks == ("kgc", "contextualization")
    assert col.eos_token_id == model.config.eos_token_id
    batch = col([("paris", "capital_of", "france")])
    assert batch["context_labels"].shape[1] == 12  # context truncated to the budget, EOS included
    assert int(batch["context_labels"][0, -1]) == model.config.eos_token_id
    assert KGS2SCollator.from_model(model, knowledge_graph(), tokenizer()).tasks == ("kgc",)


def test_dataset_rows_and_names_shared_with_predictor():
    data = kg_dataset()
    names = EntityNames.build(knowledge_graph(), tokenizer=tokenizer())
    col = KGS2SCollator(knowledge_graph(), tokenizer(), CONTEXTS, entity_names=names)
    batch = col([data["train"][i] for i in range(len(TRAIN))])
    assert batch["input_ids"].shape[0] == 2 * len(TRAIN)
    assert batch["context_input_ids"].shape[0] == sum(t in CONTEXTS for t in TRAIN)
    with pytest.raises(ValueError, match="need contexts"):
        KGS2SCollator(knowledge_graph(), tokenizer(), None, tasks=("kgc", "contextualization"))
