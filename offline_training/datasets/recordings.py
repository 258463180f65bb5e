"""A lab's own recordings (XDF, FIF, EDF, BDF, BrainVision, ...) epoched at stimulus markers.

Marker text → class: a mapping file (TSV/CSV ``marker<TAB>class`` or JSON ``{marker: class}``),
else the marker itself when it is a class name or synset, else its synset prefix
(``n02389026_3437`` → ``n02389026``, EEG-ImageNet style). Markers that map to no class are skipped
(and counted). Classes default to the 40 EEG-ImageNet ones.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np

from bci_stream.classes import eegimagenet_classes
from bci_stream.io import RecordingError, read_recording
from bci_stream.trials import Trials


def read_marker_map(path: str | Path) -> dict[str, str]:
    """Marker → class (name or synset) from JSON or a two-column TSV/CSV."""
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() == ".json":
        return {str(k): str(v) for k, v in json.loads(text).items()}
    dialect = "excel-tab" if "\t" in text else "excel"
    return {row[0].strip(): row[1].strip() for row in csv.reader(text.splitlines(), dialect=dialect) if len(row) >= 2}


def marker_to_class(marker: str, lookup: dict[str, int], mapping: dict[str, str] | None) -> int | None:
    """Class index for ``marker`` (None if it names no class)."""
    if mapping is not None:
        marker = mapping.get(marker, "")
        return lookup.get(marker)
    if marker in lookup:
        return lookup[marker]
    prefix = marker.rsplit("_", 1)[0]
    return lookup.get(prefix)


def load_recording_trials(path: str, tmin: str = "0", tmax: str = "0.5", mapping: str | None = None,
                          subject: str = "1", run: str = "0") -> Trials:
    """Epoch one recording at its markers.

    Parameters
    ----------
    path : any format :func:`bci_stream.io.read_recording` reads.
    tmin, tmax : epoch from ``tmin`` to ``tmax`` seconds around each marker (default 0-0.5 s).
    mapping : marker → class file (see module docstring).
    subject, run : ids recorded with every trial (one file = one subject's run).
    """
    rec = read_recording(path)
    classes = eegimagenet_classes()
    lookup = {c.name: c.index for c in classes} | {c.synset: c.index for c in classes}
    marker_map = read_marker_map(mapping) if mapping else None
    start, stop = int(round(float(tmin) * rec.sfreq)), int(round(float(tmax) * rec.sfreq))
    if stop <= start:
        raise ValueError(f"tmax ({tmax}) must be after tmin ({tmin})")
    eeg, labels, images = [], [], []
    skipped = 0
    for sample, text in rec.events:
        label = marker_to_class(text, lookup, marker_map)
        if label is None or sample + start < 0 or sample + stop > rec.n_times:
            skipped += 1
            continue
        eeg.append(rec.data[:, sample + start : sample + stop])
        labels.append(label)
        images.append(text)
    if not eeg:
        raise RecordingError(
            f"{path}: none of its {len(rec.events)} markers maps to a class "
            f"(first markers: {[t for _, t in rec.events[:5]]}); pass mapping=FILE"
        )
    n = len(eeg)
    if skipped:
        warnings.warn(f"{path}: {skipped} of {len(rec.events)} markers skipped (no class, or epoch outside the recording)",
                      stacklevel=2)
    return Trials(eeg=np.stack(eeg), labels=np.array(labels), image_ids=np.array(images),
                  subjects=np.full(n, int(subject)), runs=np.full(n, int(run)), sfreq=rec.sfreq,
                  ch_names=list(rec.ch_names), class_ids=[c.synset for c in classes],
                  class_names=[c.name for c in classes], tmin=float(tmin),
                  source=f"recording:{path}")
