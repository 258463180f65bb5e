"""The Qt viewer, offscreen: it builds, follows shared state, survives renderer failures, saves PNGs."""

import numpy as np
import pylsl
import pytest
from conftest import unique_name

from bci_stream.live.ring_buffer import RingBuffer
from bci_stream.live.state import RenderedImage, SharedState
from bci_stream.viewer.main_window import MainWindow, channel_groups

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
    # traces: one curve per selected channel, ~3 s of data (min/max per bin: no aliasing), the marker
    # drawn as a short code (labels never overlap; the event list names it)
    assert len(window.curves) == len(window.channels) > 0
    x, _ = window.curves[0].getData()
    assert -3.1 < x[0] < -2.9 and abs(x[-1]) < 0.01 and len(x) <= 1000
    assert [line.label.format for line in window.marker_lines] == ["1"]
    named = MainWindow(state, CH, 1000.0, ring=ring, class_ids=["n02389026", "n03888257", "a", "b", "c", "d"])
    qtbot.addWidget(named)
    assert named.marker_label("n03888257_3") == "parachute"  # image ids read as class names
    assert window.spec_image.image.shape == (21, 23)
    # the bars carry their values and the axis is not 0-1 (values of 0.05 stay visible)
    assert [item.textItem.toPlainText() for item in window.bar_values] == ["0.50", "0.20", "0.10", "0.10", "0.05"]
    assert window.bars_plot.getViewBox().viewRange()[0][1] < 1.0
    assert "channels: all ok" in status
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

    from bci_stream.live.decoder import Decoder
    from bci_stream.live.session import LiveConfig, LiveSession
    from bci_stream.sources.simulate import OutletConfig, phantom_pusher

    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name)).start()
    session = LiveSession(Decoder(tiny_model, providers="cpu"), LiveConfig(stream=stream_name))
    session.start()
    window = MainWindow(session.state, session.card.ch_names, session.card.sfreq, ring=session.ring, session=session)
    qtbot.addWidget(window)
    runner = threading.Thread(target=session.run, kwargs={"seconds": 3.0})
    runner.start()
    try:
        qtbot.waitUntil(lambda: session.state.n_decisions > 20, timeout=10000)
        session.stop()  # the figures stand still: the status line must show these
        runner.join(timeout=10)
        window.refresh()
        text, n = window.status.text(), session.state.n_decisions
        assert f"decisions {n} (withheld {session.state.n_withheld})" in text and n > 20, text
        p50, p99 = session.state.latency_percentiles()
        assert f"latency p50 {p50:.2f} / p99 {p99:.2f} ms" in text and f"stream: {stream_name}" in text, text
        assert window.bars.opts["width"].sum() > 0
    finally:
        session.stop()
        runner.join(timeout=5)
        pusher.close()


def test_viewer_follows_a_decoding_process(qtbot, tiny_model, tiny_phantom_config, stream_name, tmp_path, monkeypatch):
    """bci-stream live's layout: decoding in a child process, the window here mirroring it and
    sending it commands (channels, recording, renderer, stop)."""
    from bci_stream.live.session import LiveConfig, LiveSpec
    from bci_stream.render import RenderConfig
    from bci_stream.sources.simulate import OutletConfig, phantom_pusher
    from bci_stream.viewer.decoding_process import DecodingProcess

    monkeypatch.chdir(tmp_path)  # the recording lands here
    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name), isi=0.5).start()
    decoding = DecodingProcess(LiveSpec(model=str(tiny_model), providers="cpu", live=LiveConfig(stream=stream_name),
                                        render=RenderConfig(kind="gallery", size=32)))
    try:
        assert decoding.process.is_alive() and decoding.info["stream"] == stream_name
        assert decoding.info["qt_modules"] == [], "the decoding process imported Qt"
        card = decoding.card
        window = MainWindow(decoding.state, card.ch_names, card.sfreq, traces=decoding.traces, session=decoding,
                            renderer_factory=decoding.switch_renderer)
        qtbot.addWidget(window)
        qtbot.waitUntil(lambda: decoding.state.snapshot()["n_decisions"] > 10, timeout=30000)
        qtbot.waitUntil(lambda: decoding.traces.view(None, None)[2] is not None, timeout=5000)
        window.refresh()
        x, y = window.curves[0].getData()
        assert len(window.curves) == len(window.channels) and x is not None and len(x) > 100
        assert "channels: all ok" in window.status.text()  # health computed in the decoding process
        assert f"{stream_name} (connected)" in window.status.text()
        assert window.spec_image.image.shape == (card.spectrogram.n_freqs(), card.feature_shape()[2])
        qtbot.waitUntil(lambda: decoding.state.snapshot()["image"] is not None, timeout=10000)

        window._toggle_recording(True)
        qtbot.waitUntil(lambda: any(tmp_path.glob("bci-stream-*.jsonl")), timeout=5000)
        log_file = next(tmp_path.glob("bci-stream-*.jsonl"))
        qtbot.waitUntil(lambda: log_file.read_text().count("probabilities") > 5, timeout=10000)
        window._toggle_recording(False)

        window._pick_renderer("none")
        qtbot.waitUntil(lambda: decoding.state.snapshot()["renderer_kind"] == "none", timeout=10000)
        window.close()  # closing the window stops the decoding process
        summary = decoding.join()
        assert summary["n_decisions"] > 10 and summary["lost_samples"] == 0
        assert not decoding.process.is_alive()
    finally:
        decoding.stop()
        decoding.join()
        pusher.close()


def test_decoding_process_reports_why_it_cannot_start(tiny_model):
    from bci_stream.live.session import LiveConfig, LiveSpec
    from bci_stream.viewer.decoding_process import DecodingProcess

    with pytest.raises(RuntimeError, match="no LSL stream named"):
        DecodingProcess(LiveSpec(model=str(tiny_model), providers="cpu",
                                 live=LiveConfig(stream=unique_name("absent"), resolve_timeout=0.5)))


def test_viewer_marks_bad_channels_scales_and_filters(qtbot):
    state, ring = fake_state_and_ring()
    t0 = pylsl.local_clock()
    block = np.random.default_rng(1).standard_normal((1000, len(CH))).astype(np.float32) * 10
    block[:, CH.index("O1")] = 3.0  # flat
    block[:, CH.index("Oz")] *= 30  # noisy
    block[:, CH.index("Fz")] = 8000.0  # railed
    ring.write(block, t0 + np.arange(1000) / 1000.0)
    window = MainWindow(state, CH, 1000.0, ring=ring)
    qtbot.addWidget(window)
    window.group_box.setCurrentText("first 16")
    window.refresh()
    status = window.status.text()
    assert "1 flat (O1)" in status and "1 noisy (Oz)" in status and "1 railed (Fz)" in status
    window.scale_box.setCurrentText("200 µV")
    window.filter_box.setCurrentText("high-pass 1 Hz + notch 50 Hz")
    window.refresh()
    assert window.scale_text.textItem.toPlainText() == "200 µV"
    assert "high-pass 1 Hz, notch 50 Hz" in window.traces.getPlotItem().titleLabel.text


def test_event_mode_accuracy_in_the_viewer_equals_the_jsonl(qtbot, tiny_model, tiny_phantom_config, stream_name,
                                                            tmp_path):
    """The figures the window shows are the session's own, the same that the JSONL log ends with."""
    import json
    import threading

    from bci_stream.live.decoder import Decoder
    from bci_stream.live.session import LiveConfig, LiveSession
    from bci_stream.sources.simulate import OutletConfig, phantom_pusher
    from bci_stream.viewer.main_window import accuracy_text

    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name), isi=0.3)
    log = tmp_path / "event.jsonl"
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=stream_name, mode="event", log_path=log))
    session.start()
    window = MainWindow(session.state, session.card.ch_names, session.card.sfreq, ring=session.ring, session=session)
    qtbot.addWidget(window)
    runner = threading.Thread(target=session.run, kwargs={"seconds": 4.0})
    runner.start()
    pusher.start()
    runner.join()
    pusher.close()
    window.refresh()
    end = [json.loads(line) for line in log.read_text().splitlines()][-1]
    scored = [json.loads(line) for line in log.read_text().splitlines() if '"hit"' in line]
    assert end["event"] == "session_end" and end["event_accuracy"]["n"] == len(scored) >= 8
    assert end["event_accuracy"]["top1"] == sum(r["hit"] for r in scored) / len(scored)
    assert window.accuracy_label.text() == accuracy_text(end["event_accuracy"])
    assert window.event_list.count() == len(scored)


def shown_window(qtbot) -> tuple[SharedState, MainWindow]:
    """A viewer of a fake state, shown (exposed) so its labels really paint."""
    state, ring = fake_state_and_ring()
    window = MainWindow(state, CH, 1000.0, ring=ring)
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    return state, window


def test_a_new_picture_is_noted_once_when_first_painted_with_the_stimulus_it_answers(qtbot):
    """The stimulus → picture timing (tools/bench_e2e.py) reads ``MainWindow.painted``: each new
    picture once, after its paint, carrying its decision's stamp and marker."""
    state, window = shown_window(qtbot)
    t = pylsl.local_clock()
    picture = RenderedImage(np.full((32, 32, 3), 90, np.uint8), 2, "iron", t, "gallery", 0.002,
                            t_decision=t - 0.003, marker="n03584829_7", t_marker=t - 0.463)
    state.update(image=picture)
    window.refresh()
    qtbot.waitUntil(lambda: len(window.painted) == 1, timeout=5000)
    window.refresh()  # the same picture again: not noted twice
    window.image_label.update()
    qtbot.wait(100)
    assert len(window.painted) == 1
    shown, t_painted = window.painted[0]
    assert shown is picture and shown.marker == "n03584829_7" and t_painted >= t


def test_a_frame_shows_the_newest_picture_and_never_goes_back_to_its_snapshot_s(qtbot, monkeypatch):
    """A picture that arrives while a frame is being drawn (here: during the traces) is painted at once,
    and the end of that frame does not put back the older picture its snapshot held."""
    state, window = shown_window(qtbot)
    t = pylsl.local_clock()
    old, new = (RenderedImage(np.full((32, 32, 3), v, np.uint8), k, name, t + k, "gallery", 0.002, t_marker=t + k - 0.46)
                for k, (v, name) in enumerate(((40, "iron"), (220, "dog"))))
    state.update(image=old)
    window.refresh()
    qtbot.waitUntil(lambda: len(window.painted) == 1, timeout=5000)
    traces = window._refresh_traces

    def traces_then_a_new_picture(snap):
        traces(snap)
        state.image = new  # arrives mid-frame (the signal waits for the frame; the frame checks itself)

    monkeypatch.setattr(window, "_refresh_traces", traces_then_a_new_picture)
    window.refresh()
    qtbot.waitUntil(lambda: len(window.painted) == 2, timeout=5000)
    assert [shown for shown, _ in window.painted] == [old, new]
    assert window.image_caption.text().startswith("dog")
