"""Entity names that map 1:1 to entities, as a generative link predictor needs them.

A generative model answers a query with a *name*; the answer is an entity only if no two entities share
that name. Real KGs break this: WN18RR's 40,943 entities have 32,547 distinct names under the MiniLM
tokenizer ("run" names 33 synsets), and FB15k-237 repeats names of people, films and places. KG-S2S made names unique by
attaching disambiguating text; :class:`EntityNames` does the same with this rule:

1. The base name is the KG's name with whitespace collapsed (the entity id when the KG has no name).
2. Two names *collide* when they tokenize to the same ids (so ``"Paris"`` and ``"paris"`` collide under an
   uncased tokenizer; without a tokenizer, when the strings are equal).
3. Every entity of a colliding group gets a snippet of its description: ``"run (move fast by using one's
   feet)"``. The snippet is the first ``k`` words of the description for the smallest ``k`` in
   ``snippet_words`` (default 3, 6, 12) that makes the whole group distinct, and distinct from every other
   entity's name. A member without a description gets its entity id in brackets instead:
   ``"run [01926311]"``.
4. When the longest snippet still leaves the group ambiguous (identical descriptions), the entities whose
   name is still shared get the entity id appended as well: ``"run (move fast) [01926311]"``; the others
   keep their snippet.
5. Entities whose names do not collide keep them unchanged.

The result is checked: every final name tokenizes differently, otherwise ``ValueError`` is raised (a
tokenizer that maps different ids to the same tokens, e.g. all to ``[UNK]``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

DEFAULT_SNIPPET_WORDS: tuple[int, ...] = (3, 6, 12)


def _clean(text: str | None) -> str:
    return " ".join(str(text).split()) if text else ""


def _snippet(description: str | None, words: int) -> str:
    parts = _clean(description).split()
    if not parts:
        return ""
    return " ".join(parts[:words]).rstrip(",;:.")


class EntityNames:
    """One unique display name per entity (index-aligned with the KG's entities), with their token ids.

    Build with :meth:`build`; see the module docstring for the disambiguation rule.

    Attributes:
        names: The final names, ``names[i]`` for entity index ``i``.
        token_ids: ``token_ids[i]``: the name tokenized without special tokens (``None`` without a tokenizer).
        base_names: The KG's names before disambiguation.
        disambiguated: Indices of the entities whose name was extended.
    """

    def __init__(
        self,
        names: Sequence[str],
        token_ids: Sequence[Sequence[int]] | None = None,
        base_names: Sequence[str] | None = None,
    ) -> None:
        self.names: list[str] = list(names)
        self.token_ids: list[list[int]] | None = [list(t) for t in token_ids] if token_ids is not None else None
        if self.token_ids is not None and len(self.token_ids) != len(self.names):
            raise ValueError(f"{len(self.token_ids)} token sequences for {len(self.names)} names")
        self.base_names: list[str] = list(base_names) if base_names is not None else list(self.names)
        self.disambiguated: list[int] = [i for i, (a, b) in enumerate(zip(self.names, self.base_names)) if a != b]
        keys = [tuple(t) for t in self.token_ids] if self.token_ids is not None else self.names
        self._index: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            if key in self._index:
                raise ValueError(f"entities {self._index[key]} and {i} have indistinguishable names {self.names[i]!r}")
            self._index[key] = i
        if self.token_ids is not None and any(len(t) == 0 for t in self.token_ids):
            empty = next(i for i, t in enumerate(self.token_ids) if len(t) == 0)
            raise ValueError(f"entity {empty} has a name that tokenizes to nothing: {self.names[empty]!r}")

    @classmethod
    def build(
        cls,
        kg: Any = None,
        *,
        names: Sequence[str | None] | None = None,
        descriptions: Sequence[str | None] | None = None,
        ids: Sequence[str] | None = None,
        tokenizer: Any = None,
        snippet_words: Iterable[int] = DEFAULT_SNIPPET_WORDS,
    ) -> EntityNames:
        """Disambiguate the names of ``kg`` (a :class:`~hf_ctxdistill.data.KnowledgeGraph`) or of explicit
        ``names``/``descriptions``/``ids`` lists.

        Args:
            kg: Supplies ``entity_names``, ``entity_descriptions`` and ``entity_ids``.
            names, descriptions, ids: Explicit lists instead of (or overriding) the KG's.
            tokenizer: Names collide when they tokenize alike (recommended: the model's tokenizer).
            snippet_words: Description lengths tried, shortest first.
        """
        if kg is not None:
            names = kg.entity_names if names is None else names
            descriptions = kg.entity_descriptions if descriptions is None else descriptions
            ids = kg.entity_ids if ids is None else ids
        if names is None:
            raise ValueError("give a KnowledgeGraph or a list of names")
        count = len(names)
        ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(count)]
        descriptions = list(descriptions) if descriptions is not None else [None] * count
        if len(ids) != count or len(descriptions) != count:
            raise ValueError(f"{count} names, {len(ids)} ids and {len(descriptions)} descriptions: lengths differ")
        base = [_clean(n) or ids[i] for i, n in enumerate(names)]
        lengths = sorted({int(k) for k in snippet_words if int(k) > 0})

        def keys_of(texts: list[str]) -> list[Hashable]:
            if tokenizer is None:
                return list(texts)
            if not texts:
                return []
            encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
            return [tuple(e) for e in encoded]

        keys = keys_of(base)
        groups: dict[Hashable, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            groups[key].append(i)
        final = list(base)
        final_keys = list(keys)
        taken = {key for key, members in groups.items() if len(members) == 1}
        pending = sorted((m for m in groups.values() if len(m) > 1), key=lambda m: m[0])
        fallback: dict[int, str] = {i: base[i] for members in pending for i in members}
        for words in lengths:
            if not pending:
                break
            # One tokenizer call per snippet length for all groups still ambiguous (41k-entity KGs have
            # thousands of groups; a call per group costs seconds).
            flat = [i for members in pending for i in members]
            # An entity without a description has nothing else to tell it apart: its id does.
            texts = [
                f"{base[i]} ({_snippet(descriptions[i], words)})" if _snippet(descriptions[i], words) else f"{base[i]} [{ids[i]}]"
                for i in flat
            ]
            candidate_key = dict(zip(flat, keys_of(texts)))
            candidate_text = dict(zip(flat, texts))
            fallback.update(candidate_text)
            still = []
            for members in pending:
                member_keys = [candidate_key[i] for i in members]
                if len(set(member_keys)) == len(members) and not set(member_keys) & taken:
                    for i in members:
                        final[i], final_keys[i] = candidate_text[i], candidate_key[i]
                    taken.update(member_keys)
                else:
                    still.append(members)
            pending = still
        for members in pending:
            # Still ambiguous after the longest snippet: the id settles it for the entities concerned.
            texts = [fallback[i] for i in members]
            member_keys = keys_of(texts)
            seen: dict[Hashable, int] = defaultdict(int)
            for key in member_keys:
                seen[key] += 1
            for i, text, key in zip(members, texts, member_keys):
                final[i] = f"{text} [{ids[i]}]" if (seen[key] > 1 or key in taken) and not text.endswith(f"[{ids[i]}]") else text
            resolved = keys_of([final[i] for i in members])
            for i, key in zip(members, resolved):
                final_keys[i] = key
            taken.update(resolved)
        token_ids = [list(k) for k in final_keys] if tokenizer is not None else None
        return cls(final, token_ids, base_names=base)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> str:
        return self.names[index]

    def index(self, name_or_token_ids: str | Sequence[int]) -> int | None:
        """Entity index of a final name (or of its token ids when built with a tokenizer); ``None`` if no
        entity has it."""
        if isinstance(name_or_token_ids, str):
            if self.token_ids is None:
                return self._index.get(name_or_token_ids)
            try:
                return self.names.index(name_or_token_ids)
            except ValueError:
                return None
        return self._index.get(tuple(int(t) for t in name_or_token_ids))

    @property
    def max_tokens(self) -> int:
        """Length of the longest tokenized name (0 without a tokenizer)."""
        return max((len(t) for t in self.token_ids), default=0) if self.token_ids is not None else 0

    def __repr__(self) -> str:
        return f"EntityNames({len(self):,} entities, {len(self.disambiguated):,} disambiguated)"


__all__ = ["DEFAULT_SNIPPET_WORDS", "EntityNames"]
