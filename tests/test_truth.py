"""Event-mode truth: which class a marker shows, and the running accuracy with its interval."""

import pytest

from bci_stream.truth import MarkerTruth, RunningAccuracy, class_by_rule, unresolved_markers

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
