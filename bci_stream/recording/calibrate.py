"""A personal decoder in one sitting: present → record → train → hot-swap → score live.

Steps (:func:`calibrate`):

1. The presenter (``bci-stream present`` in a child process; or a lab's own, e.g. PsychoPy, whose
   marker stream is named) shows ``trials`` pictures; LabRecorder records the EEG and markers (and
   the running decoder's predictions) into ``OUT/calibration.xdf``.
2. ``bci-train run`` trains on that file in a child process (``--data xdf:…,mapping=OUT/mapping.tsv``,
   the by-image split: its test images were never trained on), exports ``OUT/model.onnx`` and writes
   its report with CIs.
3. The new model is swapped into the running decoder (:meth:`LiveSession.swap_decoder`: the card's
   contract re-checked, no sample lost, the outlet kept, ``model_swapped`` in the JSONL log), or the
   decoder starts with it when there was none.
4. ``test_trials`` more pictures of the *held-out* images (the offline test split's) are shown in
   event mode; the live top-1 accuracy against them (Wilson 95 % CI) is compared with the offline
   test accuracy's CI: the same images, the same model, offline and live.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CalibrateConfig:
    """What :func:`calibrate` does (times in seconds; the presenter's own settings are ``present_args``).

    Attributes
    ----------
    images : the stimulus folder (``DIR/<class>/*.jpg``).
    out : the calibration folder (recording, mapping, training run, model, JSONL log, report).
    trials, test_trials : pictures shown before training, and after the swap (scored live).
    model : a running decoder's model before the personal one (None: the decoder starts after training).
    stream : EEG stream name (None: the first of type EEG that fits).
    markers_name : the presenter's marker stream name.
    external_markers : a lab's own presenter's marker stream (no presenter is started then).
    present_args : extra ``bci-stream present`` options (timings, --fullscreen, --photodiode).
    train_args : extra ``bci-train run`` options (e.g. ``--device cuda``, ``--epochs 30``).
    providers : ONNX Runtime providers of the live decoder.
    seed : the presenter's order (the test phase uses ``seed + 1``).
    """

    images: Path
    out: Path
    trials: int = 400
    test_trials: int = 200
    model: str | None = None
    stream: str | None = None
    markers_name: str = "bci-stream-stimuli"
    external_markers: str | None = None
    present_args: tuple[str, ...] = ()
    train_args: tuple[str, ...] = ("--epochs", "25", "--patience", "6", "--no-controls", "--no-baselines")
    providers: str = "cpu"
    seed: int = 0
    tmax: float = 0.5
    resolve_timeout: float = 20.0


@dataclass
class CalibrationResult:
    xdf: Path
    model: Path
    offline: dict  # bci-train's metrics.json (top1, top1_ci, n, split)
    live: dict  # RunningAccuracy.summary() over the test phase
    swapped: bool
    lost_samples: int | None
    seconds: dict = field(default_factory=dict)  # phase -> wall seconds

    @property
    def within_ci(self) -> bool:
        lo, hi = self.offline["top1_ci"]
        return self.live.get("n", 0) > 0 and lo <= self.live["top1"] <= hi

    def lines(self) -> list[str]:
        o, lv = self.offline, self.live
        lo, hi = o["top1_ci"]
        llo, lhi = lv.get("top1_ci", (float("nan"), float("nan")))
        return [f"offline: test split '{o['split']}', top-1 {o['top1']:.3f} "
                f"[95 % CI {lo:.3f}, {hi:.3f}], n={o['n']}",
                f"live: {lv.get('n', 0)} held-out stimuli after the {'swap' if self.swapped else 'start'}, top-1 "
                f"{lv.get('top1', float('nan')):.3f} [95 % CI {llo:.3f}, {lhi:.3f}] -> "
                f"{'within' if self.within_ci else 'OUTSIDE'} the offline CI",
                f"samples lost over the session (counter): {self.lost_samples}",
                "seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items())]


class Presenter:
    """``bci-stream present`` in a child process, in two phases on one marker outlet: ``first``
    pictures, then (after :meth:`next_phase`) ``then`` more with the next seed."""

    def __init__(self, config: CalibrateConfig):
        c = config
        cmd = [sys.executable, "-m", "bci_stream.cli", "present", "--images", str(c.images), "--trials", str(c.trials),
               "--more", str(c.test_trials), "--seed", str(c.seed), "--name", c.markers_name,
               "--lead-in", "4", *c.present_args]  # the lead-in: the decoder and the recorder connect meanwhile
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ))
        self.phases_done = 0  # "presented N pictures" lines seen
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if line.startswith("presented "):
                self.phases_done += 1

    def next_phase(self, image_ids: list[str] | None = None) -> None:
        """Start the second phase, showing only ``image_ids`` (None: every image)."""
        self.proc.stdin.write(b"go " + json.dumps(image_ids).encode() + b"\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _count_until(listener, n: int, presenter: Presenter | None, phase_index: int, state, phase: str,
                 stop: threading.Event) -> int:
    """Count markers (progress in ``state``) until our presenter says phase ``phase_index`` ended (or
    exited), or, with a lab's own presenter, until ``n`` markers came."""
    done = 0
    while not stop.is_set():
        done += len(listener.pull())
        state.update(calibration={"phase": phase, "done": done, "total": n})
        if presenter is None and done >= n:
            break
        if presenter is not None and (presenter.phases_done > phase_index or presenter.proc.poll() is not None):
            if presenter.phases_done <= phase_index:
                raise RuntimeError(f"the presenter ended early (exit {presenter.proc.returncode}): "
                                   f"{presenter.lines[-1] if presenter.lines else 'no output'}")
            break
        time.sleep(0.05)
    return done


def _train(config: CalibrateConfig, xdf: Path, mapping: Path, run_dir: Path, model: Path) -> dict:
    """``bci-train run`` on the calibration in a child process; its metrics.json."""
    data = f"xdf:{xdf},mapping={mapping},tmin=0,tmax={config.tmax:g}"
    cmd = [sys.executable, "-m", "offline_training.cli", "run", "--data", data, "--out", str(run_dir),
           "--split", "by-image", "--export", str(model), *config.train_args]
    with open(run_dir.parent / "train.log", "wb") as logf:
        code = subprocess.call(cmd, stdout=logf, stderr=subprocess.STDOUT, env=dict(os.environ))
    if code != 0:
        tail = (run_dir.parent / "train.log").read_text(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"training failed (exit {code}): {tail[0] if tail else '?'}; see {run_dir.parent / 'train.log'}")
    return json.loads((run_dir / "metrics.json").read_text())


def calibrate(config: CalibrateConfig, state=None, say=print) -> CalibrationResult:
    """Run the whole sitting (see the module docstring); returns the figures."""
    from bci_stream.live.config import LiveConfig
    from bci_stream.live.decoder import Decoder
    from bci_stream.live.state import SharedState
    from bci_stream.recording.labrecorder import Recorder
    from bci_stream.sources.listen import MarkerListener

    # 1. inputs checked before anything starts
    c = config
    out = Path(c.out)
    out.mkdir(parents=True, exist_ok=True)
    mapping = _write_mapping(c, out / "mapping.tsv")
    state, stop, seconds = state or SharedState(), threading.Event(), {}
    t_start = time.monotonic()
    markers_name = c.external_markers or c.markers_name
    presenter = None if c.external_markers else Presenter(c)
    listener = MarkerListener(markers_name)
    live = LiveConfig(stream=c.stream, markers=markers_name, mode="event", resolve_timeout=c.resolve_timeout,
                      log_path=out / "session.jsonl")
    session, thread, recorder = None, None, None
    try:
        # 2. the decoder (if one runs already) and the recording
        session, thread, ids = _start_decoder(c, live, state, listener)
        recorder = Recorder(out / "calibration.xdf", ids,
                            on_error=lambda m: state.update(message=m[:200])).start()
        recorder.on_status = lambda st: state.update(recording=dataclasses.asdict(st))
        say(f"recording {len(ids)} streams to {recorder.path}; presenting {c.trials} pictures", flush=True)
        # 3. calibration trials
        t = time.monotonic()
        shown = _present_and_record(c, recorder, listener, presenter, state, stop, say)
        seconds["present+record"] = time.monotonic() - t
        # 4. train in a child process
        t = time.monotonic()
        state.update(calibration={"phase": "training", "done": shown, "total": c.trials})
        model_path = out / "model.onnx"
        offline = _train(c, recorder.path, mapping, out / "run", model_path)
        seconds["train+export"] = time.monotonic() - t
        say(_trained_line(offline, model_path), flush=True)
        # 5. hot-swap (or start)
        swapped = session is not None
        session, thread = _go_live(Decoder(model_path, providers=c.providers), session, thread, live, state)
        say(f"live with {model_path.name} ({'hot-swapped' if swapped else 'started'})", flush=True)
        # 6. the test phase, scored live
        t = time.monotonic()
        held_out = _held_out_images(recorder.path, out / "run" / "split.json", c.tmax)
        if presenter is not None:
            presenter.next_phase(held_out)
        _count_until(listener, c.test_trials, presenter, 1, state, "live test", stop)
        time.sleep(c.tmax + 1.0)  # the last stimulus's epoch completes and is decided
        seconds["live test"] = time.monotonic() - t
        live_acc = session.accuracy.summary()
        lost = session.source.lost_samples if session.source.has_counter else None
        seconds["total"] = time.monotonic() - t_start
        result = CalibrationResult(recorder.path, model_path, offline, live_acc, swapped, lost, seconds)
        _write_result(out / "calibration.json", result)
        return result
    finally:
        _close(stop, recorder, session, thread, presenter)


def _write_mapping(c: CalibrateConfig, path: Path) -> Path:
    """The stimulus folder's image -> class table, in the model's class order when there is a model."""
    from bci_stream.contract.model_card import ModelCard
    from bci_stream.contract.stimuli import scan_images, write_mapping

    stimuli = scan_images(c.images)  # the folder first: its problems are said before the model's
    order = ModelCard.from_onnx(c.model).class_ids if c.model else None
    return write_mapping(stimuli, path, class_order=order)


def _close(stop: threading.Event, recorder, session, thread, presenter) -> None:
    """Stop whatever of the sitting was started (None: never started), in order."""
    stop.set()
    if recorder is not None:
        recorder.stop()
    if session is not None:
        session.stop()
    if thread is not None:
        thread.join(timeout=10)
    if presenter is not None:
        presenter.close()


def _present_and_record(c: CalibrateConfig, recorder, listener, presenter, state, stop, say) -> int:
    """The calibration trials, recorded; the number shown. A recorder error ends the sitting."""
    shown = _count_until(listener, c.trials, presenter, 0, state, "calibration", stop)
    time.sleep(c.tmax + 1.0)  # the last epoch's samples reach the recorder
    status = recorder.stop()
    if status.error:
        raise RuntimeError(status.error)
    say(f"{shown} pictures shown; {status.line()}", flush=True)
    return shown


def _trained_line(offline: dict, model_path: Path) -> str:
    lo, hi = offline["top1_ci"]
    return (f"trained: test split '{offline['split']}' top-1 {offline['top1']:.3f} [95 % CI {lo:.3f}, {hi:.3f}] "
            f"(n={offline['n']}, chance {offline['chance_top1']:.3f}); {model_path}")


def _start_decoder(c: CalibrateConfig, live, state, listener) -> tuple:
    """``(session, thread, stream ids to record)``: with a model, its live session decoding on a thread
    (EEG, markers and its predictions recorded); without one, no session (EEG and markers recorded)."""
    from bci_stream.live.session import LiveSpec, build_session
    from bci_stream.recording.labrecorder import stream_query_id

    deadline = time.monotonic() + c.resolve_timeout
    while not listener.pull() and listener.inlet is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the presenter's marker stream is up: the decoder's event mode needs it
    if not c.model:
        if listener.inlet is None:
            raise RuntimeError(f"no marker stream {live.markers!r} within {c.resolve_timeout:g} s")
        return None, None, [stream_query_id(_find_eeg(c)), stream_query_id(listener.inlet.info())]
    session = build_session(LiveSpec(model=c.model, providers=c.providers, live=live), state=state)
    session.start()
    thread = threading.Thread(target=session.run, name="decoder", daemon=True)
    thread.start()
    return session, thread, [stream_query_id(session.source.info), stream_query_id(session.markers.info),
                             session.outlet.source_id]


def _go_live(decoder, session, thread, live, state) -> tuple:
    """``(session, thread)`` decoding with the new ``decoder``: hot-swapped into the running session, or
    a session started for it."""
    from bci_stream.live.session import LiveSession

    if session is not None:
        session.swap_decoder(decoder)
        while session._next_decoder is not None and thread.is_alive():
            time.sleep(0.01)  # applied by the loop between two turns
        return session, thread
    session = LiveSession(decoder, live, state=state)
    session.start()
    thread = threading.Thread(target=session.run, name="decoder", daemon=True)
    thread.start()
    return session, thread


def _write_result(path: Path, result: CalibrationResult) -> None:
    """``calibration.json``: the offline and live figures, the swap, lost samples and timings."""
    path.write_text(json.dumps(
        {"offline": result.offline, "live": result.live, "within_ci": result.within_ci, "swapped": result.swapped,
         "lost_samples": result.lost_samples, "seconds": result.seconds, "xdf": str(result.xdf),
         "model": str(result.model)}, indent=1, default=str))


def _held_out_images(xdf: Path, split_json: Path, tmax: float) -> list[str]:
    """The image ids of the trainer's test split: its trials are the recording's markers that have a
    whole epoch (0..tmax s) inside it, in order (as :func:`offline_training.datasets.recordings.epoch_recordings`
    keeps them: every presented marker is in the mapping)."""
    from bci_stream.io.xdf import read_xdf

    rec = read_xdf(xdf)
    stop = int(round(tmax * rec.sfreq))
    kept = [text for sample, text in rec.events if sample + stop <= rec.n_times]
    test = json.loads(split_json.read_text())["test"]
    return sorted({kept[i] for i in test})


def _find_eeg(c: CalibrateConfig):
    """The EEG stream's info (by name, else the first of type EEG) when no decoder runs yet."""
    import pylsl

    found = pylsl.resolve_byprop("name", c.stream, timeout=c.resolve_timeout) if c.stream else \
        pylsl.resolve_byprop("type", "EEG", timeout=c.resolve_timeout)
    if not found:
        raise RuntimeError(f"no EEG stream {c.stream or '(type EEG)'} within {c.resolve_timeout:g} s")
    return found[0]
