"""A lab's own recordings (XDF, FIF, EDF, BDF, BrainVision, EEGLAB, BIDS, ...) epoched at stimulus markers.

Which markers are trials, and of which class, is decided by one of:

- a **mapping file** ``mapping=FILE``: TSV/CSV rows ``marker<TAB>class_id[<TAB>class_name]`` (``#``
  comments and a ``marker ...`` header row are skipped) or JSON ``{marker: class_id}`` /
  ``{marker: [class_id, class_name]}``. The classes are the mapping's, in file order. A class id
  that is an ImageNet-EEG synset or class name gets that class's synset and name.
- ``classes=auto``: every distinct marker (optionally only those matching ``markers=GLOB``) is a
  class, in sorted order.
- ``event_id=1:rest;2:13Hz`` (without ``mapping``/``classes``): the named codes are the classes, in
  that order (the markers are renamed first, so a mapping file may use the names);
- the default, ``classes=eegimagenet``: the 40 ImageNet-EEG classes; a marker is a class name, a
  synset, or an image name with a synset prefix (``n02389026_3437`` → ``n02389026``).

Every recording keeps its identity (subject, session, run) in the Trials (see
:func:`recording_ids`), so that evaluations can leave a recording, a session or a subject out.
Two recordings holding the same samples are refused by name (``duplicates=drop`` keeps the first):
a duplicate would sit on both sides of a split. A recording with far fewer markers than the others
(under half the median) is warned about by name (``sparse_markers=drop`` leaves it out,
``sparse_markers=refuse`` stops).

Markers that map to no class are dropped and counted by name in ``Trials.dropped``; so are epochs
that run outside the recording. A trial's image id is its marker text.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_stream.contract.classes import eegimagenet_classes
from bci_stream.contract.trials import Trials
from bci_stream.io import Recording, RecordingError, read_recording
from bci_stream.io.paths import RECORDING_SUFFIXES
from bci_stream.io.paths import expand_paths as _expand

Preprocess = Callable[[Recording], Recording]


@dataclass(frozen=True)
class ClassSet:
    """The classes a model will output and how a marker maps to one of them.

    ``mapping``: marker → class index (exact markers); ``None`` for ImageNet-EEG lookup by name,
    synset or synset prefix.
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    mapping: dict[str, int] | None
    how: str

    def index(self, marker: str) -> int | None:
        """Class index of ``marker`` (None if it names no class)."""
        if self.mapping is not None:
            return self.mapping.get(marker)
        lookup = _eegimagenet_lookup()
        if marker in lookup:
            return lookup[marker]
        return lookup.get(marker.rsplit("_", 1)[0])


def _eegimagenet_lookup() -> dict[str, int]:
    classes = eegimagenet_classes()
    return {c.name: c.index for c in classes} | {c.synset: c.index for c in classes}


def eegimagenet_class_set() -> ClassSet:
    classes = eegimagenet_classes()
    return ClassSet(tuple(c.synset for c in classes), tuple(c.name for c in classes), None, "ImageNet-EEG classes")


def read_marker_map(path: str | Path) -> list[tuple[str, str, str]]:
    """``(marker, class_id, class_name)`` rows of a mapping file (see module docstring); ``class_name``
    is "" when the file gives none."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"no mapping file at {path}")
    text = path.read_text()
    rows: list[tuple[str, str, str]] = []
    if path.suffix.lower() == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as err:
            raise RecordingError(f"{path}: not valid JSON ({err})") from err
        if not isinstance(content, dict):
            raise RecordingError(f"{path}: expected a JSON object {{marker: class_id}}")
        for marker, value in content.items():
            if isinstance(value, (list, tuple)) and 1 <= len(value) <= 2:
                rows.append((str(marker), str(value[0]), str(value[1]) if len(value) > 1 else ""))
            elif isinstance(value, dict) and "id" in value:
                rows.append((str(marker), str(value["id"]), str(value.get("name", ""))))
            else:
                rows.append((str(marker), str(value), ""))
    else:
        dialect = "excel-tab" if "\t" in text else "excel"
        for row in csv.reader(text.splitlines(), dialect=dialect):
            cells = [c.strip() for c in row]
            if not cells or not cells[0] or cells[0].startswith("#") or cells[0].lower() == "marker":
                continue
            if len(cells) < 2 or not cells[1]:
                raise RecordingError(f"{path}: row {row} needs marker<TAB>class_id[<TAB>class_name]")
            rows.append((cells[0], cells[1], cells[2] if len(cells) > 2 else ""))
    if not rows:
        raise RecordingError(f"{path}: the mapping file maps no marker")
    return rows


def mapping_class_set(path: str | Path) -> ClassSet:
    """Classes from a mapping file, in file order (ImageNet-EEG synsets/names resolved to both)."""
    by_key = {c.synset: c for c in eegimagenet_classes()} | {c.name: c for c in eegimagenet_classes()}
    ids: list[str] = []
    names: list[str] = []
    mapping: dict[str, int] = {}
    for marker, class_id, class_name in read_marker_map(path):
        known = by_key.get(class_id)
        cid, cname = (known.synset, class_name or known.name) if known else (class_id, class_name or class_id)
        if cid not in ids:
            ids.append(cid)
            names.append(cname)
        mapping[marker] = ids.index(cid)
    return ClassSet(tuple(ids), tuple(names), mapping, f"mapping file {path}")


def auto_class_set(markers: Sequence[str], pattern: str | None) -> ClassSet:
    """Every distinct marker (matching ``pattern`` if given) is a class, in sorted order."""
    chosen = sorted({m for m in markers if pattern is None or fnmatch.fnmatchcase(m, pattern)})
    if not chosen:
        raise RecordingError(f"classes=auto: no marker{f' matches {pattern!r}' if pattern else ''}; "
                             f"markers seen: {sorted(set(markers))[:8]}")
    return ClassSet(tuple(chosen), tuple(chosen), {m: i for i, m in enumerate(chosen)},
                    f"classes=auto{f' (markers={pattern})' if pattern else ''}")


def class_set_for(recordings: Sequence[Recording], mapping: str | None, classes: str | None,
                  markers: str | None) -> ClassSet:
    """The class set a spec asks for (see module docstring)."""
    if mapping and classes not in (None, "mapping"):
        raise RecordingError(f"give mapping=FILE or classes={classes}, not both")
    if mapping:
        return mapping_class_set(mapping)
    if classes == "auto":
        return auto_class_set([t for rec in recordings for _, t in rec.events], markers)
    if classes not in (None, "eegimagenet"):
        raise RecordingError(f"classes={classes!r}; use auto or eegimagenet (or mapping=FILE)")
    return eegimagenet_class_set()


def expand_paths(path: str, pattern: str | None = None) -> list[str]:
    """The recording files a spec's path names: a file (taken literally, even with ``[`` ``,`` ``=`` in
    its name), a folder (every recording in it, or those matching ``pattern``), a glob, or a
    ``;``-separated list of these (:mod:`bci_stream.io.paths`)."""
    return _expand(path, pattern, suffixes=tuple(s for s in RECORDING_SUFFIXES if s != ".pth"))


_ENTITY = {"subject": r"sub-([A-Za-z0-9]+)", "session": r"ses-([A-Za-z0-9]+)", "run": r"run-([A-Za-z0-9]+)"}
# eeg-notebooks / SSVEP-Exo folder names: ``subject01/``, ``session2/`` (a whole path component)
_FOLDER = {"subject": r"(?:^|[/\\])(?:subject|subj)[-_]?(\d+)(?=[/\\])",
           "session": r"(?:^|[/\\])session[-_]?(\d+)(?=[/\\])"}
_DATE_TIME = re.compile(r"(\d{4})[.\-_](\d{2})[.\-_](\d{2})(?:[-_ T.]+(\d{2})[.\-_:](\d{2})(?:[.\-_:](\d{2}))?)?")


def entities_from_name(path: str) -> dict[str, str]:
    """Subject/session/run labels found in a file path (possibly none): BIDS ``sub-``/``ses-``/``run-``,
    else folders named ``subject<N>`` / ``session<N>`` (the eeg-notebooks and SSVEP-Exo layouts)."""
    out = {}
    for key, pattern in _ENTITY.items():
        found = re.findall(pattern, path)
        if found:
            out[key] = found[-1]
    for key, pattern in _FOLDER.items():
        found = re.findall(pattern, path, flags=re.IGNORECASE)
        if key not in out and found:
            out[key] = found[-1]
    return out


def recording_time(path: str) -> str | None:
    """The date-time stamp in a file name (``record-[2012.07.06-19.02.16]``, ``data_2017-09-13-15.30.01``)
    as sortable digits, or None."""
    found = _DATE_TIME.findall(Path(path).name)
    return "".join(part or "00" for part in found[-1]) if found else None


def recording_ids(paths: Sequence[str], subject: str | None = None, session: str | None = None,
                  run: str | None = None) -> list[dict[str, str]]:
    """Subject, session and run of each recording, from the spec or the published layout.

    - subject: ``subject=`` given, else ``sub-X`` in the path, else a ``subject<N>`` folder
      (``ssvep_exo/subject01/…``, ``N170/subject1/…``), else 1;
    - session: ``session=`` given, else ``ses-X``, else a ``session<N>`` folder
      (``N170/subject1/session1/…``), else, when the file names carry a date-time stamp, each
      recording of a subject is its own session, numbered 1, 2, … in date order (SSVEP Exo: two
      ``record-[date]`` files per subject = sessions 1 and 2), else 0;
    - run: ``run=`` given, else ``run-X``, else the recording's position in the sorted file list
      (so each recording is a run of its own: leave-one-recording-out groups by run).
    """
    ids = []
    for p in paths:
        found = entities_from_name(p)
        for key, value in (("subject", subject), ("session", session), ("run", run)):
            if value is not None:
                found[key] = value
        ids.append(found)
    undated = [i for i, p in enumerate(paths) if "session" not in ids[i] and "subject" in ids[i]]
    if undated and all(recording_time(paths[i]) for i in undated):
        by_subject: dict[str, list[int]] = {}
        for i in undated:
            by_subject.setdefault(ids[i]["subject"], []).append(i)
        for members in by_subject.values():
            for rank, i in enumerate(sorted(members, key=lambda i: recording_time(paths[i]) or ""), start=1):
                ids[i]["session"] = str(rank)
    return ids


def integer_ids(labels: Sequence[str], start: int = 0) -> np.ndarray:
    """Labels as integers: themselves when all are integers, else their rank (+ ``start``) in sorted order."""
    labels = [str(x) for x in labels]
    if all(re.fullmatch(r"-?\d+", x) for x in labels):
        return np.array([int(x) for x in labels], dtype=np.int64)
    order = {x: i + start for i, x in enumerate(sorted(set(labels)))}
    return np.array([order[x] for x in labels], dtype=np.int64)


def epoch_recordings(recordings: Sequence[Recording], ids: Sequence[dict[str, str]], class_set: ClassSet,
                     tmin: float, tmax: float, source: str) -> Trials:
    """Epoch each recording at its markers from ``tmin`` to ``tmax`` seconds (rounded to whole samples;
    ``Trials.tmin`` is the exact start) and stack them.

    ``ids``: per recording, its ``subject``/``session``/``run`` labels (strings; missing keys:
    subject "1", session "0", run = the recording's position). All recordings must share the
    sampling rate and channel names (channels are reordered to the first recording's order).
    """
    first = recordings[0]
    start, stop = int(round(tmin * first.sfreq)), int(round(tmax * first.sfreq))
    if stop - start < 2:
        raise RecordingError(f"epoch {tmin:g}..{tmax:g} s is {max(0, stop - start)} sample(s) at {first.sfreq:g} Hz; "
                             "pass tmin=/tmax= that span at least two samples")
    eeg, labels, images, rows = [], [], [], []
    unmapped: Counter[str] = Counter()
    outside = 0
    for k, (rec, rec_ids) in enumerate(zip(recordings, ids)):
        if rec.sfreq != first.sfreq:
            raise RecordingError(f"{rec.source} is at {rec.sfreq:g} Hz but {first.source} at {first.sfreq:g} Hz; "
                                 "resample or train on them separately")
        if rec.unit != first.unit:
            raise RecordingError(f"{rec.source} is in {rec.unit} but {first.source} in {first.unit}")
        if sorted(rec.ch_names) != sorted(first.ch_names):
            missing = sorted(set(first.ch_names) ^ set(rec.ch_names))
            raise RecordingError(f"{rec.source} and {first.source} differ in channels {missing[:8]}")
        order = [rec.ch_names.index(c) for c in first.ch_names]
        row = (rec_ids.get("subject", "1"), rec_ids.get("session", "0"), rec_ids.get("run", str(k)))
        for sample, text in rec.events:
            label = class_set.index(text)
            if label is None:
                unmapped[text] += 1
                continue
            if sample + start < 0 or sample + stop > rec.n_times:
                outside += 1
                continue
            eeg.append(rec.data[order, sample + start : sample + stop])
            labels.append(label)
            images.append(text)
            rows.append(row)
    if not eeg:
        seen = Counter(t for rec in recordings for _, t in rec.events)
        raise RecordingError(
            f"{source}: none of its {sum(seen.values())} markers maps to a class of the {class_set.how} "
            f"(markers: {dict(seen.most_common(5))}); pass mapping=FILE or classes=auto"
        )
    dropped = {}
    if unmapped:
        named = ", ".join(f"{m} x{n}" for m, n in unmapped.most_common(4)) + (" ..." if len(unmapped) > 4 else "")
        dropped[f"markers without a class ({named})"] = sum(unmapped.values())
    if outside:
        dropped[f"epochs outside the recording ({tmin:g}..{tmax:g} s)"] = outside
    subject, session, run = (np.array(col) for col in zip(*rows))
    return Trials(eeg=np.stack(eeg), labels=np.array(labels), image_ids=np.array(images),
                  subjects=integer_ids(subject, start=1), sessions=integer_ids(session), runs=integer_ids(run),
                  sfreq=first.sfreq, ch_names=list(first.ch_names), class_ids=list(class_set.ids),
                  class_names=list(class_set.names), tmin=start / first.sfreq, source=source, dropped=dropped,
                  unit=first.unit)


def load_recording_trials(path: str | None = None, tmin: str = "0", tmax: str = "0.5", mapping: str | None = None,
                          classes: str | None = None, markers: str | None = None, subject: str | None = None,
                          session: str | None = None, run: str | None = None, glob: str | None = None,
                          duplicates: str = "refuse", sparse_markers: str = "warn",
                          events: str | None = None, event_id: str | None = None, events_from: str | None = None,
                          stim_channel: str | None = None, event_field: str | None = None,
                          eeg_stream: str | None = None, marker_stream: str | None = None,
                          channels: str | None = None, unit: str | None = None, sfreq: str | None = None,
                          eeg: str | None = None, drop: str | None = None, time_column: str | None = None,
                          marker_column: str | None = None,
                          preprocess: Preprocess | None = None,
                          postprocess: Callable[[list[Recording]], list[Recording]] | None = None) -> Trials:
    """Epoch one or several recordings at their markers.

    Parameters
    ----------
    path : a recording file (taken literally), a folder, a glob, or ``;``-separated files
        (:func:`expand_paths`).
    tmin, tmax : epoch from ``tmin`` to ``tmax`` seconds around each marker (default 0-0.5 s).
    mapping, classes, markers, event_id : the class set (see module docstring).
    subject, session, run : labels for every file (default: from the layout, :func:`recording_ids`).
    glob : under a folder ``path``, only the files matching this pattern (e.g. ``*/*_raw.fif``).
    duplicates : ``refuse`` (default) or ``drop`` recordings holding the same samples as another.
    sparse_markers : ``warn`` (default), ``drop`` or ``refuse`` a recording with under half the median
        number of markers.
    events, events_from, stim_channel, event_field : markers of MNE-read files
        (:func:`bci_stream.io.mne_raw.read_mne`).
    eeg_stream, marker_stream, channels, unit : XDF streams, channels and unit
        (:func:`bci_stream.io.xdf.read_xdf`); ``unit`` also for CSV.
    sfreq, eeg, drop, time_column, marker_column : CSV columns and rate
        (:func:`bci_stream.io.csv_table.read_csv`).
    preprocess : applied to each continuous recording before epoching (filters need the history).
    postprocess : then applied to all of them at once (ASR: calibrated on them all, see ``load_trials``).
    """
    # 1. The files and the reader options the spec gives
    paths = expand_paths(path, glob)
    options = {key: value for key, value in dict(
        events=events, event_id=event_id, events_from=events_from, stim_channel=stim_channel,
        event_field=event_field, eeg_stream=eeg_stream, marker_stream=marker_stream, channels=channels,
        unit=unit, sfreq=sfreq, eeg=eeg, drop=drop, time_column=time_column, marker_column=marker_column).items()
        if value is not None}
    if events is not None and len(paths) > 1:
        raise RecordingError(f"events={events} names one events file but the spec names {len(paths)} recordings; "
                             "put each X-eve.fif next to its X_raw.fif instead")
    # 2. Read, then refuse duplicates and flag recordings with few markers (before preprocessing)
    recordings = [read_recording(p, **options) for p in paths]
    keep = _without_duplicates(recordings, duplicates)
    keep = [k for k in keep if k in set(_with_markers(recordings, keep, sparse_markers))]
    paths, recordings = [paths[k] for k in keep], [recordings[k] for k in keep]
    if preprocess is not None:
        recordings = [preprocess(rec) for rec in recordings]
    if postprocess is not None:
        recordings = postprocess(recordings)
    # 3. Identities and classes, then epochs
    ids = recording_ids(paths, subject, session, run)
    if event_id is not None and mapping is None and classes is None:
        class_set = event_id_class_set(event_id)
    else:
        class_set = class_set_for(recordings, mapping, classes, markers)
    return epoch_recordings(recordings, ids, class_set, float(tmin), float(tmax), source=f"recording:{path}")


def event_id_class_set(event_id: str) -> ClassSet:
    """The classes ``event_id=1:rest;2:13Hz`` names, in its order (markers are already renamed)."""
    from bci_stream.io.events import parse_event_id

    names = list(dict.fromkeys(parse_event_id(event_id).values()))
    return ClassSet(tuple(names), tuple(names), {n: i for i, n in enumerate(names)}, f"event_id={event_id}")


def data_hash(rec: Recording) -> str:
    """SHA-1 of a recording's samples and rate: equal for the same recording saved under two names."""
    digest = hashlib.sha1(np.ascontiguousarray(rec.data).tobytes())
    digest.update(f"{rec.sfreq!r}{rec.data.shape}".encode())
    return digest.hexdigest()


def _without_duplicates(recordings: Sequence[Recording], duplicates: str) -> list[int]:
    """Indices of the recordings to keep: a recording whose samples equal an earlier one's is refused
    (``duplicates=refuse``) or dropped with a warning (``drop``), naming both files."""
    if duplicates not in ("refuse", "drop"):
        raise RecordingError(f"duplicates={duplicates!r}; use refuse or drop")
    first: dict[str, int] = {}
    keep = []
    for k, rec in enumerate(recordings):
        h = data_hash(rec)
        if h not in first:
            first[h] = k
            keep.append(k)
            continue
        line = (f"{rec.source} holds the same data as {recordings[first[h]].source} (a duplicate would leak "
                "between folds)")
        if duplicates == "refuse":
            raise RecordingError(f"{line}; remove one, or pass duplicates=drop to keep the first")
        warnings.warn(f"{line}; dropped {rec.source}", stacklevel=3)
    return keep


def _with_markers(recordings: Sequence[Recording], keep: Sequence[int], sparse_markers: str) -> list[int]:
    """Indices in ``keep`` whose recordings have a normal number of markers (``sparse_markers``: what to do
    with one under half the median count, or with none)."""
    if sparse_markers not in ("warn", "drop", "refuse"):
        raise RecordingError(f"sparse_markers={sparse_markers!r}; use warn, drop or refuse")
    counts = {k: len(recordings[k].events) for k in keep}
    median = float(np.median(list(counts.values()))) if counts else 0.0
    sparse = [k for k in keep if counts[k] == 0 or (len(keep) > 1 and counts[k] < 0.5 * median)]
    if not sparse:
        return list(keep)
    line = "; ".join(f"{recordings[k].source}: {counts[k]} markers" for k in sparse) + \
        f" (median {median:g} per recording: markers mostly missing?)"
    if sparse_markers == "refuse":
        raise RecordingError(f"{line}; remove them or pass sparse_markers=drop")
    warnings.warn(line + ("; dropped" if sparse_markers == "drop" else "; kept (sparse_markers=drop leaves them out)"),
                  stacklevel=3)
    return [k for k in keep if sparse_markers == "warn" or k not in sparse]
