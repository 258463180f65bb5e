"""``bci-stream bridge brainflow``: a BrainFlow board as an LSL EEG stream plus its marker stream."""

from __future__ import annotations

import time

from bci_stream.commands._common import LINGER_SECONDS, HelpFormatter, stop_on_signals
from bci_stream.commands._types import non_negative_int, positive_float

EPILOG = """examples:
  bci-stream --local bridge brainflow --board synthetic --seconds 60   # BrainFlow's synthetic board
  bci-stream bridge brainflow --board cyton --serial-port /dev/ttyUSB0  # OpenBCI Cyton
  bci-stream bridge brainflow --board muse_2 --mac-address 00:55:DA:B0:00:00
then, in another terminal: bci-stream live --model MODEL.onnx --stream brainflow-cyton
"""


def add_parser(sub, parents) -> None:
    from bci_stream.sources.brainflow import BrainFlowConfig

    d = BrainFlowConfig()
    p = sub.add_parser("bridge", help="publish a BrainFlow board as LSL EEG + marker streams", parents=parents,
                       formatter_class=HelpFormatter, epilog=EPILOG,
                       description="Publish a device as LSL streams the decoder reads. 'brainflow': any board "
                                   "BrainFlow supports, as an LSL EEG stream (channel labels and units in desc) "
                                   "and its marker channel as a string marker stream '<name>-markers'.")
    p.add_argument("kind", choices=["brainflow"], help="the device library")
    p.add_argument("--board", default=d.board, help="BrainFlow board: synthetic, cyton, cyton_daisy, ganglion, "
                                                     "muse_2, unicorn, ... (BoardIds without _BOARD), or its number")
    p.add_argument("--serial-port", default=d.serial_port, help="serial port (Cyton, Ganglion dongle)")
    p.add_argument("--mac-address", default=d.mac_address, help="Bluetooth MAC address")
    p.add_argument("--ip-address", default=d.ip_address, help="IP address (WiFi boards)")
    p.add_argument("--ip-port", type=non_negative_int, default=d.ip_port, help="IP port (WiFi boards)")
    p.add_argument("--serial-number", default=d.serial_number, help="device serial number")
    p.add_argument("--other-info", default=d.other_info, help="BrainFlow's other_info parameter")
    p.add_argument("--name", default=None, help="LSL stream name (default brainflow-<board>; markers '<name>-markers')")
    p.add_argument("--source-id", default=None, help="LSL source id (default: the name)")
    p.add_argument("--seconds", type=positive_float, default=None, help="seconds to stream (default: until Ctrl-C)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bci_stream.sources.brainflow import BrainFlowBridge, BrainFlowConfig

    try:
        import brainflow  # noqa: F401
    except ImportError as err:  # pragma: no cover - the optional layer is absent
        raise SystemExit(f"bci-stream bridge brainflow needs BrainFlow: pip install 'bci-stream[brainflow]' ({err})") from None
    config = BrainFlowConfig(board=args.board, serial_port=args.serial_port, mac_address=args.mac_address,
                             ip_address=args.ip_address, ip_port=args.ip_port, serial_number=args.serial_number,
                             other_info=args.other_info, name=args.name, source_id=args.source_id)
    bridge = BrainFlowBridge(config)
    stop_on_signals(bridge.stop_event.set)
    bridge.start()
    try:
        print(f"streaming BrainFlow {bridge.description}: {len(bridge.labels)} EEG ch ({', '.join(bridge.labels)}) "
              f"@ {bridge.sfreq:g} Hz as LSL '{config.stream_name}' (+ '{config.stream_name}-markers'). Ctrl-C stops.",
              flush=True)
        bridge.run(args.seconds)
        time.sleep(LINGER_SECONDS)  # the consumers' last pulls reach the outlets
    finally:
        bridge.close()
    print(f"sent {bridge.sent} samples ({bridge.sent / bridge.sfreq:.1f} s), {bridge.markers_sent} markers")
    return 0
