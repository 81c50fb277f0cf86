"""``CtxDistillTrainingArguments``: ``TrainingArguments`` plus the switches of Contextualization
Distillation, parseable from the command line with ``HfArgumentParser``.

Loss switches and weights default to ``None`` = "keep what the model's config says", so one set of
arguments serves both pipelines; :class:`~hf_ctxdistill.training.MultiTaskTrainer` writes any value
given here into the model's config (where it is saved with the model). The paper's values: KG-BERT
``kgc_weight=1``, ``reconstruction_weight=1``; KG-S2S ``kgc_weight=0.5``, ``contextualization_weight=0.5``
(``reconstruction_weight=0.5`` when the optional reconstruction task is on).

Boolean switches parse as real booleans (``--use_reconstruction false`` is False), unlike
``type=bool`` parsing, which turns any non-empty string into True.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments

#: Model-config attributes that the arguments of the same name override.
LOSS_CONFIG_FIELDS = (
    "use_reconstruction",
    "use_contextualization",
    "kgc_weight",
    "reconstruction_weight",
    "contextualization_weight",
)


@dataclass
class CtxDistillTrainingArguments(TrainingArguments):
    """Training arguments for :class:`~hf_ctxdistill.training.MultiTaskTrainer`.

    Differences from ``TrainingArguments`` defaults: ``remove_unused_columns=False`` (the collators
    read the ``head``/``relation``/``tail`` columns, which are not ``forward`` arguments) and
    ``report_to="none"``.
    """

    # ---- auxiliary tasks (None = the model config's value)
    use_reconstruction: bool | None = field(
        default=None,
        metadata={"help": "Train the reconstruction task (masked-LM over the triple's context). None: model config."},
    )
    use_contextualization: bool | None = field(
        default=None,
        metadata={"help": "Train the contextualization task (generate the context; seq2seq models). None: model config."},
    )
    kgc_weight: float | None = field(
        default=None, metadata={"help": "Weight of the KGC loss (paper: 1.0 KG-BERT, 0.5 KG-S2S). None: model config."}
    )
    reconstruction_weight: float | None = field(
        default=None,
        metadata={"help": "Weight alpha of the reconstruction loss (paper: 1.0 KG-BERT, 0.5 KG-S2S). None: model config."},
    )
    contextualization_weight: float | None = field(
        default=None,
        metadata={"help": "Weight of the contextualization loss (paper: 0.5). None: model config."},
    )
    # ---- data pipeline (read by the collators' `from_training_args`)
    num_negatives: int = field(default=5, metadata={"help": "Corrupted triples per true triple (KG-BERT; paper: 5)."})
    negative_corruption: Literal["both", "head", "tail"] = field(
        default="both", metadata={"help": "Which side of a triple corruptions replace."}
    )
    filter_negatives: bool = field(
        default=True, metadata={"help": "Reject corruptions that are known true triples (train, validation, test)."}
    )
    mask_probability: float = field(
        default=0.15, metadata={"help": "Share of context tokens masked for reconstruction (80% mask, 10% random, 10% kept)."}
    )
    max_seq_length: int = field(default=50, metadata={"help": "Token budget of one triple input (paper: 50)."})
    context_max_length: int = field(default=128, metadata={"help": "Token budget of one context paragraph."})
    use_descriptions: bool = field(
        default=True, metadata={"help": "Entity text is 'name, description' rather than the name alone."}
    )
    # ---- changed defaults
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep False: the collators need the triple columns, which are not forward() arguments."},
    )
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Integrations to report to ('none' by default, e.g. 'tensorboard')."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_negatives < 0:
            raise ValueError(f"num_negatives must be >= 0, got {self.num_negatives}")
        if not 0.0 < self.mask_probability < 1.0:
            raise ValueError(f"mask_probability must be in (0, 1), got {self.mask_probability}")
        for name in ("kgc_weight", "reconstruction_weight", "contextualization_weight"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def loss_config_overrides(self) -> dict[str, bool | float]:
        """The loss switches and weights that were set (not ``None``), by model-config attribute name."""
        return {name: getattr(self, name) for name in LOSS_CONFIG_FIELDS if getattr(self, name) is not None}


__all__ = ["CtxDistillTrainingArguments", "LOSS_CONFIG_FIELDS"]
