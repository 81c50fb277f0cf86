"""Configuration of :class:`~hf_ctxdistill.models.kgs2s.ContextualizedKGS2S`.

The wrapped sequence-to-sequence model's own configuration (T5, BART, an ``EncoderDecoderConfig`` for
BERT2BERT, or any other ``AutoModelForSeq2SeqLM`` type) is nested under ``seq2seq``, the way
``EncoderDecoderConfig`` nests its two halves, so a saved model reloads with the right class and nothing
else to pass.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig, T5Config

#: The three training tasks, in the order their losses are reported.
TASKS: tuple[str, ...] = ("kgc", "contextualization", "reconstruction")


class ContextualizedKGS2SConfig(PretrainedConfig):
    """Configuration of a KG-S2S link predictor with the Contextualization Distillation objectives.

    Args:
        seq2seq: Configuration of the wrapped model (a ``PretrainedConfig`` or its ``to_dict()``, which must
            carry ``model_type``). Defaults to ``T5Config()`` so the class can be built bare, as the
            library's serialisation code sometimes does.
        kgc_weight: Weight of the link-prediction loss (``predict tail/head: ...`` -> entity name).
        contextualization_weight: Weight of the contextualization loss (``contextualize: h | r | t`` -> the
            triple's context paragraph).
        reconstruction_weight: Weight of the reconstruction loss (span-masked context -> context).
            The total loss is ``kgc_weight * kgc_loss + contextualization_weight * contextualization_loss
            + reconstruction_weight * reconstruction_loss`` over the terms present; the authors used 0.5
            for every term.
        use_contextualization: Train the contextualization task when the batch carries it.
        use_reconstruction: Train the reconstruction task when the batch carries it (off in the paper's
            main KG-S2S setting, on in its ablation).
        max_source_length: Token budget of a link-prediction or contextualization input (prefix, names,
            optional description). Entity-name targets are never truncated: a cut name could name another
            entity.
        context_max_length: Token budget of a context paragraph, as a target (contextualization and
            reconstruction) and as the masked reconstruction input.
        use_descriptions: Append the known entity's description to link-prediction inputs (KG-S2S style).
        description_max_words: Words of the description kept before the token budget applies.
        mask_probability: Share of context tokens masked for reconstruction (T5 span corruption: 0.15).
        mean_noise_span_length: Mean length of a masked span, in tokens (T5: 3).
        beam_size: Default beam width of constrained decoding (authors: 40). Not called ``num_beams``:
            ``PretrainedConfig`` refuses generation parameters.
        new_modules: Paths of modules that were initialised fresh when the model was built (set by
            ``ContextualizedKGS2S.from_encoder_decoder``: the decoder's cross-attention...). Parameter-efficient
            fine-tuning trains them in full.
        **kwargs: Passed to ``PretrainedConfig``.

    The special token ids the model needs (``decoder_start_token_id``, ``pad_token_id``,
    ``eos_token_id``) are read from ``seq2seq`` (see the properties of the same names).
    """

    model_type = "contextualized_kgs2s"
    # Sub-configuration declaration understood by PretrainedConfig (attention implementation and dtype are
    # propagated into it).
    sub_configs = {"seq2seq": AutoConfig}
    # Trainer.prediction_step drops these output fields from the "logits" it gathers during evaluation.
    keys_to_ignore_at_inference = ["kgc_loss", "contextualization_loss", "reconstruction_loss"]

    def __init__(
        self,
        seq2seq: PretrainedConfig | dict[str, Any] | None = None,
        kgc_weight: float = 0.5,
        contextualization_weight: float = 0.5,
        reconstruction_weight: float = 0.5,
        use_contextualization: bool = True,
        use_reconstruction: bool = False,
        max_source_length: int = 96,
        context_max_length: int = 256,
        use_descriptions: bool = True,
        description_max_words: int = 24,
        mask_probability: float = 0.15,
        mean_noise_span_length: float = 3.0,
        beam_size: int = 40,
        new_modules: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if seq2seq is None:
            seq2seq = T5Config()
        elif isinstance(seq2seq, dict):
            seq2seq = dict(seq2seq)
            model_type = seq2seq.pop("model_type", None)
            if model_type is None:
                raise ValueError("the `seq2seq` config dict needs a 'model_type' key (e.g. 't5', 'bart', 'encoder-decoder')")
            seq2seq.pop("transformers_version", None)
            seq2seq = AutoConfig.for_model(model_type, **seq2seq)
        elif not isinstance(seq2seq, PretrainedConfig):
            raise TypeError(f"`seq2seq` must be a PretrainedConfig, a dict or None, got {type(seq2seq).__name__}")
        if not getattr(seq2seq, "is_encoder_decoder", False):
            raise ValueError(f"`seq2seq` must configure an encoder-decoder model, got model_type {seq2seq.model_type!r}")
        if not 0.0 < mask_probability < 1.0:
            raise ValueError(f"mask_probability must be in (0, 1), got {mask_probability}")
        if mean_noise_span_length < 1.0:
            raise ValueError(f"mean_noise_span_length must be >= 1, got {mean_noise_span_length}")
        for name, value in (
            ("kgc_weight", kgc_weight),
            ("contextualization_weight", contextualization_weight),
            ("reconstruction_weight", reconstruction_weight),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.seq2seq = seq2seq
        self.kgc_weight = float(kgc_weight)
        self.contextualization_weight = float(contextualization_weight)
        self.reconstruction_weight = float(reconstruction_weight)
        self.use_contextualization = bool(use_contextualization)
        self.use_reconstruction = bool(use_reconstruction)
        self.max_source_length = int(max_source_length)
        self.context_max_length = int(context_max_length)
        self.use_descriptions = bool(use_descriptions)
        self.description_max_words = int(description_max_words)
        self.mask_probability = float(mask_probability)
        self.mean_noise_span_length = float(mean_noise_span_length)
        self.beam_size = int(beam_size)
        self.new_modules = list(new_modules or [])
        kwargs.setdefault("is_encoder_decoder", True)
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ special tokens
    def _token_id(self, name: str) -> int | None:
        value = getattr(self.seq2seq, name, None)
        if value is None and hasattr(self.seq2seq, "decoder"):
            value = getattr(self.seq2seq.decoder, name, None)  # EncoderDecoderConfig keeps some on the halves
        return value

    @property
    def decoder_start_token_id(self) -> int | None:
        """First token fed to the decoder (T5: pad; BART: ``</s>``; BERT2BERT: ``[CLS]``)."""
        return self._token_id("decoder_start_token_id")

    @property
    def pad_token_id(self) -> int | None:
        """Padding token of the wrapped model."""
        return self._token_id("pad_token_id")

    @property
    def eos_token_id(self) -> int | None:
        """Token that ends every target (T5/BART: ``</s>``; BERT2BERT: ``[SEP]``)."""
        value = self._token_id("eos_token_id")
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        return value

    def task_weights(self) -> dict[str, float]:
        """``{"kgc": w, "contextualization": w, "reconstruction": w}`` (a disabled task weighs 0)."""
        return {
            "kgc": self.kgc_weight,
            "contextualization": self.contextualization_weight if self.use_contextualization else 0.0,
            "reconstruction": self.reconstruction_weight if self.use_reconstruction else 0.0,
        }

    def to_diff_dict(self) -> dict[str, Any]:
        """Serialise, keeping the nested model's own diff against *its* class defaults (the generic diff
        would compare it with this class's default T5 and could drop values a reload needs)."""
        output = super().to_diff_dict()
        nested = self.seq2seq.to_diff_dict()
        nested["model_type"] = self.seq2seq.model_type
        output["seq2seq"] = nested
        return output


ContextualizedKGS2SConfig.register_for_auto_class()

__all__ = ["TASKS", "ContextualizedKGS2SConfig"]
