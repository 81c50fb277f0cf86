"""``MultiTaskTrainer``: the Hugging Face ``Trainer`` for models that add auxiliary losses to their task
loss (KG-BERT + reconstruction, KG-S2S + contextualization/reconstruction, ...).

What it adds to ``Trainer``:

- **Per-term normalisation that survives gradient accumulation and DDP.** A model that lists
  ``loss_normalization_keys`` (e.g. ``("labels", "mlm_labels")``) receives
  ``num_items_in_batch={key: count}``: for every key, the number of entries != -100 over all
  micro-batches of the optimizer step (and over all processes with ``average_tokens_across_devices``).
  The model divides each summed loss term by its own count, so the accumulated loss and gradients equal
  those of the full batch, even when micro-batches hold different numbers of masked tokens. Averaging
  per-micro-batch means (what dividing by ``gradient_accumulation_steps`` does) is only exact when every
  micro-batch has the same counts. Models without the attribute get stock ``Trainer`` behaviour.
- **Loss components in the logs.** Every ``*_loss`` field of the model output (``kgc_loss``,
  ``reconstruction_loss``, ``contextualization_loss``...) is logged next to ``loss``, averaged over the
  same logging window and normalised the same way (so ``loss`` = weighted sum of the logged terms); in
  evaluation they are reported as ``eval_<name>``.
- **Loss switches from the arguments.** Set fields of :class:`CtxDistillTrainingArguments`
  (``reconstruction_weight``...) are written into the model config before training.
- **PEFT.** ``peft_config`` wraps the model with ``peft.get_peft_model``; unless the config says
  otherwise, the task heads (``model.task_head_module_names()``) go to ``modules_to_save`` so they train
  and are saved with the adapter, and LoRA ``target_modules`` default to PEFT's choice for the encoder's
  architecture.
- **Epoch-keyed data randomness.** A collator with ``set_epoch`` (e.g. :class:`KGBertCollator`) is told
  the epoch at each epoch start, which makes negatives and masks identical after a checkpoint resume.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import find_batch_size
from transformers.utils import logging

logger = logging.get_logger(__name__)


def _unwrap(model: Any) -> Any:
    """The model under DDP/compile/PEFT wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "get_base_model") and callable(model.get_base_model):
            return model.get_base_model()
        else:
            return model


def _default_lora_targets(model: Any) -> list[str] | str | None:
    """The model's own choice (``default_lora_target_modules()``, e.g. a seq2seq wrapper), else PEFT's
    default LoRA targets for the encoder/decoder architecture(s) inside ``model.config``."""
    if callable(getattr(model, "default_lora_target_modules", None)):
        targets = model.default_lora_target_modules()
        return targets if isinstance(targets, str) else list(targets)  # PEFT takes a regex string too
    try:
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as mapping
    except ImportError:  # pragma: no cover - very old peft
        return None
    config = getattr(model, "config", None)
    if config is None:
        return None
    if config.model_type in mapping:
        return list(mapping[config.model_type])
    targets: list[str] = []
    for name in ("encoder", "decoder", "text_config"):
        sub = getattr(config, name, None)
        model_type = getattr(sub, "model_type", None)
        for target in mapping.get(model_type, []) if model_type else []:
            if target not in targets:
                targets.append(target)
    return targets or None


class CollatorEpochCallback(TrainerCallback):
    """Calls ``collator.set_epoch(epoch)`` at the start of every epoch (also the resumed one)."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):  # noqa: D102 - TrainerCallback hook
        # state.epoch is fractional after a mid-epoch resume (e.g. 1.5 -> epoch 1); the epsilon absorbs
        # float error at epoch boundaries.
        self.collator.set_epoch(int(math.floor((state.epoch or 0.0) + 1e-6)))
        return control


class _ComponentWindowCallback(TrainerCallback):
    """Starts the loss-component logging window where training (re)starts."""

    def __init__(self, trainer: MultiTaskTrainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102 - TrainerCallback hook
        self.trainer._train_components = {}
        self.trainer._components_step = state.global_step
        return control


class MultiTaskTrainer(Trainer):
    """``Trainer`` for multi-objective models; see the module docstring for what it adds.

    Args:
        model: Any model whose output has ``loss`` (and optionally ``*_loss`` terms).
        args: Preferably :class:`CtxDistillTrainingArguments` (plain ``TrainingArguments`` work; then
            keep ``remove_unused_columns=False`` for the KG collators).
        peft_config: A ``peft.PeftConfig`` to train adapters instead of the full model.
        *other: As for ``transformers.Trainer``.
    """

    def __init__(self, model: Any = None, args: Any = None, *pos_args: Any, peft_config: Any = None, **kwargs: Any) -> None:
        if model is None:
            raise ValueError("MultiTaskTrainer needs a model instance")
        if args is None:
            from .ctxdistill_config import CtxDistillTrainingArguments

            args = CtxDistillTrainingArguments(output_dir="tmp_trainer")
        self._apply_loss_overrides(model, args)
        if peft_config is not None:
            model = self._wrap_peft(model, peft_config)
        super().__init__(model, args, *pos_args, **kwargs)
        base = _unwrap(self.model)
        keys = tuple(getattr(base, "loss_normalization_keys", ()) or ())
        # DataParallel (several GPUs in one process) splits a batch inside forward, where whole-batch
        # counts cannot be applied: stock behaviour there (mean per micro-batch / accumulation steps).
        self.loss_normalization_keys: tuple[str, ...] = keys if self.args.n_gpu <= 1 else ()
        if self.loss_normalization_keys:
            # Makes `training_step` treat the loss as normalised over the accumulated batch (no division
            # by the accumulation steps) in every transformers 5 release.
            self.model_accepts_loss_kwargs = True
        if self.args.label_names is None and "labels" in (self.label_names or []):
            # Auxiliary targets (e.g. mlm_labels) are optional per batch: evaluation should still compute
            # the loss when they are absent, and predictions pair with the task labels only.
            self.label_names = ["labels"]
        if hasattr(self.data_collator, "set_epoch"):
            self.add_callback(CollatorEpochCallback(self.data_collator))
        self.add_callback(_ComponentWindowCallback(self))
        if getattr(self.args, "remove_unused_columns", False) and hasattr(self.data_collator, "triple_encoder"):
            logger.warning(
                "remove_unused_columns=True drops the head/relation/tail columns the KG collators read; "
                "use CtxDistillTrainingArguments or set remove_unused_columns=False"
            )
        self._train_components: dict[str, torch.Tensor] = {}
        self._components_step = self.state.global_step
        self._eval_components: dict[str, torch.Tensor] = {}
        self._eval_weight = 0.0

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _apply_loss_overrides(model: Any, args: Any) -> None:
        overrides = args.loss_config_overrides() if hasattr(args, "loss_config_overrides") else {}
        config = getattr(_unwrap(model), "config", None)
        for name, value in overrides.items():
            if config is not None and hasattr(config, name):
                setattr(config, name, value)
            else:
                logger.warning(f"--{name}={value} ignored: {type(_unwrap(model)).__name__} has no such loss setting")

    @staticmethod
    def _wrap_peft(model: Any, peft_config: Any) -> Any:
        from peft import get_peft_model

        peft_config = copy.deepcopy(peft_config)
        if hasattr(peft_config, "modules_to_save") and peft_config.modules_to_save is None:
            if hasattr(model, "task_head_module_names"):
                peft_config.modules_to_save = list(model.task_head_module_names())
        if hasattr(peft_config, "target_modules") and peft_config.target_modules is None:
            targets = _default_lora_targets(model)
            if targets is not None:
                peft_config.target_modules = targets
        return get_peft_model(model, peft_config)

    # ------------------------------------------------------------------ loss normalisation
    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> tuple[list, Any]:
        """Fetch the micro-batches of one optimizer step and count, per normalisation key, the items
        != -100 over all of them (and over all processes); see the module docstring."""
        if not self.loss_normalization_keys:
            return super().get_batch_samples(epoch_iterator, num_batches, device)
        batch_samples = []
        for _ in range(num_batches):
            try:
                batch_samples.append(next(epoch_iterator))
            except StopIteration:
                break
        counts = torch.zeros(len(self.loss_normalization_keys), dtype=torch.long, device=device)
        for batch in batch_samples:
            for i, key in enumerate(self.loss_normalization_keys):
                value = batch.get(key) if isinstance(batch, Mapping) else None
                if torch.is_tensor(value):
                    counts[i] += value.ne(-100).sum().to(device)
        if getattr(self.args, "average_tokens_across_devices", True) and self.args.world_size > 1:
            counts = self.accelerator.gather(counts).reshape(-1, len(self.loss_normalization_keys)).sum(0)
        return batch_samples, dict(zip(self.loss_normalization_keys, counts))

    def _distributed_loss_scale(self) -> int:
        # DDP averages gradients over processes; a loss normalised by all processes' counts must be
        # multiplied back (as Trainer does for its own num_items_in_batch).
        if getattr(self.args, "average_tokens_across_devices", True) and self.args.world_size > 1:
            return self.accelerator.num_processes
        return 1

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Mapping[str, torch.Tensor] | torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """Forward, take ``outputs.loss``, record the ``*_loss`` components for logging.

        ``num_items_in_batch`` is the per-key count mapping from :meth:`get_batch_samples` during
        training (passed to the model); evaluation uses per-batch means.
        """
        if self.label_smoother is not None or self.compute_loss_func is not None:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        model_inputs = dict(inputs)
        normalized = False
        if model.training and isinstance(num_items_in_batch, Mapping):
            model_inputs["num_items_in_batch"] = num_items_in_batch
            normalized = True
        elif (
            model.training
            and num_items_in_batch is not None
            and not isinstance(num_items_in_batch, Mapping)
            and self.model_accepts_loss_kwargs
            and not self.loss_normalization_keys
        ):
            model_inputs["num_items_in_batch"] = num_items_in_batch  # stock HF protocol
            normalized = True
        outputs = model(**model_inputs)
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs[0]
        if loss is None:
            raise ValueError(
                f"the model returned no loss; it received {sorted(inputs)} (are the labels missing, or were "
                "the collator's columns removed by remove_unused_columns=True?)"
            )
        scale = self._distributed_loss_scale() if normalized else 1
        if scale != 1:
            loss = loss * scale
        components = self._components(outputs)
        if model.training:
            # Put each term on the scale of the loss that training_step accumulates for logging.
            if normalized:
                factor = float(scale)
            else:
                factor = 1.0 / getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
            for name, value in components.items():
                value = value.detach().float() * factor
                self._train_components[name] = self._train_components.get(name, 0.0) + value
        else:
            weight = float(find_batch_size(inputs) or 1)
            for name, value in components.items():
                value = value.detach().float() * weight
                self._eval_components[name] = self._eval_components.get(name, 0.0) + value
            self._eval_weight += weight
            if return_outputs and isinstance(outputs, Mapping):
                # Predictions should be the model's outputs alone, not the loss terms.
                outputs = {k: v for k, v in outputs.items() if k == "loss" or not k.endswith("_loss")}
        return (loss, outputs) if return_outputs else loss

    @staticmethod
    def _components(outputs: Any) -> dict[str, torch.Tensor]:
        if not isinstance(outputs, Mapping):
            return {}
        return {
            k: v
            for k, v in outputs.items()
            if k != "loss" and k.endswith("_loss") and torch.is_tensor(v) and v.numel() == 1
        }

    # ------------------------------------------------------------------ logging
    def _mean_over_processes(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        names = sorted(values)
        stacked = torch.stack([torch.as_tensor(values[n], device=self.args.device).float().reshape(()) for n in names])
        if self.args.world_size > 1:
            stacked = self.accelerator.gather(stacked).reshape(-1, len(names)).mean(0)
        return dict(zip(names, stacked.tolist()))

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the averaged loss components to training logs (next to ``loss``), then log."""
        if "loss" in logs and self._train_components:
            steps = max(self.state.global_step - self._components_step, 1)
            for name, value in self._mean_over_processes(self._train_components).items():
                logs[name] = value / steps
            self._train_components = {}
            self._components_step = self.state.global_step
        super().log(logs, *args, **kwargs)

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
        """Run Trainer's evaluation loop and add ``<prefix>_<component>`` means to its metrics."""
        self._eval_components, self._eval_weight = {}, 0.0
        output = super().evaluation_loop(*args, **kwargs)
        try:
            bound = inspect.signature(super().evaluation_loop).bind(*args, **kwargs)
            prefix = bound.arguments.get("metric_key_prefix", "eval")
        except TypeError:
            prefix = kwargs.get("metric_key_prefix", "eval")
        if self._eval_components and output.metrics is not None:
            sums = dict(self._eval_components)
            sums["__weight__"] = torch.tensor(self._eval_weight)
            means = self._mean_over_processes(sums)
            weight = means.pop("__weight__")
            for name, value in means.items():
                output.metrics[f"{prefix}_{name}"] = value / max(weight, 1e-12)
        self._eval_components, self._eval_weight = {}, 0.0
        return output


__all__ = ["CollatorEpochCallback", "MultiTaskTrainer"]
