"""ModelCard: everything the live app needs to know about a model, stored inside the ONNX file.

The card travels as JSON in the ONNX model's ``metadata_props`` under the key
:data:`CARD_KEY`. The live app configures itself from it and refuses a stream that doesn't match.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bci_stream.contract.artifacts import ArtifactError, AsrState, check_card_artifacts
from bci_stream.contract.card_checks import validate_card_numbers
from bci_stream.contract.features import ErpConfig, Features, SpectrogramConfig
from bci_stream.contract.preprocessing import Preprocessing, PreprocessingError

CARD_KEY = "bci_stream.model_card"
FORMAT_VERSION = 2  # 2: preprocessing; signal_unit taken from the data; feature_kind, spectrogram mode/fmax, erp;
# output_kind and embedding (open-vocabulary models).
# Format 1 (no preprocessing, signal unit or feature fields) was written only by pre-release versions:
# refused, with the way out (re-export).


class ModelCardError(ValueError):
    """A model card is missing, unreadable or of a format this version cannot read."""


@dataclass(frozen=True)
class EmbeddingSpec:
    """The output of an embedding model (card field ``embedding``).

    Attributes
    ----------
    dim : embedding dimension.
    space : the image embedding model whose space this is,
        ``"open_clip:<model>/<pretrained tag or file name>"`` or
        ``"phantom:seed=<seed>,dim=<dim>,classes=<n>,images=<m>,spread=<x>"``; a gallery index or an
        image-conditioned renderer must be in the same space.
    checkpoint_sha256 : sha256 of the image model's weights file ("" for a hub tag or the phantom).
    normalisation : "l2" (unit vectors; cosine similarity = dot product).
    logit_scale : inverse temperature learnt by InfoNCE (scores = softmax(logit_scale * similarity)).
    """

    dim: int
    space: str
    checkpoint_sha256: str = ""
    normalisation: str = "l2"
    logit_scale: float = 1.0


@dataclass(frozen=True)
class ModelCard:
    """What a trained student expects and how it was made.

    Attributes
    ----------
    sfreq : sampling rate the model was trained at, Hz.
    ch_names : channel names in the order the model's input uses.
    window_length : analysis window, seconds (0.44 in the seed lineage).
    window_offset : where the window starts after stimulus onset, seconds (0.02).
    hop : seconds between decisions in continuous mode.
    feature_kind : "spectrogram" (STFT: magnitude, log or complex, see ``spectrogram.mode``) or "erp"
        (in-window FIR low-pass + decimation, see ``erp``); :class:`bci_stream.contract.features.Features`.
    spectrogram : STFT parameters (see :class:`bci_stream.contract.features.SpectrogramConfig`).
    erp : ERP filter parameters (see :class:`bci_stream.contract.features.ErpConfig`; used by kind "erp").
    norm_mean, norm_std : normalisation of the features, shape ``(n_channels, n_rows)`` as nested
        lists (``n_rows``: kept frequency bins, twice that for complex, 1 for erp); the decoder
        computes ``(S - mean[..., None]) / std[..., None]``.
    signal_unit : the unit of the training data ("uV", "V", "a.u." for pre-standardised data); the
        live app converts a stream's samples to it or refuses the stream.
    signal_scale : multiplies samples after unit conversion (1 unless a card was made by hand).
    preprocessing : :meth:`bci_stream.contract.preprocessing.Preprocessing.to_dict` of the causal chain the
        training data went through (filters with their SOS coefficients at the input rate
        ``sfreq * decimate``, reference, decimation, standardisation); empty: none.
    artifacts : artifact stages the training data went through, applied live the same way
        (:mod:`bci_stream.contract.artifacts`): ``{"asr": AsrState.to_dict()}`` when fitted with
        ``bci-train fit --asr``; empty: none.
    output_kind : "classes" (the network outputs class probabilities, one per ``class_ids`` entry) or
        "embedding" (it outputs an L2-normalised embedding in the image space the ``embedding`` entry
        names; decisions are retrieval from a gallery index built in that same space).
    embedding : for output kind "embedding" (:class:`EmbeddingSpec` as a dict): ``dim``, ``space``
        (the image embedding model, e.g. ``"open_clip:ViT-H-14/laion2b_s32b_b79k"`` or
        ``"phantom:seed=0,dim=64"``), ``checkpoint_sha256`` of its weights ("" when it has none),
        ``normalisation`` ("l2": unit vectors, similarities are dot products) and ``logit_scale`` (the
        learnt InfoNCE temperature's inverse, to turn similarities into softmax scores). Empty for
        classifiers.
    class_ids, class_names : one per output, in output order (e.g. ImageNet synsets and names); for an
        embedding model, the classes it was trained on (may be empty).
    marker_classes : stimulus marker text -> class id, for markers that are neither a class id, a
        class name nor ``<class id>_<n>`` (a lab's mapping file); how event mode knows the truth live.
    teacher : the KD teacher (e.g. "open_clip:ViT-B-32/laion2b_s34b_b79k" or "phantom-similarity").
    training_data : data spec the model was trained on.
    split : evaluation split name, e.g. "by-image".
    evaluation : figures on that split, e.g. ``{"top1": .41, "top5": .88}``.
    architecture : student name and its constructor arguments.
    format_version : card format; readers refuse newer versions.
    """

    sfreq: float
    ch_names: list[str]
    class_ids: list[str]
    class_names: list[str]
    window_length: float = 0.44
    window_offset: float = 0.02
    hop: float = 0.02
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    feature_kind: str = "spectrogram"
    erp: ErpConfig = field(default_factory=ErpConfig)
    norm_mean: list[list[float]] | None = None
    norm_std: list[list[float]] | None = None
    signal_unit: str = "uV"
    signal_scale: float = 1.0
    preprocessing: dict = field(default_factory=dict)
    marker_classes: dict = field(default_factory=dict)
    teacher: str = ""
    training_data: str = ""
    split: str = ""
    evaluation: dict = field(default_factory=dict)
    architecture: dict = field(default_factory=dict)
    output_kind: str = "classes"
    embedding: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if len(self.class_ids) != len(self.class_names):
            raise ModelCardError(
                f"card has {len(self.class_ids)} class ids but {len(self.class_names)} class names"
            )
        if len(set(self.ch_names)) != len(self.ch_names):
            raise ModelCardError("card lists a channel name twice")
        if self.spectrogram.sfreq != self.sfreq:
            raise ModelCardError(
                f"spectrogram sfreq {self.spectrogram.sfreq} Hz != card sfreq {self.sfreq} Hz"
            )
        if self.feature_kind == "erp" and self.erp.sfreq != self.sfreq:
            raise ModelCardError(f"erp sfreq {self.erp.sfreq} Hz != card sfreq {self.sfreq} Hz")
        problems = validate_card_numbers(self)
        if problems:
            raise ModelCardError("model card: " + "; ".join(problems))
        try:
            pre = self.preprocessing_spec()
            pre.reference_channels(self.ch_names)
            if pre.standardise_mean is not None and len(pre.standardise_mean) != self.n_channels:
                raise PreprocessingError("standardisation statistics do not match the channel count")
        except (PreprocessingError, KeyError, TypeError, ValueError) as err:
            raise ModelCardError(f"card preprocessing is invalid: {err}") from err
        try:
            self.asr_state()
        except ArtifactError as err:
            raise ModelCardError(f"model card: {err}") from err

    def asr_state(self) -> AsrState | None:
        """The card's calibrated ASR (None: none), checked against its channels and rate."""
        return check_card_artifacts(self.artifacts, self.ch_names, self.sfreq)

    @property
    def is_embedding(self) -> bool:
        """The network outputs an image embedding (decisions are retrieval), not class probabilities."""
        return self.output_kind == "embedding"

    def embedding_spec(self) -> EmbeddingSpec:
        """The card's embedding description (output kind "embedding" only)."""
        if not self.is_embedding:
            raise ModelCardError("this model outputs class probabilities, not an embedding")
        return EmbeddingSpec(**self.embedding)

    @property
    def n_outputs(self) -> int:
        """Width of the network's output: classes, or the embedding's dimension."""
        return int(self.embedding["dim"]) if self.is_embedding else self.n_classes

    @property
    def n_channels(self) -> int:
        return len(self.ch_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def window_samples(self) -> int:
        """Samples per analysis window."""
        return int(round(self.window_length * self.sfreq))

    @property
    def offset_samples(self) -> int:
        """Samples from stimulus onset to window start."""
        return int(round(self.window_offset * self.sfreq))

    @property
    def hop_samples(self) -> int:
        return max(1, int(round(self.hop * self.sfreq)))

    def preprocessing_spec(self) -> Preprocessing:
        """The card's causal preprocessing (identity when the card has none)."""
        return Preprocessing.from_dict(self.preprocessing)

    @property
    def input_sfreq(self) -> float:
        """Rate the stream must run at, Hz: ``sfreq`` times the preprocessing's decimation."""
        return self.sfreq * self.preprocessing_spec().decimate

    def features(self) -> Features:
        """The card's feature transform (the one the trainer used)."""
        return Features(self.feature_kind, self.spectrogram, self.erp)

    def feature_shape(self) -> tuple[int, int, int]:
        """Model input shape per example: ``(n_channels, n_rows, n_columns)`` (spectrogram: rows are
        kept bins (twice for complex), columns frames; erp: one row, columns decimated samples)."""
        return self.features().shape(self.n_channels, self.window_samples)

    def norm_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Normalisation as float32 arrays broadcastable to ``(n_channels, n_rows, n_columns)``."""
        n_ch, n_f, _ = self.feature_shape()
        if self.norm_mean is None or self.norm_std is None:
            return np.zeros((n_ch, n_f, 1), np.float32), np.ones((n_ch, n_f, 1), np.float32)
        mean = np.asarray(self.norm_mean, np.float32)
        std = np.asarray(self.norm_std, np.float32)
        if mean.shape != (n_ch, n_f) or std.shape != (n_ch, n_f):
            raise ModelCardError(f"normalisation stats have shape {mean.shape}/{std.shape}; expected {(n_ch, n_f)}")
        return mean[..., None], std[..., None]

    # --- serialisation -------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=None, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelCardError(f"model card is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ModelCardError("model card JSON is not an object")
        version = data.get("format_version")
        if not isinstance(version, int):
            raise ModelCardError("model card has no integer format_version")
        if version < FORMAT_VERSION:
            raise ModelCardError(f"model card format {version} was written by a pre-release bci-stream; re-export "
                                 "the run with `bci-train export`")
        if version > FORMAT_VERSION:
            raise ModelCardError(
                f"model card format {version} is newer than this bci-stream reads ({FORMAT_VERSION}); "
                "upgrade bci-stream"
            )
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ModelCardError(f"model card has unknown fields: {sorted(unknown)}")
        try:
            data["spectrogram"] = SpectrogramConfig(**data.get("spectrogram", {}))
            data["erp"] = ErpConfig(**data.get("erp", {"sfreq": data.get("sfreq", ErpConfig.sfreq)}))
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ModelCardError(f"model card is incomplete: {err}") from err

    # --- ONNX ----------------------------------------------------------------------------
    def attach_to(self, model) -> None:
        """Write this card into ``model.metadata_props`` (an ``onnx.ModelProto``), replacing any old one."""
        for prop in list(model.metadata_props):
            if prop.key == CARD_KEY:
                model.metadata_props.remove(prop)
        entry = model.metadata_props.add()
        entry.key = CARD_KEY
        entry.value = self.to_json()

    def save_into_onnx(self, path: str | Path) -> None:
        """Write this card into the ONNX file at ``path`` in place."""
        import onnx

        from bci_stream.io.safe_write import write_with

        model = onnx.load(str(path))
        self.attach_to(model)
        write_with(path, lambda tmp: onnx.save(model, str(tmp)))

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str = "model") -> ModelCard:
        """Read a card from an ONNX ``metadata_props`` mapping (e.g. ORT's ``custom_metadata_map``)."""
        if CARD_KEY not in metadata:
            raise ModelCardError(
                f"{source} has no bci-stream model card (metadata key {CARD_KEY!r}); "
                "export it with `bci-train export`, which writes one"
            )
        return cls.from_json(metadata[CARD_KEY])

    @classmethod
    def from_onnx(cls, path: str | Path) -> ModelCard:
        """Read the card of the ONNX file at ``path`` (through ONNX Runtime: the core install has no
        ``onnx`` package)."""
        import onnxruntime as ort

        path = check_onnx_file(path)  # missing, a folder, or empty: said as such
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT raises its own error types on corrupt or foreign files
            raise ModelCardError(f"{path} is not a readable ONNX model: {' '.join(str(err).split())[:300]}") from err
        return cls.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(path))


def check_onnx_file(path: str | Path) -> Path:
    """``path`` as a Path if it can be an ONNX model; raises ``FileNotFoundError`` when absent and
    ``ValueError`` when empty (``onnx.load`` reads an empty file as an empty model, which would be
    reported as "has no model card")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not an ONNX model: export it again (`bci-train export`)")
    return path
