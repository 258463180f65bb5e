import numpy as np
import pytest
from scipy.signal import welch

from bci_stream.contract.trials import Trials
from bci_stream.sources.phantom import Phantom, PhantomConfig


@pytest.fixture(scope="module")
def phantom(tiny_phantom_config):
    return Phantom(tiny_phantom_config)


@pytest.fixture(scope="module")
def trials(phantom):
    return phantom.trials()


def test_trials_contract(phantom, trials):
    c = phantom.config
    assert isinstance(trials, Trials)
    assert trials.eeg.shape == (c.n_subjects * c.n_classes * c.images_per_class, c.n_channels, 500)
    assert trials.ch_names == phantom.ch_names and len(set(trials.ch_names)) == c.n_channels
    assert set(np.unique(trials.subjects)) == {1, 2}
    # every subject sees every image of every class once, in class blocks
    for s in (1, 2):
        ids = trials.image_ids[trials.subjects == s]
        assert len(set(ids)) == c.n_classes * c.images_per_class
        labels = trials.labels[trials.subjects == s]
        assert (np.diff(labels) != 0).sum() == c.n_classes - 1
    split = trials.splits["by-image"]
    assert not set(trials.image_ids[split["test"]]) & set(trials.image_ids[split["train"]])
    np.testing.assert_allclose(trials.soft_labels.sum(1), 1, rtol=1e-5)
    assert (trials.soft_labels.argmax(1) == trials.labels).all()


def test_deterministic_for_a_seed(tiny_phantom_config, trials):
    again = Phantom(tiny_phantom_config).trials(subjects=[1])
    np.testing.assert_array_equal(again.eeg, trials.eeg[trials.subjects == 1])
    other = Phantom(PhantomConfig(**{**tiny_phantom_config.__dict__, "seed": 99})).trials(subjects=[1])
    assert not np.allclose(other.eeg, again.eeg)


def test_background_spectrum_has_1_over_f_alpha_and_mains():
    ph = Phantom(PhantomConfig(n_channels=32, n_classes=2, seed=1))
    stream = ph.new_stream()
    data, _ = stream.read(20000)
    oz = data[ph.ch_names.index("Oz")]
    f, p = welch(oz, fs=1000, nperseg=2000)
    band = lambda lo, hi: p[(f >= lo) & (f <= hi)].mean()  # noqa: E731
    assert band(2, 4) > band(20, 30) > band(80, 120)  # 1/f
    assert band(9, 11) > 2 * band(6, 7)  # alpha peak
    assert p[np.argmin(abs(f - 50))] > 5 * band(55, 65)  # mains
    fz = data[ph.ch_names.index("Fz")]
    assert welch(fz, fs=1000, nperseg=2000)[1][(f >= 9) & (f <= 11)].mean() < band(9, 11)  # alpha is occipital


def test_evoked_response_is_occipital_and_class_specific(phantom):
    a, b = phantom.template(0, 1), phantom.template(1, 1)
    occ = [i for i, n in enumerate(phantom.ch_names) if n.startswith(("O", "PO"))]
    front = [i for i, n in enumerate(phantom.ch_names) if n.startswith(("Fp", "AF", "F"))]
    assert np.abs(a[occ]).mean() > 3 * np.abs(a[front]).mean()
    assert np.abs(a - b).max() > 0.2 * np.abs(a).max()
    # subjects differ in gain and latency
    s1, s2 = phantom.subjects[1], phantom.subjects[2]
    assert (s1.gain, s1.latency) != (s2.gain, s2.latency)


def test_oracle_is_far_above_chance_and_uses_the_trials_time_axis(phantom, trials):
    test = trials.splits["by-image"]["test"]
    sub = trials.subset(test).crop(20, 460)
    probs = phantom.oracle_probabilities(sub)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-6)
    acc = (probs.argmax(1) == sub.labels).mean()
    assert acc > 0.8 > 3 * (1 / phantom.config.n_classes)
    # shuffling the trials against their labels must destroy it (mean over permutations: with a perfect
    # oracle one permutation of 20 trials measures only label coincidences)
    rng = np.random.default_rng(0)
    shuffled = np.mean([(probs[rng.permutation(len(sub))].argmax(1) == sub.labels).mean() for _ in range(50)])
    assert shuffled < acc / 2


def test_stream_markers_match_evoked_onsets():
    ph = Phantom(PhantomConfig(n_channels=16, n_classes=3, seed=2, background_uv=0.0, alpha_uv=0.0, line_uv=0.0))
    stream = ph.new_stream(isi=0.5)
    data, markers = stream.read(3000)
    assert [m[0] for m in markers] == [1000, 1500, 2000, 2500]
    assert np.abs(data[:, :1000]).max() == 0  # nothing before the first stimulus
    assert all(text.startswith(ph.class_ids[label]) for _, text, label in markers)
    # reading in small chunks gives the same signal as one read
    again = ph.new_stream(isi=0.5)
    pieces = [again.read(7)[0] for _ in range(3000 // 7)]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), data[:, : 7 * (3000 // 7)], atol=1e-4)


def test_subject_agnostic_oracle_knows_less_and_noise_is_whitened(phantom, trials):
    """The full oracle knows each subject's gain and latency; the subject-agnostic one averages over the
    phantom's prior (the fair ceiling for leave-subject-out). With structured noise projected out and the
    1/f background whitened exactly, noise alone is white with unit variance in the projected space."""
    hard = Phantom(PhantomConfig(**{**phantom.config.__dict__, "evoked_uv": 6.0, "subject_latency": 0.03}))
    sub = hard.trials().crop(20, 460)
    full = (hard.oracle_probabilities(sub).argmax(1) == sub.labels).mean()
    agnostic = hard.oracle_probabilities(sub, subject_agnostic=True)
    np.testing.assert_allclose(agnostic.sum(1), 1, rtol=1e-6)
    assert 1 / hard.config.n_classes < (agnostic.argmax(1) == sub.labels).mean() <= full + 0.02
    noise = phantom.background(40, 500, np.random.default_rng(1), onset=0)[..., 20:460]
    projector, white = phantom._whitener(440)
    y = np.einsum("ij,njt->nit", projector, noise) @ white
    assert abs(y.var() * phantom.config.n_channels / np.trace(projector) - 1) < 0.1


def test_teacher_alignment_is_tunable_and_keeps_the_true_class_on_top(phantom):
    labels = np.arange(phantom.config.n_classes)
    big = Phantom(PhantomConfig(n_channels=8, n_classes=40, seed=0))
    for rho in (0.0, 0.3, 0.5, 1.0):
        soft = big.soft_labels(np.arange(40), alignment=rho)
        assert (soft.argmax(1) == np.arange(40)).all()
        assert abs(big.teacher_alignment_measured(rho) - rho) < 0.2
    assert big.teacher_alignment_measured(1.0) == pytest.approx(1.0)
    assert phantom.config.teacher_alignment == 0.3  # an image teacher knows pictures, not brains
    np.testing.assert_allclose(phantom.soft_labels(labels, alignment=1.0).sum(1), 1, rtol=1e-5)
