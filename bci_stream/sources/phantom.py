"""The phantom headset: synthetic EEG with a known ground truth, for every stage of the pipeline.

Signal model (all in microvolts), per channel ``ch`` and sample ``t``::

    eeg = gain_s * evoked(class, image, subject, jitter)      # after each stimulus
        + pink(t)                                             # 1/f background, per channel
        + alpha(t) * (1 - erd(t - onset))                     # ~10 Hz, occipital, desynchronised
        + line(t)                                             # 50/60 Hz mains

The evoked response is a common visual ERP (P1/N1-like, same for every class) plus
``sum_k a[c, k] * spatial_k(ch) * temporal_k(t - latency_s - jitter)``: ``n_components``
spatio-temporal components over occipito-parietal channels whose non-negative loadings ``a``
differ per class, and a little per image. Subjects differ in gain and latency. The induced alpha
desynchronisation is the same for every class, so the class information is all in the evoked part
and :meth:`Phantom.oracle_probabilities` (the matched filter with the true templates and the true
noise model: alpha and mains projected out with their known spatial maps, the 1/f background whitened
exactly over the window, marginalised over the true jitter) is the ceiling to judge students against.
It knows what no student can: the class templates, the noise model, and (``subject_agnostic=False``)
each subject's gain and latency. The subject-agnostic oracle marginalises gain and latency over the
phantom's prior instead: the fair ceiling for leave-subject-out and by-block. Everything is
deterministic for a seed.

**Teacher.** :meth:`Phantom.soft_labels` stands in for an image teacher: its class similarity has
alignment ``teacher_alignment`` (ρ) with the true similarity of the class loadings (ρ = 1: the
generator's own similarity, which flatters distillation; ρ = 0: a similarity unrelated to the EEG,
where distillation must not help). An image teacher knows pictures, not brains: the default is 0.3.

**Drift.** ``drift_uv > 0`` adds a slow per-channel random walk (time constant ``drift_tau`` s); in a
block design it makes a block confound (neighbouring trials of one class share the drift) that
:func:`offline_training.experiments.controls.drift_probe` detects. Off by default (the training data unchanged).

**Sessions.** The headset (templates, subjects, montage) comes from ``seed``; each recording
*session* of a subject draws its own stimulus sequence and background noise. The training data
(:meth:`Phantom.trials`) is session :data:`TRAINING_SESSION` (0); live streams
(``bci-stream simulate``, :func:`bci_stream.sources.simulate.phantom_pusher`) default to
:data:`LIVE_SESSION` (1), a session no model trained on the phantom has seen, so live accuracy is
out-of-sample.

**Semantic space** (``semantic=True``; off by default, and the default phantom's random draws are
untouched by it). Every image gets a latent embedding, CLIP-like: class centroids are random unit vectors
in R^``embed_dim``, an image's embedding is ``normalise(centroid + class_spread * noise / sqrt(embed_dim))``
(images of a class cluster, classes spread), :attr:`Phantom.embeddings` ``(n_classes, images_per_class,
embed_dim)``. The image's component loadings are a fixed linear map of its embedding,
``a = W @ e`` with ``W`` ``(n_components, embed_dim)`` (signed; scaled so that the loadings' RMS matches
the class-coded phantom's ``U(0, 1)`` loadings, 1/sqrt(3)). A class never seen in training is therefore
still decodable: its images drive the EEG through the same ``W``. A trainer gets the image embeddings
(what CLIP would give for the picture, :meth:`Phantom.image_embedding`), never ``W`` nor the templates;
:meth:`Phantom.retrieval_oracle` (the matched filter among candidate embeddings, knowing ``W``) is the
zero-shot ceiling. The semantic parts come from their own random stream (``[seed, 777]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, logsumexp, softmax

from bci_stream.contract.classes import class_names, class_synsets
from bci_stream.contract.montage import channel_positions, standard_channel_names
from bci_stream.contract.trials import Trials


def lfilter(*args, **kwargs):
    """``scipy.signal.lfilter``, imported when first used: scipy.signal takes half a second to import,
    and ``bci-stream --help`` needs only this module's constants."""
    from scipy.signal import lfilter as scipy_lfilter

    return scipy_lfilter(*args, **kwargs)


def lfilter_zi(*args, **kwargs):
    """``scipy.signal.lfilter_zi``, imported when first used (see :func:`lfilter`)."""
    from scipy.signal import lfilter_zi as scipy_lfilter_zi

    return scipy_lfilter_zi(*args, **kwargs)

# Paul Kellet's "economy" pink-noise filter (1/f over three decades); its zeros lie inside the unit
# circle, so a(z)/b(z) is the stable whitening filter the oracle uses.
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])
_PINK_GAIN = 1.0 / 0.0878  # unit variance output for unit white input

TRAINING_SESSION = 0  # what Phantom.trials() records (the data every phantom model is trained on)
LIVE_SESSION = 1  # the default of every live stream: new to any model trained on the phantom


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (last axis)."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def session_seed(seed: int, subject: int, session: int, stream: int) -> list[int]:
    """Seed entropy of one random stream of a subject's session (``stream``: 7 stimuli, 8 noise).

    Session 0 keeps the phantom's original ``[seed, subject, stream]`` so the training data (and
    every model trained on it) is unchanged; session ``s > 0`` is ``[seed, subject, stream, s]``.
    """
    if session < 0:
        raise ValueError(f"session must be >= 0; got {session}")
    return [seed, subject, stream] if session == 0 else [seed, subject, stream, session]


@dataclass(frozen=True)
class PhantomConfig:
    """Phantom parameters. Amplitudes in microvolts, times in seconds.

    Attributes
    ----------
    n_channels, sfreq : cap size (standard 10-5 names) and sampling rate, Hz.
    n_classes : classes (the first ``n_classes`` ImageNet-EEG classes).
    images_per_class : distinct stimulus images per class.
    n_subjects : subjects (1-based ids), each with its own gain and latency.
    seed : every random draw derives from it.
    snr : multiplies the evoked response.
    evoked_uv, common_erp_uv : class-specific component and common ERP amplitudes.
    background_uv, alpha_uv, line_uv : background, alpha and mains amplitudes (std).
    alpha_hz, line_hz : alpha peak and mains frequency, Hz.
    erd : fraction by which alpha drops 0.15-0.5 s after a stimulus (class-independent).
    jitter : trial-to-trial latency jitter, uniform in +-jitter seconds.
    amp_jitter : trial-to-trial relative amplitude standard deviation.
    subject_latency : subject latency offsets, uniform in +-subject_latency seconds.
    image_spread : relative image-to-image spread of the class loadings.
    n_components : class-coding spatio-temporal components.
    trial_length : seconds per epoch in :meth:`Phantom.trials` (0.5, as ImageNet-EEG).
    teacher_alignment : ρ in [0, 1], alignment of the soft labels' class similarity with the true one.
    drift_uv, drift_tau : slow drift amplitude (std, µV; 0: none) and time constant (s).
    semantic : give every image a latent embedding that drives its evoked response (see
        :class:`Phantom`, "Semantic space"); False (default): the class-coded phantom, unchanged.
    embed_dim : dimension of the semantic embeddings.
    class_spread : within-class spread of the image embeddings: each is
        ``normalise(centroid + class_spread * noise / sqrt(embed_dim))`` (0: every image at its centroid).
    """

    n_channels: int = 128
    sfreq: float = 1000.0
    n_classes: int = 40
    images_per_class: int = 50
    n_subjects: int = 6
    seed: int = 0
    snr: float = 1.0
    evoked_uv: float = 14.0
    common_erp_uv: float = 5.0
    background_uv: float = 10.0
    alpha_uv: float = 10.0
    alpha_hz: float = 10.0
    line_uv: float = 3.0
    line_hz: float = 50.0
    erd: float = 0.5
    jitter: float = 0.010
    amp_jitter: float = 0.15
    subject_latency: float = 0.015
    image_spread: float = 0.2
    n_components: int = 8
    trial_length: float = 0.5
    teacher_alignment: float = 0.3
    drift_uv: float = 0.0
    drift_tau: float = 5.0
    semantic: bool = False
    embed_dim: int = 64
    class_spread: float = 0.6


@dataclass
class _Subject:
    gain: float
    latency: float  # seconds


@dataclass
class StreamState:
    """Mutable state of a continuous phantom stream (filters, pending responses, schedule)."""

    sample: int = 0
    pink_zi: np.ndarray | None = None
    alpha_zi: np.ndarray | None = None
    next_onset: int = 0
    pending: list = field(default_factory=list)  # [(onset_sample, evoked (n_ch, n_ev))]
    last_onset: int = -(10**9)
    sequence: list = field(default_factory=list)
    drift_zi: np.ndarray | None = None
    external: list = field(default_factory=list)  # [(onset_sample, label, image)]: stimuli shown by someone else


class Phantom:
    """Synthetic EEG generator with known templates; see the module docstring for the model."""

    def __init__(self, config: PhantomConfig = PhantomConfig()):
        self.config = config
        c = config
        rng = np.random.default_rng(c.seed)
        self.ch_names = standard_channel_names(c.n_channels)
        self.class_names = class_names(c.n_classes)
        self.class_ids = class_synsets(c.n_classes)
        pos = channel_positions(self.ch_names)
        self.n_evoked = int(round(c.trial_length * c.sfreq))
        t = np.arange(self.n_evoked) / c.sfreq

        posterior = pos[pos[:, 1] < -0.03]
        if len(posterior) == 0:
            posterior = pos
        centres = posterior[rng.integers(len(posterior), size=c.n_components)]
        radii = rng.uniform(0.03, 0.05, size=c.n_components)
        dist2 = ((pos[None] - centres[:, None]) ** 2).sum(-1)
        self.spatial = np.exp(-dist2 / (2 * radii[:, None] ** 2))  # (n_components, n_ch)
        self.spatial *= rng.choice([-1.0, 1.0], size=(c.n_components, 1))
        self.latencies = rng.uniform(0.08, 0.35, size=c.n_components)
        self.widths = rng.uniform(0.015, 0.04, size=c.n_components)
        self.freqs = rng.uniform(4.0, 30.0, size=c.n_components)
        self.phases = rng.uniform(0, 2 * np.pi, size=c.n_components)
        self.loadings = rng.uniform(0.0, 1.0, size=(c.n_classes, c.n_components))
        self.image_loadings = self.loadings[:, None, :] * np.clip(
            1 + c.image_spread * rng.standard_normal((c.n_classes, c.images_per_class, c.n_components)), 0, None
        )
        if c.semantic:  # drawn from a stream of its own: the draws above and below stay the class-coded phantom's
            self._make_semantic_space()
        occipital = np.exp(-((pos - np.array([0.0, -0.105, 0.02])) ** 2).sum(-1) / (2 * 0.05**2))
        self.occipital = occipital  # (n_ch,) weight of posterior sources
        self.common_erp = c.common_erp_uv * occipital[:, None] * (
            np.exp(-((t - 0.10) ** 2) / (2 * 0.015**2)) - 1.2 * np.exp(-((t - 0.17) ** 2) / (2 * 0.02**2))
        )  # (n_ch, n_evoked)
        self.subjects = {
            s + 1: _Subject(gain=rng.uniform(0.7, 1.3), latency=rng.uniform(-c.subject_latency, c.subject_latency))
            for s in range(c.n_subjects)
        }
        self.alpha_maps = occipital[:, None] * rng.uniform(0.5, 1.0, size=(c.n_channels, 3))
        self.line_amp = c.line_uv * rng.uniform(0.5, 1.5, size=c.n_channels)
        self.line_phase = rng.uniform(0, 2 * np.pi, size=c.n_channels)
        r = 0.995  # alpha resonator pole radius (about 1.6 Hz bandwidth at 1 kHz)
        w = 2 * np.pi * c.alpha_hz / c.sfreq
        self._alpha_a = np.array([1.0, -2 * r * np.cos(w), r * r])
        self._alpha_b = np.array([np.sqrt((1 - r * r) * (1 + r * r - 2 * r * r * np.cos(2 * w)) / (1 + r * r)) * 1.0])
        self._alpha_b = self._alpha_b / self._alpha_gain()

    # --- the semantic space --------------------------------------------------------------
    def _make_semantic_space(self) -> None:
        """Embeddings per image, the map ``W`` and the loadings it implies (see "Semantic space" above)."""
        c = self.config
        if c.embed_dim < 1 or c.class_spread < 0:
            raise ValueError(f"embed_dim must be >= 1 and class_spread >= 0; got {c.embed_dim}, {c.class_spread}")
        rng = np.random.default_rng([c.seed, 777])
        centroids = _unit(rng.standard_normal((c.n_classes, c.embed_dim)))
        noise = rng.standard_normal((c.n_classes, c.images_per_class, c.embed_dim)) / np.sqrt(c.embed_dim)
        self.embeddings = _unit(centroids[:, None, :] + c.class_spread * noise).astype(np.float32)
        # a = W e with W_kj ~ N(0, 1/3): E[a_k^2] = 1/3 for a unit e, the class-coded phantom's E[U(0,1)^2]
        self.embedding_map = rng.standard_normal((c.n_components, c.embed_dim)) / np.sqrt(3.0)
        self.image_loadings = self.embedding_loadings(self.embeddings)
        self.loadings = self.embedding_loadings(self.class_embeddings)  # class means: W is linear

    @property
    def embedding_space(self) -> str:
        """The identity of the semantic space (a card, a gallery index and a renderer must agree on it)."""
        self._need_semantic()
        c = self.config  # everything the embeddings' values depend on
        return (f"phantom:seed={c.seed},dim={c.embed_dim},classes={c.n_classes},images={c.images_per_class},"
                f"spread={c.class_spread:g}")

    @property
    def class_embeddings(self) -> np.ndarray:
        """Mean image embedding of each class, ``(n_classes, embed_dim)`` float32, NOT renormalised: ``W``
        of it is the class-mean loading (the oracle's template). Normalise it for cosine retrieval."""
        self._need_semantic()
        return self.embeddings.mean(axis=1)

    def embedding_loadings(self, embeddings: np.ndarray) -> np.ndarray:
        """Component loadings ``W @ e`` of embeddings ``(..., embed_dim)`` → ``(..., n_components)``."""
        self._need_semantic()
        return np.asarray(embeddings, np.float64) @ self.embedding_map.T

    def image_embedding(self, image_id: str) -> np.ndarray:
        """The embedding ``(embed_dim,)`` of an image id ``"<synset>_<image>"`` (what an image teacher sees)."""
        self._need_semantic()
        synset, _, image = image_id.rpartition("_")
        return self.embeddings[self.class_ids.index(synset), int(image)]

    def embeddings_by_image_id(self) -> tuple[list[str], np.ndarray]:
        """Every image's id and embedding: ``(ids, (n_classes * images_per_class, embed_dim) float32)``."""
        self._need_semantic()
        c = self.config
        ids = [f"{self.class_ids[k]}_{i}" for k in range(c.n_classes) for i in range(c.images_per_class)]
        return ids, self.embeddings.reshape(-1, c.embed_dim)

    def _need_semantic(self) -> None:
        if not self.config.semantic:
            raise ValueError("this phantom has no semantic space; build it with PhantomConfig(semantic=True) "
                             "(data spec phantom:semantic=1)")

    # --- pieces of the signal -------------------------------------------------------------
    def _alpha_gain(self) -> float:
        impulse = lfilter(self._alpha_b, self._alpha_a, np.r_[1.0, np.zeros(4000)])
        return float(np.sqrt((impulse**2).sum()))

    def _temporal(self, shift: float) -> np.ndarray:
        """Class-coding temporal components, shape ``(n_components, n_evoked)``, shifted by ``shift`` s."""
        t = np.arange(self.n_evoked) / self.config.sfreq - shift
        lag = t[None] - self.latencies[:, None]
        envelope = np.exp(-(lag**2) / (2 * self.widths[:, None] ** 2))
        return envelope * np.cos(2 * np.pi * self.freqs[:, None] * lag + self.phases[:, None])

    def evoked(self, loadings: np.ndarray, subject: int, shift: float = 0.0, amp: float = 1.0) -> np.ndarray:
        """Evoked response for component ``loadings`` (n_components,), µV, shape ``(n_ch, n_evoked)``."""
        subj = self.subjects[subject]
        return self.evoked_at(loadings, subj.gain * amp, subj.latency + shift)

    def evoked_at(self, loadings: np.ndarray, gain: float, total_shift: float) -> np.ndarray:
        """Evoked response for ``loadings`` at a given gain and latency shift (s), µV, ``(n_ch, n_evoked)``."""
        c = self.config
        k = int(round(total_shift * c.sfreq))
        common = np.roll(self.common_erp, k, axis=1)
        if k > 0:
            common[:, :k] = 0
        elif k < 0:
            common[:, k:] = 0
        specific = c.evoked_uv * (loadings[:, None] * self.spatial).T @ self._temporal(total_shift)
        return (c.snr * gain) * (common + specific)

    def template(self, label: int, subject: int, shift: float = 0.0) -> np.ndarray:
        """Class mean evoked response (what the oracle knows), µV, ``(n_ch, n_evoked)``."""
        return self.evoked(self.loadings[label], subject, shift)

    def background(self, n_rows: int, n_times: int, rng: np.random.Generator, onset: int | None = 0) -> np.ndarray:
        """Background EEG for ``n_rows`` independent epochs, µV, shape ``(n_rows, n_ch, n_times)``.

        ``onset``: sample index of the stimulus inside the epoch (alpha desynchronises after it);
        ``None`` for no stimulus. Filters start from their steady state after a 1 s burn-in.
        """
        c = self.config
        burn = int(c.sfreq)
        white = rng.standard_normal((n_rows, c.n_channels, n_times + burn))
        pink = lfilter(_PINK_B, _PINK_A, white, axis=-1)[..., burn:] * (_PINK_GAIN * c.background_uv)
        sources = lfilter(self._alpha_b, self._alpha_a, rng.standard_normal((n_rows, 3, n_times + burn)), axis=-1)
        alpha = c.alpha_uv * np.einsum("ck,nkt->nct", self.alpha_maps, sources[..., burn:])
        if onset is not None:
            alpha *= self._erd_envelope(np.arange(n_times) - onset)
        start = rng.integers(0, 10 * int(c.sfreq), size=(n_rows, 1, 1))
        tt = (start + np.arange(n_times)) / c.sfreq
        line = self.line_amp[:, None] * np.sin(2 * np.pi * c.line_hz * tt + self.line_phase[:, None])
        return (pink + alpha + line).astype(np.float32)

    def _erd_envelope(self, since_onset: np.ndarray) -> np.ndarray:
        """Alpha gain ``1 - erd`` from 0.15 to 0.5 s after onset with smooth edges, shape like input."""
        t = since_onset / self.config.sfreq
        window = expit((t - 0.15) / 0.02) * expit(-(t - 0.5) / 0.03)
        return 1.0 - self.config.erd * window

    # --- the dataset ------------------------------------------------------------------------
    def trials(self, subjects: list[int] | None = None, progress: bool = False,
               session: int = TRAINING_SESSION) -> Trials:
        """Every subject sees every image once, in class blocks, back to back (as ImageNet-EEG).

        The epochs are cut from each subject's continuous :class:`PhantomStream` at its stimulus
        markers, so the dataset and the live stream are one signal model. Returns :class:`Trials`
        with ``eeg`` (n_subjects * n_classes * images_per_class, n_ch, trial_length * sfreq) µV
        starting at stimulus onset; ``runs`` is the block (one per class per subject); the split
        "by-image" (80/10/10 of each class's images, the same for every subject) is attached and
        ``soft_labels`` holds the class-similarity labels. ``session`` is the recording session
        (:data:`TRAINING_SESSION` by default; live streams default to :data:`LIVE_SESSION`), kept in
        ``Trials.sessions``.
        """
        from tqdm.auto import tqdm

        c = self.config
        subjects = list(self.subjects) if subjects is None else subjects
        n_per_subject = c.n_classes * c.images_per_class
        eeg = np.empty((len(subjects) * n_per_subject, c.n_channels, self.n_evoked), np.float32)
        labels, images, subj_ids = [], [], []
        # disable=None: no bar when stderr is not a terminal (a log file gets no carriage-return flood)
        bar = tqdm(total=len(subjects) * n_per_subject, desc="phantom trials", unit="trial",
                   disable=None if progress else True)
        for si, s in enumerate(subjects):
            stream = PhantomStream(self, subject=s, isi=c.trial_length, seed=c.seed, blocks=True, session=session)
            stream.read(stream.state.next_onset)  # lead-in before the first stimulus
            for k in range(n_per_subject):
                data, markers = stream.read(self.n_evoked)
                (_, image_id, label), = markers
                eeg[si * n_per_subject + k] = data
                labels.append(label)
                images.append(int(image_id.rsplit("_", 1)[1]))
                subj_ids.append(s)
                bar.update()
        bar.close()
        labels, images, subj_ids = np.array(labels), np.array(images), np.array(subj_ids)
        block = np.cumsum(np.r_[True, (labels[1:] != labels[:-1]) | (subj_ids[1:] != subj_ids[:-1])]) - 1
        trials = Trials(
            eeg=eeg,
            labels=labels,
            image_ids=np.array([f"{self.class_ids[k]}_{i}" for k, i in zip(labels, images)]),
            subjects=subj_ids,
            runs=block,
            sfreq=c.sfreq,
            ch_names=list(self.ch_names),
            class_ids=list(self.class_ids),
            class_names=list(self.class_names),
            tmin=0.0,
            source=f"phantom:subjects={c.n_subjects},classes={c.n_classes},seed={c.seed},snr={c.snr:g}"
                   + (f",session={session}" if session != TRAINING_SESSION else "")
                   + (f",drift_uv={c.drift_uv:g}" if c.drift_uv else "")
                   + (f",semantic=1,embed_dim={c.embed_dim},class_spread={c.class_spread:g}" if c.semantic else ""),
            sessions=np.full(len(labels), session),
        )
        trials.soft_labels = self.soft_labels(trials.labels)
        trials.splits["by-image"] = self.image_split(images, labels)
        return trials

    def image_split(self, images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """80/10/10 split of each class's images (the same images held out for every subject)."""
        c = self.config
        rng = np.random.default_rng([c.seed, 999])
        role = np.empty((c.n_classes, c.images_per_class), dtype="<U5")
        for k in range(c.n_classes):
            perm = rng.permutation(c.images_per_class)
            n_test = max(1, c.images_per_class // 10)
            role[k, perm[:n_test]] = "test"
            role[k, perm[n_test : 2 * n_test]] = "val"
            role[k, perm[2 * n_test :]] = "train"
        r = role[labels, images]
        return {name: np.flatnonzero(r == name) for name in ("train", "val", "test")}

    def true_similarity(self) -> np.ndarray:
        """``cos(a_c, a_c')`` of the centred class loadings, ``(n_classes, n_classes)``: how alike the
        classes' evoked responses are."""
        centred = self.loadings - self.loadings.mean(0)
        unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
        return unit @ unit.T

    def teacher_similarity(self, alignment: float | None = None) -> np.ndarray:
        """The teacher's class similarity ``rho * S_true + sqrt(1 - rho^2) * S_other``, ``(n_classes,
        n_classes)``: ``S_other`` is the same construction on random loadings unrelated to the EEG, so
        the off-diagonal similarities correlate with the true ones by about ``rho`` (see
        :meth:`teacher_alignment_measured`); the diagonal stays the largest entry of each row."""
        rho = self.config.teacher_alignment if alignment is None else alignment
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"teacher alignment must be in [0, 1]; got {rho}")
        rng = np.random.default_rng([self.config.seed, 555])
        other = rng.uniform(0.0, 1.0, size=self.loadings.shape)
        other -= other.mean(0)
        other /= np.linalg.norm(other, axis=1, keepdims=True)
        return rho * self.true_similarity() + np.sqrt(1.0 - rho * rho) * (other @ other.T)

    def teacher_alignment_measured(self, alignment: float | None = None) -> float:
        """Pearson correlation of the teacher's and the true off-diagonal class similarities."""
        mask = ~np.eye(self.config.n_classes, dtype=bool)
        return float(np.corrcoef(self.teacher_similarity(alignment)[mask], self.true_similarity()[mask])[0, 1])

    def soft_labels(self, labels: np.ndarray, temperature: float = 0.2, alignment: float | None = None) -> np.ndarray:
        """Class-similarity soft labels (the phantom's stand-in for a CLIP teacher).

        ``softmax(similarity / temperature)`` with the teacher's similarity
        (:meth:`teacher_similarity`, alignment ``alignment`` or the config's ``teacher_alignment``):
        classes the teacher finds alike share probability mass, as an image teacher's do for alike
        pictures. Shape ``(n_trials, n_classes)``.
        """
        return softmax(self.teacher_similarity(alignment) / temperature, axis=1)[labels].astype(np.float32)

    # --- the ceiling ------------------------------------------------------------------------
    def noise_spatial_maps(self) -> np.ndarray:
        """``(n_channels, 5)``: the spatial maps of the alpha sources (3) and of the mains (its sine and
        cosine parts: each channel's mains is ``amp * sin(w t + phase)``), the structured noise."""
        line = np.stack([self.line_amp * np.cos(self.line_phase), self.line_amp * np.sin(self.line_phase)], axis=1)
        return np.concatenate([self.alpha_maps, line], axis=1)

    def _whitener(self, n_times: int) -> tuple[np.ndarray, np.ndarray]:
        """``(projector (n_ch, n_ch), inverse Cholesky factor (n_times, n_times))``: project out the alpha
        and mains maps, then whiten the stationary 1/f background exactly over ``n_times`` samples."""
        c = self.config
        maps = self.noise_spatial_maps()
        q, _ = np.linalg.qr(maps)
        projector = np.eye(c.n_channels) - q @ q.T
        n_imp = max(20000, 4 * n_times)
        h = lfilter(_PINK_B, _PINK_A, np.r_[1.0, np.zeros(n_imp - 1)]) * (_PINK_GAIN * c.background_uv)
        spectrum = np.fft.rfft(h, 2 * n_imp)
        acov = np.fft.irfft(np.abs(spectrum) ** 2)[:n_times]
        cov = acov[np.abs(np.subtract.outer(np.arange(n_times), np.arange(n_times)))]
        chol = np.linalg.cholesky(cov + 1e-9 * acov[0] * np.eye(n_times))
        return projector, np.linalg.inv(chol).T  # x @ inv(L).T whitens each row

    def retrieval_oracle(self, trials: Trials, candidates: np.ndarray, subject_agnostic: bool = False) -> np.ndarray:
        """The zero-shot ceiling: posterior over ``k`` candidate embeddings ``(k, embed_dim)`` (e.g. the held-out
        classes' :attr:`class_embeddings`), ``(n_trials, k)``.

        :meth:`oracle_probabilities` with templates ``W @ candidate``: besides what a student has (the EEG
        and the candidates' embeddings) it knows the map ``W`` from embeddings to the evoked response, the
        spatio-temporal components, the noise model and (unless ``subject_agnostic``) each subject's gain
        and latency. A student has to learn the EEG → embedding map from training classes only.
        """
        return self.oracle_probabilities(trials, subject_agnostic=subject_agnostic,
                                         loadings=self.embedding_loadings(candidates))

    def oracle_probabilities(self, trials: Trials, n_shifts: int = 9, subject_agnostic: bool = False,
                             n_gains: int = 5, n_amps: int = 5, loadings: np.ndarray | None = None) -> np.ndarray:
        """Posterior class probabilities from the true generative model, shape ``(n_trials, n_classes)``
        (``(n_trials, k)`` for ``loadings`` of ``k`` candidates, ``(k, n_components)``; default: the classes').

        The matched filter with the true class templates under the true noise model: alpha and mains
        projected out with their known spatial maps (:meth:`noise_spatial_maps`), the 1/f background
        whitened exactly over the window (its covariance from the generator's filter), the likelihood
        averaged over the latency jitter (``n_shifts`` points) and the trial-to-trial amplitude jitter
        (``n_amps`` Gauss-Hermite points). ``subject_agnostic=False`` (the full oracle) uses each trial's
        subject gain and latency; ``True`` averages over the phantom's prior for them (uniform gains
        0.7-1.3 on ``n_gains`` points, latency uniform in +-``subject_latency``) instead: the ceiling for
        a subject never seen (leave-subject-out) and for by-block. The image-to-image spread of the
        loadings is not modelled (the templates are class means), so it is near-Bayes, not exact. Uses
        the trials' own time axis (``tmin``, crop), so it sees what a student sees.
        """
        c = self.config
        if trials.sfreq != c.sfreq or list(trials.ch_names) != list(self.ch_names):
            raise ValueError("oracle needs trials from this phantom (same channels and sampling rate)")
        start = int(round(trials.tmin * c.sfreq))
        n_times = trials.eeg.shape[-1]
        if start < 0 or start + n_times > self.n_evoked:
            raise ValueError("trials extend outside the phantom's epoch")
        projector, white_t = (m.astype(np.float32) for m in self._whitener(n_times))
        loadings = self.loadings if loadings is None else np.asarray(loadings)
        n_candidates = len(loadings)

        def whiten(x: np.ndarray) -> np.ndarray:  # (..., n_ch, n_times) -> flattened whitened
            y = np.einsum("ij,...jt->...it", projector, x) @ white_t
            return y.reshape(*x.shape[:-2], -1).astype(np.float32)

        shifts, log_w, gain_list, log_gain_w, groups = self._oracle_prior(trials, n_shifts, subject_agnostic,
                                                                          n_gains, n_amps)
        log_post = np.full((len(trials), n_candidates), -np.inf)
        for s, idx in groups.items():
            if len(idx) == 0:
                continue
            x = whiten(trials.eeg[idx])  # (n, ch*t)
            # templates at the subject's gain and latency, or at gain 1 and latency 0 scaled by each prior gain
            gain, latency = (1.0, 0.0) if s is None else (self.subjects[s].gain, self.subjects[s].latency)
            templates = np.stack([whiten(self.evoked_at(loadings[k], gain, latency + sh)[:, start : start + n_times])
                                  for k in range(n_candidates) for sh in shifts])  # (candidates * shifts, ch * t)
            dots = (x @ templates.T).reshape(len(idx), n_candidates, len(shifts))
            energy = 0.5 * (templates.astype(np.float64) ** 2).sum(1).reshape(n_candidates, len(shifts))
            ll = np.stack([g * dots - g * g * energy[None] for g in gain_list], axis=-1)  # (n, classes, shifts, gains)
            ll = ll + log_w[None, None, :, None] + log_gain_w[None, None, None, :]
            log_post[idx] = logsumexp(ll.reshape(len(idx), n_candidates, -1), axis=2)
        return softmax(log_post, axis=1)

    def _oracle_prior(self, trials: Trials, n_shifts: int, subject_agnostic: bool, n_gains: int,
                      n_amps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """The oracle's quadrature over what it does not know: latency shifts (s) and their log weights,
        gains (subject prior x trial amplitude) and their log weights, and the trial groups that share
        templates (``{subject: indices}``, or ``{None: all}`` when subject-agnostic)."""
        c = self.config
        # trial amplitude 1 + amp_jitter * z, z ~ N(0, 1): Gauss-Hermite nodes and weights
        z, z_w = np.polynomial.hermite_e.hermegauss(max(1, n_amps))
        amps, log_amp_w = np.clip(1 + c.amp_jitter * z, 0.05, None), np.log(z_w / z_w.sum())
        if subject_agnostic:  # total shift = subject latency + jitter: a trapezoid of two uniforms
            half = c.subject_latency + c.jitter
            shifts = np.linspace(-half, half, 2 * n_shifts + 1)
            weights = np.clip((half - np.abs(shifts)) / max(2 * min(c.subject_latency, c.jitter), 1e-12), 0, None)
            weights = np.minimum(weights, 1.0) + 1e-12
            prior_gains = np.linspace(0.7, 1.3, n_gains)
            groups = {None: np.arange(len(trials))}
        else:
            shifts = np.linspace(-c.jitter, c.jitter, n_shifts)
            weights = np.ones(n_shifts)
            prior_gains = np.array([1.0])
            groups = {int(s): np.flatnonzero(trials.subjects == s) for s in np.unique(trials.subjects)}
        log_w = np.log(weights / weights.sum())
        gain_list = np.outer(prior_gains, amps).ravel()  # gains relative to the templates below
        log_gain_w = (np.log(np.full(len(prior_gains), 1 / len(prior_gains)))[:, None] + log_amp_w[None]).ravel()
        return shifts, log_w, gain_list, log_gain_w, groups

    # --- continuous stream ------------------------------------------------------------------
    def new_stream(self, subject: int = 1, isi: float = 0.5, seed: int | None = None, blocks: bool = False,
                   session: int = LIVE_SESSION) -> PhantomStream:
        """A continuous stream of ``subject`` in recording ``session`` (default: a live session, not
        the training data's)."""
        return PhantomStream(self, subject=subject, isi=isi, seed=self.config.seed if seed is None else seed,
                             blocks=blocks, session=session)


class PhantomStream:
    """Continuous phantom EEG with a stimulus every ``isi`` seconds; pull it with :meth:`read`.

    Markers are ImageNet-style image ids ``"<synset>_<image>"`` at stimulus onsets. ``session``
    picks the stimulus sequence and background noise (see :func:`session_seed`); the default is
    a live session (:meth:`Phantom.trials` asks for the training session).
    """

    def __init__(self, phantom: Phantom, subject: int = 1, isi: float = 0.5, seed: int = 0, blocks: bool = False,
                 session: int = LIVE_SESSION):
        if subject not in phantom.subjects:
            raise ValueError(f"subject {subject} not in phantom subjects {sorted(phantom.subjects)}")
        if isi <= 0:
            raise ValueError(f"isi must be > 0 s; got {isi}")
        self.phantom = phantom
        self.subject = subject
        self.isi_samples = max(1, int(round(isi * phantom.config.sfreq)))
        self.blocks = blocks
        self.session = session
        self.listen = False  # True: no stimuli of its own, only those given to stimulate() (bci_stream.sources.listen)
        self.rng = np.random.default_rng(session_seed(seed, subject, session, 7))  # stimuli: order, jitter, amplitude
        self.noise_rng = np.random.default_rng(session_seed(seed, subject, session, 8))  # background, sample-major
        self.drift_rng = np.random.default_rng(session_seed(seed, subject, session, 9))  # only when drift_uv > 0
        c = phantom.config
        self.state = StreamState(
            pink_zi=np.tile(lfilter_zi(_PINK_B, _PINK_A), (c.n_channels, 1)) * 0.0,
            alpha_zi=np.zeros((3, 2)),
            next_onset=int(c.sfreq),  # first stimulus after 1 s
        )

    def _next_stimulus(self) -> tuple[int, int]:
        c = self.phantom.config
        if not self.state.sequence:
            if self.blocks:  # every image of a class in a row, classes in random order
                self.state.sequence = [(int(k), int(i)) for k in self.rng.permutation(c.n_classes)
                                       for i in self.rng.permutation(c.images_per_class)]
            else:  # interleaved: random class, random image
                self.state.sequence = [(int(k), int(self.rng.integers(c.images_per_class)))
                                       for k in self.rng.permutation(c.n_classes)]
        return self.state.sequence.pop(0)

    def stimulate(self, onset_sample: int, label: int, image: int) -> None:
        """The subject sees image ``image`` of class ``label`` at absolute sample ``onset_sample``
        (possibly already generated: the response then starts in the next chunk, time-locked to it)."""
        self.state.external.append((int(onset_sample), int(label), int(image)))

    def read(self, n_samples: int) -> tuple[np.ndarray, list[tuple[int, str, int]]]:
        """The next ``n_samples``: data ``(n_ch, n_samples)`` float32 µV and the markers in it as
        ``(absolute_sample_index, image_id, label)``."""
        ph, c, st = self.phantom, self.phantom.config, self.state
        # sample-major draws: any chunking of the same stream gives the same signal
        white = self.noise_rng.standard_normal((n_samples, c.n_channels + 3)).T
        pink, st.pink_zi = lfilter(_PINK_B, _PINK_A, white[: c.n_channels], axis=-1, zi=st.pink_zi)
        src, st.alpha_zi = lfilter(ph._alpha_b, ph._alpha_a, white[c.n_channels :], axis=-1, zi=st.alpha_zi)
        alpha = c.alpha_uv * ph.alpha_maps @ src
        idx = st.sample + np.arange(n_samples)
        markers = []
        while not self.listen and st.next_onset < st.sample + n_samples:
            label, image = self._next_stimulus()
            shift = self.rng.uniform(-c.jitter, c.jitter)
            amp = 1 + c.amp_jitter * self.rng.standard_normal()
            st.pending.append((st.next_onset, ph.evoked(ph.image_loadings[label, image], self.subject, shift, amp)))
            markers.append((st.next_onset, f"{ph.class_ids[label]}_{image}", label))
            st.next_onset += self.isi_samples
        due = sorted(e for e in st.external if e[0] < st.sample + n_samples)  # later ones wait for their chunk
        st.external = [e for e in st.external if e[0] >= st.sample + n_samples]
        for onset, label, image in due:  # a response to a stimulus presented elsewhere, from its onset sample on
            shift = self.rng.uniform(-c.jitter, c.jitter)
            amp = 1 + c.amp_jitter * self.rng.standard_normal()
            st.pending.append((onset, ph.evoked(ph.image_loadings[label, image], self.subject, shift, amp)))
            markers.append((onset, f"{ph.class_ids[label]}_{image}", label))
        onsets = [m[0] for m in markers]
        since = idx - st.last_onset
        for onset in onsets:
            since = np.where(idx >= onset, idx - onset, since)
        if onsets:
            st.last_onset = onsets[-1]
        alpha *= ph._erd_envelope(since)
        tt = idx / c.sfreq
        line = ph.line_amp[:, None] * np.sin(2 * np.pi * c.line_hz * tt + ph.line_phase[:, None])
        out = pink * (_PINK_GAIN * c.background_uv) + alpha + line
        if c.drift_uv > 0:  # slow AR(1) random walk per channel, stationary std drift_uv
            a = float(np.exp(-1.0 / (c.drift_tau * c.sfreq)))
            if st.drift_zi is None:
                st.drift_zi = a * c.drift_uv * self.drift_rng.standard_normal((c.n_channels, 1))  # a * y[-1]
            drive = self.drift_rng.standard_normal((n_samples, c.n_channels)).T * (np.sqrt(1 - a * a) * c.drift_uv)
            drift, st.drift_zi = lfilter([1.0], [1.0, -a], drive, axis=-1, zi=st.drift_zi)
            out = out + drift
        keep = []
        for onset, ev in st.pending:
            lo, hi = max(onset, st.sample), min(onset + ev.shape[1], st.sample + n_samples)
            if lo < hi:
                out[:, lo - st.sample : hi - st.sample] += ev[:, lo - onset : hi - onset]
            if onset + ev.shape[1] > st.sample + n_samples:
                keep.append((onset, ev))
        st.pending = keep
        st.sample += n_samples
        return out.astype(np.float32), markers
