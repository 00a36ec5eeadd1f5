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


def sample(name: str, value: float, **labels: str) -> Sample:
    """A sample from keyword labels (convenient in collectors and tests)."""
    return Sample(name, labels_of(labels), float(value))


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
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value!r}".replace("'", '"')


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
    """Samples indexed by metric name."""

    def __init__(self, samples: Iterable[Sample] = ()) -> None:
        self._by_name: dict[str, list[Sample]] = {}
        for s in samples:
            self._by_name.setdefault(s.name, []).append(s)

    def add(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self._by_name.setdefault(s.name, []).append(s)

    def select(self, selector: Selector) -> list[Sample]:
        return [s for s in self._by_name.get(selector.metric, ()) if selector.matches(s)]

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[Sample]:
        for series in self._by_name.values():
            yield from series

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())
