"""``bci-stream streams``: the LSL streams this machine can see, with what a decoder needs to know."""

from __future__ import annotations

import json

from bci_stream.commands._common import HelpFormatter
from bci_stream.commands._types import positive_float


def add_parser(sub, parents) -> None:
    p = sub.add_parser("streams", help="list the LSL streams on the network", parents=parents,
                       formatter_class=HelpFormatter,
                       epilog="examples:\n  bci-stream streams\n  bci-stream --local --lsl-session lab streams --json\n",
                       description="List every LSL stream that answers within --wait seconds: name, type, rate, "
                                   "channels, units, host and source id.")
    p.add_argument("--wait", type=positive_float, default=1.0, help="seconds to listen for streams")
    p.add_argument("--json", action="store_true", help="one JSON object per stream")
    p.set_defaults(func=run)


def describe(info) -> dict:
    """A stream's identity and, from its full description, its channel units."""
    import pylsl

    from bci_stream.contract.units import normalise_unit
    from bci_stream.lsl.inlet import describe_stream, stream_channel_units

    out = describe_stream(info)
    out["format"] = {pylsl.cf_float32: "float32", pylsl.cf_double64: "float64", pylsl.cf_string: "string",
                     pylsl.cf_int32: "int32", pylsl.cf_int16: "int16", pylsl.cf_int8: "int8",
                     pylsl.cf_int64: "int64"}.get(info.channel_format(), str(info.channel_format()))
    try:
        full = pylsl.StreamInlet(info).info(timeout=1.0)
        units = stream_channel_units(full)
    except Exception:  # a stream that vanished meanwhile: list it without units
        units = []
    kinds = sorted({normalise_unit(u) or (u or "none") for u in units})
    out["units"] = ", ".join(kinds) if kinds else "?"
    return out


def run(args) -> int:
    import time

    import pylsl

    resolver = pylsl.ContinuousResolver(forget_after=max(2.0, args.wait))
    time.sleep(args.wait)
    found = sorted((describe(i) for i in resolver.results()), key=lambda d: (d["type"], d["name"]))
    if args.json:
        for d in found:
            print(json.dumps(d))
        return 0
    if not found:
        print(f"no LSL stream answered within {args.wait:g} s (is the amplifier's LSL app running? "
              "`--local` looks on this machine only)")
        return 0
    header = ("name", "type", "rate", "ch", "format", "units", "host", "source_id")
    rows = [(d["name"], d["type"], f"{d['sfreq']:g} Hz" if d["sfreq"] else "irregular", str(d["channels"]),
             d["format"], d["units"], d["host"], d["source_id"]) for d in found]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
