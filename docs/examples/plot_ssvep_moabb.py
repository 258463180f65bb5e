"""
A real recording: SSVEP Exo in a MOABB evaluation
=================================================

Subject 1 of SSVEP Exo (Kalunga et al. 2016; 4 classes: rest, 13, 17, 21 Hz) from
``../shared/data/real/ssvep_exo``, read by the project's own reader, then evaluated leave one session
out with MOABB's ``CrossSessionEvaluation``: a pyRiemann pipeline and a project student
(:class:`offline_training.estimators.StudentClassifier`) side by side.
"""

# %%
# The recording through the project's reader (the published files: FIF with -eve.fif sidecars)
import warnings
from pathlib import Path

import matplotlib.pyplot as plt

import bci_stream

warnings.filterwarnings("ignore")
ROOT = Path(bci_stream.__file__).resolve().parents[2] / "shared" / "data" / "real" / "ssvep_exo"

from offline_training.datasets import load_trials  # noqa: E402

trials = load_trials(f"mne:{ROOT / 'subject01'},event_id=1:rest;2:13Hz;3:21Hz;4:17Hz,tmin=1,tmax=4", progress=False)
print(f"{len(trials)} trials x {trials.eeg.shape[1]} ch x {trials.eeg.shape[2]} samples @ {trials.sfreq:g} Hz, "
      f"classes {trials.class_names}, sessions {sorted(set(trials.sessions.tolist()))}")

# %%
# MOABB: the local files as a MOABB dataset, leave one session out
from moabb.evaluations import CrossSessionEvaluation  # noqa: E402
from moabb.paradigms import SSVEP  # noqa: E402
from pyriemann.classification import MDM  # noqa: E402
from pyriemann.estimation import Covariances  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from offline_training.estimators import StudentClassifier  # noqa: E402
from offline_training.datasets.moabb import LocalSSVEPExo  # noqa: E402

pipelines = {"Cov+MDM": make_pipeline(Covariances("oas"), MDM()),
             "shallow student": make_pipeline(StudentClassifier("shallow", sfreq=256, epochs=10, threads=2))}
evaluation = CrossSessionEvaluation(paradigm=SSVEP(n_classes=4), datasets=[LocalSSVEPExo(ROOT, subjects=[1])],
                                    overwrite=True, save_model=False, hdf5_path="/tmp/bci-stream-docs-moabb")
results = evaluation.process(pipelines)
print(results[["pipeline", "session", "score", "samples"]].to_string(index=False))

# %%
# Accuracy per held-out session (chance 0.25)
fig, ax = plt.subplots(figsize=(5, 2.5))
for i, (name, group) in enumerate(results.groupby("pipeline")):
    ax.bar([i - 0.2, i + 0.2], group.sort_values("session")["score"], width=0.35, label=name)
ax.axhline(0.25, color="k", lw=0.8, ls="--")
ax.set(xticks=[0, 1], xticklabels=sorted(results.pipeline.unique()), ylabel="accuracy",
       title="SSVEP Exo subject 1, leave one session out")
fig.tight_layout()
