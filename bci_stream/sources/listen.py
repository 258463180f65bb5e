"""A phantom subject that watches the screen: its evoked responses follow the stimuli someone else
presents (``bci-stream simulate --listen MARKERS``), so present → record → train → decode runs
end to end without a person.

Each marker on the stream ``MARKERS`` (an image id, :mod:`bci_stream.contract.stimuli`) becomes a stimulus of
the phantom at the EEG sample its LSL time falls on: class = the marker's class part when it is one
of the phantom's class ids or names, else a fixed class chosen by CRC-32 of it; image = the image
part's number (or its CRC-32) modulo the phantom's images per class. With ``--semantic`` the
response follows that image's embedding. The phantom's own stimulus schedule is off and it publishes
no markers of its own: the presenter's are the truth.
"""

from __future__ import annotations

import logging

import pylsl

from bci_stream.contract.stimuli import class_of_image_id, stable_index
from bci_stream.sources.phantom import LIVE_SESSION, Phantom, PhantomConfig
from bci_stream.sources.simulate import OutletConfig, PacedPusher

log = logging.getLogger(__name__)


def phantom_stimulus(phantom: Phantom, marker: str) -> tuple[int, int]:
    """``(class index, image index)`` the phantom shows for ``marker``."""
    c = phantom.config
    cls, rest = class_of_image_id(marker)
    if cls in phantom.class_ids:
        label = phantom.class_ids.index(cls)
    elif cls in phantom.class_names:
        label = phantom.class_names.index(cls)
    else:
        label = stable_index(cls or marker, c.n_classes)
    image = int(rest) % c.images_per_class if rest.isdigit() else stable_index(rest, c.images_per_class)
    return label, image


class MarkerListener:
    """The marker stream named ``name``, found (and found again) in the background, read without blocking."""

    def __init__(self, name: str):
        self.name = name
        self._resolver = pylsl.ContinuousResolver(pred=f"name='{name}'" if "'" not in name else f'name="{name}"')
        self.inlet: pylsl.StreamInlet | None = None
        self.received = 0

    def pull(self) -> list[tuple[float, str]]:
        """Markers that came since the last call, as ``(LSL time on this clock, text)``."""
        if self.inlet is None:
            found = self._resolver.results()
            if not found:
                return []
            self.inlet = pylsl.StreamInlet(found[0], processing_flags=pylsl.proc_clocksync)
            self.inlet.open_stream(timeout=2.0)
            log.info("listening to marker stream %r", self.name)
        try:
            values, stamps = self.inlet.pull_chunk(timeout=0.0)
        except pylsl.LostError:
            self.inlet = None
            return []
        self.received += len(stamps)
        return [(float(t), str(v[0])) for v, t in zip(values, stamps)]


def listening_pusher(config: PhantomConfig, outlet: OutletConfig, markers: str, subject: int = 1,
                     session: int = LIVE_SESSION) -> PacedPusher:
    """A :class:`PacedPusher` of a phantom subject whose stimuli are the markers on stream ``markers``."""
    phantom = Phantom(config)
    stream = phantom.new_stream(subject=subject, session=session)
    stream.listen = True
    listener = MarkerListener(markers)
    holder: list[PacedPusher] = []

    def read(n: int):
        pusher = holder[0]
        if pusher.t0_lsl is not None:
            rate = pusher.sfreq * pusher.speed
            for t, text in listener.pull():
                onset = max(0, int(round((t - pusher.t0_lsl) * rate - 1)))  # sample i is stamped t0 + (i + 1) / rate
                stream.stimulate(onset, *phantom_stimulus(phantom, text))
                pusher.stimuli.append((onset, text))
        data, _ = stream.read(n)
        return data, []  # the presenter's markers are the truth: none of the phantom's own

    pusher = PacedPusher(read, config.n_channels, config.sfreq, outlet, phantom.ch_names)
    holder.append(pusher)
    pusher.listener = listener
    pusher.stimuli = []  # (onset sample, marker) of every stimulus the phantom responded to
    pusher.phantom_stream = stream
    return pusher
