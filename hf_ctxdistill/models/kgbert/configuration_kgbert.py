"""Configuration of :class:`~hf_ctxdistill.models.kgbert.ContextualizedKGBert`.

The configuration nests the wrapped encoder's own configuration (any ``AutoConfig`` model type) under
``encoder``, the way ``EncoderDecoderConfig`` nests its two halves, so a saved model reloads with the
right encoder class and nothing else to pass.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, BertConfig, PretrainedConfig

LM_HEAD_TYPES = ("auto", "masked_lm", "generic")


def _has_masked_lm_class(encoder_config: PretrainedConfig) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

    try:
        return type(encoder_config) in MODEL_FOR_MASKED_LM_MAPPING
    except Exception:  # a registered config class whose mapping entry cannot be resolved
        return False


class ContextualizedKGBertConfig(PretrainedConfig):
    """Configuration of a KG-BERT triple classifier with the auxiliary reconstruction objective.

    Args:
        encoder: Configuration of the wrapped encoder (a ``PretrainedConfig`` or its ``to_dict()``, which
            must carry ``model_type``). Defaults to a ``BertConfig()`` so the class can be built bare, as
            the library's serialisation code sometimes does.
        alpha: Weight of the reconstruction (masked-LM over the triple's context) loss; total loss is
            ``kgc_weight * kgc_loss + alpha * reconstruction_loss``. The authors used 1.0.
            ``reconstruction_weight`` is an alias of this attribute.
        kgc_weight: Weight of the triple-classification loss (1.0 in the paper's KG-BERT setting).
        use_reconstruction: Compute the reconstruction loss when masked-context inputs are given. When
            ``False`` the model is plain KG-BERT and ignores ``mlm_*`` inputs.
        max_seq_length: Token budget of one ``[CLS] h [SEP] r [SEP] t [SEP]`` input (authors: 50). Stored
            for the collator and the scorer; named so because ``max_length`` is a generation parameter
            that ``PretrainedConfig`` refuses to keep.
        context_max_length: Token budget of one context paragraph in the reconstruction task.
        mask_probability: Share of context tokens that are masked per draw (authors: 0.15).
        classifier_dropout: Dropout in the classification head; ``None`` takes the encoder's
            ``hidden_dropout_prob`` (or ``dropout``) or 0.1.
        lm_head_type: ``"masked_lm"`` wraps the encoder through ``AutoModelForMaskedLM`` and so reuses the
            checkpoint's own masked-LM head; ``"generic"`` wraps it through ``AutoModel`` and adds a new
            head whose output projection is the input embedding matrix; ``"auto"`` (default) picks
            ``"masked_lm"`` whenever the architecture has a masked-LM class. The resolved value is what
            gets saved, so a checkpoint's parameter layout never depends on the library version.
        **kwargs: Passed to ``PretrainedConfig`` (``num_labels`` must stay 2: triple classification).
    """

    model_type = "contextualized_kgbert"
    # Sub-configuration declaration understood by PretrainedConfig (attention implementation and dtype are
    # propagated into it).
    sub_configs = {"encoder": AutoConfig}
    attribute_map = {"reconstruction_weight": "alpha"}

    def __init__(
        self,
        encoder: PretrainedConfig | dict[str, Any] | None = None,
        alpha: float = 1.0,
        kgc_weight: float = 1.0,
        use_reconstruction: bool = True,
        max_seq_length: int = 50,
        context_max_length: int = 128,
        mask_probability: float = 0.15,
        classifier_dropout: float | None = None,
        lm_head_type: str = "auto",
        **kwargs: Any,
    ) -> None:
        if encoder is None:
            encoder = BertConfig()
        elif isinstance(encoder, dict):
            encoder = dict(encoder)
            model_type = encoder.pop("model_type", None)
            if model_type is None:
                raise ValueError("the `encoder` config dict needs a 'model_type' key (e.g. 'bert')")
            encoder.pop("transformers_version", None)
            encoder = AutoConfig.for_model(model_type, **encoder)
        elif not isinstance(encoder, PretrainedConfig):
            raise TypeError(f"`encoder` must be a PretrainedConfig, a dict or None, got {type(encoder).__name__}")
        if lm_head_type not in LM_HEAD_TYPES:
            raise ValueError(f"lm_head_type must be one of {LM_HEAD_TYPES}, got {lm_head_type!r}")
        if lm_head_type == "auto":
            lm_head_type = "masked_lm" if _has_masked_lm_class(encoder) else "generic"
        if not 0.0 < mask_probability < 1.0:
            raise ValueError(f"mask_probability must be in (0, 1), got {mask_probability}")
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = {0: "false", 1: "true"}
            kwargs["label2id"] = {"false": 0, "true": 1}
        self.encoder = encoder
        self.alpha = float(alpha)
        self.kgc_weight = float(kgc_weight)
        self.use_reconstruction = bool(use_reconstruction)
        self.max_seq_length = int(max_seq_length)
        self.context_max_length = int(context_max_length)
        self.mask_probability = float(mask_probability)
        self.classifier_dropout = classifier_dropout
        self.lm_head_type = lm_head_type
        super().__init__(**kwargs)
        if self.num_labels != 2:
            raise ValueError(f"ContextualizedKGBert is a binary triple classifier: num_labels must be 2, got {self.num_labels}")

    @property
    def hidden_size(self) -> int:
        """The encoder's hidden size (what the heads are built on)."""
        return self.encoder.hidden_size

    def to_diff_dict(self) -> dict[str, Any]:
        """Serialise, keeping the encoder's own diff against *its* class defaults.

        The generic diff would compare the nested encoder against this class's default encoder (a BERT)
        and could drop values that equal BERT's defaults but not the real encoder's (e.g. a DeBERTa with
        ``hidden_size=768``); reloading would then silently build a different encoder.
        """
        output = super().to_diff_dict()
        encoder = self.encoder.to_diff_dict()
        encoder["model_type"] = self.encoder.model_type
        output["encoder"] = encoder
        return output


ContextualizedKGBertConfig.register_for_auto_class()

__all__ = ["ContextualizedKGBertConfig"]
