"""The Qt viewer, offscreen: it builds, follows shared state, survives renderer failures, saves PNGs."""

import numpy as np
import pylsl
import pytest

from bci_stream.ring_buffer import RingBuffer
from bci_stream.state import RenderedImage, SharedState
from bci_stream.viewer import MainWindow
from bci_stream.viewer.main_window import channel_groups

pytest.importorskip("pytestqt")

CH = ["Fz", "Cz", "Pz", "O1", "Oz", "O2", "PO7", "PO8"]
NAMES = ["sorrel", "parachute", "iron", "anemone fish", "espresso maker", "coffee mug"]


def fake_state_and_ring():
    state = SharedState(class_names=NAMES, stream_status="connected", stream_name="phantom", provider="CPUExecutionProvider",
                        renderer_kind="gallery")
    ring = RingBuffer(len(CH), 4000)
    t0 = pylsl.local_clock() - 3.0
    samples = np.random.default_rng(0).standard_normal((3000, len(CH))).astype(np.float32) * 10
    ring.write(samples, t0 + np.arange(3000) / 1000.0)
    probs = np.array([0.05, 0.5, 0.2, 0.1, 0.1, 0.05])
    state.update(probabilities=probs, top5=[1, 2, 3, 4, 0], features=np.random.rand(len(CH), 21, 23).astype(np.float32),
                 n_decisions=42)
    state.latencies.extend([0.8, 0.9, 1.1, 4.0])
    state.markers.append((t0 + 2.5, "n03888257_3"))
    return state, ring


def test_window_builds_and_follows_state(qtbot, tmp_path):
    state, ring = fake_state_and_ring()
    window = MainWindow(state, CH, 1000.0, ring=ring)
    qtbot.addWidget(window)
    window.refresh()
    status = window.status.text()
    assert "phantom (connected)" in status and "CPUExecutionProvider" in status and "decisions 42" in status
    assert "p50 1.00" in status
    # top-5 bars show the probabilities in order, labelled with class names
    widths = window.bars.opts["width"]
    np.testing.assert_allclose(widths, [0.5, 0.2, 0.1, 0.1, 0.05])
    ticks = window.bars_plot.getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == ["parachute", "iron", "anemone fish", "espresso maker", "sorrel"]
    # traces: one curve per selected channel, ~5 s of data, and the marker drawn
    assert len(window.curves) == len(window.channels) > 0
    x, _ = window.curves[0].getData()
    assert -3.1 < x[0] < -2.9 and abs(x[-1]) < 0.01
    assert [line.label.format for line in window.marker_lines] == ["n03888257_3"]
    named = MainWindow(state, CH, 1000.0, ring=ring, class_ids=["n02389026", "n03888257", "a", "b", "c", "d"])
    qtbot.addWidget(named)
    named.refresh()
    assert [line.label.format for line in named.marker_lines] == ["parachute"]  # markers show class names
    assert window.spec_image.image.shape == (21, 23)
    # a rendered picture appears with its class and age
    state.update(image=RenderedImage(np.full((32, 32, 3), 200, np.uint8), 1, "parachute", pylsl.local_clock(), "gallery", 0.01))
    window.refresh()
    assert not window.image_label.pixmap().isNull() and "parachute" in window.image_caption.text()
    shot = window.save_screenshot(tmp_path / "shot.png")
    assert shot.stat().st_size > 1000


def test_window_survives_renderer_failure_and_empty_state(qtbot):
    state = SharedState(class_names=NAMES)
    window = MainWindow(state, CH, 1000.0, ring=RingBuffer(len(CH), 1000))
    qtbot.addWidget(window)
    window.refresh()  # nothing yet: no crash
    state.update(renderer_error="diffusion renderer failed: CUDA out of memory", renderer_kind="gallery (fallback)")
    window.refresh()
    assert "CUDA out of memory" in window.status.text() and "fallback" in window.status.text()


def test_channel_groups_and_selection(qtbot):
    groups = channel_groups(CH)
    assert groups["occipital/parietal"] == [3, 4, 5, 6, 7]
    state, ring = fake_state_and_ring()
    window = MainWindow(state, CH, 1000.0, ring=ring)
    qtbot.addWidget(window)
    window.group_box.setCurrentText("first 16")
    assert len(window.curves) == len(CH)


def test_live_session_drives_the_viewer(qtbot, tiny_model, tiny_phantom_config, stream_name):
    """The real loop on its own thread, the window polling it: decisions show up in the window."""
    import threading

    from bci_stream.decoder import Decoder
    from bci_stream.live import LiveConfig, LiveSession
    from bci_stream.simulate import OutletConfig, phantom_pusher

    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name)).start()
    session = LiveSession(Decoder(tiny_model, providers="cpu"), LiveConfig(stream=stream_name))
    session.start()
    window = MainWindow(session.state, session.card.ch_names, session.card.sfreq, ring=session.ring, session=session)
    qtbot.addWidget(window)
    runner = threading.Thread(target=session.run, kwargs={"seconds": 3.0})
    runner.start()
    try:
        qtbot.waitUntil(lambda: session.state.n_decisions > 20, timeout=10000)
        window.refresh()
        assert "decisions" in window.status.text() and window.bars.opts["width"].sum() > 0
    finally:
        session.stop()
        runner.join(timeout=5)
        pusher.close()
