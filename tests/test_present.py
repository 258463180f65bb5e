"""The presenter: its schedule (seeded, interleaved, blocks), and the window offscreen pushing each
picture's image id on a real LSL marker stream, stamped at its flip."""

from __future__ import annotations

import numpy as np
import pylsl
import pytest
from conftest import unique_name
from stimulus_images import make_image_folder

from bci_stream.contract.stimuli import StimulusError, image_id, scan_images
from bci_stream.present.schedule import PresentConfig, build_schedule


def test_image_ids_keep_the_class_before_the_last_underscore():
    assert image_id("n02106662", "n02106662_3437") == "n02106662_3437"
    assert image_id("cat", "img_01") == "cat_img-01"
    assert image_id("cat", "cat_a_b") == "cat_cat-a-b"


def test_a_folder_with_one_class_is_refused_in_one_line(tmp_path):
    make_image_folder(tmp_path, ["only"], per_class=2)
    with pytest.raises(StimulusError, match="at least two classes"):
        scan_images(tmp_path)


def test_the_schedule_is_seeded_interleaved_and_has_breaks(tmp_path):
    stimuli = scan_images(make_image_folder(tmp_path, ["a", "b", "c"], per_class=4))
    config = PresentConfig(trials=30, seed=5, block_size=10, break_seconds=2.0)
    events = build_schedule(stimuli, config)
    shown = [e for e in events if e.kind == "stimulus"]
    assert len(shown) == 30
    assert [e.stimulus.image_id for e in shown] == [e.stimulus.image_id for e in build_schedule(stimuli, config) if e.kind == "stimulus"]
    assert [e.stimulus.image_id for e in shown] != [e.stimulus.image_id for e in
                                                    build_schedule(stimuli, PresentConfig(trials=30, seed=6)) if e.kind == "stimulus"]
    assert all(x.stimulus.cls != y.stimulus.cls for x, y in zip(shown, shown[1:]))  # never a class twice in a row
    assert sum(e.kind == "break" for e in events) == 2
    # every image once before any twice: 12 images, passes of 12
    assert len({e.stimulus.image_id for e in shown[:12]}) == 12
    gaps = np.diff([e.t for e in shown])
    assert gaps.min() >= config.fixation + config.duration + config.isi - config.isi_jitter - 1e-9
    assert np.ptp(gaps[:9]) > 0  # jittered


def test_the_window_offscreen_pushes_every_image_id_stamped_at_its_flip(tmp_path, qapp):
    from bci_stream.present.window import marker_outlet, run_presenter

    stimuli = scan_images(make_image_folder(tmp_path, ["a", "b"], per_class=3))
    events = build_schedule(stimuli, PresentConfig(trials=8, seed=1, fixation=0.02, duration=0.03, isi=0.02,
                                                   isi_jitter=0.01, lead_in=0.5))
    name = unique_name("stim")
    outlet = marker_outlet(name, name)
    info = pylsl.resolve_byprop("source_id", name, timeout=5)[0]
    inlet = pylsl.StreamInlet(info)
    inlet.open_stream(timeout=5)
    log = run_presenter(events, outlet, photodiode=True, size=(200, 150))
    got, stamps = [], []
    for _ in range(50):
        values, ts = inlet.pull_chunk(timeout=0.1)
        got += [v[0] for v in values]
        stamps += ts
        if len(got) >= 8:
            break
    expected = [e.stimulus.image_id for e in events if e.kind == "stimulus"]
    assert got == expected
    flips = log.stimuli
    assert [f.event.stimulus.image_id for f in flips] == expected
    assert np.allclose(stamps, [f.stamp for f in flips], atol=1e-6)  # the marker carries the flip's stamp
    assert all(f.paint_start <= f.stamp for f in flips)
    assert all(f.stamp >= f.scheduled - 0.001 for f in flips)  # never shown before its time
