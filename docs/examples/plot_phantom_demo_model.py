"""
The demo model on the phantom, as a scikit-learn estimator
===========================================================

Read 30 s of a new phantom recording session (the demo model was trained on session 0), cut an
epoch at each stimulus marker and score the shipped demo model on them through
:class:`bci_stream.sklearn.ExportedModel`: the card's preprocessing, window, features and
normalisation, then the ONNX network, exactly as the live decoder runs them.
"""

# %%
# A new phantom session: 30 s, a stimulus every 0.5 s
import matplotlib.pyplot as plt
import numpy as np

from bci_stream.sources.phantom import LIVE_SESSION, Phantom, PhantomConfig
from bci_stream.sklearn import ExportedModel
from bci_stream.live.stats import wilson_interval

phantom = Phantom(PhantomConfig())
stream = phantom.new_stream(subject=1, session=LIVE_SESSION)
data, markers = stream.read(30 * 1000)
n_times = 500  # 0.5 s epochs from stimulus onset
onsets = [(s, label) for s, _, label in markers if s + n_times <= data.shape[1]]
X = np.stack([data[:, s : s + n_times] for s, _ in onsets])
y = np.array([label for _, label in onsets])
print(f"{len(X)} epochs of {X.shape[1]} channels x {X.shape[2]} samples")

# %%
# The exported model as an estimator: already trained, ``fit`` only opens and checks it
model = ExportedModel("demo").fit(X, y)
probs = model.predict_proba(X)
hits = int((probs.argmax(1) == y).sum())
lo, hi = wilson_interval(hits, len(y))
print(f"top-1 {hits}/{len(y)} = {hits / len(y):.2f} [95 % CI {lo:.2f}, {hi:.2f}], chance {1 / probs.shape[1]:.3f}")

# %%
# The probability of the shown class per stimulus, against chance
card = model.decoder_.card
fig, ax = plt.subplots(figsize=(7, 2.5))
ax.bar(np.arange(len(y)), probs[np.arange(len(y)), y], color=np.where(probs.argmax(1) == y, "tab:green", "tab:red"))
ax.axhline(1 / card.n_classes, color="k", lw=0.8, ls="--", label="chance")
ax.set(xlabel="stimulus", ylabel="p(shown class)", title="demo model on phantom session 1 (green: top-1 hit)")
ax.legend(loc="upper right")
fig.tight_layout()
