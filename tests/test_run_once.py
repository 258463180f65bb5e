"""A training run does each thing once: it makes its split once, writes each file once, reads no trained
model back from disk (export takes the model in memory) and builds the phantom once. Counted, not timed."""

import collections
import contextlib
import json

import pytest

from offline_training.cli import main as bci_train
from offline_training.training.checkpoints import CHECKPOINT, MODEL, OPTIMIZER, STATE

TINY = "phantom:subjects=1,classes=3,channels=4,images=4,seed=0"
SEMANTIC = "phantom:subjects=1,classes=16,channels=4,images=3,seed=4,semantic=1,embed_dim=8"
CHECKPOINT_FILES = {CHECKPOINT, OPTIMIZER, STATE, MODEL}  # rewritten per epoch so that a run resumes, by design


@pytest.fixture
def counted(monkeypatch):
    """Counters wrapped around the real functions: splits made (by name), files written (by path, through
    the one atomic writer every run file goes through), safetensors read, phantoms built."""
    import bci_stream.io.safe_write as safe_write
    from bci_stream.sources.phantom import Phantom
    from offline_training.training import checkpoints, splits

    counts = {"splits": collections.Counter(), "writes": collections.Counter(), "reads": 0, "phantoms": 0}
    make, atomic, load_file, init = splits._make, safe_write.atomic_path, checkpoints.load_file, Phantom.__init__

    def counting_make(trials, name, seed):
        counts["splits"][name] += 1
        return make(trials, name, seed)

    @contextlib.contextmanager
    def counting_atomic(path):
        counts["writes"][str(path)] += 1
        with atomic(path) as tmp:
            yield tmp

    def counting_load(*args, **kwargs):
        counts["reads"] += 1
        return load_file(*args, **kwargs)

    def counting_init(self, *args, **kwargs):
        counts["phantoms"] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(splits, "_make", counting_make)
    monkeypatch.setattr(safe_write, "atomic_path", counting_atomic)
    monkeypatch.setattr(checkpoints, "load_file", counting_load)
    monkeypatch.setattr(Phantom, "__init__", counting_init)
    return counts


def twice(writes: collections.Counter) -> dict:
    """Files written more than once, checkpoints (rewritten each epoch so that a run resumes) aside."""
    return {p: n for p, n in writes.items() if n > 1 and p.rsplit("/", 1)[-1] not in CHECKPOINT_FILES}


def test_run_makes_its_split_once_writes_each_file_once_and_exports_the_model_in_memory(tmp_path, counted):
    out = tmp_path / "run"
    assert bci_train(["run", "--data", TINY, "--out", str(out), "--epochs", "2", "--no-baselines", "--no-controls"]) == 0
    # one split for the students, the references, the oracle and the drift probe alike
    assert counted["splits"] == {"by-image": 1}, counted["splits"]
    assert not twice(counted["writes"]), twice(counted["writes"])
    runs = [p for p in counted["writes"] if p.endswith("/run.json") and p != str(out / "run.json")]
    assert len(runs) == 4  # 3 students + the plain seed CNN, each run.json once (and the best's copy in RUN_DIR)
    assert counted["reads"] == 0  # no model read back: tested and exported from memory
    assert counted["phantoms"] == 1  # the data, the teacher and the oracle from one phantom
    assert (out / "model.onnx").stat().st_size > 0
    best = json.loads((out / "comparison.json").read_text())["best_folder"]
    assert json.loads((out / "run.json").read_text()) == json.loads((out / best / "run.json").read_text())


def test_fit_of_either_objective_makes_its_split_once_and_reads_nothing_back(tmp_path, counted):
    assert bci_train(["fit", "--data", TINY, "--out", str(tmp_path / "classes"), "--epochs", "2"]) == 0
    assert counted["splits"] == {"by-image": 1} and counted["reads"] == 0 and counted["phantoms"] == 1
    assert not twice(counted["writes"]), twice(counted["writes"])
    assert bci_train(["fit", "--data", SEMANTIC, "--objective", "embedding", "--student", "eegnet", "--epochs", "2",
                      "--out", str(tmp_path / "embedding")]) == 0
    assert counted["splits"] == {"by-image": 1, "by-class": 1} and counted["reads"] == 0 and counted["phantoms"] == 2
    assert not twice(counted["writes"]), twice(counted["writes"])
    info = json.loads((tmp_path / "embedding" / "run.json").read_text())
    assert info["split"] == "by-class" and info["embedding"]["dim"] == 8 and info["teacher"].startswith("image embeddings")
