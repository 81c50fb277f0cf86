"""Training: the multi-task ``Trainer``, its arguments and the data collators."""

from .collators import KGBertCollator
from .ctxdistill_config import LOSS_CONFIG_FIELDS, CtxDistillTrainingArguments
from .kgs2s_collator import KGS2SCollator, random_spans_noise_mask
from .multitask_trainer import CollatorEpochCallback, MultiTaskTrainer

__all__ = [
    "LOSS_CONFIG_FIELDS",
    "CollatorEpochCallback",
    "CtxDistillTrainingArguments",
    "KGBertCollator",
    "KGS2SCollator",
    "random_spans_noise_mask",
    "MultiTaskTrainer",
]
