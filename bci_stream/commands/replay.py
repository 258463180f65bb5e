"""``bci-stream replay``: a recorded file streamed in real time (or faster) as LSL EEG + markers."""

from __future__ import annotations

import time

from bci_stream.commands._common import LINGER_SECONDS, HelpFormatter, stop_on_signals
from bci_stream.commands._types import positive_float, positive_int

EPILOG = """examples:
  bci-stream --local --lsl-session lab replay sub-01.xdf --name replay --loop
  bci-stream --local --lsl-session lab replay eeglab_data.set --event-field position --speed 8 --wait-for-consumer 60
  bci-stream --local replay 'subject01/record-[2012.07.06-19.02.16]_raw.fif,event_id=1:rest;2:13Hz;3:21Hz;4:17Hz'
  bci-stream --local replay 'N170/subject1/session1/data_2017-09-13-15.30.01.csv,event_id=1:house;2:face'
  bci-stream --local replay minimal.xdf,marker_stream=Triggers,unit=uV
"""


def add_parser(sub, parents) -> None:
    from bci_stream.sources.simulate import OutletConfig

    outlet = OutletConfig()
    p = sub.add_parser("replay", help="stream a recorded file (XDF, FIF, EDF, BDF, BrainVision, EEGLAB, .pth)",
                       parents=parents, formatter_class=HelpFormatter, epilog=EPILOG,
                       description="Stream a recording as an LSL EEG stream '<name>' and its markers as "
                                   "'<name>-markers', every sample stamped at its due time (any --speed).")
    p.add_argument("file", metavar="FILE[,key=value...]",
                   help="the recording (.xdf, .fif, .edf, .bdf, .vhdr, .set, .gdf, .cnt, .csv, ImageNet-EEG .pth), "
                        "then its reader's options as in a bci-train data spec: eeg_stream=, marker_stream=, "
                        "unit= (XDF); events=, event_id=1:rest;2:13Hz, events_from= (MNE: an X-eve.fif next "
                        "to X_raw.fif is read by itself); event_id=, sfreq=, eeg=A;B (CSV). A file that "
                        "exists is taken whole, whatever its name holds")
    p.add_argument("--name", default=None, help="LSL stream name (default: the file name)")
    p.add_argument("--source-id", default=None, help="LSL source id (default: replay-<name>)")
    p.add_argument("--loop", action="store_true", help="start again at the end (sample numbers keep counting)")
    p.add_argument("--speed", type=positive_float, default=1.0, help="times real time")
    p.add_argument("--seconds", "--duration", dest="seconds", type=positive_float, default=None,
                   help="seconds of recording to stream (default: all of it)")
    p.add_argument("--chunk", type=positive_float, default=outlet.chunk, help="seconds per pushed chunk")
    p.add_argument("--counter", action="store_true", help="append a SAMPLE_INDEX channel (lost-sample counting)")
    p.add_argument("--subject", type=positive_int, default=None, help="ImageNet-EEG .pth: one subject's trials")
    p.add_argument("--wait-for-consumer", type=positive_float, default=None, metavar="SECONDS",
                   help="start streaming only once a consumer has connected (or after SECONDS): no marker is "
                        "missed by a decoder that starts after the replay")
    p.add_argument("--event-field", default=None, metavar="FIELD",
                   help="EEGLAB .set: markers '<type>/<FIELD value>' from the file's event table (e.g. position)")
    p.add_argument("--events-from", default=None, metavar="CHANNEL",
                   help="also write the markers as a trigger channel CHANNEL of the EEG stream (their codes; the "
                        "marker stream still carries them), for `bci-stream live --events-from CHANNEL`")
    p.set_defaults(func=run)


def run(args) -> int:
    from bci_stream.sources.replay import read_replay_spec, recording_pusher
    from bci_stream.sources.simulate import OutletConfig

    if args.subject is not None and ".pth" not in args.file.lower():
        raise ValueError(f"--subject picks one subject's trials of an ImageNet-EEG .pth file; {args.file} is one "
                         "recording: drop --subject")
    kwargs = {"subject": args.subject, "event_field": args.event_field}
    path, rec = read_replay_spec(args.file, **{k: v for k, v in kwargs.items() if v is not None})
    if args.events_from:
        from bci_stream.sources.replay import with_events_channel

        rec, codes = with_events_channel(rec, args.events_from)
        print(f"markers also on channel {args.events_from!r} as codes; decode with --events-from {args.events_from} "
              f"--event-codes '{';'.join(f'{c}:{t}' for t, c in codes.items())}'", flush=True)
    name = args.name or path.stem
    outlet = OutletConfig(name=name, source_id=args.source_id or f"replay-{name}", chunk=args.chunk, counter=args.counter)
    pusher = recording_pusher(rec, outlet, speed=args.speed, loop=args.loop)
    print(f"replaying {path}: {len(rec.ch_names)} ch @ {rec.sfreq:g} Hz, {rec.duration:.1f} s, "
          f"{len(rec.events)} markers, as LSL '{name}' (+ '{name}-markers') at {args.speed:g}x"
          f"{', looping' if args.loop else ''}. Ctrl-C stops.", flush=True)
    stop_on_signals(pusher.stop)
    if args.wait_for_consumer:
        print(f"waiting up to {args.wait_for_consumer:g} s for a consumer (e.g. `bci-stream live`)", flush=True)
        pusher.eeg.wait_for_consumers(args.wait_for_consumer)
        if pusher.markers.have_consumers() or pusher.markers.wait_for_consumers(min(5.0, args.wait_for_consumer)):
            time.sleep(0.2)  # the consumer's marker inlet subscribes just after it connects
    pusher.run(duration=args.seconds, on_chunk=Progress(rec.duration if not args.loop else None, rec.sfreq))
    time.sleep(LINGER_SECONDS)  # let inlets take the last chunks before the outlets leave with this process
    print(f"sent {pusher.sent} samples ({pusher.sent / rec.sfreq:.1f} s of recording)")
    return 0


class Progress:
    """One line every 10 % of the recording (or every minute when looping): readable in a log file."""

    def __init__(self, total_seconds: float | None, sfreq: float):
        self.total, self.sfreq, self.next = total_seconds, sfreq, 0.1 if total_seconds else 60.0

    def __call__(self, pusher) -> None:
        done = pusher.sent / self.sfreq
        if self.total:
            if done / self.total >= self.next:
                print(f"  replayed {done:.1f} of {self.total:.1f} s ({100 * done / self.total:.0f} %)", flush=True)
                self.next += 0.1
        elif done >= self.next:
            print(f"  replayed {done:.0f} s", flush=True)
            self.next += 60.0
