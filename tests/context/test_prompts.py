"""Prompt templates: the paper's prompt verbatim, our named paths, editing, hashing and JSON round trips."""

from __future__ import annotations

import dataclasses

import pytest

from hf_ctxdistill import KnowledgeGraph
from hf_ctxdistill.context.prompts import (
    PROMPT_TEMPLATES,
    PromptTemplate,
    get_prompt_template,
    load_prompt_template,
    save_prompt_template,
)
from tests.context.llm_helpers import write_kgbert

PAPER_FILLED = (
    'Given a triplet (dog | hypernym | canine), please generate a paragraph at least 100 words to introduce "dog" '
    'and "canine" respectively and reflect their relationship hypernym. "dog" and "canine" must concluded in the '
    "generated text."
)


def test_main_path_is_the_papers_prompt_verbatim():
    template = get_prompt_template("ed+td")
    assert template.level == "triple" and template.requires is None
    assert template.render({"head": "dog", "relation": "hypernym", "tail": "canine"}) == PAPER_FILLED
    # The eight slots in the authors' order: head, relation, tail, head, tail, relation, head, tail.
    assert template.slots == ("head", "relation", "tail", "head", "tail", "relation", "head", "tail")


def test_wordnet_names_are_the_text_before_the_first_comma(tmp_path):
    kg = KnowledgeGraph.from_path(
        write_kgbert(
            tmp_path / "wn",
            [("02084071", "_hypernym", "02083346")],
            {"02084071": "dog, a member of the genus Canis", "02083346": "canine, any of various fissiped mammals"},
            {"_hypernym": "hypernym"},
        )
    )
    h, r, t = kg.triples("train")[0]
    values = {"head": kg.entity_names[h], "relation": kg.relation_names[r], "tail": kg.entity_names[t]}
    assert get_prompt_template("ed+td").render(values) == PAPER_FILLED


def test_every_builtin_path_renders_and_has_the_right_level():
    triple = {"head": "paris", "relation": "capital of", "tail": "france", "head_context": "HC", "tail_context": "TC"}
    for name, template in PROMPT_TEMPLATES.items():
        assert template.name == name
        if template.level == "entity":
            text = template.render({"entity": "paris"})
            assert '"paris"' in text
        else:
            text = template.render(triple)
            assert "paris" in text and "france" in text
    assert PROMPT_TEMPLATES["ed"].level == "entity"
    assert PROMPT_TEMPLATES["ed->td"].requires is PROMPT_TEMPLATES["ed"]
    assert "HC" in PROMPT_TEMPLATES["ed->td"].render(triple) and "TC" in PROMPT_TEMPLATES["ed->td"].render(triple)
    assert len({t.prompt_hash for t in PROMPT_TEMPLATES.values()}) == len(PROMPT_TEMPLATES)


def test_editing_changes_the_hash_and_json_round_trip_keeps_it(tmp_path):
    original = get_prompt_template("td")
    edited = dataclasses.replace(original, template=original.template + " Be concise.")
    assert edited.prompt_hash != original.prompt_hash
    assert dataclasses.replace(original, system="You are terse.").prompt_hash != original.prompt_hash
    assert dataclasses.replace(original, description="other words").prompt_hash == original.prompt_hash  # not in the prompt
    file = save_prompt_template(edited, tmp_path / "mine.json")
    loaded = load_prompt_template(file)
    assert loaded == edited and loaded.prompt_hash == edited.prompt_hash
    assert get_prompt_template(str(file)) == edited
    chained = PROMPT_TEMPLATES["ed->td"]
    assert PromptTemplate.from_dict(chained.to_dict()) == chained


def test_system_message_and_custom_entity_template():
    mine = PromptTemplate(name="gloss", level="entity", template="Define {entity} ({entity_description}).", system="Be brief.")
    messages = mine.messages({"entity": "bank", "entity_description": "a financial institution"})
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Define bank (a financial institution)."},
    ]
    assert mine.render({"entity": "bank"}) == "Define bank ()."  # a missing description renders empty


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"template": "About {head} and {colour}"}, "unknown field"),
        ({"template": "About {} and {}"}, "positional slot"),
        ({"template": "About {} and {}", "slots": ("head",)}, "positional slot"),
        ({"template": "About {head} and {}", "slots": ("tail",)}, "mixes"),
        ({"template": "About {entity}"}, "unknown field"),  # an entity field in a triple-level template
        ({"template": "About {0}"}, "numbered"),
        ({"template": "About {head}", "level": "relation"}, "level"),
        ({"template": "About {head}", "requires": PROMPT_TEMPLATES["td"]}, "requires"),
    ],
)
def test_bad_templates_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PromptTemplate(name="bad", **kwargs)


def test_unknown_path_names_the_builtin_ones():
    with pytest.raises(KeyError, match="ed\\+td"):
        get_prompt_template("t->x")
