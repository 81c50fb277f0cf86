"""The WordNet reader: format errors, relation directions and offset fixes on small hand-written database
files, then the installed WordNet 3.0 database against WN18RR (skipped without them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_ctxdistill.data.errors import KGFormatError
from hf_ctxdistill.data.schema import ENTITY_FEATURES, RELATION_FEATURES, TRIPLE_FEATURES
from hf_ctxdistill.data.wordnet import (
    DEFAULT_WORDNET_DIR,
    WORDNET_RELATIONS,
    find_wordnet_dir,
    parse_data_file,
    read_wordnet,
    read_wordnet_graph,
)
from tests.conftest import write

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2 Princeton University  \n"


def synset_line(
    offset: str, pos: str, words: list[str], pointers: list[str], gloss: str, frames: str = ""
) -> str:
    """One data.* line: 'offset lex_filenum ss_type w_cnt word lex_id ... p_cnt ptr... [frames] | gloss'."""
    word_part = " ".join(f"{w} 0" for w in words)
    pointer_part = " ".join(pointers)
    body = f"{offset} 03 {pos} {len(words):02x} {word_part} {len(pointers):03d}"
    body += f" {pointer_part}" if pointers else ""
    body += f" {frames}" if frames else ""
    return f"{body} | {gloss}  \n"


def write_wordnet(root: Path, noun=(), verb=(), adj=(), adv=()) -> Path:
    for name, lines in (("noun", noun), ("verb", verb), ("adj", adj), ("adv", adv)):
        write(root / f"data.{name}", HEADER + "".join(lines))
    return root


@pytest.fixture
def mini_wordnet(tmp_path: Path) -> Path:
    """Every WN18RR pointer type once, an offset shared by a noun and a verb, a satellite adjective."""
    noun = [
        synset_line("00000100", "n", ["entity"], ["~ 00000200 n 0000"], "that which exists"),
        synset_line(
            "00000200",
            "n",
            ["Dog", "domestic_dog"],
            [
                "@ 00000100 n 0000",
                "%p 00000300 n 0000",
                "%m 00000300 n 0000",
                ";c 00000400 n 0000",
                "+ 00000100 v 0101",
            ],
            "a domesticated canid",
        ),
        synset_line(
            "00000300",
            "n",
            ["tail"],
            ["@i 00000100 n 0000", "-u 00000400 n 0000", "-r 00000400 n 0000"],
            "a hind part",
        ),
        synset_line("00000400", "n", ["zoology"], ["#p 00000200 n 0000"], "the study of animals"),
    ]
    verb = [
        synset_line(
            "00000100",
            "v",
            ["bark"],
            ["$ 00000250 v 0000", "+ 00000200 n 0101"],
            "make a dog's noise",
            "01 + 02 00",
        ),
        synset_line("00000250", "v", ["yap"], ["$ 00000100 v 0000"], "bark sharply", "01 + 02 00"),
    ]
    adj = [
        synset_line("00000100", "a", ["loud"], ["& 00000150 a 0000", "^ 00000200 a 0000"], "high in volume"),
        synset_line("00000150", "s", ["noisy(a)"], ["& 00000100 a 0000"], "full of noise"),
        synset_line("00000200", "a", ["audible"], [], "perceptible by the ear"),
    ]
    adv = [synset_line("00000300", "r", ["loudly"], ["\\ 00000100 a 0101"], "with much noise")]
    return write_wordnet(tmp_path / "wn", noun, verb, adj, adv)


# --------------------------------------------------------------------------- small hand-written databases


def test_relations_and_directions(mini_wordnet):
    kg = read_wordnet(mini_wordnet)
    triples = set(zip(kg["train"]["head"], kg["train"]["relation"], kg["train"]["tail"]))
    # Each triple is the pointer written in the head's line; inverse pointers (~, #p) and pointers of
    # other types (\ pertainym) make no triple.
    assert triples == {
        ("00000200", "_hypernym", "00000100"),
        ("00000200", "_has_part", "00000300"),
        ("00000200", "_member_meronym", "00000300"),
        ("00000200", "_synset_domain_topic_of", "00000400"),
        ("00000200", "_derivationally_related_form", "00000100"),
        ("00000300", "_instance_hypernym", "00000100"),
        ("00000300", "_member_of_domain_usage", "00000400"),
        ("00000300", "_member_of_domain_region", "00000400"),
        ("00000100", "_verb_group", "00000250"),
        ("00000250", "_verb_group", "00000100"),
        ("00000100", "_derivationally_related_form", "00000200"),
        ("00000100", "_similar_to", "00000150"),
        ("00000150", "_similar_to", "00000100"),
        ("00000100", "_also_see", "00000200"),
    }
    assert kg["relations"]["id"] == list(WORDNET_RELATIONS.values())
    assert dict(zip(kg["relations"]["id"], kg["relations"]["name"]))["_has_part"] == "has part"
    assert kg["entities"].features == ENTITY_FEATURES
    assert kg["relations"].features == RELATION_FEATURES
    assert all(kg[s].features == TRIPLE_FEATURES for s in ("train", "validation", "test"))
    assert kg["validation"].num_rows == 0 and kg["test"].num_rows == 0


def test_names_descriptions_and_merged_offsets(mini_wordnet):
    kg = read_wordnet(mini_wordnet)
    entities = {row["id"]: row for row in kg["entities"]}
    # Noun, verb and adjective 00000100 share one WN18RR-style id, as in WN18RR.
    assert len(entities) == 6
    merged = entities["00000100"]
    assert merged["description"] == "that which exists   make a dog's noise   high in volume"
    assert merged["name"] == "loud"  # alphabetically last lemma of all three
    assert entities["00000200"]["name"] == "domestic dog"  # lowercased, underscores as spaces
    assert entities["00000150"]["name"] == "noisy"  # adjective marker "(a)" dropped


def test_offset_pos_ids_and_first_lemma_names(mini_wordnet):
    kg = read_wordnet(mini_wordnet, ids="offset-pos", names="first-lemma")
    entities = {row["id"]: row for row in kg["entities"]}
    assert len(entities) == 10  # one per synset
    assert entities["00000200-n"]["name"] == "Dog"
    assert entities["00000100-v"]["description"] == "make a dog's noise"
    triples = set(zip(kg["train"]["head"], kg["train"]["relation"], kg["train"]["tail"]))
    # Pointers write satellites as "a"; the id still says "s".
    assert ("00000100-a", "_similar_to", "00000150-s") in triples
    assert ("00000100-v", "_derivationally_related_form", "00000200-n") in triples


def _debian_like(root: Path, rebuilt: bool) -> Path:
    """A data.verb and data.adj with the synsets whose lines Debian's rebuild changes."""
    suppress = ["@ 00612000 v 0000"] + (["~ 02423762 v 0000"] if rebuilt else [])
    restrain = ["@ 02423762 v 0000"] + ([] if rebuilt else ["~ 02423762 v 0000"])
    shifted = "01990186" if rebuilt else "01990168"
    restrain_offset = "02422681" if rebuilt else "02422663"
    verb = [
        synset_line("00612000", "v", ["forget"], [], "dismiss from the mind"),
        synset_line("00612841", "v", ["suppress", "repress"], suppress, "put out of one's consciousness"),
        synset_line(shifted, "v", ["founder"], [f"@ {restrain_offset} v 0000"], "sink below the surface"),
        synset_line(restrain_offset, "v", ["restrain"], restrain, "keep under control"),
        synset_line(
            "02423762",
            "v",
            ["inhibit"],
            [f"@ {'00612841' if rebuilt else restrain_offset} v 0000"],
            "hold back",
        ),
    ]
    laid = (
        'set down according to a plan: "a carefully laid table"'
        if rebuilt
        else 'set down according to a plan:"a carefully laid table"'
    )
    placed = "01681478" if rebuilt else "01681477"
    adj = [
        synset_line("01681307", "s", ["laid"], [f"& {placed} a 0000"], laid),
        synset_line(placed, "a", ["placed"], ["& 01681307 a 0000"], "put in position"),
    ]
    noun = [
        synset_line("00000100", "n", ["sinking"], [f"+ {shifted} v 0101", f"+ {placed} a 0101"], "a descent")
    ]
    return write_wordnet(root, noun, verb, adj, [synset_line("00000100", "r", ["down"], [], "downward")])


@pytest.mark.parametrize("rebuilt", [True, False], ids=["debian-rebuild", "release"])
def test_offsets_map_to_the_release(tmp_path, rebuilt):
    graph = read_wordnet_graph(_debian_like(tmp_path / "wn", rebuilt))
    ids = {row["name"]: row["id"] for row in graph.entities}
    # Both layouts give the WordNet 3.0 release offsets (those in WN18RR), pointers included.
    assert ids["founder"] == "01990168"
    assert ids["restrain"] == "02422663"
    assert ids["placed"] == "01681477"
    assert ids["suppress"] == "00612841" and ids["inhibit"] == "02423762" and ids["laid"] == "01681307"
    assert ("00000100", "_derivationally_related_form", "01990168") in graph.triples
    assert ("00000100", "_derivationally_related_form", "01681477") in graph.triples
    assert len(graph.offset_fixes) == (2 if rebuilt else 0)


def test_release_offsets_off_keeps_file_offsets(tmp_path):
    graph = read_wordnet_graph(_debian_like(tmp_path / "wn", rebuilt=True), release_offsets=False)
    assert {row["id"] for row in graph.entities} >= {"01990186", "02422681", "01681478"}
    assert graph.offset_fixes == []


@pytest.mark.parametrize(
    "line, message",
    [
        ("00000100 03 n 01 dog 0 000 a domestic animal\n", "no '|'"),
        ("0000100 03 n 01 dog 0 000 | a domestic animal\n", "synset offset must be 8 digits"),
        ("00000100 03 x 01 dog 0 000 | a domestic animal\n", "unknown ss_type 'x'"),
        ("00000100 03 n zz dog 0 000 | a domestic animal\n", "w_cnt (2 hex digits) expected, found 'zz'"),
        ("00000100 03 n 02 dog 0 000 | a domestic animal\n", "w_cnt says 2 words"),
        (
            "00000100 03 n 01 dog 0 002 @ 00000200 n 0000 | a domestic animal\n",
            "p_cnt says 2 pointers but only 1",
        ),
        (
            "00000100 03 n 01 dog 0 001 @ 00000200 q 0000 | a domestic animal\n",
            "pointer 1 (@): unknown target pos 'q'",
        ),
        (
            "00000100 03 n 01 dog 0 001 @ 0000020 n 0000 | a domestic animal\n",
            "pointer 1 (@): target offset must be 8 digits",
        ),
        (
            "00000100 03 n 01 dog 0 001 @ 00000200 n 00g0 | a domestic animal\n",
            "source/target must be 4 hex digits",
        ),
        (
            "00000100 03 n 01 dog 0 000 extra | a domestic animal\n",
            "1 unexpected field(s) before the gloss: 'extra'",
        ),
        ("00000100 03 n 01 dog 0 xyz | a domestic animal\n", "p_cnt (3 digits) expected, found 'xyz'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = write(
        tmp_path / "data.noun", HEADER + synset_line("00000050", "n", ["cat"], [], "a feline") + line
    )
    with pytest.raises(KGFormatError) as info:
        parse_data_file(path)
    assert info.value.file == str(path)
    assert info.value.line == 4  # two header lines, one good line, then the bad one
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:4: ")


def test_malformed_verb_frames(tmp_path):
    path = write(tmp_path / "data.verb", HEADER + "00000100 29 v 01 bark 0 000 0x + 02 00 | make a noise\n")
    with pytest.raises(KGFormatError, match=r"data\.verb:3: f_cnt \(2 digits\) expected, found '0x'"):
        parse_data_file(path)


def test_pointer_to_missing_synset(tmp_path):
    root = write_wordnet(
        tmp_path / "wn", noun=[synset_line("00000100", "n", ["dog"], ["@ 00000999 n 0000"], "a canid")]
    )
    with pytest.raises(
        KGFormatError, match=r"data\.noun:3: pointer @ 00000999 n: no synset at that offset in data\.noun"
    ):
        read_wordnet(root)


def test_missing_database_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install wordnet-base"):
        read_wordnet(tmp_path / "nowhere")
    write(tmp_path / "partial" / "data.noun", HEADER)
    with pytest.raises(
        FileNotFoundError, match=r"lacks data\.verb, data\.adj, data\.adv.*apt-get install wordnet-base"
    ):
        read_wordnet(tmp_path / "partial")


def test_release_folder_with_dict_subfolder(mini_wordnet, tmp_path, monkeypatch):
    release = tmp_path / "WordNet-3.0"
    release.mkdir()
    mini_wordnet.rename(release / "dict")
    assert find_wordnet_dir(release) == release / "dict"
    monkeypatch.setenv("WNSEARCHDIR", str(release / "dict"))
    assert find_wordnet_dir() == release / "dict"


# --------------------------------------------------------------------------- the installed database


@pytest.fixture(scope="module")
def wordnet():
    if not Path(DEFAULT_WORDNET_DIR, "data.noun").is_file():
        pytest.skip(f"WordNet database not installed in {DEFAULT_WORDNET_DIR} (apt-get install wordnet-base)")
    return read_wordnet_graph(DEFAULT_WORDNET_DIR)


def _tsv(path: Path) -> list[tuple[str, ...]]:
    return [tuple(line.rstrip("\n").split("\t")) for line in path.open(encoding="utf-8") if line.strip()]


def test_installed_wordnet_size(wordnet):
    assert wordnet.num_synsets == 117_659  # WordNet 3.0
    assert len(wordnet.entities) == 117_374  # offsets shared by two or more parts of speech merge
    assert len(wordnet.triples) == len(set(wordnet.triples)) == 218_367
    assert sorted(fix.file for fix in wordnet.offset_fixes) == ["adj", "verb"]  # Debian's rebuild
    entities = {row["id"]: row for row in wordnet.entities}
    assert entities["01990168"]["name"] == "founder"  # 01990186 in Debian's data.verb
    assert (
        entities["00260881"]["description"]
        == "a redistribution of agricultural land (especially by government action)"
    )
    assert ("02084071", "_hypernym", "02083346") in set(wordnet.triples)  # dog -> canine


@pytest.mark.parametrize("split", ["train.tsv", "dev.tsv", "test.tsv"])
def test_recovers_wn18rr_triples(wordnet, shared_data, split):
    wn18rr = _tsv(shared_data / "WN18RR" / "kgbert_format" / split)
    ours = set(wordnet.triples)
    recovered = sum(triple in ours for triple in wn18rr) / len(wn18rr)
    # Measured 99.994% of train (5 of 86,835 missed), 100% of dev, 99.97% of test.
    assert recovered >= 0.999, f"{recovered:.4%} of WN18RR {split} recovered"


def test_matches_wn18rr_entity_texts(wordnet, shared_data):
    texts = dict(line for line in _tsv(shared_data / "WN18RR" / "kgbert_format" / "entity2text.txt"))
    ours = {row["id"]: f"{row['name']}, {row['description']}" for row in wordnet.entities}
    assert set(texts) <= set(ours)
    differ = [key for key, text in texts.items() if ours[key] != text]
    # The few that differ only lack a doubled space that WordNet has at the start of their gloss.
    assert len(differ) <= 15
    assert all(" ".join(ours[key].split()) == " ".join(texts[key].split()) for key in differ)
