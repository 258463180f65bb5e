"""``bci-stream present``: show pictures and push their image ids on an LSL marker stream."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from bci_stream.commands._common import HelpFormatter
from bci_stream.commands._types import non_negative_int, positive_float, positive_int
from bci_stream.resources import has_display

EPILOG = """examples:
  bci-stream present --images gallery/ --trials 400 --fullscreen --photodiode
  bci-stream --local present --images gallery/ --trials 40 --name my-stimuli   # beside `simulate --listen my-stimuli`
"""


def add_parser(sub, parents) -> None:
    from bci_stream.present.schedule import PresentConfig

    c = PresentConfig()
    p = sub.add_parser("present", help="show pictures and push their markers on LSL (stimulus window)", parents=parents,
                       formatter_class=HelpFormatter, epilog=EPILOG,
                       description="A stimulus window (separate from the viewer): the pictures of DIR/<class>/*.jpg in a "
                                   "seeded, class-interleaved order with fixation, duration, jittered ISI and breaks; "
                                   "each picture's image id is pushed on an LSL marker stream, stamped when its frame "
                                   "was flipped (what `live --mode event` and `bci-train --data xdf:` read).")
    add_present_options(p, c)
    p.add_argument("--flip-log", default=None, metavar="CSV", help="write each screen change's timing (LSL seconds)")
    p.add_argument("--more", type=positive_int, default=None, metavar="N",
                   help="then wait for a line on stdin and present N more (seed + 1) on the same marker stream "
                        "(what `bci-stream calibrate` drives)")
    p.set_defaults(func=run)


def add_present_options(p, c) -> None:
    """The presenter's options (shared with ``bci-stream calibrate``)."""
    p.add_argument("--images", required=True, metavar="DIR", help="folder of pictures, DIR/<class>/*.jpg (the gallery layout)")
    p.add_argument("--trials", type=positive_int, default=c.trials, help="pictures to show (default: each image --repeats times)")
    p.add_argument("--repeats", type=positive_int, default=c.repeats, help="passes over the image set")
    p.add_argument("--seed", type=non_negative_int, default=c.seed, help="order and ISI jitter")
    p.add_argument("--fixation", type=float, default=c.fixation, help="fixation cross before each picture, s")
    p.add_argument("--duration", type=positive_float, default=c.duration, help="picture on screen, s")
    p.add_argument("--isi", type=float, default=c.isi, help="blank after each picture, s (mean)")
    p.add_argument("--isi-jitter", type=float, default=c.isi_jitter, help="blank +- this much, uniform, s")
    p.add_argument("--block-size", type=non_negative_int, default=c.block_size, help="trials per block (0: no breaks)")
    p.add_argument("--break-seconds", type=positive_float, default=c.break_seconds, help="break between blocks, s")
    p.add_argument("--lead-in", type=float, default=c.lead_in, help="blank seconds before the first picture")
    p.add_argument("--fullscreen", action="store_true", help="full screen (default: a window)")
    p.add_argument("--photodiode", action="store_true", help="a white patch bottom-left while a picture is shown")
    p.add_argument("--name", default="bci-stream-stimuli", help="LSL marker stream name")
    p.add_argument("--source-id", default=None, help="LSL source id (default: '<name>@<host>')")


def present_config(args, trials: int | None = None, seed: int | None = None, lead_in: float | None = None):
    from bci_stream.present.schedule import PresentConfig

    return PresentConfig(trials=trials if trials is not None else args.trials, repeats=args.repeats,
                         seed=args.seed if seed is None else seed, fixation=args.fixation, duration=args.duration,
                         isi=args.isi, isi_jitter=args.isi_jitter, block_size=args.block_size,
                         break_seconds=args.break_seconds, lead_in=args.lead_in if lead_in is None else lead_in)


def run(args) -> int:
    import socket

    from bci_stream.contract.stimuli import scan_images
    from bci_stream.present.schedule import build_schedule
    from bci_stream.present.window import marker_outlet, run_presenter

    if not (has_display() or os.environ.get("QT_QPA_PLATFORM") == "offscreen"):
        raise RuntimeError("no display for the stimulus window (run under xvfb-run, or QT_QPA_PLATFORM=offscreen for a dry run)")
    stimuli = scan_images(args.images)
    events = build_schedule(stimuli, present_config(args))
    outlet = marker_outlet(args.name, args.source_id or f"{args.name}@{socket.gethostname()}")
    n = sum(e.kind == "stimulus" for e in events)
    print(f"presenting {n} pictures of {len({s.cls for s in stimuli})} classes ({len(stimuli)} images) on LSL "
          f"marker stream {args.name!r}; about {events[-1].t:.0f} s", flush=True)
    log = run_presenter(events, outlet, fullscreen=args.fullscreen, photodiode=args.photodiode)
    print(f"presented {len(log.stimuli)} pictures", flush=True)
    if args.more:
        import json
        import sys

        line = sys.stdin.readline()  # "go [image ids or null]"
        if not line.startswith("go"):  # closed: the session ended before a second phase
            return 0
        only = json.loads(line[2:].strip() or "null")
        chosen = [s for s in stimuli if only is None or s.image_id in set(only)] or stimuli
        more = build_schedule(chosen, present_config(args, trials=args.more, seed=args.seed + 1, lead_in=1.0))
        second = run_presenter(more, outlet, fullscreen=args.fullscreen, photodiode=args.photodiode)
        log.flips += second.flips
        print(f"presented {len(second.stimuli)} more pictures", flush=True)
    if args.flip_log:
        write_flip_log(log, args.flip_log)
    return 0


def write_flip_log(log, path: str | Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "trial", "marker", "scheduled", "paint_start", "stamp"])
        for fl in log.flips:
            w.writerow([fl.event.kind, fl.event.trial, fl.event.stimulus.image_id if fl.event.stimulus else "",
                        f"{fl.scheduled:.6f}", f"{fl.paint_start:.6f}", f"{fl.stamp:.6f}"])
