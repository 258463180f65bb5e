"""The default ``bci-train fit`` student (``TrainConfig.student``) decodes the phantom well above chance,
and CCANet's branch choice is not misled by an overconfident LDA (issue 22 item 15, issue 23 item 3)."""

from __future__ import annotations

import json

import numpy as np
import torch

from offline_training.students.cca_net import CCANet, calibrate
from offline_training.training.config import TrainConfig


def test_default_student_beats_chance_on_a_small_phantom(tmp_path, capsys):
    from offline_training.cli import main

    out = tmp_path / "run"
    rc = main(["fit", "--data", "phantom:subjects=2,classes=4,channels=16", "--threads", "2", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    info = json.loads((out / "run.json").read_text())
    assert info["train_config"]["student"] == TrainConfig().student
    assert metrics["split"] == "by-image" and metrics["n"] >= 40
    assert metrics["top1_p"] < 0.01, metrics  # binomial test against chance on the held-out images
    assert metrics["top1_ci"][0] > metrics["chance_top1"]


def test_temperature_calibration_ranks_by_information_not_by_overconfidence():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, 400)
    useful = rng.normal(size=(400, 4)) + 1.5 * np.eye(4)[target]  # informative scores...
    loud = 30 * useful  # ...made overconfident: raw log-loss far above chance
    flat = rng.normal(size=(400, 4)) * 0.01  # uninformative and near-uniform: raw log-loss about chance
    raw = {k: float(-torch.log_softmax(torch.as_tensor(v), 1)[np.arange(400), target].mean())
           for k, v in (("loud", loud), ("flat", flat))}
    assert raw["loud"] > raw["flat"]  # the choice the uncalibrated log-loss made
    (loud_loss, t_loud), (flat_loss, _) = calibrate(loud, target), calibrate(flat, target)
    assert loud_loss < flat_loss <= np.log(4) + 1e-6 and t_loud < 0.2
    assert np.isclose(calibrate(useful, target)[0], loud_loss, atol=1e-3)  # invariant to the logits' scale


def test_ccanet_keeps_the_time_course_when_only_it_carries_the_class():
    rng = np.random.default_rng(1)
    n, c, t, sfreq = 240, 8, 64, 128.0
    labels = rng.integers(0, 3, n)
    x = rng.normal(size=(n, c, 1, t))
    bump = np.exp(-0.5 * ((np.arange(t) - 30) / 4.0) ** 2)
    for k in range(3):  # a class-specific evoked topography, no oscillation
        x[labels == k, k, 0] += 1.2 * bump
    model = CCANet(c, t, 3, sfreq).eval()
    model.init_readout(x.astype(np.float32), labels)
    assert model.keep[model.n_cca :].all()  # the time course is kept
    with torch.no_grad():
        p = model(torch.as_tensor(x, dtype=torch.float32)).softmax(1).numpy()
    assert (p.argmax(1) == labels).mean() > 0.6
    loss = -np.log(p[np.arange(n), labels]).mean()
    assert loss < np.log(3)  # calibrated read-out: better than the uniform guess on its own training trials
