"""Training configuration (torch-free, so that ``bci-train --help`` takes its defaults from it quickly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bci_stream.contract.features import ErpConfig, SpectrogramConfig
from offline_training.students.registry import canonical, student_spec

OBJECTIVES = ("classes", "embedding")
CANDIDATES = ("class", "image")  # zero-shot retrieval among held-out classes' mean embeddings, or images


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; defaults follow the seed lineage (1 kHz, samples 20-460, STFT nperseg 40).

    Build one for a student with :meth:`for_student`, which sets the features that student reads.

    Attributes
    ----------
    student : "ccanet" (default, and ``bci-train fit``'s: CCA spectrum + time course, LDA-initialised read-out,
        the student that works on the real SSVEP and ERP sets, see the README's "Real EEG"), "seed" (alias
        "cnn": the paper's CNN on ``|STFT|``), "phase" (complex STFT), "eegnet", "shallow" or "deep4"
        (braindecode, erp features); see :mod:`offline_training.students`.
    features : "spectrogram", "erp" or "auto" (the student's own, :func:`feature_kind`).
    kd : distil from the teacher's soft labels (False: hard labels only).
    alpha : weight of the hard-label cross-entropy.
    temperature : KD temperature T.
    crop_start, crop_stop : samples of each trial used (from trial start), e.g. 20:460.
    spectrogram : STFT parameters (spectrogram students; ``mode`` "complex" for "phase").
    erp : in-window low-pass and decimation (erp students).
    jitter : onset-jitter augmentation, seconds: each training example's window is shifted by a random
        whole number of erp output samples within +-jitter (erp features only; 0: off).
    epochs, batch_size, lr, weight_decay : AdamW schedule (cosine decay over ``epochs``).
    patience : epochs without validation improvement before stopping early.
    seed : seeds torch, numpy and batch order.
    threads : torch CPU threads (None: torch's default).
    student_kwargs : extra constructor arguments (e.g. ``{"width": 32}``).
    device : "auto" (CUDA when a working GPU is there, else the CPU), "cpu" or "cuda" (or "cuda:N").
    amp : mixed precision on CUDA (bf16 autocast, fp16 with a grad scaler on cards without bf16); the
        weights stay float32 (what is exported and parity-checked); ignored, with a warning, on the CPU.
    memmap_mb : inputs larger than this (MiB) are written once to ``RUN_DIR/inputs.npy`` and
        memory-mapped instead of held in memory (the file is removed when training ends).
    reject : training epochs whose peak-to-peak amplitude exceeds this (signal unit, e.g. 100 µV) on any
        channel are left out of training (MNE's ``Epochs(reject=...)`` rule, training part only: every
        test trial is still decided, as live); None: every training epoch is kept.
    objective : "classes" (class probabilities, KD loss) or "embedding" (the student outputs an image
        embedding; symmetric InfoNCE with a learnable temperature against the images' embeddings,
        :mod:`offline_training.training.contrastive`; ``kd``, ``alpha`` and ``temperature`` are unused).
    mse_weight : embedding objective: weight of the mean squared distance added to InfoNCE (0: none).
    """

    student: str = "ccanet"
    features: str = "auto"
    kd: bool = True
    alpha: float = 0.5
    temperature: float = 4.0
    crop_start: int = 20
    crop_stop: int = 460
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    erp: ErpConfig = field(default_factory=ErpConfig)
    jitter: float = 0.0
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    patience: int = 8
    seed: int = 0
    threads: int | None = None
    student_kwargs: dict = field(default_factory=dict)
    device: str = "auto"
    amp: bool = False
    memmap_mb: float = 2048.0
    reject: float | None = None
    objective: str = "classes"
    mse_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {self.objective!r}")
        if self.mse_weight < 0:
            raise ValueError(f"mse_weight must be >= 0; got {self.mse_weight}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data["spectrogram"] = SpectrogramConfig(**data.get("spectrogram", {}))
        data["erp"] = ErpConfig(**data.get("erp", {"sfreq": data["spectrogram"].sfreq}))
        return cls(**data)

    @classmethod
    def for_student(cls, student: str, **kwargs) -> TrainConfig:
        """A config for ``student`` whose spectrogram mode and fmax are the student's (complex, 60 Hz for
        "phase"); ``kwargs`` set any other field (a ``spectrogram`` given here is kept as it is)."""
        spec = student_spec(student)
        if "spectrogram" not in kwargs and spec.mode is not None:
            kwargs["spectrogram"] = SpectrogramConfig(mode=spec.mode, fmax=spec.fmax)
        return cls(student=student, **kwargs)


def feature_kind(config: TrainConfig) -> str:
    """The feature kind a config trains on: ``config.features``, or the student's own when "auto"."""
    if canonical(config.student) == "lstm":
        return "raw"
    return student_spec(config.student).features if config.features == "auto" else config.features
