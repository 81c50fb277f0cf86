"""WordNet 3.0 as a knowledge graph in the canonical form, read straight from the WordNet database files.

WN18RR was cut from WordNet 3.0: its entity ids are synset offsets and its 11 relations are WordNet
pointer types. :func:`read_wordnet` turns the ``data.noun``, ``data.verb``, ``data.adj`` and
``data.adv`` files (Debian/Ubuntu: ``apt-get install wordnet-base``; or the ``dict/`` folder of the
Princeton release) into the whole graph those relations span, with WN18RR's ids, relation ids and
"name, gloss" entity texts, so a real KG is available offline without any benchmark files.
See ``docs/wordnet.md`` for the relation table, the offset correction and what differs from WN18RR.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import pyarrow as pa
from datasets import Dataset, DatasetDict, Features

from .errors import KGFormatError
from .schema import ENTITIES, ENTITY_FEATURES, RELATION_FEATURES, RELATIONS, TRIPLE_FEATURES
from .text_files import iter_lines

logger = logging.getLogger(__name__)

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"

#: The four data files, in the order they are read (it fixes the order of entities and triples).
DATA_FILES: dict[str, str] = {"noun": "data.noun", "verb": "data.verb", "adj": "data.adj", "adv": "data.adv"}

#: Which data file holds a synset of each ``ss_type`` (adjective satellites live in ``data.adj``).
POS_FILE: dict[str, str] = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}

#: WordNet pointer symbol -> WN18RR relation id. A triple ``(h, relation, t)`` is a pointer with this
#: symbol written in the line of synset ``h`` and pointing to ``t`` (measured against WN18RR's train
#: split; see docs/wordnet.md). Semantic and lexical pointers both count.
WORDNET_RELATIONS: dict[str, str] = {
    "@": "_hypernym",
    "@i": "_instance_hypernym",
    "%m": "_member_meronym",
    "%p": "_has_part",
    ";c": "_synset_domain_topic_of",
    "-u": "_member_of_domain_usage",
    "-r": "_member_of_domain_region",
    "+": "_derivationally_related_form",
    "^": "_also_see",
    "$": "_verb_group",
    "&": "_similar_to",
}

_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")  # syntactic marker on adjective lemmas, e.g. "stock(a)"
_MISSING_HINT = (
    "install the WordNet 3.0 database with `apt-get install wordnet-base` (Debian/Ubuntu; it lands in "
    f"{DEFAULT_WORDNET_DIR}), or pass the folder that holds data.noun, data.verb, data.adj and data.adv "
    "(e.g. the dict/ folder of the Princeton WordNet-3.0 release) as wordnet_dir, or set WNSEARCHDIR"
)


class Synset(NamedTuple):
    """One line of a ``data.*`` file. ``offset`` is as written in the file; ``lemmas`` as written too
    (underscores for spaces, adjective markers such as ``(a)`` kept); ``pointers`` are
    ``(symbol, target offset, target pos, source/target)`` as written (``source/target`` is 4 hex digits,
    ``"0000"`` for a pointer between whole synsets); ``line`` is the 1-based line number."""

    offset: str
    pos: str
    lemmas: tuple[str, ...]
    pointers: tuple[tuple[str, str, str, str], ...]
    gloss: str
    file: str
    line: int


def parse_data_file(path: str | Path) -> list[Synset]:
    """Parse one WordNet ``data.*`` file (format ``wndb(5)``); license header lines are skipped.

    Raises :class:`KGFormatError` naming the file and line for any line that does not follow the format.
    """
    path = Path(path)
    is_verb_file = path.name == DATA_FILES["verb"]
    name = str(path)
    synsets = []
    for number, text in iter_lines(path):
        if text.startswith("  "):  # license header: every header line starts with two spaces
            continue
        synsets.append(_parse_line(name, number, text, is_verb_file))
    return synsets


_POS_LETTERS = frozenset(POS_FILE)
_HEX = frozenset("0123456789abcdefABCDEF")
_POINTERS = re.compile(r"\S+ \d{8} [nvasr] [0-9a-fA-F]{4}(?: \S+ \d{8} [nvasr] [0-9a-fA-F]{4})*", re.ASCII)


def _parse_line(path: str, number: int, text: str, is_verb_file: bool) -> Synset:
    def fail(message: str) -> KGFormatError:
        return KGFormatError(path, number, message)

    data, bar, gloss = text.partition("|")
    if not bar:
        raise fail("no '|' before the gloss: not a WordNet data line")
    fields = data.split()
    if len(fields) < 6:
        raise fail(
            f"expected 'offset lex_filenum ss_type w_cnt word lex_id ... p_cnt', found {data.strip()[:60]!r}"
        )
    offset, _lex_filenum, pos, w_cnt = fields[:4]
    if not (len(offset) == 8 and offset.isascii() and offset.isdigit()):
        raise fail(f"synset offset must be 8 digits, found {offset!r}")
    if pos not in _POS_LETTERS:
        raise fail(f"unknown ss_type {pos!r} (expected one of n, v, a, s, r)")
    what, value = "w_cnt (2 hex digits)", w_cnt
    try:  # one handler for every number on the line; `what` and `value` name the field being read
        num_words = int(w_cnt, 16)
        if num_words < 1:
            raise fail("w_cnt is 0: a synset needs at least one word")
        at = 4 + 2 * num_words
        if len(fields) < at + 1:
            raise fail(f"w_cnt says {num_words} words but the line ends before the pointer count")
        lemmas = tuple(fields[4:at:2])
        for i, lex_id in enumerate(fields[5:at:2]):
            if len(lex_id) != 1 or lex_id not in _HEX:
                what, value = f"lex_id of word {i + 1} (1 hex digit)", lex_id
                raise ValueError
        what, value = "p_cnt (3 digits)", fields[at]
        num_pointers = int(value)
        at += 1
        end = at + 4 * num_pointers
        if len(fields) < end:
            raise fail(f"p_cnt says {num_pointers} pointers but only {(len(fields) - at) // 4} follow")
        pointers = tuple(
            zip(
                fields[at:end:4], fields[at + 1 : end : 4], fields[at + 2 : end : 4], fields[at + 3 : end : 4]
            )
        )
        # One pattern checks every pointer at once (fast); a failure is then located pointer by pointer.
        if num_pointers and not _POINTERS.fullmatch(" ".join(fields[at:end])):
            _locate_bad_pointer(pointers, fail)
        at = end
        if is_verb_file and at < len(fields):  # verb frames: f_cnt then "+ f_num w_num" per frame
            what, value = "f_cnt (2 digits)", fields[at]
            at += 1 + 3 * int(value)
    except KGFormatError:
        raise
    except ValueError:  # from int(); KGFormatError is a ValueError too, hence the clause above
        raise fail(f"{what} expected, found {value!r}") from None
    if at != len(fields):
        raise fail(f"{len(fields) - at} unexpected field(s) before the gloss: {' '.join(fields[at:])[:60]!r}")
    return Synset(offset, pos, lemmas, pointers, gloss.strip(), path, number)


def _locate_bad_pointer(pointers, fail) -> None:
    for i, (symbol, target, target_pos, source_target) in enumerate(pointers, start=1):
        if not (len(target) == 8 and target.isascii() and target.isdigit()):
            raise fail(f"pointer {i} ({symbol}): target offset must be 8 digits, found {target!r}")
        if target_pos not in _POS_LETTERS:
            raise fail(
                f"pointer {i} ({symbol}): unknown target pos {target_pos!r} (expected one of n, v, a, s, r)"
            )
        if len(source_target) != 4 or not set(source_target) <= _HEX:
            raise fail(f"pointer {i} ({symbol}): source/target must be 4 hex digits, found {source_target!r}")
    raise fail("malformed pointer list: expected 'symbol offset pos source/target' four fields per pointer")


# ---------------------------------------------------------------------------------------------------
# Offsets: Debian's rebuilt files versus the WordNet 3.0 release


@dataclass(frozen=True)
class OffsetFix:
    """A known edit in a rebuilt WordNet 3.0 data file that moved the byte offsets after it.

    Debian builds ``wordnet-base`` from the lexicographer sources with its own patches, so a line that
    got longer or shorter moves every later synset. WN18RR (and every WordNet 3.0 resource) uses the
    release's offsets. The fix applies only when every ``checks`` entry holds for the file being read:
    ``(offset, text, present)`` = the line at ``offset`` does (or does not) contain ``text``. Offsets in
    ``first..last`` (inclusive; ``last=None`` = to the end of the file) then get ``delta`` added.
    """

    file: str
    checks: tuple[tuple[str, str, bool], ...]
    first: int
    last: int | None
    delta: int
    why: str

    def applies(self, by_offset: dict[str, Synset]) -> bool:
        """Whether the file read shows this edit."""
        for offset, text, present in self.checks:
            synset = by_offset.get(offset)
            if synset is None or (text in _raw_line(synset)) != present:
                return False
        return True

    def shift(self, offset: int) -> int:
        """The release offset of a rebuilt-file offset."""
        if offset >= self.first and (self.last is None or offset <= self.last):
            return offset + self.delta
        return offset


def _raw_line(synset: Synset) -> str:
    pointers = " ".join(" ".join(pointer) for pointer in synset.pointers)
    return f"{' '.join(synset.lemmas)} {pointers} | {synset.gloss}"


#: The edits in Debian's ``wordnet-base`` (as of 1:3.0-37); release offsets come back by
#: undoing their length change. Each is recognised from the file itself, so the release files (and other
#: rebuilds without these edits) are read unchanged.
DEBIAN_OFFSET_FIXES: tuple[OffsetFix, ...] = (
    OffsetFix(
        file="verb",
        checks=(
            ("00612841", "~ 02423762 v 0000", True),  # suppress gained the hyponym inhibit ...
            ("02422681", "~ 02423762 v 0000", False),  # ... which restrain lost
        ),
        first=612842,
        last=2422681,
        delta=-18,
        why=(
            "data.verb: the release has a hypernym cycle (restrain @ inhibit, inhibit @ restrain); the rebuild "
            "makes inhibit a hyponym of suppress (00612841), adding an 18-byte pointer '~ 02423762 v 0000' to "
            "suppress and removing it from restrain, so verbs after suppress up to restrain sit 18 bytes later"
        ),
    ),
    OffsetFix(
        file="adj",
        checks=(("01681307", 'plan: "a carefully laid', True),),
        first=1681308,
        last=None,
        delta=-1,
        why=(
            "data.adj: the rebuild inserts a missing space in the gloss of 'laid, set' (01681307, "
            "'plan:\"a' -> 'plan: \"a'), so every adjective after it sits 1 byte later"
        ),
    ),
)


# ---------------------------------------------------------------------------------------------------
# The graph


@dataclass
class WordNetGraph:
    """The WordNet KG as plain lists: what :func:`read_wordnet` puts into a ``DatasetDict``.

    ``entities`` rows are ``{"id", "name", "description"}``, ``relations`` rows ``{"id", "name"}``,
    ``triples`` are ``(head, relation, tail)`` ids without repeats. ``offset_fixes`` holds the applied
    :class:`OffsetFix` records (none for release files), ``directory`` the folder read.
    """

    entities: list[dict[str, str | None]]
    relations: list[dict[str, str]]
    triples: list[tuple[str, str, str]]
    directory: Path
    offset_fixes: list[OffsetFix] = field(default_factory=list)
    num_synsets: int = 0

    def to_dataset_dict(self) -> DatasetDict:
        """The canonical ``DatasetDict``: every triple in ``train``; ``validation`` and ``test`` empty."""
        heads, relations, tails = (
            (list(column) for column in zip(*self.triples)) if self.triples else ([], [], [])
        )
        return DatasetDict(
            {
                ENTITIES: _dataset(
                    {key: [row[key] for row in self.entities] for key in ENTITY_FEATURES}, ENTITY_FEATURES
                ),
                RELATIONS: _dataset(
                    {key: [row[key] for row in self.relations] for key in RELATION_FEATURES},
                    RELATION_FEATURES,
                ),
                "train": _dataset({"head": heads, "relation": relations, "tail": tails}, TRIPLE_FEATURES),
                "validation": _dataset({"head": [], "relation": [], "tail": []}, TRIPLE_FEATURES),
                "test": _dataset({"head": [], "relation": [], "tail": []}, TRIPLE_FEATURES),
            }
        )


def _dataset(columns: dict[str, list], features: Features) -> Dataset:
    # Straight to Arrow: several times faster than Dataset.from_dict for the 200k-row WordNet tables.
    return Dataset(pa.table(columns, schema=features.arrow_schema))


def relation_name(relation_id: str) -> str:
    """WN18RR's relation text: ``"_has_part"`` -> ``"has part"``."""
    return relation_id.lstrip("_").replace("_", " ")


def find_wordnet_dir(wordnet_dir: str | Path | None = None) -> Path:
    """The folder holding the four ``data.*`` files.

    ``None`` means ``$WNSEARCHDIR`` (WordNet's own variable) or ``/usr/share/wordnet``. A release folder
    whose files sit in ``dict/`` is accepted too. Raises ``FileNotFoundError`` saying how to install it.
    """
    if wordnet_dir is None:
        wordnet_dir = os.environ.get("WNSEARCHDIR") or DEFAULT_WORDNET_DIR
    root = Path(wordnet_dir)
    for candidate in (root, root / "dict"):
        if all((candidate / name).is_file() for name in DATA_FILES.values()):
            return candidate
    if not root.is_dir():
        raise FileNotFoundError(f"WordNet database folder {root} not found: {_MISSING_HINT}")
    missing = [name for name in DATA_FILES.values() if not (root / name).is_file()]
    raise FileNotFoundError(f"WordNet database folder {root} lacks {', '.join(missing)}: {_MISSING_HINT}")


def read_wordnet_graph(
    wordnet_dir: str | Path | None = None,
    *,
    ids: Literal["wn18rr", "offset-pos"] = "wn18rr",
    names: Literal["wn18rr", "first-lemma"] = "wn18rr",
    release_offsets: bool = True,
) -> WordNetGraph:
    """Read the WordNet database into a :class:`WordNetGraph` (see :func:`read_wordnet` for the arguments)."""
    if ids not in ("wn18rr", "offset-pos"):
        raise ValueError(f"ids must be 'wn18rr' or 'offset-pos', got {ids!r}")
    if names not in ("wn18rr", "first-lemma"):
        raise ValueError(f"names must be 'wn18rr' or 'first-lemma', got {names!r}")
    directory = find_wordnet_dir(wordnet_dir)
    files = {kind: parse_data_file(directory / name) for kind, name in DATA_FILES.items()}
    by_offset = {kind: {s.offset: s for s in synsets} for kind, synsets in files.items()}
    for kind, synsets in files.items():
        if len(by_offset[kind]) != len(synsets):
            seen: set[str] = set()
            for s in synsets:
                if s.offset in seen:
                    raise KGFormatError(
                        s.file, s.line, f"synset offset {s.offset} appears twice in {DATA_FILES[kind]}"
                    )
                seen.add(s.offset)

    fixes = [fix for fix in DEBIAN_OFFSET_FIXES if release_offsets and fix.applies(by_offset[fix.file])]
    for fix in fixes:
        logger.info("WordNet offsets: %s", fix.why)

    def release(kind: str, offset: str) -> str:
        value = int(offset)
        for fix in fixes:
            if fix.file == kind:
                value = fix.shift(value)
        return f"{value:08d}"

    # Entity id of every synset, per file and file offset. WN18RR ids are bare offsets; about 280 offsets
    # repeat across the four files and WN18RR merges those synsets into one entity ("offset-pos" does not).
    ids_of = {
        kind: {s.offset: release(kind, s.offset) + ("" if ids == "wn18rr" else f"-{s.pos}") for s in synsets}
        for kind, synsets in files.items()
    }

    # Entities, in file order; synsets sharing an id (WN18RR-style ids only) are merged.
    groups: dict[str, list[Synset]] = {}
    for kind, synsets in files.items():
        for synset in synsets:
            groups.setdefault(ids_of[kind][synset.offset], []).append(synset)
    entities = [
        {
            "id": key,
            "name": _entity_name(members, names),
            "description": "   ".join(s.gloss for s in members if s.gloss) or None,
        }
        for key, members in groups.items()
    ]

    triples: dict[tuple[str, str, str], None] = {}  # an ordered set: keeps file order, drops repeats
    for kind, synsets in files.items():
        for synset in synsets:
            head = ids_of[kind][synset.offset]
            for symbol, target, target_pos, _source_target in synset.pointers:
                relation = WORDNET_RELATIONS.get(symbol)
                if relation is None:
                    continue
                # Pointers name adjective satellites "a" too: data.adj holds both.
                tail = ids_of[POS_FILE[target_pos]].get(target)
                if tail is None:
                    raise KGFormatError(
                        synset.file,
                        synset.line,
                        f"pointer {symbol} {target} {target_pos}: no synset at that offset in "
                        f"{DATA_FILES[POS_FILE[target_pos]]}",
                    )
                triples[(head, relation, tail)] = None

    relations = [{"id": r, "name": relation_name(r)} for r in WORDNET_RELATIONS.values()]
    num_synsets = sum(len(s) for s in files.values())
    logger.info(
        "WordNet from %s: %d synsets, %d entities, %d triples",
        directory,
        num_synsets,
        len(entities),
        len(triples),
    )
    return WordNetGraph(entities, relations, list(triples), directory, fixes, num_synsets)


def read_wordnet(
    wordnet_dir: str | Path | None = None,
    *,
    ids: Literal["wn18rr", "offset-pos"] = "wn18rr",
    names: Literal["wn18rr", "first-lemma"] = "wn18rr",
    release_offsets: bool = True,
) -> DatasetDict:
    """WordNet 3.0 as a KG in the canonical form, shaped like WN18RR.

    Every synset becomes an entity and every pointer of WN18RR's 11 types (see :data:`WORDNET_RELATIONS`)
    a triple, all in ``train`` (``validation`` and ``test`` are empty; carve a benchmark out of it with
    :func:`hf_ctxdistill.data.sampling.sample_subgraph`). With Debian's ``wordnet-base`` this gives
    117,374 entities and 218,367 triples, which include 99.99% of WN18RR's train triples.

    Args:
        wordnet_dir: folder with ``data.noun``, ``data.verb``, ``data.adj``, ``data.adv`` (or a release
            folder with them in ``dict/``). Default: ``$WNSEARCHDIR``, else ``/usr/share/wordnet``.
        ids: ``"wn18rr"``: the 8-digit WordNet 3.0 synset offset, as in WN18RR; synsets of different
            parts of speech that share an offset become one entity, as in WN18RR. ``"offset-pos"``:
            ``"<offset>-<ss_type>"`` (e.g. ``"00001740-n"``), one entity per synset.
        names: ``"wn18rr"``: WN18RR's entity name, the alphabetically last lemma, lowercased, underscores
            as spaces (for merged synsets: over the non-satellite ones). ``"first-lemma"``: the synset's
            first lemma as written (capitals kept), underscores as spaces. The description is the gloss
            (merged synsets: their glosses joined by three spaces, as WN18RR's entity2text has them).
        release_offsets: map the offsets of Debian's rebuilt files to the WordNet 3.0 release's, which
            WN18RR uses (see :data:`DEBIAN_OFFSET_FIXES`); release files need no change either way.

    Raises:
        FileNotFoundError: the folder or one of the four files is missing (the message says how to install).
        KGFormatError: a malformed line, naming the file and line.
    """
    graph = read_wordnet_graph(wordnet_dir, ids=ids, names=names, release_offsets=release_offsets)
    return graph.to_dataset_dict()


def _entity_name(members: list[Synset], style: str) -> str:
    if style == "first-lemma":
        return _clean_lemma(members[0].lemmas[0]).replace("_", " ")
    # WN18's names (``__lemma_NN_1``) hold one lemma per synset: the largest one, comparing lowercased
    # lemmas with their underscores (so "milk_vetch" beats "milk-vetch"); satellites never win a merge.
    candidates = [s for s in members if s.pos != "s"] or members
    return max(_clean_lemma(lemma).lower() for s in candidates for lemma in s.lemmas).replace("_", " ")


def _clean_lemma(lemma: str) -> str:
    return _ADJ_MARKER.sub("", lemma)
