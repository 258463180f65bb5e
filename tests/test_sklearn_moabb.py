"""scikit-learn and MOABB interfaces: an exported model as an estimator, the students as trainable
estimators, and a MOABB evaluation on the local SSVEP Exo files beside the project's own folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import RidgeClassifier  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from bci_stream.sklearn import ExportedModel  # noqa: E402
from bci_stream.sources.phantom import Phantom  # noqa: E402

SSVEP = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ssvep_exo"
needs_ssvep = pytest.mark.skipif(not (SSVEP / "subject01").is_dir(), reason=f"SSVEP Exo files absent ({SSVEP})")


@pytest.fixture(scope="module")
def phantom_trials(tiny_phantom_config):
    return Phantom(tiny_phantom_config).trials()


def test_an_exported_models_estimator_gives_the_trained_students_probabilities(tiny_model, phantom_trials):
    from offline_training.experiments.pipeline import test_probabilities

    idx = np.arange(0, len(phantom_trials), 7)
    torch_probs = test_probabilities(tiny_model.parent, phantom_trials, idx)
    est = ExportedModel(str(tiny_model)).fit()
    probs = est.predict_proba(phantom_trials.eeg[idx])
    assert probs.shape == (len(idx), phantom_trials.n_classes)
    np.testing.assert_allclose(probs, torch_probs, atol=1e-4)  # float32 network, two runtimes
    np.testing.assert_array_equal(est.predict(phantom_trials.eeg[idx]), probs.argmax(1))
    assert est.transform(phantom_trials.eeg[idx]).shape == (len(idx), int(np.prod(est.decoder_.card.feature_shape())))


def test_cross_val_score_runs_an_exported_model_and_a_pipeline_on_its_features(tiny_model, phantom_trials):
    X, y = phantom_trials.eeg, phantom_trials.labels
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    est = ExportedModel(str(tiny_model))
    scores = cross_val_score(est, X, y, cv=cv)
    folds = [(est.fit().predict(X[test]) == y[test]).mean() for _, test in cv.split(X, y)]
    np.testing.assert_allclose(scores, folds)
    piped = cross_val_score(make_pipeline(ExportedModel(str(tiny_model)), RidgeClassifier()),
                            X, y, cv=cv)
    assert piped.shape == (3,) and np.isfinite(piped).all()
    assert clone(est).get_params()["model"] == str(tiny_model)


def test_an_exported_model_names_trials_that_do_not_fit_it(tiny_model, phantom_trials):
    est = ExportedModel(str(tiny_model)).fit()
    with pytest.raises(ValueError, match="channels"):
        est.predict(phantom_trials.eeg[:2, :3])
    with pytest.raises(ValueError, match="from stimulus onset"):
        est.predict(phantom_trials.eeg[:2, :, :100])
    with pytest.raises(ValueError, match="labels must be one of"):
        ExportedModel(str(tiny_model), labels="synset").fit()


def test_a_student_estimator_clones_fits_on_arrays_and_learns_trailing_underscore_attributes(phantom_trials):
    from offline_training.estimators import StudentClassifier

    est = StudentClassifier("shallow", sfreq=phantom_trials.sfreq, window=(0.02, 0.46), epochs=2, threads=1)
    assert "model_" not in vars(clone(est))
    labels = np.asarray(phantom_trials.class_names)[phantom_trials.labels]  # string labels work too
    est.fit(phantom_trials.eeg, labels)
    assert set(est.classes_) == set(phantom_trials.class_names) and len(est.history_) >= 1
    probs = est.predict_proba(phantom_trials.eeg[:5])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert set(est.predict(phantom_trials.eeg[:5])) <= set(phantom_trials.class_names)
    with pytest.raises(ValueError, match="fitted on"):
        est.predict(phantom_trials.eeg[:2, :, :200])


@needs_ssvep
def test_moabb_cross_session_evaluation_of_a_student_and_mdm_on_local_ssvep_agrees_with_the_same_folds_run_here(tmp_path):
    """MOABB's CrossSessionEvaluation (leave one session out) of a student and a pyRiemann pipeline on
    the local SSVEP Exo files scores exactly what fitting the same estimators on the same folds gives."""
    import warnings

    from moabb.evaluations import CrossSessionEvaluation
    from moabb.paradigms import SSVEP as SSVEPParadigm
    from pyriemann.classification import MDM
    from pyriemann.estimation import Covariances
    from sklearn.preprocessing import LabelEncoder

    from offline_training.datasets.moabb import LocalSSVEPExo
    from offline_training.estimators import StudentClassifier
    from offline_training.experiments.evaluate import evaluate

    dataset = LocalSSVEPExo(SSVEP, subjects=[1])
    paradigm = SSVEPParadigm(n_classes=4)
    pipelines = {"shallow": make_pipeline(StudentClassifier("shallow", sfreq=256, epochs=3, threads=1)),
                 "MDM": make_pipeline(Covariances("oas"), MDM())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluation = CrossSessionEvaluation(paradigm=paradigm, datasets=[dataset], overwrite=True,
                                            hdf5_path=str(tmp_path), save_model=False, n_jobs=1)
        results = evaluation.process(pipelines)
        X, y, meta = paradigm.get_data(dataset, subjects=[1])
    assert set(results["pipeline"]) == {"shallow", "MDM"} and set(results["session"]) == {"0", "1"}
    y = LabelEncoder().fit_transform(y)
    for name, pipe in pipelines.items():
        for session in ("0", "1"):
            test = (meta.session == session).to_numpy()
            fitted = clone(pipe).fit(X[~test], y[~test])
            ours = evaluate(fitted.predict_proba(X[test]), y[test], np.ones(test.sum(), int), "by-session")
            theirs = results[(results.pipeline == name) & (results.session == session)]["score"].item()
            assert ours["top1"] == pytest.approx(theirs, abs=1e-12), (name, session)


def test_the_lda_and_log_power_references_are_sklearn_pipelines_that_clone_and_cross_validate(phantom_trials):
    """The references beside the students compose like pyRiemann's (``clone``, ``cross_val_score``), and the
    LDA pipeline gives the probabilities of the recipe it replaced (features standardised by hand with
    mean / (std + 1e-6), then shrinkage LDA): the Real EEG and phantom figures stand."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from offline_training.experiments.baselines import power_logreg
    from offline_training.experiments.lda import ErpFeatures, shrinkage_lda

    x, y = phantom_trials.eeg[..., 20:460], phantom_trials.labels
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    lda = cross_val_score(clone(shrinkage_lda()), x, y, cv=folds)
    assert lda.mean() > 2 / phantom_trials.n_classes, lda  # the templates are learnable
    assert np.isfinite(cross_val_score(power_logreg(0), x, y, cv=folds)).all()
    train, test = np.arange(0, len(y), 2), np.arange(1, len(y), 2)
    f = ErpFeatures().fit_transform(x)
    mean, std = f[train].mean(0), f[train].std(0) + 1e-6
    old = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit((f[train] - mean) / std, y[train])
    new = shrinkage_lda().fit(x[train], y[train])
    np.testing.assert_allclose(new.predict_proba(x[test]), old.predict_proba((f[test] - mean) / std), atol=1e-4)
