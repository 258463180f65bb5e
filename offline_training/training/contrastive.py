"""The embedding objective: an EEG encoder (any student with ``n_outputs = dim``) aligned with image
embeddings by a CLIP-style symmetric InfoNCE loss with a learnable temperature, optionally plus MSE.

Loss over a batch of ``B`` trials with predictions ``z`` (normalised) and image embeddings ``e``::

    logits = exp(s) * z @ e.T                      # s: learnable log logit scale, clamped to [0, log 100]
    L = (CE(logits, P) + CE(logits.T, P.T)) / 2 + mse_weight * mean ||z - e||^2

``P`` spreads each row's target over the batch rows showing the same image (several subjects or
repetitions of one picture are positives of each other, not negatives). The scale starts at 1/0.07
and is clamped at 100, as in open_clip (Radford et al. 2021).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOGIT_SCALE_INIT = math.log(1 / 0.07)  # open_clip's init
LOGIT_SCALE_MAX = math.log(100.0)  # open_clip clamps the learnt scale at 100


class EmbeddingStudent(nn.Module):
    """A student whose ``n_outputs`` outputs are an embedding, with the InfoNCE logit scale beside it.

    ``forward`` gives the raw embedding ``(batch, dim)``; export wraps it in
    :class:`offline_training.training.objectives.WithL2Norm`. The logit scale is a parameter (trained, checkpointed).
    """

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student
        self.log_logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    def logit_scale(self) -> torch.Tensor:
        """``exp(s)``, s clamped to ``[0, log 100]``."""
        return self.log_logit_scale.clamp(0.0, LOGIT_SCALE_MAX).exp()


def info_nce(z: torch.Tensor, e: torch.Tensor, scale: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE of normalised predictions ``z`` and targets ``e`` ``(B, D)``; ``groups`` ``(B,)``:
    image index per row (rows of one image are all positives), ``None``: row ``i`` matches column ``i`` only."""
    logits = scale * z @ e.T
    if groups is None:
        target = torch.eye(len(z), device=z.device, dtype=logits.dtype)
    else:
        target = (groups[:, None] == groups[None, :]).to(logits.dtype)
    target = target / target.sum(1, keepdim=True)  # symmetric: the column sums equal the row sums
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def embedding_loss(outputs: torch.Tensor, e: torch.Tensor, scale: torch.Tensor, groups: torch.Tensor | None,
                   mse_weight: float = 0.0) -> torch.Tensor:
    """:func:`info_nce` of the normalised ``outputs`` plus ``mse_weight`` times their mean squared distance to ``e``."""
    z = F.normalize(outputs.float(), dim=1)
    loss = info_nce(z, e, scale, groups)
    if mse_weight:
        loss = loss + mse_weight * ((z - e) ** 2).sum(1).mean()
    return loss


@torch.no_grad()
def embed(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Unit embeddings ``(n, dim)`` float32 for normalised inputs ``x``."""
    from offline_training.training.device import to_device

    model.eval()
    device = next(model.parameters()).device
    out = [F.normalize(model(to_device(x[i : i + batch_size], device)).float(), dim=1).cpu().numpy()
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def class_candidates(targets: np.ndarray, labels: np.ndarray, image_groups: np.ndarray,
                     classes: np.ndarray) -> np.ndarray:
    """Mean image embedding of each of ``classes`` (each distinct image counted once), ``(k, dim)``, not
    renormalised. ``targets`` ``(n, dim)`` per trial, ``labels`` and ``image_groups`` (image index) per trial."""
    out = []
    for k in classes:
        rows = np.flatnonzero(labels == k)
        _, first = np.unique(image_groups[rows], return_index=True)
        out.append(targets[rows[first]].mean(0))
    return np.stack(out).astype(np.float32)


def retrieval_probabilities(z: np.ndarray, candidates: np.ndarray, scale: float) -> np.ndarray:
    """``softmax(scale * cos(z, candidate))`` over candidates, ``(n, k)``."""
    logits = scale * unit_rows(z) @ unit_rows(candidates).T
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def validate_retrieval(model: EmbeddingStudent, x: np.ndarray, targets: np.ndarray, labels: np.ndarray,
                       image_groups: np.ndarray) -> tuple[float, float]:
    """Validation on ``x`` (the validation trials' normalised inputs): retrieval among the validation
    classes' mean embeddings; ``(cross-entropy with the learnt scale, top-1)``."""
    classes = np.unique(labels)
    candidates = class_candidates(targets, labels, image_groups, classes)
    probs = retrieval_probabilities(embed(model, x), candidates, model.logit_scale().item())
    truth = np.searchsorted(classes, labels)
    loss = float(-np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-8, None)).mean())
    return loss, float((probs.argmax(1) == truth).mean())
