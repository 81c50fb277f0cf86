"""Entity-name disambiguation, the name trie, constrained decoding and beam/exact link-prediction scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GenerationConfig

from hf_ctxdistill.evaluation import LinkPredictionEvaluator
from hf_ctxdistill.models.kgs2s import EntityNames, EntityTrie, KGS2SLinkPredictor
from hf_ctxdistill.training.kgs2s_collator import KGS2SCollator
from tests.models.kgs2s_helpers import (
    CONTEXTS,
    ENTITIES,
    knowledge_graph,
    single_thread,  # noqa: F401 - autouse fixture
    tiny_model,
    tokenizer,
)


@pytest.fixture(scope="module")
def names() -> EntityNames:
    return EntityNames.build(knowledge_graph(), tokenizer=tokenizer())


@pytest.fixture(scope="module")
def trained_t5(names):
    """A tiny T5 fitted briefly on the training triples, so scores are not uniform noise."""
    model = tiny_model("t5", seed=1)
    collator = KGS2SCollator.from_model(model, knowledge_graph(), tokenizer(), entity_names=names)
    batch = collator(list(knowledge_graph().triples("train")))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(20):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model


def test_disambiguation_rule(names):
    index = knowledge_graph().entity_index
    # unique names stay as they are
    assert names[index["paris"]] == "paris" and names[index["new york city"] if "new york city" in index else index["nyc"]] == "new york city"
    # a colliding pair gets the shortest description snippet that separates it (3 words)
    assert names[index["bank_river"]] == "bank (sloping land beside)"
    assert names[index["bank_money"]] == "bank (a financial institution)"
    # same tokens under the uncased tokenizer and the same description: the id settles it
    assert names[index["mercury_planet"]] == "mercury (the smallest planet of the solar system) [mercury_planet]"
    assert names[index["mercury_metal"]] == "Mercury (the smallest planet of the solar system) [mercury_metal]"
    assert sorted(names.disambiguated) == sorted(index[e] for e in ("bank_river", "bank_money", "mercury_planet", "mercury_metal"))
    assert len({tuple(t) for t in names.token_ids}) == len(ENTITIES)
    # without a tokenizer, "Mercury" and "mercury" are different strings and need no suffix
    plain = EntityNames.build(knowledge_graph())
    assert plain[index["mercury_metal"]] == "Mercury"
    # an entity without a description falls back to its id
    fallback = EntityNames.build(names=["x", "x", "y"], descriptions=[None, "first", None], ids=["a", "b", "c"])
    assert fallback.names == ["x [a]", "x (first)", "y"]
    assert fallback.index("x (first)") == 1 and fallback.index("nope") is None


def test_trie_allows_exactly_the_names(names):
    eos = tokenizer().sep_token_id
    trie = EntityTrie(names.token_ids, eos)
    new_york = names.token_ids[knowledge_graph().entity_index["nys"]]
    city = names.token_ids[knowledge_graph().entity_index["nyc"]]
    assert city[: len(new_york)] == new_york  # "new york" is a prefix of "new york city"
    after = trie.allowed(new_york)
    assert eos in after and city[len(new_york)] in after and len(after) == 2
    assert trie.lookup(new_york + [eos, 0, 0]) == knowledge_graph().entity_index["nys"]
    assert trie.lookup(new_york) is None and trie.lookup([eos]) is None and trie.allowed([999]) == []
    assert sorted(trie.allowed([])) == sorted({t[0] for t in names.token_ids})
    with pytest.raises(ValueError, match="same token sequence"):
        EntityTrie([[5, 6], [5, 6]], eos)


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_constrained_decoding_only_emits_entity_names(kind, names):
    """Property: whatever the (random) weights, every beam output is an entity name followed by EOS."""
    kg = knowledge_graph()
    model = tiny_model(kind, seed=7).eval()
    predictor = KGS2SLinkPredictor(model, tokenizer(), kg, entity_names=names, beam_size=5)
    rng = np.random.default_rng(0)
    entities = rng.integers(0, kg.num_entities, size=48)
    relations = rng.integers(0, kg.num_relations, size=48)
    sources = [predictor.formatter.query(e, r, "tail" if i % 2 else "head") for i, (e, r) in enumerate(zip(entities, relations))]
    encoded = tokenizer()(sources, padding=True, return_tensors="pt")
    batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    config = predictor._generation_config()
    config.return_dict_in_generate, config.output_scores = True, True
    with torch.no_grad():
        out = model.seq2seq.generate(
            **batch, generation_config=config, prefix_allowed_tokens_fn=predictor.trie.prefix_allowed_tokens_fn()
        )
    assert out.sequences.shape[0] == 48 * 5
    assert torch.isfinite(out.sequences_scores).all()
    for sequence in out.sequences[:, 1:].tolist():
        assert predictor.trie.lookup(sequence) is not None, tokenizer().decode(sequence)
    # and the predictor's view: distinct entities, at most beam_size of them, scored, the rest -inf
    scores = predictor.score_queries(entities, relations, "tail")
    finite = torch.isfinite(scores).sum(1)
    assert ((finite >= 1) & (finite <= 5)).all()


def test_unconstrained_model_would_not_emit_names(names):
    """The property above is not vacuous: the same random model decodes non-names without the trie."""
    model = tiny_model("t5", seed=7).eval()
    predictor = KGS2SLinkPredictor(model, tokenizer(), knowledge_graph(), entity_names=names, beam_size=2)
    batch = {"input_ids": tokenizer()(["predict tail : paris | capital of"], return_tensors="pt")["input_ids"]}
    config = GenerationConfig(**{**predictor._generation_config().to_dict(), "num_beams": 1, "num_return_sequences": 1})
    with torch.no_grad():
        free = model.seq2seq.generate(**batch, generation_config=config)
    assert predictor.trie.lookup(free[0, 1:].tolist()) is None


def test_exact_scores_agree_with_beam_scores(trained_t5, names):
    kg = knowledge_graph()
    beam = KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, mode="beam", beam_size=4)
    exact = KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, mode="exact", max_logits_elements=2**21)
    heads, relations = kg.triples("train")[:, 0], kg.triples("train")[:, 1]
    beam_scores = beam.score_tails(heads, relations)
    exact_scores = exact.score_tails(heads, relations)
    assert torch.isfinite(exact_scores).all()
    inside = torch.isfinite(beam_scores)
    assert (inside.sum(1) == 4).all()
    # a beam entry has exactly its exact score (beam search is approximate: it may miss a better entity)
    torch.testing.assert_close(beam_scores[inside], exact_scores[inside], atol=1e-4, rtol=1e-5)
    assert (exact_scores.max(1).values >= beam_scores.max(1).values - 1e-4).all()


def test_filtered_ranks_beam_versus_exact(trained_t5, names):
    """Wide beam (>= entities): identical ranks. Narrow beam: equal ranks for answers the beam holds,
    and the documented rule (expected position among the rest) for answers outside it."""
    kg = knowledge_graph()
    evaluator = LinkPredictionEvaluator(kg, split="train", progress=False, queries_per_call=16)
    exact = evaluator.run(KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, mode="exact"))
    wide = evaluator.run(KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, beam_size=kg.num_entities))
    np.testing.assert_array_equal(wide.optimistic, exact.optimistic)
    np.testing.assert_array_equal(wide.pessimistic, exact.pessimistic)
    narrow_predictor = KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, beam_size=3)
    narrow = evaluator.run(narrow_predictor)
    in_beam = narrow.optimistic == narrow.pessimistic  # the answer scored finite: no tie with the -inf rest
    assert in_beam.any() and (~in_beam).any()
    # in the beam: never worse than the true rank, and equal to it when no better entity was missed
    assert (narrow.optimistic[in_beam] <= exact.optimistic[in_beam]).all()
    exact_predictor = KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, mode="exact")
    triples, tails = evaluator.query_triples, evaluator.query_sides == 1
    known_entity = np.where(tails, triples[:, 0], triples[:, 2])
    answers = np.where(tails, triples[:, 2], triples[:, 0])
    beam_scores = torch.empty(len(triples), kg.num_entities)
    true_scores = torch.empty(len(triples), kg.num_entities)
    for side, chosen in (("tail", tails), ("head", ~tails)):
        beam_scores[chosen] = narrow_predictor.score_queries(known_entity[chosen], triples[chosen, 1], side)
        true_scores[chosen] = exact_predictor.score_queries(known_entity[chosen], triples[chosen, 1], side)
    known = {tuple(t) for t in kg.known_triples().tolist()}
    checked = 0
    for q, ((h, r, t), answer) in enumerate(zip(triples.tolist(), answers.tolist())):
        candidates = [(h, r, e) if tails[q] else (e, r, t) for e in range(kg.num_entities)]
        kept = [e for e in range(kg.num_entities) if e == answer or candidates[e] not in known]
        k, n = sum(bool(torch.isfinite(beam_scores[q, e])) for e in kept), len(kept)
        if in_beam[q]:
            better = [e for e in kept if true_scores[q, e] > true_scores[q, answer]]
            if all(torch.isfinite(beam_scores[q, e]) for e in better):
                assert narrow.optimistic[q] == exact.optimistic[q]
                checked += 1
        else:
            # outside: rank = (filtered beam entries) + (rest + 1) / 2 under the realistic rule
            assert narrow.ranks("realistic")[q] == pytest.approx(k + (n - k + 1) / 2)
            assert narrow.ranks("pessimistic")[q] == n and narrow.ranks("optimistic")[q] == k + 1
    assert checked > 0


def test_predict_single_query(trained_t5, names):
    kg = knowledge_graph()
    predictor = KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, mode="exact")
    answers = predictor.predict("paris", "capital_of", top_k=5)
    assert len(answers) == 5
    assert [a[2] for a in answers] == sorted((a[2] for a in answers), reverse=True)
    assert all(kg.entity_index[eid] >= 0 and names[kg.entity_index[eid]] == name for eid, name, _ in answers)
    beam = KGS2SLinkPredictor(trained_t5, tokenizer(), kg, entity_names=names, beam_size=3).predict("france", "part_of", top_k=10)
    assert 1 <= len(beam) <= 3
    with pytest.raises(ValueError, match="mode"):
        KGS2SLinkPredictor(trained_t5, tokenizer(), kg, mode="sampling")


def test_predictor_works_through_peft(trained_t5, names):
    import copy

    from peft import LoraConfig, get_peft_model

    model = copy.deepcopy(trained_t5)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=model.default_lora_target_modules()))
    predictor = KGS2SLinkPredictor(peft_model, tokenizer(), knowledge_graph(), entity_names=names, beam_size=3)
    plain = KGS2SLinkPredictor(trained_t5, tokenizer(), knowledge_graph(), entity_names=names, beam_size=3)
    # LoRA starts as the identity (B = 0): the same scores as the plain model
    torch.testing.assert_close(predictor.score_tails([0, 1], [0, 1]), plain.score_tails([0, 1], [0, 1]))
    assert CONTEXTS  # the helpers' contexts stay importable for the other test modules
