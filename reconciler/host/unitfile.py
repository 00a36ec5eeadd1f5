"""Compare two versions of a unit file the way NixOS's switch-to-configuration does.

Unit files are INI-like: sections, ``Key=Value`` lines (a key may repeat), comments
and line continuations. As in NixOS's ``parseUnit``, a unit is compared as sections of
keys, each with its values in order: the order of different keys does not matter
(systemd does not care), the order of one key's values does (``ExecStartPre=``).
``classify`` tells what a change needs:

* ``none``      only comments or cosmetic [Unit] keys (Description, Documentation) changed
* ``reenable``  only the [Install] section changed
* ``reload``    only ``X-Reload-Triggers=`` changed (plus cosmetic changes)
* ``restart``   anything else
"""

from __future__ import annotations

from typing import Literal

Change = Literal["none", "reenable", "reload", "restart"]
Parsed = dict[str, list[tuple[str, str]]]

COSMETIC_UNIT_KEYS = frozenset({"Description", "Documentation"})
RELOAD_KEY = "X-Reload-Triggers"


def parse(text: str) -> Parsed:
    """Sections → [(key, value)] in order; comments and blank lines dropped."""
    sections: Parsed = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            continue  # systemd ignores such lines too (with a warning)
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


Compared = dict[str, dict[str, list[str]]]  # section → key → values in order


def _compared(parsed: Parsed) -> Compared:
    out: Compared = {}
    for section, entries in parsed.items():
        keys = out.setdefault(section, {})
        for key, value in entries:
            keys.setdefault(key, []).append(value)
    return out


def _without(parsed: Compared, drop: dict[str, frozenset[str]]) -> Compared:
    """``parsed`` without the keys in ``drop``; sections left empty go too."""
    out: Compared = {}
    for section, keys in parsed.items():
        kept = {k: v for k, v in keys.items() if k not in drop.get(section, frozenset())}
        if kept:
            out[section] = kept
    return out


def classify(old: str, new: str) -> Change:
    a, b = _without(_compared(parse(old)), {}), _without(_compared(parse(new)), {})
    if a == b:
        return "none"
    cosmetic = {"Unit": COSMETIC_UNIT_KEYS}
    a_core, b_core = _without(a, cosmetic), _without(b, cosmetic)
    if a_core == b_core:
        return "none"
    a_run = {s: e for s, e in a_core.items() if s != "Install"}
    b_run = {s: e for s, e in b_core.items() if s != "Install"}
    if a_run == b_run:
        return "reenable"
    reload_only = {"Unit": COSMETIC_UNIT_KEYS | {RELOAD_KEY}}
    if _without(a_run, reload_only) == _without(b_run, reload_only):
        return "reload"
    return "restart"


def changed_keys(old: str, new: str) -> list[str]:
    """``Section.Key`` names whose values differ, for reasons in plans."""
    a, b = parse(old), parse(new)
    keys = []
    for section in sorted(set(a) | set(b)):
        ea, eb = a.get(section, []), b.get(section, [])
        names = {k for k, _ in ea} | {k for k, _ in eb}
        for name in sorted(names):
            if [v for k, v in ea if k == name] != [v for k, v in eb if k == name]:
                keys.append(f"{section}.{name}")
    return keys
