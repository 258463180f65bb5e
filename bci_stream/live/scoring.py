"""Which class a stimulus marker shows: the truth an event-mode decision is scored against live.

Looked up in this order: the card's ``marker_classes`` (marker text -> class id, written by the
trainer for markers that the rules below do not resolve, e.g. a lab's mapping file), a marker
that is a class id or class name, and an ImageNet-style image id ``<synset>_<n>`` (ImageNet-EEG,
the phantom). A marker of none of these (a response, a block start) is not scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bci_stream.live.stats import chance_p_value, roc_auc_interval, wilson_interval


def class_by_rule(marker: str, class_ids: list[str], class_names: list[str]) -> int | None:
    """Class index of ``marker`` by the naming rules (id, name, ``<id>_<n>``), or None."""
    for table in (class_ids, class_names):
        if marker in table:
            return table.index(marker)
    prefix = marker.rsplit("_", 1)[0]
    return class_ids.index(prefix) if "_" in marker and prefix in class_ids else None


class MarkerTruth:
    """``class_of(marker)`` -> class index or None, for one model card."""

    def __init__(self, class_ids: list[str], class_names: list[str], marker_classes: dict[str, str] | None = None):
        self.class_ids, self.class_names = list(class_ids), list(class_names)
        index = {c: i for i, c in enumerate(self.class_ids)}
        self.explicit = {m: index[c] for m, c in (marker_classes or {}).items() if c in index}

    @classmethod
    def for_card(cls, card) -> MarkerTruth:
        return cls(card.class_ids, card.class_names, card.marker_classes)

    def class_of(self, marker: str) -> int | None:
        found = self.explicit.get(marker)
        return found if found is not None else class_by_rule(marker, self.class_ids, self.class_names)


def unresolved_markers(markers: list[str], labels: list[int], class_ids: list[str],
                       class_names: list[str]) -> dict[str, str]:
    """The ``marker -> class id`` entries the rules do not already give (what the card must carry)."""
    out = {}
    for marker, label in zip(markers, labels):
        if class_by_rule(marker, class_ids, class_names) != label:
            out[str(marker)] = class_ids[int(label)]
    return out


@dataclass
class RunningAccuracy:
    """Event-mode decisions scored against their stimulus: top-1 (and top-5 when there are more than
    5 classes) with Wilson 95 % CIs, the one-sided binomial p-value of top-1 against chance
    (``1 / n_classes``), and for two classes the ROC AUC of the second class's probability with its
    95 % CI (what the field reports for binary tasks)."""

    n_classes: int
    n: int = 0
    top1: int = 0
    top5: int = 0
    unscored: int = 0  # decisions whose marker names no class
    recent: list = field(default_factory=list)  # (marker, truth, decided, hit) of the last decisions
    binary_truths: list = field(default_factory=list)  # two classes: truth of each scored decision ...
    binary_scores: list = field(default_factory=list)  # ... and its probability of class 1

    def add(self, marker: str, truth: int | None, top5: list[int], probabilities=None) -> bool | None:
        """Score one decision; returns hit (top-1) or None when the marker names no class.
        ``probabilities`` (``(n_classes,)``) feed the ROC AUC of a two-class model."""
        if truth is None:
            self.unscored += 1
            return None
        hit = top5[0] == truth
        self.n += 1
        self.top1 += int(hit)
        self.top5 += int(truth in top5[:5])
        self.recent = (self.recent + [(marker, truth, top5[0], hit)])[-20:]
        if self.n_classes == 2 and probabilities is not None:
            self.binary_truths.append(int(truth))
            self.binary_scores.append(float(probabilities[1]))
        return hit

    def summary(self) -> dict:
        """JSON-able figures: n, top1 with its CI, chance, p-value; top5 only with more than 5 classes;
        roc_auc with its CI for two classes once both were shown."""
        if self.n == 0:
            return {"n": 0, "unscored": self.unscored}
        chance = 1.0 / self.n_classes
        lo1, hi1 = wilson_interval(self.top1, self.n)
        out = {"n": self.n, "unscored": self.unscored, "top1": self.top1 / self.n, "top1_ci": [lo1, hi1],
               "chance_top1": chance, "p_top1_vs_chance": chance_p_value(self.top1, self.n, chance)}
        if self.n_classes > 5:
            out["top5"], out["top5_ci"] = self.top5 / self.n, list(wilson_interval(self.top5, self.n))
        if self.binary_scores and len(set(self.binary_truths)) == 2:
            auc, lo, hi = roc_auc_interval(self.binary_truths, self.binary_scores)
            out["roc_auc"], out["roc_auc_ci"] = auc, [lo, hi]
        return out

    def line(self) -> str:
        """One line, e.g. "top-1 12/40 = 0.30 [0.18, 0.45], chance 0.03, p < 0.001"."""
        s = self.summary()
        if not s["n"]:
            return "no scored stimulus yet"
        return f"top-1 {self.top1}/{self.n} = " + accuracy_text(s, digits=2).split("top-1 ", 1)[1]


def accuracy_text(summary: dict, digits: int = 3) -> str:
    """``RunningAccuracy.summary()`` in words: top-1 [CI], top-5 (more than 5 classes), ROC AUC [CI]
    (two classes), chance and p. One home for the console, the summary line and the viewer."""
    f = f".{digits}f"
    lo, hi = summary["top1_ci"]
    p = summary["p_top1_vs_chance"]
    parts = [f"top-1 {summary['top1']:{f}} [{lo:{f}}, {hi:{f}}]"]
    if "top5" in summary:
        parts.append(f"top-5 {summary['top5']:{f}}")
    if "roc_auc" in summary:
        a_lo, a_hi = summary["roc_auc_ci"]
        parts.append(f"ROC AUC {summary['roc_auc']:{f}} [{a_lo:{f}}, {a_hi:{f}}]")
    parts += [f"chance {summary['chance_top1']:{f}}", "p < 0.001" if p < 1e-3 else f"p = {p:.3f}"]
    return ", ".join(parts)
