"""Replacing the model of a running decoder: the contract check, and a file watch that asks for it.

A swap keeps the inlet, the ring buffer, the preprocessing filters' state and the predictions
outlet: so the new model must read the same stream the same way (channels, rates, unit,
preprocessing, window) and publish the same classes (the outlet's channels). Anything else is a
new session (restart ``bci-stream live``). :meth:`bci_stream.live.session.LiveSession.swap_decoder` applies
the swap between two turns of the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from bci_stream.contract.model_card import ModelCard

log = logging.getLogger(__name__)


class SwapRefused(ValueError):
    """The new model does not fit the running session (the message says what differs)."""


def swap_problems(running: ModelCard, new: ModelCard) -> list[str]:
    """What keeps ``new`` from replacing ``running`` in a live session ([] when it fits)."""
    out = []
    if new.is_embedding or running.is_embedding:
        out.append("embedding models are not hot-swapped (their gallery and outlet differ): restart `live`")
    if list(new.ch_names) != list(running.ch_names):
        diff = sorted(set(new.ch_names) ^ set(running.ch_names))
        out.append(f"channels differ ({diff[:6] if diff else 'same names, another order'})")
    if new.input_sfreq != running.input_sfreq or new.sfreq != running.sfreq:
        out.append(f"sampling rate {new.input_sfreq:g}->{new.sfreq:g} Hz vs the running "
                   f"{running.input_sfreq:g}->{running.sfreq:g} Hz")
    if new.signal_unit != running.signal_unit:
        out.append(f"unit {new.signal_unit} vs the running {running.signal_unit}")
    if new.preprocessing_spec().describe() != running.preprocessing_spec().describe():
        out.append(f"preprocessing '{new.preprocessing_spec().describe()}' vs the running "
                   f"'{running.preprocessing_spec().describe()}'")
    if new.artifacts != running.artifacts:  # the running chain's ASR state would not be the new model's
        out.append("artifact stages (ASR state) differ")
    if (new.window_samples, new.offset_samples) != (running.window_samples, running.offset_samples):
        out.append(f"window {new.window_offset:g}+{new.window_length:g} s vs the running "
                   f"{running.window_offset:g}+{running.window_length:g} s")
    if list(new.class_ids) != list(running.class_ids):
        out.append(f"classes differ ({len(new.class_ids)} vs {len(running.class_ids)}; the predictions outlet's "
                   "channels are the classes)")
    return out


def check_swap(running: ModelCard, new: ModelCard, source: str = "the new model") -> None:
    """Raise :class:`SwapRefused` (one line) unless ``new`` fits the session ``running`` decodes for."""
    problems = swap_problems(running, new)
    if problems:
        raise SwapRefused(f"{source} cannot replace the running model: " + "; ".join(problems) +
                          "; train it on the same stream settings (or restart `bci-stream live` with it)")


class ModelWatcher:
    """Polls ``path`` (an ONNX file); when it changes and has been stable for ``settle`` s, builds
    a :class:`~bci_stream.live.decoder.Decoder` from it on this thread and asks ``session`` to swap it in.
    A model that does not fit is refused (logged, the session's message); the running one stays."""

    def __init__(self, path: str | Path, session, providers: str = "auto", every: float = 0.5, settle: float = 0.5):
        self.path, self.session, self.providers = Path(path), session, providers
        self.every, self.settle = every, settle
        self.refused = ""
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-watch", daemon=True)

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    def start(self) -> ModelWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from bci_stream.live.decoder import Decoder

        while not self._stop.wait(self.every):
            stamp = self._stamp()
            if stamp is None or stamp == self._seen:
                continue
            time.sleep(self.settle)  # a file still being written changes again
            if self._stamp() != stamp:
                continue
            self._seen = stamp
            try:
                decoder = Decoder(self.path, providers=self.providers, incremental=self.session.config.incremental)
                self.session.swap_decoder(decoder)
                self.refused = ""
            except Exception as err:  # a half-written or foreign file: keep decoding with the running model
                self.refused = str(err)
                log.warning("model %s not swapped in: %s", self.path, err)
                self.session.state.update(message=f"model not swapped: {err}")
