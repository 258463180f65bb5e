"""What a started live session may run beside its loop: a LabRecorder recording and a model file watch
(``LiveConfig.record_dir``, ``LiveConfig.watch_model``), for the headless command and the viewer's
decoding process alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SessionExtras:
    """Started by :meth:`start` after ``session.start()``, stopped by :meth:`stop` after the loop."""

    recorder: object | None = None
    watcher: object | None = None

    @classmethod
    def start(cls, session, providers: str = "auto") -> SessionExtras:
        cfg = session.config
        extras = cls()
        if cfg.record_dir is not None:
            from bci_stream.recording.labrecorder import attach_recorder

            extras.recorder = attach_recorder(session, cfg.record_dir)
        if cfg.watch_model is not None:
            from bci_stream.live.hotswap import ModelWatcher

            extras.watcher = ModelWatcher(cfg.watch_model, session, providers=providers).start()
        return extras

    def stop(self) -> str:
        """Stop both; the recording's closing line ("" without one)."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.recorder is not None:
            return self.recorder.stop().line()
        return ""
