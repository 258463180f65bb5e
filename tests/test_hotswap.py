"""Hot-swapping the model of a running decoder: under load, no sample lost, the outlet kept, each swap
logged; a model that does not fit is refused in one line and the running one stays."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time

import pylsl
import pytest
from conftest import unique_name

from bci_stream.contract.model_card import ModelCard
from bci_stream.live.config import LiveConfig
from bci_stream.live.decoder import Decoder
from bci_stream.live.hotswap import ModelWatcher, SwapRefused
from bci_stream.live.session import LiveSession
from bci_stream.sources.simulate import OutletConfig, phantom_pusher


def _wait(cond, seconds=5.0):
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def test_swaps_under_load_lose_no_sample_and_keep_the_outlet(tiny_model, tiny_phantom_config, stream_name, tmp_path):
    copy = tmp_path / "personal.onnx"
    shutil.copy(tiny_model, copy)
    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name, counter=True),
                            isi=0.3).start()
    out_name = unique_name("pred")
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=stream_name, log_path=tmp_path / "swap.jsonl", outlet_name=out_name))
    try:
        session.start()
        outlet = session.outlet
        inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", out_name, timeout=5)[0])
        inlet.open_stream(timeout=5)
        thread = threading.Thread(target=session.run, daemon=True)
        thread.start()
        models = [copy, tiny_model] * 3
        for path in models:  # continuous decisions every hop (20 ms) while the models change
            assert _wait(lambda: session.state.n_decisions > 0)
            before = session.state.n_decisions
            session.swap_decoder(Decoder(path, providers="cpu"))
            assert _wait(lambda p=path, n=before: session.decoder.model_path == p and session.state.n_decisions > n + 5)
        watcher = ModelWatcher(tmp_path / "watched.onnx", session, providers="cpu", every=0.05, settle=0.05).start()
        shutil.copy(copy, tmp_path / "watched.onnx")  # a new file at the watched path is swapped in
        assert _wait(lambda: session.state.model == "watched.onnx", 10)
        watcher.stop()
        received = 0
        for _ in range(20):
            _, stamps = inlet.pull_chunk(timeout=0.1)
            received += len(stamps)
        session.stop()
        thread.join(timeout=10)
    finally:
        pusher.close()
    assert session.outlet is None and outlet is not None  # one outlet for the whole session (closed at the end)
    assert received > 0  # the consumer kept its connection across the swaps
    assert session.source.lost_samples == 0  # the SAMPLE_INDEX counter saw every sample
    records = [json.loads(x) for x in (tmp_path / "swap.jsonl").read_text().splitlines()]
    swaps = [r for r in records if r.get("event") == "model_swapped"]
    assert len(swaps) == len(models) + 1 and all(r["lost_samples"] == 0 for r in swaps)
    assert swaps[0]["new"]["path"] == str(copy) and swaps[-1]["new"]["path"].endswith("watched.onnx")
    assert [r for r in records if r.get("event") == "session_end"][0]["lost_samples"] == 0


def test_a_model_that_does_not_fit_is_refused_in_one_line(tiny_model, tmp_path):
    other = tmp_path / "other.onnx"
    shutil.copy(tiny_model, other)
    card = ModelCard.from_onnx(other)
    dataclasses.replace(card, ch_names=list(reversed(card.ch_names)), class_ids=card.class_ids[::-1]).save_into_onnx(other)
    session = LiveSession(Decoder(tiny_model, providers="cpu"), LiveConfig(stream=unique_name("absent")))
    with pytest.raises(SwapRefused) as err:
        session.swap_decoder(Decoder(other, providers="cpu"))
    message = str(err.value)
    assert "\n" not in message and "channels differ" in message and "classes differ" in message
    assert session.decoder.model_path == tiny_model and session._next_decoder is None
