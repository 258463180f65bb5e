"""CCANet: a student for oscillatory (SSVEP) and evoked (ERP) responses alike, on the ``erp`` features.

Two feature branches on each per-trial-scaled window ``(n_chans, n_times)``, one linear read-out:

- **CCA spectrum**: for each frequency of a fixed grid (``fmin``..``fmax`` every ``step`` Hz, set a
  priori, not from the classes), the sum of squared canonical correlations between the window and
  sine/cosine references at that frequency and its harmonics (the quantity CCA-based SSVEP detection
  thresholds, Lin et al. 2006), log-scaled. The covariance inverse is a fixed number of Newton-Schulz
  iterations, so the whole network is matrix products and exports to ONNX.
- **time course**: each channel average-pooled to ``n_pool`` points (the ERP).

The read-out is initialised in closed form (:meth:`CCANet.init_readout`: temperature-calibrated
shrinkage LDA on the training trials' features, as xDAWN/LDA pipelines do) and then trained by gradient like every student, so KD
still applies. Pooling subjects helps: the CCA spectrum of a 13-Hz response is the same on every head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def newton_schulz_inverse(a: torch.Tensor, iters: int = 20) -> torch.Tensor:
    """``a^{-1}`` for symmetric positive definite ``(batch, c, c)`` by Newton-Schulz iterations
    (matmuls only). Scaled by the trace so the eigenvalues lie in (0, 1] and ``X0 = I`` converges."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    scale = a.diagonal(dim1=-2, dim2=-1).sum(-1)[:, None, None]
    an = a / scale
    x = eye.expand_as(a)
    for _ in range(iters):
        x = x @ (2 * eye - an @ x)
    return x / scale


class CCASpectrum(nn.Module):
    """``(batch, c, t)`` → ``(batch, n_freqs)``: sum of squared canonical correlations with sine/cosine
    references at each grid frequency (fundamental and ``n_harmonics - 1`` harmonics).

    ``shrink``: ridge added to the channel covariance, as a fraction of its mean variance (keeps the
    Newton-Schulz inverse well conditioned: 20 iterations reach float32 precision below condition 1e4)."""

    def __init__(self, n_times: int, sfreq: float, freqs: np.ndarray, n_harmonics: int = 2, shrink: float = 0.01,
                 iters: int = 20):
        super().__init__()
        t = np.arange(n_times) / sfreq
        blocks = []
        for f in freqs:
            y = np.stack([g(2 * np.pi * h * f * t) for h in range(1, n_harmonics + 1) for g in (np.sin, np.cos)], 1)
            q, _ = np.linalg.qr(y - y.mean(0))  # orthonormal references: then sum rho^2 = ||A^-1/2 X Y||^2
            blocks.append(q)
        self.register_buffer("refs", torch.tensor(np.concatenate(blocks, 1), dtype=torch.float32))
        self.n_freqs, self.k, self.shrink, self.iters = len(freqs), 2 * n_harmonics, shrink, iters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        cov = x @ x.transpose(1, 2)
        ridge = self.shrink * cov.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None]
        cov = cov + ridge * torch.eye(cov.shape[-1], dtype=x.dtype, device=x.device)
        proj = x @ self.refs  # (batch, c, n_freqs * k)
        r = (proj * (newton_schulz_inverse(cov, self.iters) @ proj)).sum(1)
        return r.unflatten(-1, (self.n_freqs, self.k)).sum(-1)


class CCANet(nn.Module):
    """CCA spectrum + time course → linear (see the module docstring).

    Parameters
    ----------
    n_chans, n_times : input shape per example (``erp`` features: ``(batch, n_chans, 1, n_times)``).
    n_outputs : classes (or embedding size).
    sfreq : rate of the input samples, Hz.
    n_freqs : rows per channel (must be 1: the erp kind).
    fmin, fmax, step : the CCA frequency grid, Hz (``fmax`` capped so harmonics stay below 0.45 × rate).
    n_harmonics : harmonics in each reference (fundamental included).
    n_pool : time-course points per channel.
    drop : dropout before the read-out.
    """

    def __init__(self, n_chans: int, n_times: int, n_outputs: int, sfreq: float, n_freqs: int = 1,
                 fmin: float = 5.0, fmax: float = 30.0, step: float = 0.25, n_harmonics: int = 2, n_pool: int = 24,
                 drop: float = 0.25):
        super().__init__()
        if n_freqs != 1:
            raise ValueError(f"CCANet takes erp features (1 row per channel); got {n_freqs} rows")
        top = min(fmax, 0.45 * sfreq / n_harmonics)
        freqs = np.arange(fmin, top + 1e-9, step)
        if len(freqs) == 0:
            raise ValueError(f"no CCA frequency between {fmin} and {top:g} Hz at {sfreq:g} Hz")
        self.cca = CCASpectrum(n_times, sfreq, freqs, n_harmonics)
        self.pool = nn.AdaptiveAvgPool1d(min(n_pool, n_times))
        n_features = len(freqs) + n_chans * min(n_pool, n_times)
        self.norm = nn.BatchNorm1d(n_features, affine=False)
        # which branches the read-out sees (1: kept), chosen by inner cross-validation in init_readout
        self.register_buffer("keep", torch.ones(n_features))
        self.n_cca = len(freqs)
        self.drop = nn.Dropout(drop)
        self.out = nn.Linear(n_features, n_outputs)
        self.n_chans, self.n_times, self.n_outputs = n_chans, n_times, n_outputs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_chans, 1, n_times)`` → ``(batch, n_features)`` before normalisation."""
        x = x[:, :, 0, :]
        x = x / (x.flatten(1).std(-1)[:, None, None] + 1e-6)  # per-trial scale: sessions and heads differ in gain
        return torch.cat([torch.log(self.cca(x) + 1e-4), self.pool(x).flatten(1)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_chans, 1, n_times)`` → ``(batch, n_outputs)`` logits."""
        return self.out(self.drop(self.norm(self.features(x)) * self.keep))

    @torch.no_grad()
    def init_readout(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Set the normalisation statistics from training inputs ``x``, the branches kept (CCA spectrum,
        time course or both: the best 5-fold cross-validated log-loss of temperature-calibrated shrinkage
        LDA on these training trials only) and the read-out to shrinkage LDA's (scikit-learn, Ledoit-Wolf)
        on the kept features, scaled by that branch's temperature; classes absent from ``labels`` keep a
        low bias.

        Why calibrated: a high-dimensional LDA is overconfident, so its raw log-loss can rank a branch
        that classifies better (the 1-kHz phantom's time course: inner accuracy 0.23 vs 0.14, chance 0.125)
        below one near chance, and its raw weights start gradient training from a large loss."""
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        h = torch.cat([self.features(torch.as_tensor(x[i : i + 256], dtype=torch.float32))
                       for i in range(0, len(x), 256)]).double()
        mean, var = h.mean(0), h.var(0, unbiased=False)
        self.norm.running_mean.copy_(mean.float())
        self.norm.running_var.copy_(var.float())
        z = ((h - mean) / torch.sqrt(var + self.norm.eps)).numpy()
        classes = np.unique(labels)
        if len(classes) < 2 or len(labels) <= len(classes) or self.out.out_features < int(classes.max()) + 1:
            return
        target = np.searchsorted(classes, labels)
        n_splits = min(5, int(np.bincount(labels)[classes].min()))
        masks = {"both": np.ones(z.shape[1], bool), "cca": np.arange(z.shape[1]) < self.n_cca,
                 "time": np.arange(z.shape[1]) >= self.n_cca}
        smallest_fold = len(labels) - -(-len(labels) // max(n_splits, 1))  # training trials of the largest test fold
        name, temperature = "both", 1.0
        if n_splits >= 2 and smallest_fold > len(classes):  # LDA needs more trials than classes in every fold
            cv = StratifiedKFold(n_splits, shuffle=True, random_state=0)
            fits = {}
            for branch, m in masks.items():
                d = cross_val_predict(LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"), z[:, m], labels,
                                      cv=cv, method="decision_function")
                fits[branch] = calibrate(as_logits(d), target)  # (log-loss, temperature)
            name = min(fits, key=lambda b: fits[b][0])
            temperature = fits[name][1]
        keep = masks[name]
        self.keep.copy_(torch.as_tensor(keep, dtype=torch.float32))
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(z[:, keep], labels)
        coef = np.zeros((lda.coef_.shape[0], z.shape[1]))
        coef[:, keep], bias = lda.coef_, lda.intercept_
        if len(classes) == 2:  # sklearn keeps one discriminant for two classes: logits (-w/2, +w/2)
            coef, bias = np.stack([-coef[0] / 2, coef[0] / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        weight = np.zeros((self.out.out_features, z.shape[1]))
        b = np.full(self.out.out_features, -30.0)
        weight[classes], b[classes] = coef * temperature, bias * temperature
        self.out.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        self.out.bias.copy_(torch.as_tensor(b, dtype=torch.float32))


def as_logits(decision: np.ndarray) -> np.ndarray:
    """LDA ``decision_function`` output → ``(n, n_classes)`` logits (two classes: ``(-d/2, +d/2)``)."""
    return np.stack([-decision / 2, decision / 2], 1) if decision.ndim == 1 else decision


def calibrate(logits: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Mean log-loss of ``softmax(t * logits)`` at the temperature ``t`` in [1e-3, 10] that minimises it,
    and that ``t`` (temperature scaling, Guo et al. 2017). ``logits``: ``(n, k)``; ``target``: ``(n,)`` in 0..k-1."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    def loss(log_t: float) -> float:
        return float(-log_softmax(np.exp(log_t) * logits, axis=1)[np.arange(len(target)), target].mean())

    best = minimize_scalar(loss, bounds=(np.log(1e-3), np.log(10.0)), method="bounded")
    return float(best.fun), float(np.exp(best.x))
