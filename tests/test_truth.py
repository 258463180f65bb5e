"""Event-mode truth: which class a marker shows, and the running accuracy with its interval."""

import numpy as np
import pytest

from bci_stream.live.scoring import MarkerTruth, RunningAccuracy, class_by_rule, unresolved_markers

IDS, NAMES = ["n02389026", "n03888257", "face"], ["sorrel", "parachute", "face"]


@pytest.mark.parametrize("marker, expected", [
    ("n03888257", 1), ("sorrel", 0), ("n02389026_1234", 0), ("face", 2), ("rt", None), ("n0999_3", None),
])
def test_markers_resolve_by_id_name_or_image_id(marker, expected):
    assert class_by_rule(marker, IDS, NAMES) == expected


def test_the_cards_own_map_comes_first_and_only_unresolved_markers_are_stored():
    stored = unresolved_markers(["square/1", "square/2", "n02389026_7"], [2, 1, 0], IDS, NAMES)
    assert stored == {"square/1": "face", "square/2": "n03888257"}  # the image id resolves by rule
    truth = MarkerTruth(IDS, NAMES, stored)
    assert [truth.class_of(m) for m in ("square/1", "square/2", "n02389026_7", "rt")] == [2, 1, 0, None]


def test_running_accuracy_counts_hits_with_wilson_interval_and_p_value():
    acc = RunningAccuracy(n_classes=10)
    for i in range(20):
        acc.add("m", truth=i % 10, top5=[i % 10 if i < 3 else (i + 1) % 10, 0, 1, 2, 3])
    acc.add("rt", truth=None, top5=[0, 1, 2, 3, 4])
    s = acc.summary()
    assert s["n"] == 20 and s["unscored"] == 1 and s["top1"] == 0.15
    assert s["top1_ci"] == pytest.approx([0.0524, 0.3604], abs=1e-4)  # Wilson, 3 of 20
    assert s["p_top1_vs_chance"] == pytest.approx(0.323, abs=1e-3)  # exact binomial vs 0.1
    assert "top-1 3/20 = 0.15 [0.05, 0.36]" in acc.line()


def test_two_classes_report_roc_auc_with_its_interval_and_no_top_5():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    truths = rng.integers(0, 2, 60)
    p_face = np.clip(0.5 + 0.3 * (truths - 0.5) + rng.normal(0, 0.2, 60), 0, 1)
    acc = RunningAccuracy(n_classes=2)
    for t, p in zip(truths, p_face):
        probs = np.array([1 - p, p])
        acc.add("m", truth=int(t), top5=list(np.argsort(-probs)), probabilities=probs)
    s = acc.summary()
    assert "top5" not in s  # top-k only for k < the number of classes
    assert s["roc_auc"] == pytest.approx(roc_auc_score(truths, p_face), abs=1e-12)
    lo, hi = s["roc_auc_ci"]
    assert lo < s["roc_auc"] < hi and hi - lo < 0.4
    line = acc.line()
    assert "ROC AUC" in line and "top-5" not in line


def test_auc_is_undefined_until_both_classes_were_shown_and_ties_count_half():
    from bci_stream.live.stats import roc_auc_interval

    assert all(np.isnan(roc_auc_interval([1, 1, 1], [0.2, 0.5, 0.9])))
    assert roc_auc_interval([0, 1], [0.5, 0.5])[0] == 0.5
    assert roc_auc_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])[0] == 1.0
