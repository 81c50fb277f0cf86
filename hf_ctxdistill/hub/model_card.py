"""Model cards for trained KGC models: README.md with the training setup, results and the paper citation."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from ..citation import PAPER_BIBTEX

_PIPELINES = {
    "contextualized_kgbert": "KG-BERT-style cross-encoder (triple classification)",
    "contextualized_kgs2s": "KG-S2S-style sequence-to-sequence model",
}
_TRAINING_KEYS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
    "max_steps", "warmup_ratio", "warmup_steps", "weight_decay", "bf16", "fp16", "seed",
    "num_negatives", "mask_probability", "kgc_weight", "reconstruction_weight", "contextualization_weight",
)


def create_model_card(
    model,
    *,
    kg_name: str = "a knowledge graph",
    metrics: Mapping[str, float] | None = None,
    training_args=None,
    corpus_description: str | None = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    tags: list[str] | None = None,
) -> str:
    """Render a model card (TRL / sentence-transformers style) for a trained model.

    Args:
        model: the trained ``PreTrainedModel`` (its config names the base checkpoint and architecture).
        kg_name: the KG it was trained on.
        metrics: evaluation results, e.g. ``{"mrr": 0.5, "hits@10": 0.7}`` (``eval_``/``test_`` prefixes kept).
        training_args: a ``TrainingArguments``; the fields that matter for reproduction are listed.
        corpus_description: where the contexts came from (Hub id, generator, path).
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", "") or ""
    base = getattr(config, "base_model_name_or_path", None) or getattr(config, "_name_or_path", None) or "unknown"
    aux = []
    if getattr(config, "use_reconstruction", False) or getattr(config, "reconstruction_weight", 0):
        aux.append("the reconstruction (masked context) auxiliary task")
    if getattr(config, "contextualization_weight", 0):
        aux.append("the contextualization (triple -> context) auxiliary task")
    template = resources.files("hf_ctxdistill").joinpath("templates/model_card.md").read_text(encoding="utf-8")
    return template.format(
        extra_tags="".join(f"- {t}\n" for t in (tags or [])),
        base_model=base,
        model_name=model_name or (repo_id.split("/")[-1] if repo_id else f"{model_type or 'KGC model'} on {kg_name}"),
        pipeline_description=_PIPELINES.get(model_type, "knowledge graph completion model"),
        kg_name=kg_name,
        auxiliary_description=" and ".join(aux) if aux else "no auxiliary task (baseline)",
        architecture=type(model).__name__,
        corpus_description=corpus_description or "none",
        results=_results_table(metrics),
        repo_id=repo_id or "<user>/<model>",
        training=_training_table(training_args),
        bibtex=PAPER_BIBTEX,
    )


def save_model_card(output_dir: str | Path, model, **kwargs) -> Path:
    """Write :func:`create_model_card`'s card as ``README.md`` in ``output_dir``."""
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(create_model_card(model, **kwargs), encoding="utf-8")
    return path


def _results_table(metrics: Mapping[str, float] | None) -> str:
    if not metrics:
        return "Not evaluated yet."
    rows = [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    return "| metric | value |\n|---|---|\n" + "\n".join(rows)


def _training_table(args) -> str:
    if args is None:
        return "Not recorded."
    rows = [f"| {k} | {getattr(args, k)} |" for k in _TRAINING_KEYS if hasattr(args, k)]
    return "| setting | value |\n|---|---|\n" + "\n".join(rows)
