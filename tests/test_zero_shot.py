"""Open-vocabulary decoding offline: the by-class split, InfoNCE training against image embeddings,
k-way zero-shot retrieval with the oracle beside it, and the embedding card through export."""

import numpy as np
import pytest

from bci_stream.phantom import Phantom, PhantomConfig
from offline_training.splits import SplitError, by_class, check_split, held_out_classes, make_split


@pytest.fixture(scope="module")
def semantic_trials():
    return Phantom(PhantomConfig(n_channels=8, n_classes=16, images_per_class=4, n_subjects=2, seed=1,
                                 semantic=True, embed_dim=16)).trials()


def test_by_class_split_holds_out_whole_classes_deterministically(semantic_trials):
    trials = semantic_trials
    split = make_split(trials, "by-class", seed=0)
    test_classes = set(trials.labels[split["test"]])
    assert len(test_classes) == 10 and len(set(trials.labels[split["val"]])) == 2
    assert not test_classes & set(trials.labels[split["train"]])
    assert set(held_out_classes(trials, split)) == test_classes
    # every trial of a held-out class is tested (all subjects, all images)
    assert len(split["test"]) == np.isin(trials.labels, list(test_classes)).sum()
    again = by_class(trials, seed=0)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    assert set(trials.labels[by_class(trials, seed=1)["test"]]) != test_classes
    with pytest.raises(SplitError, match="needs 2 more"):
        by_class(trials.subset(trials.labels < 12))
    bad = {"train": split["train"][1:], "val": split["val"], "test": np.r_[split["test"], split["train"][:1]]}
    with pytest.raises(SplitError, match="share class"):
        check_split(trials, bad, "by-class")
