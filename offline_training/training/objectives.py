"""What a student is trained to output, as one strategy object per objective: the loss, the validation,
the module trained and exported, and what the model card says about the output.

- :class:`ClassesObjective`: class probabilities; knowledge distillation (Hinton et al. 2015)::

      L = alpha * CE(student, hard) + (1 - alpha) * T^2 * KL(teacher_T || student_T)

  with ``teacher_T = softmax(log p_teacher / T)`` (hard labels only when there are no soft labels).
- :class:`EmbeddingObjective`: an image embedding; symmetric InfoNCE with a learnable temperature
  (:mod:`offline_training.training.contrastive`), validated by retrieval among the validation classes.

``fit``, ``train_epoch``, ``bci-train evaluate`` and export call the objective instead of branching on
``config.objective``; :func:`objective_for` picks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bci_stream.contract.trials import Trials
from offline_training.training.config import TrainConfig

if TYPE_CHECKING:
    from offline_training.training.fit import Prepared


def tempered(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(log p / T)``: teacher probabilities at temperature T."""
    return F.softmax(torch.log(probabilities.clamp_min(1e-8)) / temperature, dim=1)


def kd_loss(logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None, alpha: float, temperature: float) -> torch.Tensor:
    """``alpha * CE + (1 - alpha) * T^2 * KL(teacher_T || student_T)`` (CE alone when ``soft`` is None)."""
    ce = F.cross_entropy(logits, hard)
    if soft is None:
        return ce
    kl = F.kl_div(F.log_softmax(logits / temperature, dim=1), tempered(soft, temperature), reduction="batchmean")
    return alpha * ce + (1 - alpha) * temperature**2 * kl


class WithSoftmax(nn.Module):
    """The exported graph: normalised features ``(batch, ch, rows, columns)`` → probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


class WithL2Norm(nn.Module):
    """The exported graph of an embedding model: normalised features → unit-length embedding ``(batch, dim)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.model(x), dim=1)


def _window(data: Prepared, rows: np.ndarray) -> np.ndarray:
    """The normalised inputs of ``rows`` on the window the exported model sees (the jitter padding cut)."""
    return data.x[rows][..., data.pad : data.pad + data.width]


class Objective:
    """The interface :func:`~offline_training.training.fit.fit` trains through (see the module docstring)."""

    name = ""
    output_kind = ""

    def __init__(self, config: TrainConfig):
        self.config = config

    def tag(self) -> str:
        """What the progress line adds to the student's name (``+KD``, ``+InfoNCE``)."""
        return ""

    def check(self, trials: Trials) -> None:
        """Raise (one line) before any work when the objective lacks what training on ``trials`` needs."""

    def n_outputs(self, trials: Trials) -> int:
        raise NotImplementedError

    def wrap(self, student: nn.Module) -> nn.Module:
        """The module trained and checkpointed around ``student``."""
        return student

    def bind(self, trials: Trials, labels: np.ndarray, device: torch.device) -> None:
        """Move what the loss reads for every trial (labels, soft labels, targets) to ``device``, once."""

    def loss(self, model: nn.Module, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch ``x`` (trials ``idx``, on the device)."""
        raise NotImplementedError

    def validate(self, model: nn.Module, data: Prepared, labels: np.ndarray, val: np.ndarray) -> tuple[float, float]:
        """``(validation loss, validation top-1)`` on trials ``val``."""
        raise NotImplementedError

    def init_readout(self, model: nn.Module, data: Prepared, labels: np.ndarray, train: np.ndarray) -> bool:
        """Set a closed-form read-out before the epochs where the student has one (True when it did)."""
        return False

    def head(self, model: nn.Module) -> nn.Module:
        """The exported graph around the trained ``model``."""
        raise NotImplementedError

    def card_entries(self, model: nn.Module, info: dict, metrics: dict) -> dict:
        """Model card fields of this output: ``output_kind``, ``teacher``, ``embedding``, evaluation and
        architecture extras."""
        return {"output_kind": self.output_kind, "teacher": info.get("teacher", ""), "embedding": {}, "evaluation": {},
                "architecture": {}}


class ClassesObjective(Objective):
    """Class probabilities trained with the KD loss (:func:`kd_loss`); ``soft_labels`` ``(n_trials,
    n_classes)``: the teacher's, required when ``config.kd``."""

    name, output_kind = "classes", "classes"

    def __init__(self, config: TrainConfig, soft_labels: np.ndarray | None = None):
        super().__init__(config)
        self.soft_labels = soft_labels if config.kd else None

    def check(self, trials: Trials) -> None:
        if self.config.kd and self.soft_labels is None:
            raise ValueError("KD training needs teacher soft labels (run `bci-train teacher`, or kd=False)")

    def tag(self) -> str:
        return "+KD" if self.config.kd else ""

    def n_outputs(self, trials: Trials) -> int:
        return trials.n_classes

    def bind(self, trials: Trials, labels: np.ndarray, device: torch.device) -> None:
        self.y = torch.from_numpy(labels.astype(np.int64)).to(device)
        self.soft = None if self.soft_labels is None else torch.from_numpy(self.soft_labels.astype(np.float32)).to(device)

    def loss(self, model: nn.Module, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        c = self.config
        return kd_loss(model(x), self.y[idx], None if self.soft is None else self.soft[idx], c.alpha, c.temperature)

    def validate(self, model: nn.Module, data: Prepared, labels: np.ndarray, val: np.ndarray) -> tuple[float, float]:
        """Validation loss (NLL of the probabilities) and top-1 on the window the exported model sees."""
        from offline_training.training.fit import predict

        probs = predict(model, _window(data, val))
        loss = F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-8)), torch.from_numpy(labels[val].astype(np.int64)))
        return float(loss), float((probs.argmax(1) == labels[val]).mean())

    def init_readout(self, model: nn.Module, data: Prepared, labels: np.ndarray, train: np.ndarray) -> bool:
        init = getattr(model, "init_readout", None)  # CCANet: the calibrated LDA read-out is epoch 0
        if init is None:
            return False
        init(np.asarray(_window(data, train)), labels[train])
        return True

    def head(self, model: nn.Module) -> nn.Module:
        return WithSoftmax(model)

    def card_entries(self, model: nn.Module, info: dict, metrics: dict) -> dict:
        return {**super().card_entries(model, info, metrics),
                "teacher": info.get("teacher", "") if self.config.kd else "none (hard labels)"}


class EmbeddingObjective(Objective):
    """An image embedding trained with symmetric InfoNCE (+ ``config.mse_weight`` MSE); ``targets``
    ``(n_trials, dim)``: each trial's image embedding, unit rows (required for training)."""

    name, output_kind = "embedding", "embedding"

    def __init__(self, config: TrainConfig, targets: np.ndarray | None = None):
        super().__init__(config)
        self.targets = None if targets is None else np.asarray(targets, np.float32)

    def tag(self) -> str:
        return "+InfoNCE"

    def check(self, trials: Trials) -> None:
        if self.targets is None or len(self.targets) != len(trials):
            raise ValueError("the embedding objective needs one image embedding per trial (targets of shape (n_trials, dim))")

    def n_outputs(self, trials: Trials) -> int:
        self.check(trials)
        return self.targets.shape[1]

    def wrap(self, student: nn.Module) -> nn.Module:
        from offline_training.training.contrastive import EmbeddingStudent

        return EmbeddingStudent(student)

    def bind(self, trials: Trials, labels: np.ndarray, device: torch.device) -> None:
        self.check(trials)
        self.groups = np.unique(trials.image_ids, return_inverse=True)[1].ravel()  # image index per trial
        self.e = torch.from_numpy(self.targets).to(device)
        self.g = torch.from_numpy(self.groups).to(device)

    def loss(self, model: nn.Module, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        from offline_training.training.contrastive import embedding_loss

        return embedding_loss(model(x), self.e[idx], model.logit_scale(), self.g[idx], self.config.mse_weight)

    def validate(self, model: nn.Module, data: Prepared, labels: np.ndarray, val: np.ndarray) -> tuple[float, float]:
        from offline_training.training.contrastive import validate_retrieval

        return validate_retrieval(model, _window(data, val), self.targets[val], labels[val], self.groups[val])

    def head(self, model: nn.Module) -> nn.Module:
        return WithL2Norm(model)

    def card_entries(self, model: nn.Module, info: dict, metrics: dict) -> dict:
        """What the gallery index and the renderer must match, and the retrieval figures' CIs."""
        spec = info["embedding"]
        embedding = {"dim": int(spec["dim"]), "space": spec["space"], "checkpoint_sha256": spec.get("checkpoint_sha256", ""),
                     "normalisation": "l2", "logit_scale": float(model.logit_scale().item())}
        return {"output_kind": self.output_kind, "teacher": info.get("teacher", ""), "embedding": embedding,
                "evaluation": {k: metrics[k] for k in ("top1_ci", "top5_ci") if k in metrics},
                "architecture": {"objective": "embedding", "mse_weight": self.config.mse_weight}}


OBJECTIVE_CLASSES: dict[str, type[Objective]] = {"classes": ClassesObjective, "embedding": EmbeddingObjective}


def objective_for(config: TrainConfig, soft_labels: np.ndarray | None = None,
                  targets: np.ndarray | None = None) -> Objective:
    """The objective ``config.objective`` names, with its training data (``soft_labels`` for classes,
    ``targets`` for embedding; neither is needed to rebuild, test or export a trained model)."""
    if config.objective == "embedding":
        return EmbeddingObjective(config, targets)
    return ClassesObjective(config, soft_labels)
