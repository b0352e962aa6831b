"""Every choice of a fine-tuning run in one validated object: a wrong value fails before minutes of loading,
and the same object is what a reader finds recorded in ``pantau_model.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.model import encoder
from pipeline.model.encoder import Backend

Storage = Literal["int8", "mixed", "q4", "fp16"]
"""How the trained encoder matrices are stored (see ``training.storage``)."""
Schedule = Literal["linear", "cosine"]

__all__ = [
    "DomainSampling",
    "FinetuneConfig",
    "LayerChoiceError",
    "Schedule",
    "Storage",
    "check_calibration_domain",
    "domain_of",
    "student_depth",
    "unlabelled_domain",
]


class LayerChoiceError(ValueError):
    """``--layers`` or ``--freeze-layers`` (``option``) does not fit the model fine-tuning starts from."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def student_depth(
    depth: int, layers: int | None, freeze_layers: int, source: str = "the source model"
) -> int:
    """Layers the trained model keeps: ``layers`` must stay above the topic layer (topic discovery reads
    it) and within ``depth``, and ``freeze_layers`` must leave one of them to train."""
    topic_layer = encoder.TOPIC_LAYER  # read at call time: tests move it to allow shallow students
    if layers is not None and not topic_layer < layers <= depth:
        raise LayerChoiceError(
            "--layers",
            f"{layers}: N must be above the topic layer ({topic_layer}) and at most the depth of {source} "
            f"({depth})",
        )
    kept = depth if layers is None else layers
    if not 0 <= freeze_layers < kept:
        raise LayerChoiceError(
            "--freeze-layers", f"{freeze_layers}: at most {kept - 1}, so that one of the {kept} layers trains"
        )
    return kept


def domain_of(path: Path) -> str:
    """A training file's domain unless named otherwise: its directory, one per source in ``data/``
    (``smsa``, ``nusax_senti_sun``, ``indomain``, ``dkk_semarang``)."""
    return path.parent.name or path.stem


def check_calibration_domain(calibrate_on: str | None, valid_files: list[Path]) -> None:
    """A temperature fitted on a domain no validation file has would be fitted on no rows at all."""
    if calibrate_on is not None:
        domains = sorted({domain_of(p) for p in valid_files})
        if calibrate_on not in domains:
            raise ValueError(
                f"calibrate_on {calibrate_on!r} names no validation file's domain "
                f"(domains: {', '.join(domains)})"
            )


def unlabelled_domain(path: Path) -> str:
    """The domain of an unlabelled file's rows: its directory's, marked, so that ``--domain-weight`` can
    weigh the teachers' targets on a source's unlabelled comments apart from its labelled ones."""
    return f"{domain_of(path)}_unlabelled"


class DomainSampling(BaseModel):
    """Draw each epoch's rows by domain instead of in proportion to the files' sizes.

    Without it, SmSA's 11,000 reviews drown a few hundred in-domain posts (listing a file several times
    was the workaround). With it, an epoch keeps its length (as many rows as all files hold) but gives each
    domain a share of them: equal shares, or ``weights`` (relative; a domain not named weighs 1). A domain
    smaller than its share is repeated (whole reshuffled passes), a larger one is subsampled, afresh each
    epoch, from ``(seed, epoch)`` so a resumed run draws the same rows.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, float] = Field(default_factory=dict)

    @field_validator("weights")
    @classmethod
    def _positive(cls, weights: dict[str, float]) -> dict[str, float]:
        if bad := [name for name, w in weights.items() if not w > 0]:
            raise ValueError(f"domain weights must be > 0 ({', '.join(bad)})")
        return weights


class FinetuneConfig(BaseModel):
    """A fine-tuning run of encoder + sentiment head (``pantau model train --epochs N``).

    Distillation into a faster model: ``layers`` keeps only the first N transformer layers (N above the
    topic layer); ``freeze_layers`` holds the embeddings and the first N layers fixed (cheaper steps);
    ``teachers`` (model dirs) add the mean of their calibrated probabilities as soft targets
    (``distill_weight`` of the label loss) and pull the student's pooled last-layer and topic-layer
    embeddings towards the first one's (``anchor_weight`` × (1 − cosine)). Start from the first teacher's
    directory (``model_in``) so its head reads the anchored embedding from the first step.
    ``unlabelled_files``: texts without labels (for instance a source's unlabelled comments) that train on
    the teachers' targets alone; they need a teacher.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_in: Path
    """Model directory to start from: encoder + head (a bare encoder dir starts from a zero head)."""
    out_dir: Path
    train_files: list[Path] = Field(min_length=1)
    valid_files: list[Path] = Field(min_length=1)
    test_files: dict[str, Path] = Field(default_factory=dict)
    """Held-out sets scored at the end and recorded in ``metrics`` (never used to choose)."""
    checkpoint_dir: Path
    epochs: int
    lr: float = Field(6e-5, gt=0)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(128, ge=1)
    freeze_embeddings: bool = True
    layer_decay: float = Field(0.9, gt=0, le=1)
    warmup_ratio: float = Field(0.06, ge=0, le=1)
    schedule: Schedule = "linear"
    class_weighted: bool = False
    resume: bool = True
    checkpoint_every: int = Field(100, ge=1)
    device: str | None = None
    """``None``: CUDA when present, else the CPU."""
    threads: int = Field(2, ge=1)
    seed: int = 13
    max_steps: int | None = Field(None, ge=1)
    train_limit: int | None = Field(None, ge=1)
    storage: Storage = "int8"
    onnx: bool = True
    layers: int | None = None
    freeze_layers: int = Field(0, ge=0)
    teachers: list[Path] = Field(default_factory=list)
    teacher_backend: Backend = "onnx-int8"
    distill_weight: float = Field(0.5, ge=0, le=1)
    anchor_weight: float = Field(5.0, ge=0)
    unlabelled_files: list[Path] = Field(default_factory=list)
    label_only_domains: list[str] = Field(default_factory=list)
    """Labelled domains whose rows take their labels as targets instead of the teachers' probabilities: the
    label-keeping variants of ``pantau model augment`` teach a rule the teachers were never taught ("a
    complaint asked as a question stays negative"), and their targets would pull the student back. The
    embedding anchor (``anchor_weight`` above 0) still applies to those rows."""
    domain_sampling: DomainSampling | None = None
    """``None`` (default): rows in proportion to the files, as listed."""
    domains: list[str] | None = None
    """The domain of each training file, in order; default :func:`domain_of` each."""
    calibrate_on: str | None = None
    """The validation domain the temperature is fitted on (``indomain``: the posts the product reads);
    ``None`` (default): every validation domain weighing the same."""

    @field_validator("epochs")
    @classmethod
    def _some_epochs(cls, epochs: int) -> int:
        if epochs < 1:
            raise ValueError("epochs must be ≥ 1 (0 means the frozen-head trainer)")
        return epochs

    @model_validator(mode="after")
    def _unlabelled_need_a_teacher(self) -> Self:
        if self.unlabelled_files and not self.teachers:
            raise ValueError("unlabelled files train on the teachers' targets alone: name a teacher too")
        return self

    @model_validator(mode="after")
    def _domains_fit(self) -> Self:
        if self.domains is not None and len(self.domains) != len(self.train_files):
            raise ValueError(f"{len(self.domains)} domains for {len(self.train_files)} training files")
        if self.domain_sampling is not None:
            unknown = set(self.domain_sampling.weights) - set(self.file_domains())
            if unknown:
                raise ValueError(
                    f"domain weights name no training file's domain: {', '.join(sorted(unknown))} "
                    f"(domains: {', '.join(sorted(set(self.file_domains())))})"
                )
        return self

    @model_validator(mode="after")
    def _label_only_domains_are_labelled_training_domains(self) -> Self:
        if not self.label_only_domains:
            return self
        if not self.teachers:
            raise ValueError("label-only domains are set apart from the teachers' targets: name a teacher")
        labelled = set(self.file_domains()[: len(self.train_files)])
        if unknown := sorted(set(self.label_only_domains) - labelled):
            raise ValueError(
                f"label-only domains name no labelled training file's domain: {', '.join(unknown)} "
                f"(domains: {', '.join(sorted(labelled))})"
            )
        return self

    @model_validator(mode="after")
    def _calibration_domain_is_validated(self) -> Self:
        check_calibration_domain(self.calibrate_on, self.valid_files)
        return self

    def file_domains(self) -> list[str]:
        """The domain of each training file, then of each unlabelled file."""
        labelled = self.domains if self.domains is not None else [domain_of(p) for p in self.train_files]
        return list(labelled) + [unlabelled_domain(p) for p in self.unlabelled_files]
