"""The listening phantom: its evoked responses follow stimuli presented elsewhere, at their samples."""

from __future__ import annotations

import time

import numpy as np
import pylsl
from conftest import unique_name

from bci_stream.sources.listen import listening_pusher, phantom_stimulus
from bci_stream.sources.phantom import Phantom
from bci_stream.sources.simulate import OutletConfig


def test_a_marker_names_the_phantom_class_and_image(tiny_phantom_config):
    ph = Phantom(tiny_phantom_config)
    assert phantom_stimulus(ph, f"{ph.class_ids[3]}_7") == (3, 7)
    assert phantom_stimulus(ph, f"{ph.class_names[2]}_12") == (2, 12 % tiny_phantom_config.images_per_class)
    label, image = phantom_stimulus(ph, "cat_img-01")  # a folder the phantom does not know: a fixed class
    assert phantom_stimulus(ph, "cat_img-01") == (label, image) and 0 <= label < tiny_phantom_config.n_classes


def test_a_stimulus_adds_its_class_response_from_its_onset_sample(tiny_phantom_config):
    ph = Phantom(tiny_phantom_config)
    quiet, stimulated = (ph.new_stream(subject=1) for _ in range(2))
    quiet.listen = stimulated.listen = True
    stimulated.stimulate(1230, 2, 4)
    a, _ = quiet.read(2000)
    b, markers = stimulated.read(2000)
    diff = b - a  # the same noise draws: what the stimulus added
    assert markers == [(1230, f"{ph.class_ids[2]}_4", 2)]
    assert np.abs(diff[:, :1230]).max() < 1e-3
    evoked = diff[:, 1230:1230 + ph.n_evoked]
    fits = [np.corrcoef(evoked.ravel(), ph.evoked_at(ph.loadings[k], 1.0, 0.0).ravel())[0, 1]
            for k in range(tiny_phantom_config.n_classes)]
    assert int(np.argmax(fits)) == 2


def test_the_listening_pusher_responds_at_the_sample_of_each_marker(tiny_phantom_config):
    eeg, stim = unique_name("eeg"), unique_name("stim")
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(stim, "Markers", 1, 0, pylsl.cf_string, stim))
    ph = Phantom(tiny_phantom_config)
    pusher = listening_pusher(tiny_phantom_config, OutletConfig(name=eeg, source_id=eeg), stim).start()
    try:
        for _ in range(100):  # the listener finds the marker stream in the background
            if pusher.listener.inlet is not None:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        sent = []
        for k in range(3):
            t = pylsl.local_clock()
            outlet.push_sample([f"{ph.class_ids[k]}_{k}"], t)
            sent.append(t)
            time.sleep(0.15)
        time.sleep(0.3)
    finally:
        pusher.close()
    assert [m for _, m in pusher.stimuli] == [f"{ph.class_ids[k]}_{k}" for k in range(3)]
    rate = tiny_phantom_config.sfreq
    expected = [round((t - pusher.t0_lsl) * rate - 1) for t in sent]  # the sample stamped nearest each marker
    assert [o for o, _ in pusher.stimuli] == expected
