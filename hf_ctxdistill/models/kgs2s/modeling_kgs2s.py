"""KG-S2S with the auxiliary objectives of Contextualization Distillation (``ContextualizedKGS2S``).

The model wraps any ``AutoModelForSeq2SeqLM`` (T5, BART, or an ``EncoderDecoderModel`` such as BERT2BERT
warm-started from an encoder checkpoint) and trains it on up to three text-to-text tasks:

- **kgc** (link prediction): ``predict tail: <head> | <relation>`` -> tail name, and
  ``predict head: <tail> | <relation>`` -> head name;
- **contextualization**: ``contextualize: <head> | <relation> | <tail>`` -> the triple's context paragraph;
- **reconstruction**: ``reconstruct: <span-masked context>`` -> the context paragraph.

Each task comes as its own padded sub-batch (``input_ids``/``labels``, ``context_*``,
``reconstruction_*``; see :class:`~hf_ctxdistill.training.kgs2s_collator.KGS2SCollator`) and is run
through the wrapped model separately, so short entity-name targets are never padded to the length of a
context paragraph. ``loss = kgc_weight * kgc_loss + contextualization_weight * contextualization_loss +
reconstruction_weight * reconstruction_loss``.

This file imports nothing from the rest of the package (only its configuration, relatively), so a saved
model directory carries working copies of both files and loads with ``trust_remote_code=True``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    EncoderDecoderConfig,
    EncoderDecoderModel,
    PreTrainedModel,
)
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput, logging

from .configuration_kgs2s import ContextualizedKGS2SConfig

logger = logging.get_logger(__name__)

# Keyword arguments of the construction helpers that go to `from_pretrained`, not to the config.

#: Batch keys of each task: (input ids, attention mask, labels). The kgc task uses the standard names, so
#: the model also behaves as a plain seq2seq model for ``Trainer`` and ``generate``.
TASK_KEYS: dict[str, tuple[str, str, str]] = {
    "kgc": ("input_ids", "attention_mask", "labels"),
    "contextualization": ("context_input_ids", "context_attention_mask", "context_labels"),
    "reconstruction": ("reconstruction_input_ids", "reconstruction_attention_mask", "reconstruction_labels"),
}


@dataclass
class ContextualizedKGS2SOutput(ModelOutput):
    """Output of :class:`ContextualizedKGS2S`.

    Attributes:
        loss: Weighted sum of the task losses that could be computed (``None`` when no labels were given).
        kgc_loss: Token-level cross-entropy of the entity-name targets.
        contextualization_loss: Token-level cross-entropy of the context targets of the contextualization
            task.
        reconstruction_loss: Token-level cross-entropy of the context targets of the reconstruction task.
            A task whose inputs are present but empty (no triple of the batch has a context) reports 0; a
            task whose inputs are absent, or that the configuration switches off, reports ``None``.
        logits: ``(batch, target_length, vocab)`` decoder logits of the kgc sub-batch (the auxiliary
            tasks' logits are not kept: a context paragraph's logits are large and nobody reads them).
    """

    loss: torch.FloatTensor | None = None
    kgc_loss: torch.FloatTensor | None = None
    contextualization_loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


def _model_class_accepts(config: Any, mapping_name: str, argument: str) -> bool:
    from transformers.models.auto import modeling_auto

    mapping = getattr(modeling_auto, mapping_name)
    try:
        model_class = mapping[type(config)]
    except (KeyError, ValueError):
        return False
    return argument in inspect.signature(model_class.__init__).parameters


def _fresh_module_names(model: nn.Module, missing_parameters: list[str], prefix: str) -> list[str]:
    """Smallest modules of ``model`` all of whose parameters are in ``missing_parameters`` (i.e. were
    initialised fresh rather than loaded), as paths under ``prefix``. A loose missing parameter of a
    partly loaded module (a bias beside a tied weight) is not listed: keeping that whole module trainable
    under PEFT would copy the tied embedding matrix."""
    missing = set(missing_parameters)
    modules = dict(model.named_modules())
    found: set[str] = set()
    for name in missing:
        path = name.rsplit(".", 1)[0] if "." in name else ""
        if path not in modules:
            continue
        own = [f"{path}.{p}" if path else p for p, _ in modules[path].named_parameters()]
        if not own or not all(p in missing for p in own):
            continue
        # Climb while the parent is also entirely fresh, to name the largest such module.
        while "." in path:
            parent = path.rsplit(".", 1)[0]
            params = [f"{parent}.{p}" for p, _ in modules[parent].named_parameters()]
            if params and all(p in missing for p in params):
                path = parent
            else:
                break
        found.add(path)
    return sorted(f"{prefix}.{p}" if p else prefix for p in found)


class ContextualizedKGS2S(PreTrainedModel):
    """KG-S2S link prediction plus contextualization and reconstruction of LLM-written contexts, on any
    sequence-to-sequence model.

    Build it with :meth:`from_seq2seq` (a T5/BART/... checkpoint), :meth:`from_encoder_decoder`
    (BERT2BERT and other warm-started pairs, e.g. from the offline MiniLM), or from a configuration (random
    weights); reload a trained model with ``from_pretrained`` (or ``AutoModel.from_pretrained`` once
    :mod:`hf_ctxdistill` is imported, or with ``trust_remote_code=True`` without it).

    Loss normalisation: each term is a mean over its own target tokens. The forward pass accepts
    ``num_items_in_batch`` as a mapping ``{"labels": n, "context_labels": m, "reconstruction_labels": k}`` of
    target-token counts over the whole (accumulated, all-device) batch, so that gradient accumulation and
    DDP reproduce the full-batch loss exactly (see :attr:`loss_normalization_keys`).
    """

    config_class = ContextualizedKGS2SConfig
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # The wrapped model class does the real check when the attention implementation reaches it.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    # A stock `Trainer` must not pass a labels-only count that would normalise the auxiliary terms with the
    # wrong denominator; `MultiTaskTrainer` uses the per-input protocol below instead.
    accepts_loss_kwargs = False
    #: Inputs whose non-ignored (!= -100) entries normalise one loss term each; a trainer may pass their
    #: counts over the accumulated batch as ``num_items_in_batch={key: count}``.
    loss_normalization_keys: tuple[str, ...] = tuple(keys[2] for keys in TASK_KEYS.values())

    def __init__(self, config: ContextualizedKGS2SConfig, seq2seq: PreTrainedModel | None = None) -> None:
        """Build the model from ``config``; pass ``seq2seq`` (an ``AutoModelForSeq2SeqLM`` instance) to wrap
        pretrained weights."""
        if not isinstance(config, ContextualizedKGS2SConfig):
            raise TypeError(f"config must be a ContextualizedKGS2SConfig, got {type(config).__name__}")
        _default_decoder_start(config.seq2seq)
        super().__init__(config)
        if seq2seq is None:
            seq2seq = _seq2seq_from_config(config.seq2seq)
        # One config object for the whole model: changes to `model.config.seq2seq` reach the wrapped model.
        config.seq2seq._attn_implementation = seq2seq.config._attn_implementation
        seq2seq.config = config.seq2seq
        self.seq2seq = seq2seq
        missing = [n for n in ("decoder_start_token_id", "pad_token_id", "eos_token_id") if getattr(config, n) is None]
        if missing:
            raise ValueError(
                f"the seq2seq configuration lacks {missing}; set them from the tokenizer (BERT2BERT: "
                "decoder_start_token_id=cls_token_id, eos_token_id=sep_token_id, pad_token_id=pad_token_id)"
            )
        self.post_init()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_seq2seq(
        cls,
        name_or_path: str,
        *,
        model_kwargs: dict[str, Any] | None = None,
        **config_kwargs: Any,
    ) -> ContextualizedKGS2S:
        """Wrap a pretrained sequence-to-sequence checkpoint (``"t5-base"``, ``"facebook/bart-base"``, a
        saved ``EncoderDecoderModel``...).

        Args:
            name_or_path: Hub id or local folder of an ``AutoModelForSeq2SeqLM`` checkpoint.
            model_kwargs: Extra ``from_pretrained`` arguments.
            **config_kwargs: :class:`ContextualizedKGS2SConfig` fields (weights, lengths...). The loading
                arguments ``dtype``, ``attn_implementation``, ``revision``, ``cache_dir``, ``token``,
                ``trust_remote_code``, ``local_files_only``, ``device_map`` and ``subfolder`` given here
                are moved to ``model_kwargs``.
        """
        split_load_kwargs, CONFIG_LOAD_KWARGS = _loading_helpers()
        model_kwargs = split_load_kwargs(model_kwargs, config_kwargs)
        seq2seq = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, **model_kwargs)
        config = ContextualizedKGS2SConfig(seq2seq=seq2seq.config, **config_kwargs)
        config.name_or_path = name_or_path
        return cls(config, seq2seq=seq2seq)

    @classmethod
    def from_encoder_decoder(
        cls,
        encoder_name_or_path: str,
        decoder_name_or_path: str | None = None,
        *,
        tokenizer: Any = None,
        model_kwargs: dict[str, Any] | None = None,
        **config_kwargs: Any,
    ) -> ContextualizedKGS2S:
        """Warm-start an ``EncoderDecoderModel`` from two checkpoints (BERT2BERT: the same encoder twice).

        The decoder is loaded as a causal LM with cross-attention (freshly initialised, as is an LM head the
        checkpoint lacks); the names of such fresh modules are stored in ``config.new_modules`` so that
        parameter-efficient fine-tuning keeps them trainable (:meth:`task_head_module_names`).

        Special tokens are taken from ``tokenizer`` (default: ``AutoTokenizer`` of the decoder checkpoint):
        ``decoder_start_token_id`` = ``[CLS]`` (or BOS), ``eos_token_id`` = ``[SEP]`` (or EOS) and
        ``pad_token_id`` = the padding token, the BERT2BERT convention.

        Args:
            encoder_name_or_path: e.g. :func:`hf_ctxdistill.models.offline.minilm_path`.
            decoder_name_or_path: Defaults to the encoder checkpoint.
            tokenizer: The tokenizer the model will be trained with.
            model_kwargs: Extra ``from_pretrained`` arguments for both halves.
            **config_kwargs: :class:`ContextualizedKGS2SConfig` fields.
        """
        from transformers import AutoTokenizer

        decoder_name_or_path = decoder_name_or_path or encoder_name_or_path
        split_load_kwargs, CONFIG_LOAD_KWARGS = _loading_helpers()
        model_kwargs = split_load_kwargs(model_kwargs, config_kwargs)
        config_load_kwargs = {k: model_kwargs[k] for k in CONFIG_LOAD_KWARGS if k in model_kwargs}
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(decoder_name_or_path, **config_load_kwargs)
        encoder_config = AutoConfig.from_pretrained(encoder_name_or_path, **config_load_kwargs)
        encoder_kwargs = dict(model_kwargs)
        # An unused pooler would leave parameters without gradients (a DDP error without
        # find_unused_parameters); the seq2seq encoder only needs hidden states.
        if _model_class_accepts(encoder_config, "MODEL_MAPPING", "add_pooling_layer"):
            encoder_kwargs["add_pooling_layer"] = False
        encoder = AutoModel.from_pretrained(encoder_name_or_path, **encoder_kwargs)
        decoder_config = AutoConfig.from_pretrained(decoder_name_or_path, **config_load_kwargs)
        decoder_config.is_decoder = True
        decoder_config.add_cross_attention = True
        decoder, info = AutoModelForCausalLM.from_pretrained(
            decoder_name_or_path, config=decoder_config, output_loading_info=True, **model_kwargs
        )
        seq2seq = EncoderDecoderModel(encoder=encoder, decoder=decoder)
        start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        if start is None or eos is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a [CLS]/BOS, a [SEP]/EOS and a padding token for BERT2BERT-style decoding")
        seq2seq.config.decoder_start_token_id = start
        seq2seq.config.eos_token_id = eos
        seq2seq.config.pad_token_id = tokenizer.pad_token_id
        seq2seq.config.vocab_size = seq2seq.config.decoder.vocab_size
        new_modules = _fresh_module_names(decoder, list(info.get("missing_keys", [])), "seq2seq.decoder")
        config = ContextualizedKGS2SConfig(seq2seq=seq2seq.config, new_modules=new_modules, **config_kwargs)
        config.name_or_path = encoder_name_or_path
        return cls(config, seq2seq=seq2seq)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Nothing of its own to initialise: the wrapped model initialises its modules."""

    # ------------------------------------------------------------------ accessors
    @property
    def decoder_start_token_id(self) -> int:
        """First decoder input token."""
        return int(self.config.decoder_start_token_id)

    @property
    def eos_token_id(self) -> int:
        """Token that ends every target sequence."""
        return int(self.config.eos_token_id)

    @property
    def pad_token_id(self) -> int:
        """Padding token id."""
        return int(self.config.pad_token_id)

    def get_input_embeddings(self) -> nn.Module:
        """The wrapped model's (encoder) input embeddings."""
        return self.seq2seq.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Replace the wrapped model's input embeddings."""
        self.seq2seq.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        """The wrapped model's LM head."""
        return self.seq2seq.get_output_embeddings()

    def get_encoder(self) -> nn.Module:
        """The wrapped model's encoder."""
        return self.seq2seq.get_encoder()

    def task_head_module_names(self) -> list[str]:
        """Modules initialised fresh when the model was built (BERT2BERT: the decoder's cross-attention and
        LM-head transform), which must stay trainable under parameter-efficient fine-tuning (PEFT
        ``modules_to_save``). Empty for a pretrained seq2seq checkpoint."""
        return list(getattr(self.config, "new_modules", None) or [])

    def default_lora_target_modules(self) -> list[str] | str:
        """LoRA targets for the wrapped architecture (PEFT's defaults for T5/BART/BERT...: the attention
        query and value projections), excluding :meth:`task_head_module_names` (which train in full). A
        regex string when modules must be excluded, else a list of module names."""
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as mapping

        seq2seq_config = self.config.seq2seq
        types = [seq2seq_config.model_type]
        if hasattr(seq2seq_config, "encoder") and hasattr(seq2seq_config, "decoder"):
            types = [seq2seq_config.encoder.model_type, seq2seq_config.decoder.model_type]
        names = sorted({name for t in types for name in mapping.get(t, [])})
        if not names:
            raise ValueError(f"no default LoRA target modules known for {types}; pass target_modules yourself")
        fresh = self.task_head_module_names()
        if not fresh:
            return names
        import re

        excluded = "|".join(re.escape(f) for f in fresh)
        return rf"^(?!(?:{excluded})(?:\.|$)).*\.(?:{'|'.join(map(re.escape, names))})$"

    # ------------------------------------------------------------------ forward
    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs for ``labels``: the decoder start token, then the labels without their last
        position, with ignored positions (-100) replaced by padding. Done here rather than by the wrapped
        class so every architecture follows one convention."""
        shifted = labels.new_full(labels.shape, self.pad_token_id)
        shifted[:, 1:] = labels[:, :-1]
        shifted[:, 0] = self.decoder_start_token_id
        return shifted.masked_fill(shifted == -100, self.pad_token_id)

    def _normalizer(self, key: str, labels: torch.Tensor, num_items_in_batch: Any) -> torch.Tensor:
        """Denominator of a summed loss term: the count over the whole accumulated batch when the trainer
        gives it, else the count in this batch; never below 1 (an all-ignored term is 0, not NaN)."""
        if isinstance(num_items_in_batch, Mapping) and key in num_items_in_batch:
            count = num_items_in_batch[key]
        elif num_items_in_batch is not None and not isinstance(num_items_in_batch, Mapping) and key == "labels":
            count = num_items_in_batch
        else:
            count = labels.ne(-100).sum()
        return torch.as_tensor(count, device=labels.device, dtype=torch.float32).clamp(min=1)

    def _run_task(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        labels: torch.Tensor | None,
        decoder_input_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        if attention_mask is not None and attention_mask.dim() == 2 and attention_mask.shape[1] > 1:
            # Trim columns that are padding in every row (the collator pads per task, but a caller may not).
            keep = int(attention_mask.ne(0).any(0).nonzero().max().item()) + 1 if bool(attention_mask.any()) else 1
            input_ids, attention_mask = input_ids[:, :keep], attention_mask[:, :keep]
        if decoder_input_ids is None and labels is not None:
            decoder_input_ids = self.shift_right(labels)
        elif decoder_input_ids is None:
            # No targets: the logits of the first decoding step.
            decoder_input_ids = input_ids.new_full((input_ids.shape[0], 1), self.decoder_start_token_id)
        return self.seq2seq(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, use_cache=False, **kwargs
        )

    def _summed_cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).long(), ignore_index=-100, reduction="sum")

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        context_input_ids: torch.Tensor | None = None,
        context_attention_mask: torch.Tensor | None = None,
        context_labels: torch.Tensor | None = None,
        reconstruction_input_ids: torch.Tensor | None = None,
        reconstruction_attention_mask: torch.Tensor | None = None,
        reconstruction_labels: torch.Tensor | None = None,
        num_items_in_batch: Mapping[str, Any] | torch.Tensor | int | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> ContextualizedKGS2SOutput | tuple:
        """Run each task present in the batch through the wrapped model and combine the losses.

        Args:
            input_ids, attention_mask: ``(n, S)`` link-prediction inputs (``predict tail/head: ...``).
            labels: ``(n, T)`` entity-name targets ending with EOS, -100 at padding.
            decoder_input_ids: Explicit decoder inputs for the kgc sub-batch (default: ``labels`` shifted;
                without labels, the decoder start token alone).
            context_input_ids, context_attention_mask, context_labels: contextualization sub-batch
                (``contextualize: h | r | t`` -> context).
            reconstruction_input_ids, reconstruction_attention_mask, reconstruction_labels: reconstruction
                sub-batch (span-masked context -> context).
            num_items_in_batch: Target-token counts of the accumulated batch per labels key (see the class
                docstring); a bare number counts ``labels``.
            return_dict: ``False`` returns ``output.to_tuple()``.
            **kwargs: Passed to the wrapped model on the kgc pass (e.g. ``output_attentions``).
        """
        outputs = ContextualizedKGS2SOutput()
        weights = self.config.task_weights()
        total: torch.Tensor | None = None
        given = {
            "kgc": (input_ids, attention_mask, labels),
            "contextualization": (context_input_ids, context_attention_mask, context_labels),
            "reconstruction": (reconstruction_input_ids, reconstruction_attention_mask, reconstruction_labels),
        }
        for task, (ids, mask, targets) in given.items():
            if ids is None:
                continue
            if task == "contextualization" and not self.config.use_contextualization:
                continue
            if task == "reconstruction" and not self.config.use_reconstruction:
                continue
            if ids.shape[0] == 0:
                if targets is not None:
                    # No triple of this batch has a context: the term is present and contributes 0.
                    setattr(outputs, f"{task}_loss", torch.zeros((), device=ids.device))
                continue
            extra = kwargs if task == "kgc" else {}
            result = self._run_task(ids, mask, targets, decoder_input_ids if task == "kgc" else None, **extra)
            if task == "kgc":
                outputs.logits = result.logits
            if targets is None:
                continue
            key = TASK_KEYS[task][2]
            term = self._summed_cross_entropy(result.logits, targets) / self._normalizer(key, targets, num_items_in_batch)
            setattr(outputs, f"{task}_loss", term)
            weighted = weights[task] * term
            total = weighted if total is None else total + weighted
        if total is None and any(getattr(outputs, f"{t}_loss") is not None for t in TASK_KEYS):
            total = torch.zeros((), device=self.device)
        outputs.loss = total
        return outputs.to_tuple() if return_dict is False else outputs

    # ------------------------------------------------------------------ scoring and generation
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> BaseModelOutput:
        """Run the encoder once (e.g. for a batch of link-prediction queries)."""
        encoder = self.seq2seq.get_encoder()
        out = encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return BaseModelOutput(last_hidden_state=out.last_hidden_state)

    def sequence_log_likelihood(
        self,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """Teacher-forced log-likelihood of each target sequence given its (already encoded) source.

        Args:
            encoder_hidden_states: ``(n, S, H)`` encoder states, one row per target (expand a query's
                states over its candidates before calling).
            attention_mask: ``(n, S)`` source mask.
            targets: ``(n, T)`` target ids ending with EOS, -100 at padding.

        Returns:
            ``(n,)`` float32 sums of ``log p(token | prefix, source)`` over each target's tokens, the EOS
            included: the same quantity beam search accumulates (with ``length_penalty=0``).
        """
        logits = self.seq2seq(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden_states),
            attention_mask=attention_mask,
            decoder_input_ids=self.shift_right(targets),
            use_cache=False,
        ).logits
        logits = logits.float()
        valid = targets.ne(-100)
        # log p = logit - logsumexp(logits): no (n, T, vocab) log-softmax tensor beside the logits.
        picked = logits.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
        return (picked * valid).sum(-1)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """``generate`` of the wrapped model (for constrained decoding over entity names see
        :class:`~hf_ctxdistill.models.kgs2s.decoding.KGS2SLinkPredictor`)."""
        return self.seq2seq.generate(*args, **kwargs)


def _default_decoder_start(seq2seq_config: Any) -> None:
    """T5-family checkpoints start decoding with the padding token; some configurations leave
    ``decoder_start_token_id`` unset and rely on that convention, which is made explicit here."""
    if getattr(seq2seq_config, "decoder_start_token_id", None) is None and "t5" in str(seq2seq_config.model_type):
        seq2seq_config.decoder_start_token_id = seq2seq_config.pad_token_id


def _seq2seq_from_config(seq2seq_config: Any) -> PreTrainedModel:
    """Random-weight model for a seq2seq configuration. An ``EncoderDecoderConfig`` gets its encoder built
    without a pooler, like :meth:`ContextualizedKGS2S.from_encoder_decoder` does, so a saved model reloads
    with exactly the parameters it was saved with."""
    if isinstance(seq2seq_config, EncoderDecoderConfig):
        encoder_kwargs = {}
        if _model_class_accepts(seq2seq_config.encoder, "MODEL_MAPPING", "add_pooling_layer"):
            encoder_kwargs["add_pooling_layer"] = False
        encoder = AutoModel.from_config(seq2seq_config.encoder, **encoder_kwargs)
        decoder = AutoModelForCausalLM.from_config(seq2seq_config.decoder)
        return EncoderDecoderModel(config=seq2seq_config, encoder=encoder, decoder=decoder)
    return AutoModelForSeq2SeqLM.from_config(seq2seq_config)





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
ContextualizedKGS2S.register_for_auto_class("AutoModel")

__all__ = ["TASK_KEYS", "ContextualizedKGS2S", "ContextualizedKGS2SOutput"]
