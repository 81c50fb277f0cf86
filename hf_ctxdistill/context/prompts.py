"""Generating paths as named, editable prompt templates.

A generating path says what the LLM is asked to write for a triple (or an entity). The paper's main path
``ed+td`` (T -> (ED, TD): entity descriptions and the triple description in one paragraph) uses the authors'
prompt verbatim, with its eight positional slots. The ablation paths ``ed``, ``td``, ``ra`` and ``ed->td``
were studied in the paper but their wording was not released: the wording here is ours.

Templates are plain data (:class:`PromptTemplate`): print one, change it with ``dataclasses.replace`` or
save it as JSON, edit and load it back (:func:`load_prompt_template`). The template text and a hash of
everything that shapes the prompt are stored with every generated context, so a corpus says how it was made
and a changed template never reuses contexts cached for the old one.

Fields a template can use (named ``{field}`` slots, or positional ``{}`` slots listed in ``slots``):

* triple level: ``head``, ``relation``, ``tail`` (names), ``head_description``, ``tail_description``
  (the KG's own descriptions, empty when absent); after an entity step (``requires``) also
  ``head_context`` and ``tail_context`` (the generated entity descriptions).
* entity level: ``entity`` (name) and ``entity_description``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LEVELS = ("triple", "entity")
TRIPLE_FIELDS = ("head", "relation", "tail", "head_description", "tail_description")
STEP_FIELDS = ("head_context", "tail_context")
ENTITY_FIELDS = ("entity", "entity_description")

#: The paper's main-path prompt, verbatim from the authors' code (``KGE-LLM/distill_palm.py``).
PAPER_ED_TD_PROMPT = (
    'Given a triplet ({} | {} | {}), please generate a paragraph at least 100 words to introduce "{}" and "{}" '
    'respectively and reflect their relationship {}. "{}" and "{}" must concluded in the generated text.'
)
PAPER_ED_TD_SLOTS = ("head", "relation", "tail", "head", "tail", "relation", "head", "tail")


@dataclass(frozen=True)
class PromptTemplate:
    """One generating path's prompt.

    Args:
        name: the path name stored in the corpus ``path`` column (``"ed+td"``, ``"td"``, your own...).
        template: ``str.format`` text; named fields (``{head}``) or positional ``{}`` slots with ``slots``.
        level: ``"triple"`` (one call per triple) or ``"entity"`` (one call per entity, shared by every
            triple that mentions it).
        system: an optional system message sent before the prompt.
        slots: for positional templates, the field that fills each ``{}`` in order.
        requires: an entity-level template run first; its outputs fill ``{head_context}`` and
            ``{tail_context}`` (the two-step ``ed->td`` path).
        description: one line for docs and dataset cards.
    """

    name: str
    template: str
    level: str = "triple"
    system: str | None = None
    slots: tuple[str, ...] | None = None
    requires: PromptTemplate | None = None
    description: str = ""
    _fields: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("a prompt template needs a non-empty name")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        if self.slots is not None and not isinstance(self.slots, tuple):
            object.__setattr__(self, "slots", tuple(self.slots))
        if self.requires is not None:
            if self.level != "triple" or self.requires.level != "entity":
                raise ValueError("'requires' links a triple-level template to an entity-level one")
        allowed = set(ENTITY_FIELDS if self.level == "entity" else TRIPLE_FIELDS)
        if self.requires is not None:
            allowed |= set(STEP_FIELDS)
        used = _template_fields(self.template)
        positional = [f for f in used if f == ""]
        named = [f for f in used if f != ""]
        if positional and named:
            raise ValueError(f"template {self.name!r} mixes positional {{}} and named {{field}} slots")
        if positional:
            if self.slots is None or len(self.slots) != len(positional):
                raise ValueError(
                    f"template {self.name!r} has {len(positional)} positional slot(s); pass slots= naming the "
                    f"field of each (got {self.slots})"
                )
            named = list(self.slots)
        elif self.slots:
            raise ValueError(f"template {self.name!r} has no positional slots but slots={self.slots} was given")
        unknown = sorted(set(named) - allowed)
        if unknown:
            raise ValueError(f"template {self.name!r} uses unknown field(s) {unknown}; {self.level}-level fields: {sorted(allowed)}")
        object.__setattr__(self, "_fields", tuple(named))

    # ------------------------------------------------------------------ rendering
    def render(self, values: Mapping[str, str | None]) -> str:
        """Fill the template; missing optional values become empty strings."""
        filled = {name: "" if values.get(name) is None else str(values[name]) for name in self._fields}
        if self.slots is not None:
            return self.template.format(*(filled[name] for name in self.slots))
        return self.template.format(**filled)

    def messages(self, values: Mapping[str, str | None]) -> list[dict[str, str]]:
        """The chat messages for one call: the optional system message, then the filled prompt."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        out.append({"role": "user", "content": self.render(values)})
        return out

    # ------------------------------------------------------------------ identity and storage
    @property
    def prompt_hash(self) -> str:
        """A short hash of everything that shapes the prompt (text, slots, system message, level and the
        required step); part of every cache key, so an edited template never reuses old contexts."""
        payload = json.dumps(self._identity(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def _identity(self) -> dict:
        return {
            "template": self.template,
            "level": self.level,
            "system": self.system,
            "slots": list(self.slots) if self.slots is not None else None,
            "requires": self.requires._identity() if self.requires is not None else None,
        }

    def to_dict(self) -> dict:
        """A JSON-ready dict (what :func:`save_prompt_template` writes and the corpus metadata holds)."""
        return {
            "name": self.name,
            "template": self.template,
            "level": self.level,
            "system": self.system,
            "slots": list(self.slots) if self.slots is not None else None,
            "requires": self.requires.to_dict() if self.requires is not None else None,
            "description": self.description,
            "prompt_hash": self.prompt_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> PromptTemplate:
        """Inverse of :meth:`to_dict` (``prompt_hash`` is recomputed, never trusted from the file)."""
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = set(data) - known - {"prompt_hash"}
        if unknown:
            raise ValueError(f"unknown prompt template key(s) {sorted(unknown)}; expected {sorted(known)}")
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("requires") is not None and not isinstance(kwargs["requires"], PromptTemplate):
            kwargs["requires"] = cls.from_dict(kwargs["requires"])
        if kwargs.get("slots") is not None:
            kwargs["slots"] = tuple(kwargs["slots"])
        return cls(**kwargs)


def _template_fields(template: str) -> list[str]:
    fields = []
    for _, name, _spec, _ in string.Formatter().parse(template):
        if name is None:
            continue
        if name.isdigit():
            raise ValueError("numbered slots like {0} are not supported: use {} with slots=, or named fields")
        fields.append(name)
    return fields


# ---------------------------------------------------------------------- built-in paths
_ENTITY_DESCRIPTION = PromptTemplate(
    name="ed",
    level="entity",
    template=(
        'Write a paragraph of at least 80 words that introduces "{entity}". '
        'Explain what "{entity}" is, what it is known for and how it relates to other things. '
        'The name "{entity}" must appear in the text.'
    ),
    description="T -> ED: one description per entity, generated once per entity and shared by its triples.",
)

PROMPT_TEMPLATES: dict[str, PromptTemplate] = {
    "ed+td": PromptTemplate(
        name="ed+td",
        template=PAPER_ED_TD_PROMPT,
        slots=PAPER_ED_TD_SLOTS,
        description="T -> (ED, TD): the paper's main path; the authors' prompt, verbatim.",
    ),
    "ed": _ENTITY_DESCRIPTION,
    "td": PromptTemplate(
        name="td",
        template=(
            'Consider the fact ({head} | {relation} | {tail}). Write a paragraph of at least 80 words describing '
            'this fact: how "{head}" is connected to "{tail}" through the relation "{relation}". '
            'Both "{head}" and "{tail}" must appear in the text.'
        ),
        description="T -> TD: a description of the triple itself.",
    ),
    "ra": PromptTemplate(
        name="ra",
        template=(
            'The fact ({head} | {relation} | {tail}) is true. In a paragraph of at least 80 words, explain step by '
            'step why "{head}" stands in the relation "{relation}" to "{tail}", using what each of them is. '
            'Both "{head}" and "{tail}" must appear in the text.'
        ),
        description="T -> RA: a rationale explaining why the triple holds.",
    ),
    "ed->td": PromptTemplate(
        name="ed->td",
        template=(
            'Here are descriptions of two entities.\n"{head}": {head_context}\n"{tail}": {tail_context}\n'
            'Using these descriptions, write a paragraph of at least 80 words describing the fact '
            '({head} | {relation} | {tail}): how "{head}" is connected to "{tail}" through the relation '
            '"{relation}". Both "{head}" and "{tail}" must appear in the text.'
        ),
        requires=_ENTITY_DESCRIPTION,
        description="T -> ED -> TD: entity descriptions first, then a triple description conditioned on them.",
    ),
}


def get_prompt_template(spec: str | PromptTemplate | Path | Mapping) -> PromptTemplate:
    """Resolve a path name (``"ed+td"``, ``"ed"``, ``"td"``, ``"ra"``, ``"ed->td"``), a
    :class:`PromptTemplate`, a dict from :meth:`PromptTemplate.to_dict`, or a JSON file written by
    :func:`save_prompt_template`."""
    if isinstance(spec, PromptTemplate):
        return spec
    if isinstance(spec, Mapping):
        return PromptTemplate.from_dict(spec)
    if isinstance(spec, str) and spec in PROMPT_TEMPLATES:
        return PROMPT_TEMPLATES[spec]
    if isinstance(spec, (str, Path)) and Path(spec).suffix == ".json" and Path(spec).is_file():
        return load_prompt_template(spec)
    raise KeyError(f"unknown generating path {spec!r}; built-in paths: {list(PROMPT_TEMPLATES)} (or pass a PromptTemplate or a .json file)")


def save_prompt_template(template: PromptTemplate, file: str | Path) -> Path:
    """Write a template as JSON, to edit by hand and load with :func:`load_prompt_template`."""
    file = Path(file)
    file.write_text(json.dumps(template.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return file


def load_prompt_template(file: str | Path) -> PromptTemplate:
    """Read a template written by :func:`save_prompt_template` (or by hand, same keys)."""
    return PromptTemplate.from_dict(json.loads(Path(file).read_text(encoding="utf-8")))


__all__ = [
    "PAPER_ED_TD_PROMPT",
    "PAPER_ED_TD_SLOTS",
    "PROMPT_TEMPLATES",
    "PromptTemplate",
    "get_prompt_template",
    "load_prompt_template",
    "save_prompt_template",
]
