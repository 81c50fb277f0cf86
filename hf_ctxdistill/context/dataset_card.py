"""Dataset card (README.md) for a :class:`~hf_ctxdistill.context.ContextCorpus`, from a template."""

from __future__ import annotations

from collections import Counter
from importlib import resources

from ..citation import PAPER_BIBTEX, PAPER_TITLE, PAPER_URL
from ..data.knowledge_graph import KnowledgeGraph
from ..data.schema import column


def create_corpus_card(
    corpus, kg: KnowledgeGraph | None = None, repo_id: str | None = None, pretty_name: str | None = None, extra: str = ""
) -> str:
    """Render the card: schema, source KG, generators, prompts, coverage (when ``kg`` is given) and the
    paper's citation."""
    dataset = corpus.dataset
    source = corpus.source_kg or (kg.source if kg is not None else None) or "an unnamed KG"
    paths = Counter(p for p in column(dataset, "path") if p)
    generators = Counter(g for g in column(dataset, "generator") if g)
    prompts = Counter(p for p in column(dataset, "prompt") if p)
    coverage_section = ""
    if kg is not None:
        cov = corpus.coverage(kg)
        coverage_section = (
            "### Coverage\n\n"
            f"- Training triples with a context: {cov['triples_with_context']:,} / {cov['triples']:,} "
            f"({100 * cov['triple_coverage']:.1f}%)\n"
            f"- Entities with an entity-level context: {cov['entities_with_context']:,} / {cov['entities']:,} "
            f"({100 * cov['entity_coverage']:.1f}%)\n"
        )
    template = resources.files("hf_ctxdistill").joinpath("templates/context_corpus_card.md").read_text(encoding="utf-8")
    return template.format(
        pretty_name=pretty_name or f"Contextualized KG corpus ({source})",
        repo_id=repo_id or "<user>/<corpus>",
        source_kg=source,
        paper_title=PAPER_TITLE,
        paper_url=PAPER_URL,
        num_rows=len(dataset),
        paths=_listing(paths),
        generators=_listing(generators),
        coverage_section=coverage_section,
        prompts="\n\n".join(f"```text\n{p}\n```" for p in prompts) or "(not recorded)",
        extra=extra,
        bibtex=PAPER_BIBTEX,
    )


def _listing(counts: Counter) -> str:
    return ", ".join(f"`{k}` ({v:,} rows)" for k, v in counts.most_common()) or "(not recorded)"
