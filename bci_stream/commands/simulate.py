"""``bci-stream simulate``: the phantom headset as a real LSL EEG stream plus its marker stream."""

from __future__ import annotations

import time

from bci_stream.commands._common import LINGER_SECONDS, HelpFormatter, stop_on_signals
from bci_stream.commands._types import int_range, non_negative_int, positive_float, positive_int

N_PHANTOM_CLASSES = 40  # the ImageNet-EEG classes the phantom can show (bci_stream/data/eegimagenet_classes.tsv)

EPILOG = """examples:
  bci-stream --local simulate --counter                      # 128 ch @ 1 kHz, a stimulus every 0.5 s
  bci-stream --local simulate --channels 64 --sfreq 500 --blocks --seconds 60
"""


def add_parser(sub, parents) -> None:
    from bci_stream.sources.phantom import LIVE_SESSION, PhantomConfig
    from bci_stream.sources.simulate import OutletConfig

    phantom, outlet = PhantomConfig(), OutletConfig()
    p = sub.add_parser("simulate", help="stream the phantom headset over LSL (EEG + markers)", parents=parents,
                       formatter_class=HelpFormatter, epilog=EPILOG,
                       description="Stream the phantom headset (synthetic EEG with a known ground truth) as an LSL "
                                   "EEG stream '<name>' and a string marker stream '<name>-markers'.")
    p.add_argument("--channels", type=positive_int, default=phantom.n_channels, help="EEG channels (10-5 names)")
    p.add_argument("--sfreq", type=positive_float, default=phantom.sfreq, help="sampling rate, Hz")
    p.add_argument("--classes", type=int_range(1, N_PHANTOM_CLASSES), default=phantom.n_classes,
                   help="stimulus classes (the first N ImageNet-EEG classes)")
    p.add_argument("--isi", type=positive_float, default=0.5, help="seconds between stimuli")
    p.add_argument("--seed", type=non_negative_int, default=phantom.seed, help="the headset (templates, subjects)")
    p.add_argument("--subject", type=int_range(1, phantom.n_subjects), default=1, help="which phantom subject")
    p.add_argument("--session", type=non_negative_int, default=LIVE_SESSION,
                   help="recording session: its stimulus order and noise (new to any model trained on the phantom; "
                        "0 is the training data)")
    p.add_argument("--seconds", "--duration", dest="seconds", type=positive_float, default=None,
                   help="seconds to stream (default: until Ctrl-C)")
    p.add_argument("--name", default=outlet.name, help="LSL stream name (markers: '<name>-markers')")
    p.add_argument("--source-id", default=None, help="LSL source id (default: the name)")
    p.add_argument("--chunk", type=positive_float, default=outlet.chunk, help="seconds per pushed chunk")
    p.add_argument("--counter", action="store_true", help="append a SAMPLE_INDEX channel (lost-sample counting)")
    p.add_argument("--blocks", action="store_true", help="block design (every image of a class in a row)")
    p.add_argument("--semantic", action="store_true",
                   help="the semantic phantom: each image's latent embedding drives its evoked response (for "
                        "embedding models; the space is printed: a model's card and gallery index must name it)")
    p.add_argument("--embed-dim", type=positive_int, default=phantom.embed_dim,
                   help="dimension of the semantic embeddings (with --semantic)")
    p.add_argument("--listen", default=None, metavar="MARKERS",
                   help="a phantom that watches the screen: its evoked responses follow the image ids on the LSL marker "
                        "stream MARKERS (`bci-stream present`, PsychoPy) instead of its own schedule; no markers of its own")
    p.add_argument("--verbose-stream", action="store_true", help="print a line per second streamed")
    p.set_defaults(func=run)


def run(args) -> int:
    from bci_stream.sources.phantom import TRAINING_SESSION, Phantom, PhantomConfig
    from bci_stream.sources.simulate import OutletConfig, phantom_pusher

    config = PhantomConfig(n_channels=args.channels, sfreq=args.sfreq, n_classes=args.classes, seed=args.seed,
                           semantic=args.semantic, embed_dim=args.embed_dim)
    outlet = OutletConfig(name=args.name, source_id=args.source_id or args.name, chunk=args.chunk, counter=args.counter)
    if args.listen:
        from bci_stream.sources.listen import listening_pusher

        pusher = listening_pusher(config, outlet, args.listen, subject=args.subject, session=args.session)
    else:
        pusher = phantom_pusher(config, outlet, subject=args.subject, isi=args.isi, blocks=args.blocks,
                                session=args.session)
    seen = ("the TRAINING session: a model trained on the phantom has seen these trials, so its accuracy here is "
            "not out-of-sample" if args.session == TRAINING_SESSION else
            f"a new recording session (models trained on the phantom saw training session {TRAINING_SESSION} only)")
    semantic = f" in the semantic space '{Phantom(config).embedding_space}'" if args.semantic else ""
    print(f"streaming phantom: {args.channels} ch @ {args.sfreq:g} Hz as LSL '{args.name}' (+ '{args.name}-markers'), "
          f"{args.classes} classes{semantic}, "
          f"{'stimuli from the markers on ' + repr(args.listen) if args.listen else f'a stimulus every {args.isi:g} s'}{', SAMPLE_INDEX channel' if args.counter else ''}, "
          f"subject {args.subject}, session {args.session}: {seen}. Ctrl-C stops.", flush=True)
    last = [0.0]

    def report(p):
        if args.verbose_stream and p.sent / config.sfreq - last[0] >= 1.0:
            last[0] = p.sent / config.sfreq
            print(f"  t={last[0]:6.1f} s  samples sent {p.sent}", flush=True)

    stop_on_signals(pusher.stop)
    pusher.run(duration=args.seconds, on_chunk=report)
    time.sleep(LINGER_SECONDS)  # let inlets take the last chunks before the outlets leave with this process
    print(f"sent {pusher.sent} samples ({pusher.sent / config.sfreq:.1f} s)")
    return 0
