"""Pantau model directories for plain ``transformers``, with no pipeline installed and no hub.

Every model directory carries a copy of this file and of ``packed.py``, and its ``config.json`` maps
``AutoModel`` and ``AutoModelForSequenceClassification`` to the classes below, so anyone with
``transformers`` loads a shipped model::

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained("models/sentiment", trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained("models/sentiment")
    batch = tokenizer(["query: pelayanan samsat cepat, mantap"], return_tensors="pt", padding=True)
    probabilities = model(**batch).logits.softmax(-1)  # labels in model.config.id2label

The weights stay packed as shipped and are dequantised at load, so the directory needs no second, larger
copy. Imports are limited to torch, safetensors, transformers and the sibling ``packed.py`` for that reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .packed import HEAD_FILE, read_packed


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean over real tokens: the one pooling every backend, the trainer and this file use."""
    w = mask.unsqueeze(-1).to(states.dtype)
    return torch.nn.functional.normalize((states * w).sum(1) / w.sum(1).clamp(min=1), dim=-1)


def _load_encoder_weights(model: torch.nn.Module, model_dir: str | Path, prefix: str = "") -> None:
    state = {prefix + k: torch.from_numpy(v) for k, v in read_packed(model_dir).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("classifier.")]
    if missing or unexpected:
        raise ValueError(f"{model_dir}: weights do not fit the config: {missing} {unexpected}")


def _config(model_dir: str | Path, kwargs: dict[str, Any]) -> BertConfig:
    config = kwargs.get("config")
    if not isinstance(config, BertConfig):  # AutoModel passes the config it read; a direct call may not
        config = BertConfig.from_pretrained(str(model_dir))
    return config


class PantauBertModel(BertModel):
    """The encoder alone: a ``BertModel`` (no pooler) with the shipped weights, in eval mode."""

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, model_dir: str | Path, *args: Any, **kwargs: Any
    ) -> PantauBertModel:
        model = cls(_config(model_dir, kwargs), add_pooling_layer=False)
        _load_encoder_weights(model, model_dir)
        return model.eval()


class PantauSentimentClassifier(BertPreTrainedModel):
    """Encoder → mean over real tokens → L2-normalise → linear head (temperature folded in).

    Texts need the ``query: `` prefix the model was trained with; ``logits.softmax(-1)`` are the pipeline's
    calibrated probabilities (fp32 backend).
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
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kwargs.pop("token_type_ids", None)  # the tokenizer may add them; the model was trained without
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        return SequenceClassifierOutput(logits=self.classifier(mean_pool(states, attention_mask)))

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, model_dir: str | Path, *args: Any, **kwargs: Any
    ) -> PantauSentimentClassifier:
        head_path = Path(model_dir) / HEAD_FILE
        if not head_path.exists():
            raise FileNotFoundError(
                f"{head_path} is missing: a base encoder has no classifier, use AutoModel"
            )
        with safe_open(str(head_path), framework="np") as f:
            labels = (f.metadata() or {})["labels"].split(",")
            weight, bias = f.get_tensor("weight"), f.get_tensor("bias")
        config = _config(model_dir, kwargs)
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        model = cls(config)
        _load_encoder_weights(model, model_dir, prefix="bert.")
        with torch.no_grad():
            model.classifier.weight.copy_(torch.from_numpy(weight))
            model.classifier.bias.copy_(torch.from_numpy(bias))
        return model.eval()
