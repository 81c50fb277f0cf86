"""KG-BERT with the auxiliary reconstruction objective of Contextualization Distillation.

``ContextualizedKGBert`` wraps any encoder checkpoint (BERT, RoBERTa, DeBERTa, ELECTRA, MiniLM...) and
trains two heads on it:

- a triple classifier over the first token of ``[CLS] head [SEP] relation [SEP] tail [SEP]``
  (label 1 = true triple, 0 = corrupted), and
- a masked-LM head that reconstructs masked tokens of the LLM-written context of the (true) triple.

``loss = kgc_weight * kgc_loss + alpha * reconstruction_loss``.

This file imports nothing from the rest of the package (only its configuration, relatively), so a saved
model directory carries working copies of both files and loads with ``trust_remote_code=True``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoModelForMaskedLM, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput, logging

from .configuration_kgbert import ContextualizedKGBertConfig

logger = logging.get_logger(__name__)

ScoreType = Literal["log_odds", "prob", "logit"]



@dataclass
class ContextualizedKGBertOutput(ModelOutput):
    """Output of :class:`ContextualizedKGBert`.

    Attributes:
        loss: ``kgc_weight * kgc_loss + alpha * reconstruction_loss`` (the terms that could be computed).
        kgc_loss: Cross-entropy of the triple classifier (``None`` without ``labels``).
        reconstruction_loss: Masked-LM cross-entropy over the masked context tokens (``None`` without
            ``mlm_*`` inputs or with ``use_reconstruction=False``; 0 when no token of the batch is masked,
            e.g. a batch whose triples have no context).
        logits: ``(batch, 2)`` classifier logits (float32).
        hidden_states: The encoder's hidden states of the classification pass, when requested.
        attentions: The encoder's attentions of the classification pass, when requested.
    """

    loss: torch.FloatTensor | None = None
    kgc_loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class KGBertClassificationHead(nn.Module):
    """``dense -> tanh -> dropout -> out_proj`` over the first token, i.e. BERT's pooler followed by
    KG-BERT's linear layer, built fresh so that it works for encoders without a pooler."""

    def __init__(self, config: ContextualizedKGBertConfig) -> None:
        super().__init__()
        encoder = config.encoder
        dropout = config.classifier_dropout
        if dropout is None:
            dropout = getattr(encoder, "hidden_dropout_prob", getattr(encoder, "dropout", 0.1))
        self.dense = nn.Linear(encoder.hidden_size, encoder.hidden_size)
        self.dropout = nn.Dropout(float(dropout if dropout is not None else 0.1))
        self.out_proj = nn.Linear(encoder.hidden_size, config.num_labels)

    def forward(self, first_token: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, hidden)`` first-token states to ``(batch, num_labels)`` logits."""
        return self.out_proj(self.dropout(torch.tanh(self.dense(first_token))))


class KGBertGenericLMHead(nn.Module):
    """Masked-LM head for encoders without a masked-LM class: ``dense -> act -> LayerNorm`` then a
    projection onto the *input embedding matrix* (passed at call time, so the tie needs no parameter
    sharing and survives save/load, PEFT and resizing) plus a bias."""

    def __init__(self, config: ContextualizedKGBertConfig) -> None:
        super().__init__()
        encoder = config.encoder
        self.dense = nn.Linear(encoder.hidden_size, encoder.hidden_size)
        act = getattr(encoder, "hidden_act", "gelu")
        self.act = ACT2FN[act] if isinstance(act, str) else act
        self.layer_norm = nn.LayerNorm(encoder.hidden_size, eps=getattr(encoder, "layer_norm_eps", 1e-12))
        self.bias = nn.Parameter(torch.zeros(encoder.vocab_size))

    def forward(self, hidden: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for ``(..., hidden)`` states."""
        hidden = self.layer_norm(self.act(self.dense(hidden)))
        return F.linear(hidden, embedding_weight.to(hidden.dtype), self.bias.to(hidden.dtype))


def _single_argument_head(mlm_model: PreTrainedModel) -> str | None:
    """Name of the masked-LM model's head when it is one submodule callable as ``head(hidden_states)``
    (BERT's ``cls``, RoBERTa's ``lm_head``, ...); ``None`` otherwise (ELECTRA, DistilBERT, ...)."""
    base = mlm_model.base_model
    heads = [(name, module) for name, module in mlm_model.named_children() if module is not base]
    if len(heads) != 1:
        return None
    name, module = heads[0]
    params = list(inspect.signature(module.forward).parameters.values())
    required = [
        p
        for p in params
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return name if len(required) == 1 else None


def _accepts(module: nn.Module, argument: str) -> bool:
    params = inspect.signature(module.forward).parameters
    return argument in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


class ContextualizedKGBert(PreTrainedModel):
    """KG-BERT triple classifier plus masked-LM reconstruction of the triple's context, on any encoder.

    Build from an encoder checkpoint with :meth:`from_encoder`, reload a trained model with
    ``from_pretrained`` (or ``AutoModel.from_pretrained`` once :mod:`hf_ctxdistill` is imported, or with
    ``trust_remote_code=True`` without it).

    Inputs (as produced by :class:`~hf_ctxdistill.training.KGBertCollator`):

    - ``input_ids``, ``attention_mask``, ``token_type_ids``: the tokenized triples, positives and
      corrupted negatives, and ``labels`` (1 = true, 0 = corrupted; -100 = ignore).
    - ``mlm_input_ids``, ``mlm_attention_mask``, ``mlm_labels``: one dynamically masked context per true
      triple of the batch, with ``mlm_labels`` -100 except at masked positions. A triple without a
      context has an all -100 row and so adds nothing to the loss.

    Loss normalisation: each term is a mean over its own items (classified triples; masked tokens). The
    forward pass accepts ``num_items_in_batch`` as a mapping ``{"labels": n, "mlm_labels": m}`` of counts
    over the whole (accumulated, all-device) batch, so that gradient accumulation and DDP reproduce the
    full-batch loss exactly; :class:`~hf_ctxdistill.training.MultiTaskTrainer` passes it (see
    :attr:`loss_normalization_keys`).
    """

    config_class = ContextualizedKGBertConfig
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # The wrapped encoder class does the real check when the attention implementation reaches it.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    # Scores are ranked against each other: a bf16 classifier turns many of them into ties.
    _keep_in_fp32_modules_strict = ["classifier"]
    # Stock `Trainer` must not pass a labels-only count that would normalise the reconstruction term with
    # the wrong denominator; `MultiTaskTrainer` uses the per-input protocol below instead.
    accepts_loss_kwargs = False
    #: Inputs whose non-ignored (!= -100) entries normalise one loss term each; a trainer may pass their
    #: counts over the accumulated batch as ``num_items_in_batch={key: count}``.
    loss_normalization_keys: tuple[str, ...] = ("labels", "mlm_labels")

    def __init__(self, config: ContextualizedKGBertConfig, encoder: PreTrainedModel | None = None) -> None:
        """Build the model from ``config``; pass ``encoder`` (an ``AutoModelForMaskedLM`` instance for
        ``lm_head_type="masked_lm"``, an ``AutoModel`` one for ``"generic"``) to wrap pretrained weights."""
        # Compared by model type, not class: loaded as remote code, the config class lives in another module.
        if getattr(config, "model_type", None) != ContextualizedKGBertConfig.model_type:
            raise TypeError(f"config must be a ContextualizedKGBertConfig, got {type(config).__name__}")
        super().__init__(config)
        if encoder is None:
            if config.lm_head_type == "generic":
                encoder = AutoModel.from_config(config.encoder, **_no_pooler_kwargs(config.encoder))
            else:
                encoder = AutoModelForMaskedLM.from_config(config.encoder)
        # One config object for the whole model: changes to `model.config.encoder` reach the encoder.
        config.encoder._attn_implementation = encoder.config._attn_implementation
        encoder.config = config.encoder
        self.encoder = encoder
        self.classifier = KGBertClassificationHead(config)
        self.lm_head = KGBertGenericLMHead(config) if config.lm_head_type == "generic" else None
        self._mlm_head_name = _single_argument_head(encoder) if config.lm_head_type == "masked_lm" else None
        self._base_accepts_token_type_ids = _accepts(self.encoder_model, "token_type_ids")
        self.post_init()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_encoder(
        cls,
        encoder_name_or_path: str,
        *,
        model_kwargs: dict[str, Any] | None = None,
        **config_kwargs: Any,
    ) -> ContextualizedKGBert:
        """Wrap a pretrained encoder checkpoint (Hub id or local folder).

        The checkpoint is loaded through ``AutoModelForMaskedLM`` when its architecture has a masked-LM
        class, so its own masked-LM head weights are reused when it ships them (heads missing from the
        checkpoint are freshly initialised, with the decoder tied to the input embeddings); otherwise
        through ``AutoModel`` with a new head tied to the input embeddings. The classification head is
        always new.

        Args:
            encoder_name_or_path: e.g. ``"bert-base-cased"`` or :func:`hf_ctxdistill.models.minilm_path`.
            model_kwargs: Extra ``from_pretrained`` arguments for the encoder.
            **config_kwargs: :class:`ContextualizedKGBertConfig` fields (``alpha``, ``use_reconstruction``,
                ``max_seq_length``...). For convenience the loading arguments ``dtype``,
                ``attn_implementation``, ``revision``, ``cache_dir``, ``token``, ``trust_remote_code``,
                ``local_files_only``, ``device_map`` and ``subfolder`` given here are moved to
                ``model_kwargs``.
        """
        from transformers import AutoConfig

        split_load_kwargs, CONFIG_LOAD_KWARGS = _loading_helpers()
        model_kwargs = split_load_kwargs(model_kwargs, config_kwargs)
        config_load_kwargs = {k: model_kwargs[k] for k in CONFIG_LOAD_KWARGS if k in model_kwargs}
        encoder_config = AutoConfig.from_pretrained(encoder_name_or_path, **config_load_kwargs)
        config = ContextualizedKGBertConfig(encoder=encoder_config, **config_kwargs)
        if config.lm_head_type == "masked_lm":
            encoder = AutoModelForMaskedLM.from_pretrained(encoder_name_or_path, **model_kwargs)
        else:
            model_kwargs = {**_no_pooler_kwargs(encoder_config), **model_kwargs}
            encoder = AutoModel.from_pretrained(encoder_name_or_path, **model_kwargs)
        config.encoder = encoder.config
        config.name_or_path = encoder_name_or_path
        model = cls(config, encoder=encoder)
        # The new heads follow the encoder's device; the classifier stays float32 (see
        # `_keep_in_fp32_modules_strict`), the generic LM head takes the encoder's dtype.
        embeddings = model.get_input_embeddings().weight
        if embeddings.device.type != "meta":
            model.classifier.to(embeddings.device)
            if model.lm_head is not None:
                model.lm_head.to(device=embeddings.device, dtype=embeddings.dtype)
        return model

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Initialise the heads (the encoder initialises its own modules)."""
        std = getattr(self.config.encoder, "initializer_range", None) or 0.02
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, KGBertGenericLMHead):
            nn.init.zeros_(module.bias)

    # ------------------------------------------------------------------ accessors
    @property
    def encoder_model(self) -> PreTrainedModel:
        """The bare encoder (``BertModel``, ``RobertaModel``...) without any head."""
        return self.encoder.base_model if self.config.lm_head_type == "masked_lm" else self.encoder

    def get_input_embeddings(self) -> nn.Module:
        """The encoder's input embeddings."""
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Replace the encoder's input embeddings."""
        self.encoder.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        """The masked-LM decoder (``None`` for the generic head, which projects with the input embeddings)."""
        return self.encoder.get_output_embeddings() if self.config.lm_head_type == "masked_lm" else None

    def resize_token_embeddings(self, new_num_tokens: int | None = None, **kwargs: Any) -> nn.Embedding:
        """Resize the encoder's vocabulary (and the masked-LM head with it), e.g. after adding tokens."""
        embeddings = self.encoder.resize_token_embeddings(new_num_tokens, **kwargs)
        if self.lm_head is not None:
            old = self.lm_head.bias.data
            new = old.new_zeros(embeddings.weight.shape[0])
            n = min(len(old), len(new))
            new[:n] = old[:n]
            self.lm_head.bias = nn.Parameter(new)
        self.config.encoder.vocab_size = embeddings.weight.shape[0]
        return embeddings

    def task_head_module_names(self) -> list[str]:
        """Modules that are not part of the pretrained encoder body and must stay trainable under
        parameter-efficient fine-tuning (PEFT ``modules_to_save``): the classifier and, with
        reconstruction on, the masked-LM head's transform (never the decoder tied to the embeddings)."""
        names = ["classifier"]
        if not self.config.use_reconstruction:
            return names
        if self.lm_head is not None:
            return names + ["lm_head"]
        tied = self.encoder.get_output_embeddings()
        base = self.encoder.base_model

        def contains(module: nn.Module, target: nn.Module | None) -> bool:
            return target is not None and any(m is target for m in module.modules())

        def collect(module: nn.Module, prefix: str) -> list[str]:
            found = []
            for name, child in module.named_children():
                if child is base or child is tied:
                    continue
                path = f"{prefix}.{name}"
                if contains(child, tied):
                    found.extend(collect(child, path))
                elif any(True for _ in child.parameters()):
                    found.append(path)
            return found

        return names + collect(self.encoder, "encoder")

    # ------------------------------------------------------------------ forward
    def _normalizer(self, key: str, targets: torch.Tensor, num_items_in_batch: Any) -> torch.Tensor:
        """Denominator of a summed loss term: the count over the whole accumulated batch when the trainer
        gives it, else the count in this batch; never below 1 (an all-ignored term is 0, not NaN)."""
        if isinstance(num_items_in_batch, Mapping) and key in num_items_in_batch:
            count = num_items_in_batch[key]
        elif num_items_in_batch is not None and not isinstance(num_items_in_batch, Mapping) and key == "labels":
            count = num_items_in_batch
        else:
            count = targets.ne(-100).sum()
        return torch.as_tensor(count, device=targets.device, dtype=torch.float32).clamp(min=1)

    def _encode(self, input_ids, attention_mask, token_type_ids, **kwargs) -> Any:
        if token_type_ids is not None and not self._base_accepts_token_type_ids:
            token_type_ids = None
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.encoder_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    def _mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.lm_head is not None:
            return self.lm_head(hidden, self.get_input_embeddings().weight)
        return getattr(self.encoder, self._mlm_head_name)(hidden)

    def reconstruction_loss(
        self,
        mlm_input_ids: torch.Tensor,
        mlm_attention_mask: torch.Tensor | None,
        mlm_labels: torch.Tensor,
        mlm_token_type_ids: torch.Tensor | None = None,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor:
        """Summed masked-LM cross-entropy over masked context tokens divided by their count.

        Only the masked positions are projected onto the vocabulary (where the head allows it), which
        keeps the ``(tokens, vocab)`` logits of a 30k-128k vocabulary out of memory.
        """
        masked = mlm_labels.ne(-100)
        if not bool(masked.any()):
            # Still run the head on one position per row so every parameter joins the graph (DDP without
            # find_unused_parameters); the all -100 targets make the term exactly 0.
            masked = torch.zeros_like(masked)
            masked[:, 0] = True
        targets = mlm_labels[masked]
        if self._mlm_head_name is not None or self.lm_head is not None:
            hidden = self._encode(mlm_input_ids, mlm_attention_mask, mlm_token_type_ids).last_hidden_state
            logits = self._mlm_logits(hidden[masked])
        else:
            kwargs = {"token_type_ids": mlm_token_type_ids} if mlm_token_type_ids is not None else {}
            logits = self.encoder(input_ids=mlm_input_ids, attention_mask=mlm_attention_mask, **kwargs).logits[masked]
        total = F.cross_entropy(logits.float(), targets, ignore_index=-100, reduction="sum")
        return total / self._normalizer("mlm_labels", mlm_labels, num_items_in_batch)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        mlm_input_ids: torch.Tensor | None = None,
        mlm_attention_mask: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
        mlm_token_type_ids: torch.Tensor | None = None,
        num_items_in_batch: Mapping[str, Any] | torch.Tensor | int | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> ContextualizedKGBertOutput | tuple:
        """Classify triples and, when masked contexts are given, reconstruct them.

        Args:
            input_ids, attention_mask, token_type_ids: ``(n, L)`` tokenized triples.
            labels: ``(n,)`` 1 = true, 0 = corrupted, -100 = ignored.
            mlm_input_ids, mlm_attention_mask, mlm_token_type_ids: ``(m, C)`` masked contexts.
            mlm_labels: ``(m, C)`` original ids at masked positions, -100 elsewhere.
            num_items_in_batch: ``{"labels": n, "mlm_labels": m}`` item counts of the whole accumulated
                batch (normalises each term; see the class docstring); a bare number counts ``labels``.
            output_hidden_states, output_attentions: Return those of the classification pass.
            return_dict: ``False`` returns ``output.to_tuple()``.
            **kwargs: Passed to the encoder on the classification pass.
        """
        outputs = ContextualizedKGBertOutput()
        total = None
        if input_ids is not None or kwargs.get("inputs_embeds") is not None:
            if output_hidden_states:
                kwargs["output_hidden_states"] = True
            if output_attentions:
                kwargs["output_attentions"] = True
            encoded = self._encode(input_ids, attention_mask, token_type_ids, **kwargs)
            first = encoded.last_hidden_state[:, 0]
            head_dtype = next(self.classifier.parameters()).dtype
            outputs.logits = self.classifier(first.to(head_dtype)).float()
            if output_hidden_states:
                outputs.hidden_states = encoded.hidden_states
            if output_attentions:
                outputs.attentions = encoded.attentions
            if labels is not None:
                labels = labels.to(outputs.logits.device).long()
                summed = F.cross_entropy(outputs.logits, labels, ignore_index=-100, reduction="sum")
                outputs.kgc_loss = summed / self._normalizer("labels", labels, num_items_in_batch)
                total = self.config.kgc_weight * outputs.kgc_loss
        if self.config.use_reconstruction and mlm_input_ids is not None and mlm_labels is not None:
            outputs.reconstruction_loss = self.reconstruction_loss(
                mlm_input_ids, mlm_attention_mask, mlm_labels, mlm_token_type_ids, num_items_in_batch
            )
            term = self.config.alpha * outputs.reconstruction_loss
            total = term if total is None else total + term
        outputs.loss = total
        return outputs.to_tuple() if return_dict is False else outputs

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def score_triples(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        score_type: ScoreType = "log_odds",
    ) -> torch.Tensor:
        """Plausibility scores ``(n,)`` (float32, higher = more plausible) of tokenized triples.

        Runs in eval mode (restoring the previous mode) under ``torch.inference_mode``, in whatever dtype
        and attention implementation the model was loaded with (e.g. ``dtype=torch.bfloat16,
        attn_implementation="sdpa"``; the classifier stays float32), also right after mixed-precision
        training, whose autocast wrapper it bypasses.

        Args:
            input_ids, attention_mask, token_type_ids: One batch from the collator or the scorer.
            score_type: ``"log_odds"`` (default) = ``logit_true - logit_false``, which ranks exactly like
                the softmax probability but does not saturate to 1.0 (and so to ties) for confident
                triples; ``"prob"`` = softmax probability of "true" (KG-BERT's score); ``"logit"`` = raw
                logit of "true".
        """
        was_training = self.training
        self.eval()
        # A Trainer run with bf16/fp16 leaves accelerate's autocast wrapper on `forward` (keeping the
        # original as `_original_forward`); scoring through it would round logits to 16 bits and turn
        # close scores into ties, so scores come from the weights' own dtype.
        forward = self.__dict__.get("_original_forward", self)
        try:
            device = self.device
            logits = forward(
                input_ids=input_ids.to(device),
                attention_mask=None if attention_mask is None else attention_mask.to(device),
                token_type_ids=None if token_type_ids is None else token_type_ids.to(device),
            ).logits
        finally:
            self.train(was_training)
        if score_type == "log_odds":
            return logits[:, 1] - logits[:, 0]
        if score_type == "prob":
            return logits.softmax(-1)[:, 1]
        if score_type == "logit":
            return logits[:, 1]
        raise ValueError(f"score_type must be 'log_odds', 'prob' or 'logit', got {score_type!r}")


def _no_pooler_kwargs(encoder_config: Any) -> dict[str, Any]:
    """``add_pooling_layer=False`` for ``AutoModel`` classes that take it: an unused pooler would leave
    parameters without gradients (a DDP error without ``find_unused_parameters``)."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        model_class = MODEL_MAPPING[type(encoder_config)]
    except (KeyError, ValueError):
        return {}
    return {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters else {}



def _loading_helpers():
    """The shared checkpoint-loading helpers, imported absolutely and lazily: saved models carry a copy of
    this file for ``trust_remote_code``, which can only bring sibling files along, and they never call
    the ``from_*`` constructors that need these."""
    try:
        from hf_ctxdistill.models.loading import CONFIG_LOAD_KWARGS, split_load_kwargs
    except ImportError as err:  # a remote-code copy without the package installed
        raise ImportError("building a model from pretrained checkpoints needs the hf_ctxdistill package") from err
    return split_load_kwargs, CONFIG_LOAD_KWARGS

# Saved models carry this file and the configuration's, and an ``auto_map`` naming them, so that
# ``AutoModel.from_pretrained(path, trust_remote_code=True)`` works without this package installed.
ContextualizedKGBert.register_for_auto_class("AutoModel")

__all__ = ["ContextualizedKGBert", "ContextualizedKGBertOutput", "KGBertClassificationHead", "KGBertGenericLMHead"]
