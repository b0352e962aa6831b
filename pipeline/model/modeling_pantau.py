"""Pantau model directories for plain ``transformers``, with no pipeline installed and no hub.

Every model directory carries a copy of this file and of ``packed.py``, and its ``config.json`` maps
``AutoModel`` and ``AutoModelForSequenceClassification`` to the classes below, so anyone with
``transformers`` loads a shipped model::

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    path = "pipeline/model/shipped"  # in a checkout; any model directory
    model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    texts = ["query: pelayanan samsat cepat, mantap"]  # the prefix the model was trained with
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)  # 128 tokens, as trained
    probabilities = model(**batch).logits.softmax(-1)  # labels in model.config.id2label

The weights stay packed as shipped and are dequantised at load, so the directory needs no second, larger
copy; everything else (``dtype``, ``save_pretrained`` and loading that copy again) is transformers' own.
Imports are limited to what a transformers install has (numpy, safetensors, torch) and the sibling
``packed.py``, because this file runs where the pipeline is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .packed import HEAD_FILE, PACKED_FILE, read_head, read_packed


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean over real tokens: the one pooling every backend, the trainer and this file use."""
    w = mask.unsqueeze(-1).to(states.dtype)
    return torch.nn.functional.normalize((states * w).sum(1) / w.sum(1).clamp(min=1), dim=-1)


def packed_state_dict(model_dir: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """``encoder.q4.safetensors`` dequantised into float32 tensors under ``prefix`` + their BertModel keys."""
    return {prefix + k: torch.from_numpy(v) for k, v in read_packed(model_dir).items()}


def _is_packed(model_dir: Any) -> bool:
    return isinstance(model_dir, str | Path) and (Path(model_dir) / PACKED_FILE).is_file()


def _config(model_dir: str | Path, kwargs: dict[str, Any]) -> BertConfig:
    config = kwargs.pop("config", None)
    if not isinstance(config, BertConfig):  # AutoModel passes the config it read; a direct call may not
        config = BertConfig.from_pretrained(str(model_dir))
    return config


def _load_packed(
    cls: Any,
    model_dir: str | Path,
    config: BertConfig,
    state: dict[str, torch.Tensor],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """transformers' own loading from an in-memory state dict, refusing weights that do not fit the config
    (transformers would warn and initialise the gaps at random)."""
    model = super(cls, cls).from_pretrained(None, *args, config=config, state_dict=state, **kwargs)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{model_dir}: weights do not fit the config: missing {missing}, unexpected {unexpected}"
        )
    return model


class PantauBertModel(BertModel):
    """The encoder alone: a ``BertModel`` without the pooler (the heads mean-pool the last layer)."""

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, *args: Any, **kwargs: Any
    ) -> PantauBertModel:
        kwargs.setdefault("add_pooling_layer", False)
        path = pretrained_model_name_or_path
        if not _is_packed(path):  # e.g. a save_pretrained copy: plain safetensors
            return super().from_pretrained(path, *args, **kwargs)
        config = _config(path, kwargs)
        return _load_packed(cls, path, config, packed_state_dict(path), *args, **kwargs)


class PantauSentimentClassifier(BertPreTrainedModel):
    """Encoder → mean over real tokens → L2-normalise → linear head (temperature folded in).

    ``logits.softmax(-1)`` are the pipeline's calibrated probabilities (its fp32 backend) for texts given
    with the ``query: `` prefix and cut at 128 tokens, as the model was trained.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = torch.nn.Linear(config.hidden_size, int(config.num_labels or 3))
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(mean_pool(out.last_hidden_state, attention_mask))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        loss = cast("torch.FloatTensor | None", loss)
        result = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions
        )
        return result.to_tuple() if return_dict is False else result

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, *args: Any, **kwargs: Any
    ) -> PantauSentimentClassifier:
        path = pretrained_model_name_or_path
        if not _is_packed(path):  # e.g. a save_pretrained copy: plain safetensors, labels in its config
            return super().from_pretrained(path, *args, **kwargs)
        head = Path(path) / HEAD_FILE
        if not head.is_file():
            raise FileNotFoundError(f"{head} is missing: a base encoder, load it with AutoModel")
        labels, weight, bias = read_head(head)
        config = _config(path, kwargs)
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        state = packed_state_dict(path, prefix="bert.")
        state |= {"classifier.weight": torch.from_numpy(weight), "classifier.bias": torch.from_numpy(bias)}
        return _load_packed(cls, path, config, state, *args, **kwargs)
