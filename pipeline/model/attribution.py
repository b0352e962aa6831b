"""Which agencies a post is really about: a learned relevance decision over the gazetteer's candidates.

The gazetteer names candidates (an alias, a handle, a phrase such as "jalan rusak"); the service category
the category head predicts adds the agencies that usually serve it, for posts that name none ("sampah
numpuk 3 hari"). A logistic head on the post's embedding and the candidate's evidence then keeps a
candidate only when the post is about that agency's real service: a joke ("hubungan kita kayak air PDAM"),
an agent's ad ("jasa urus STNK") or a passing word names an agency without being about it. Offices
outside Banten are dropped by the gazetteer before this (they stay in ``mentions``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.enrich.category import default_rules
from pipeline.model.category import CATEGORIES, decision_proba
from pipeline.model.layers import LAYER_KEY, EmbeddingLayer, read_layer
from schemas.vocab import Agency, Category

ATTRIBUTION_HEAD_FILE = "attribution_head.safetensors"
AGENCIES: tuple[Agency, ...] = tuple(Agency)
AGENCY_INDEX = {agency: i for i, agency in enumerate(AGENCIES)}
NOT_A_SERVICE = CATEGORIES.index(Category.BUKAN_LAYANAN.value)
OFFER_WORDING = re.compile(
    r"\b(jasa|terima (jasa|pengurusan|pembuatan|pesanan)|melayani (pengurusan|pembuatan)|bisa dibantu urus|"
    r"proses (cepat|kilat|sehari|1 hari)|dijamin|tanpa (ribet|antri|antre|tes|ujian)|harga|tarif|promo|"
    r"order|dm (aja|ya|kami)|hubungi|fast respon|amanah|terpercaya|resmi 100)\b",
    re.IGNORECASE,
)
"""Wording of an offer: one evidence input of the head (an agent selling "jasa urus STNK" names Samsat
without being about Samsat's service); the head learns how much it counts."""


OFFER_OPENING = re.compile(
    r"^\W*(jasa|terima (jasa|pesanan|pembuatan|pengurusan|order)|jual|dijual|sewa|disewakan|ready|open "
    r"(jasa|order|po)|melayani|menerima|siap (bantu|antar|melayani)|konsultan|layanan antar|bisa dibantu)\b",
    re.IGNORECASE,
)
"""An agent's ad opens with what it sells ("Jasa urus STNK ...", "Jual token & bayar tagihan PDAM ...",
"Terima pembuatan KTP ..."); "terima kasih" does not match."""
CONTACT_CALL = re.compile(
    r"\[TELEPON\]|\b(wa|whatsapp|hubungi|hub|telp|call|sms)\b\W{0,3}\+?\d{4,}", re.IGNORECASE
)
"""A phone number to call (masked as [TELEPON] by the time the head reads the text, or written after "wa")."""

EVIDENCE = 10
"""Evidence inputs per candidate besides the embedding and the agency one-hots."""


@dataclass(frozen=True, slots=True)
class Candidate:
    agency: Agency
    named: bool
    """Named in the text (alias, handle, phrase); otherwise implied by the predicted category."""
    likened: bool = False
    """Named only right after a comparison ("kayak air PDAM", ``Recognition.likened``)."""


def candidates(
    named: Sequence[Agency],
    category_proba: np.ndarray,
    elsewhere: Sequence[Agency] | None = (),
    likened: Sequence[Agency] = (),
) -> list[Candidate]:
    """The named agencies, then those whose usual category is the post's predicted service category
    (``category_proba``: the category head's probabilities, as ``CategoryModel.probabilities`` gives).
    ``elsewhere``: the offices the post names outside Banten (``Recognition.elsewhere``), never implied;
    None when the post is about a place outside Banten altogether, so nothing is implied. ``likened``: the
    named agencies the post only compares something to (``Recognition.likened``)."""
    out = [Candidate(agency, True, agency in likened) for agency in dict.fromkeys(named)]
    best = int(np.argmax(decision_proba(category_proba[None, :])[0]))
    if best != NOT_A_SERVICE and elsewhere is not None:
        category = Category(CATEGORIES[best])
        out += [
            Candidate(agency, False)
            for agency, usual in default_rules().priors.items()
            if usual == category and agency not in named and agency not in elsewhere
        ]
    return out


def candidate_features(
    embedding: np.ndarray, category_proba: np.ndarray, found: Sequence[Candidate], text: str
) -> np.ndarray:
    """One row per candidate: the post's embedding, how the candidate was found, which agency it is, and
    how likely the post's category is the one that agency serves."""
    n_named = sum(c.named for c in found)
    priors = default_rules().priors
    offer = min(len(OFFER_WORDING.findall(text)), 3) / 3.0
    opening = float(bool(OFFER_OPENING.search(text)))
    contact = float(bool(CONTACT_CALL.search(text)))
    rows = np.zeros((len(found), embedding.shape[0] + EVIDENCE + 2 * len(AGENCIES)), dtype=np.float32)
    for row, cand in enumerate(found):
        at = embedding.shape[0]
        rows[row, :at] = embedding
        usual = CATEGORIES.index(priors[cand.agency].value)
        rows[row, at : at + EVIDENCE] = (
            float(cand.named),
            float(not cand.named),
            float(category_proba[usual]),
            float(category_proba[NOT_A_SERVICE]),
            min(n_named, 3) / 3.0,
            float(cand.named and n_named == 1),
            offer,
            float(cand.likened),
            opening,
            contact,
        )
        at += EVIDENCE
        rows[row, at + AGENCY_INDEX[cand.agency] + (0 if cand.named else len(AGENCIES))] = 1.0
    return rows


def kept(
    cand: Candidate, probability: float, addressed: Sequence[Agency], named_at: float, implied_at: float
) -> bool:
    """The head's decision for one candidate: an agency the post tags by its @account is always kept."""
    return cand.agency in addressed or probability >= (named_at if cand.named else implied_at)


def check_same_layer(category_layer: EmbeddingLayer, attribution: AttributionModel | None) -> None:
    """The attribution head was fitted on the embeddings of the category head's layer and on that head's
    probabilities: a head that reads another layer sits next to a category head it was not fitted with."""
    if attribution is not None and attribution.layer != category_layer:
        raise ValueError(
            f"the attribution head reads the {attribution.layer} layer and the category head the "
            f"{category_layer} layer: the attribution head is stale; retrain it with "
            "pantau model train --task attribution --out <the model directory>"
        )


class AttributionModel:
    def __init__(
        self,
        weight: np.ndarray,
        bias: float,
        threshold: float,
        implied_threshold: float | None = None,
        version: str = "attr-unsaved",
        layer: EmbeddingLayer = "last",
    ) -> None:
        self.weight = weight
        self.bias = bias
        self.threshold = threshold
        """For a named agency."""
        self.implied_threshold = threshold if implied_threshold is None else implied_threshold
        """For an agency only the category implies."""
        self.version = version
        self.layer: EmbeddingLayer = layer
        """The encoder output ``attribute``'s embedding must come from (``pipeline.model.layers``)."""

    @classmethod
    def load(cls, model_dir: Path) -> AttributionModel | None:
        """None for a model directory without the head (agencies then come from the gazetteer alone)."""
        from safetensors import safe_open

        path = model_dir / ATTRIBUTION_HEAD_FILE
        if not path.exists():
            return None
        with safe_open(str(path), framework="np") as f:
            weight = f.get_tensor("weight").astype(np.float32)
            bias = float(f.get_tensor("bias")[0])
            meta = f.metadata() or {}
        threshold = float(meta.get("threshold", "0.5"))
        implied = float(meta.get("implied_threshold", str(threshold)))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        return cls(weight, bias, threshold, implied, version=f"attr-{digest}", layer=read_layer(meta, path))

    def save(self, path: Path, metadata: dict[str, str] | None = None) -> None:
        from safetensors.numpy import save_file

        tensors = {
            "weight": np.ascontiguousarray(self.weight, dtype=np.float32),
            "bias": np.array([self.bias], dtype=np.float32),
        }
        own = {
            "threshold": str(self.threshold),
            "implied_threshold": str(self.implied_threshold),
            LAYER_KEY: self.layer,
        }
        save_file(tensors, str(path), {**own, **(metadata or {})})

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-(features @ self.weight + self.bias))))

    def attribute(
        self,
        embedding: np.ndarray,
        category_proba: np.ndarray,
        named: Sequence[Agency],
        text: str,
        addressed: Sequence[Agency] = (),
        elsewhere: Sequence[Agency] | None = (),
        likened: Sequence[Agency] = (),
    ) -> list[Agency]:
        """``text``: the masked text the embedding was computed from. An agency the post tags by its
        @account is kept whatever the head says: a complaint sent to the wrong office is still one that
        office was asked to answer (responsiveness counts it). ``elsewhere`` as ``candidates`` takes it:
        "samsat bekasi" or a flood in Bogor is no Banten office's business. ``likened`` as ``candidates``."""
        found = candidates(named, category_proba, elsewhere, likened)
        if not found:
            return []
        features = candidate_features(embedding, category_proba, found, text)
        proba = self.probabilities(features)
        return [
            cand.agency
            for cand, p in zip(found, proba, strict=True)
            if kept(cand, float(p), addressed, self.threshold, self.implied_threshold)
        ]
