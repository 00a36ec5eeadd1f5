"""Series and selectors: what rules are evaluated against.

A ``Sample`` is one series (name, labels, value) as Prometheus would store it. A
``SampleSet`` indexes a collection's samples by name so that a rule's selector
(``Selector``: a metric name plus label matchers with ``= != =~ !~``) finds its
series without scanning everything. Matching follows PromQL: a missing label
equals the empty string, and regular expressions are anchored at both ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

MatchOp = Literal["=", "!=", "=~", "!~"]
Labels = tuple[tuple[str, str], ...]


def labels_of(mapping: Mapping[str, str]) -> Labels:
    """The canonical (sorted) form of a label set."""
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Labels
    value: float

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def label(self, name: str) -> str:
        """The value of label ``name`` ("" when absent, as in PromQL)."""
        for key, value in self.labels:
            if key == name:
                return value
        return ""


def sample(name: str, value: float, **labels: str) -> Sample:
    """A sample from keyword labels (convenient in collectors and tests)."""
    return Sample(name, labels_of(labels), float(value))


def promql_quote(value: str) -> str:
    """``value`` as a double-quoted PromQL string (what the selector parser reads back)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


@dataclass(frozen=True)
class Matcher:
    label: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, label: str, op: MatchOp, value: str) -> Matcher:
        """A matcher; raises ``re.error`` for a bad regular expression."""
        regex = re.compile(f"(?:{value})\\Z") if op in ("=~", "!~") else None
        return cls(label, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.matches_value(labels.get(self.label, ""))

    def matches_value(self, actual: str) -> bool:
        """Whether a label whose value is ``actual`` ("" when absent) matches."""
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.label}{self.op}{promql_quote(self.value)}"


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, s: Sample) -> bool:
        if not self.matchers:
            return True
        labels = s.label_map
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        inner = ",".join(str(m) for m in self.matchers)
        return f"{self.metric}{{{inner}}}" if inner else self.metric


class SampleSet:
    """Samples indexed by metric name, and lazily by (name, label) → value.

    Selection works like Prometheus' postings: each matcher is resolved against the
    distinct values of its label (one regex run per value, not per series) and the
    candidate sets are intersected, so 1,000 rules over thousands of series stay
    cheap. Results are cached per selector: the set is immutable once built.
    """

    def __init__(self, samples: Iterable[Sample] = ()) -> None:
        self._by_name: dict[str, list[Sample]] = {}
        self._postings: dict[tuple[str, str], dict[str, list[int]]] = {}
        self._cache: dict[Selector, list[Sample]] = {}
        self.add(samples)

    def add(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self._by_name.setdefault(s.name, []).append(s)
        self._postings.clear()
        self._cache.clear()

    def _posting(self, name: str, label: str) -> dict[str, list[int]]:
        key = (name, label)
        found = self._postings.get(key)
        if found is None:
            found = {}
            for i, s in enumerate(self._by_name.get(name, ())):
                found.setdefault(s.label(label), []).append(i)
            self._postings[key] = found
        return found

    def select(self, selector: Selector) -> list[Sample]:
        cached = self._cache.get(selector)
        if cached is not None:
            return cached
        series = self._by_name.get(selector.metric, [])
        if not series or not selector.matchers:
            result = list(series)
        else:
            candidates: set[int] | None = None
            # equality first: it narrows the most for the least work
            for m in sorted(selector.matchers, key=lambda m: m.op != "="):
                posting = self._posting(selector.metric, m.label)
                if m.op == "=":
                    ids = set(posting.get(m.value, ()))
                else:
                    ids = set()
                    for value, members in posting.items():
                        if m.matches_value(value):
                            ids.update(members)
                candidates = ids if candidates is None else candidates & ids
                if not candidates:
                    break
            result = [series[i] for i in sorted(candidates or ())]
        self._cache[selector] = result
        return result

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[Sample]:
        for series in self._by_name.values():
            yield from series

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())
