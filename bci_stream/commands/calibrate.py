"""``bci-stream calibrate``: present, record, train, hot-swap, score live — a personal decoder in one sitting."""

from __future__ import annotations

import shlex
from pathlib import Path

from bci_stream.commands._common import HelpFormatter
from bci_stream.commands._types import non_negative_int, positive_int

EPILOG = """examples:
  bci-stream calibrate --images gallery/ --trials 400 --out calib/ --present-args "--fullscreen --photodiode"
  bci-stream calibrate --images gallery/ --model generic.onnx --out calib/   # hot-swaps into a running decoder
  bci-stream calibrate --images gallery/ --external-markers PsychoPyMarkers --out calib/   # your own presenter
  bci-stream calibrate --images gallery/ --out calib/ --train-args "--device cuda --epochs 40"
"""


def add_parser(sub, parents) -> None:
    from bci_stream.recording.calibrate import CalibrateConfig

    c = CalibrateConfig(images=Path("."), out=Path("."))
    p = sub.add_parser("calibrate", help="present + record + train + hot-swap: a personal decoder in one sitting",
                       parents=parents, formatter_class=HelpFormatter, epilog=EPILOG,
                       description="Show --trials pictures (bci-stream present) while LabRecorder records the EEG and "
                                   "markers; train on the recording with bci-train in a child process; swap the new "
                                   "model into the running decoder (or start one); then show --test-trials more and "
                                   "score the live decisions against them (95 % CIs, offline vs live).")
    p.add_argument("--images", required=True, metavar="DIR", help="pictures, DIR/<class>/*.jpg")
    p.add_argument("--out", required=True, metavar="DIR", help="calibration folder (xdf, run, model.onnx, report)")
    p.add_argument("--trials", type=positive_int, default=c.trials, help="pictures before training")
    p.add_argument("--test-trials", type=positive_int, default=c.test_trials, help="pictures after the swap, scored live")
    p.add_argument("--model", default=None, help="the model decoding now (its classes, channels and preprocessing "
                                                 "must be the personal model's); default: start after training")
    p.add_argument("--stream", default=None, help="EEG stream name (default: the first of type EEG)")
    p.add_argument("--name", default=c.markers_name, help="the presenter's marker stream name")
    p.add_argument("--external-markers", default=None, metavar="NAME",
                   help="a presenter of your own (PsychoPy...) pushes image ids on this stream: none is started")
    p.add_argument("--seed", type=non_negative_int, default=c.seed, help="presentation order")
    p.add_argument("--present-args", default="", help="more `bci-stream present` options, e.g. '--fullscreen --isi 0.3'")
    p.add_argument("--train-args", default=" ".join(c.train_args),
                   help="`bci-train run` options (e.g. '--device cuda'); the data, split and export are set here")
    p.add_argument("--providers", choices=["auto", "cpu", "cuda"], default=c.providers, help="live decoder's provider")
    p.set_defaults(func=run)


def run(args) -> int:
    from bci_stream.recording.calibrate import CalibrateConfig, calibrate

    config = CalibrateConfig(images=Path(args.images), out=Path(args.out), trials=args.trials,
                             test_trials=args.test_trials, model=args.model, stream=args.stream, markers_name=args.name,
                             external_markers=args.external_markers, present_args=tuple(shlex.split(args.present_args)),
                             train_args=tuple(shlex.split(args.train_args)), providers=args.providers, seed=args.seed)
    result = calibrate(config)
    for line in result.lines():
        print(line)
    print(f"report: {Path(args.out) / 'calibration.json'}; model: {result.model}; recording: {result.xdf}")
    return 0
