"""``bci-stream record``: record LSL streams to XDF with LabRecorder; export a recording to BIDS-EEG."""

from __future__ import annotations

import time
from pathlib import Path

from bci_stream.commands._common import HelpFormatter, stop_on_signals
from bci_stream.commands._types import positive_float

EPILOG = """examples:
  bci-stream record --out rec/ --stream actiCHamp-12345 --markers bci-stream-stimuli --predictions bci-stream-predictions
  bci-stream record --bids-from rec/session-20261204-101500.xdf --bids-root bids/ --subject 01 --task images
"""


def add_parser(sub, parents) -> None:
    p = sub.add_parser("record", help="record LSL streams to XDF (LabRecorder); export one to BIDS-EEG", parents=parents,
                       formatter_class=HelpFormatter, epilog=EPILOG,
                       description="Record an EEG stream, its marker stream(s) and a predictions stream into one XDF file "
                                   "with the LSL project's LabRecorder (clock offsets included), or write a recording "
                                   "as BIDS-EEG with mne-bids (--bids-from).")
    p.add_argument("--out", default="recordings", metavar="DIR", help="folder of the new XDF file")
    p.add_argument("--stream", action="append", default=None, metavar="NAME",
                   help="stream to record, by name (repeatable; default: the first stream of type EEG)")
    p.add_argument("--markers", action="append", default=[], metavar="NAME", help="marker stream to record (repeatable)")
    p.add_argument("--predictions", action="append", default=[], metavar="NAME",
                   help="a decoder's predictions stream to record (repeatable)")
    p.add_argument("--seconds", type=positive_float, default=None, help="stop after this long (default: Ctrl-C)")
    p.add_argument("--resolve-timeout", type=positive_float, default=5.0, help="seconds to find each stream")
    p.add_argument("--bids-from", default=None, metavar="XDF", help="export this recording to BIDS instead of recording")
    p.add_argument("--bids-root", default="bids", help="BIDS dataset folder (with --bids-from)")
    p.add_argument("--subject", default="01", help="BIDS subject label")
    p.add_argument("--session", default=None, help="BIDS session label")
    p.add_argument("--task", default="images", help="BIDS task label")
    p.add_argument("--run", type=int, default=None, help="BIDS run index")
    p.add_argument("--format", choices=["BrainVision", "EDF"], default="BrainVision", help="BIDS EEG file format")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.bids_from:
        from bci_stream.recording.bids import export_bids

        path = export_bids(args.bids_from, args.bids_root, subject=args.subject, task=args.task,
                           session=args.session, run=args.run, fmt=args.format)
        print(f"wrote {path} (+ _events.tsv, _channels.tsv; decisions under {Path(args.bids_root) / 'derivatives'})")
        return 0
    import pylsl

    from bci_stream.recording.labrecorder import Recorder, RecordError, recording_path, stream_query_id

    wanted = [("name", n) for n in (args.stream or [])] or [("type", "EEG")]
    wanted += [("name", n) for n in args.markers + args.predictions]
    ids = []
    for prop, value in wanted:
        found = pylsl.resolve_byprop(prop, value, timeout=args.resolve_timeout)
        if not found:
            raise RecordError(f"no LSL stream with {prop} {value!r} within {args.resolve_timeout:g} s; "
                              "`bci-stream streams` lists what is there")
        ids.append(stream_query_id(found[0]))
    recorder = Recorder(recording_path(args.out, "recording"), ids,
                        on_error=lambda m: print(f"bci-stream record: error: {m}", flush=True)).start()
    print(f"recording {len(ids)} stream(s) to {recorder.path}; Ctrl-C stops", flush=True)
    stop = [False]
    stop_on_signals(lambda: stop.__setitem__(0, True))
    t_end = None if args.seconds is None else time.monotonic() + args.seconds
    while not stop[0] and recorder.running and (t_end is None or time.monotonic() < t_end):
        time.sleep(0.1)
    status = recorder.stop()
    print(status.line(), flush=True)
    return 3 if status.error else 0
