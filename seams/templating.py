"""Jinja2 for templates that operators write (alert annotations, channel messages):
sandboxed *and* bounded, and checkable before anything runs.

The sandbox (``ImmutableSandboxedEnvironment``: no private attributes, no changing
lists or dicts) keeps a template from reaching the process; ``Bounded`` also keeps
one from exhausting it:

* ``range`` of at most ``MAX_ITEMS`` items; every ``for`` loop (over anything) counts
  its iterations and watches the clock;
* ``**`` with a result beyond ``MAX_INT_BITS`` bits, ``*`` making a string or list
  longer than ``MAX_VALUE`` (or an int beyond ``MAX_INT_BITS``), printf and
  ``str.format`` widths beyond ``MAX_WIDTH``, padding filters and methods (center,
  ljust, indent …), joins and replaces that would grow past ``MAX_VALUE``: refused;
  these operators are never folded into constants at compile time, so
  ``{{ 9**(9**9) }}`` cannot hang the loading of a config either;
* ``render`` stops at ``Limits.max_output`` characters and at ``Limits.time_s``
  (checked at every call, loop iteration, operator and output chunk) with
  ``RenderLimit``, a ``TemplateError``.

``problems`` checks a template at plan time: its syntax, the names it uses that its
context does not define (``jinja2.meta``), and a trial render against a sample.
Shared by the reconciler (``atlas validate``) and the monitoring agent, so both say
the same thing about the same template.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, pass_context, pass_eval_context

from seams.resources import ALERT_TEMPLATE_DIR

MAX_ITEMS = 10_000  # range() and iterations of one loop
MAX_VALUE = 100_000  # characters of one string, items of one list
MAX_INT_BITS = 4_096
MAX_WIDTH = 1_000  # printf / format widths and precisions, padding widths
ANNOTATION_NAMES = frozenset({"labels", "value"})
MESSAGE_NAMES = frozenset(
    {"status", "rule", "receiver", "environment", "test", "externalURL", "groupLabels",
     "commonLabels", "commonAnnotations", "alerts", "firing", "resolved"}
)  # fmt: skip
_LOOP_FILTER = "atlas_bounded_loop"
_PRINTF = re.compile(r"%[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
_FIELD = re.compile(r"\{[^{}]*\}")


class RenderLimit(jinja2.TemplateError):
    """A template went over one of its limits; the message says which."""


@dataclass(frozen=True)
class Limits:
    time_s: float
    max_output: int  # characters


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("atlas_template_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise RenderLimit("rendering took longer than its time budget")


def _sized(value: Any, what: str) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_VALUE:
        raise RenderLimit(f"{what} of {len(value)} items exceeds the limit of {MAX_VALUE}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"{what}: a number beyond {MAX_INT_BITS} bits")
    return value


def _grows(n: int, what: str) -> None:
    if n > MAX_VALUE:
        raise RenderLimit(f"{what} of {n} items exceeds the limit of {MAX_VALUE}")


def _width(n: Any, what: str) -> None:
    if isinstance(n, int) and n > MAX_WIDTH:
        raise RenderLimit(f"{what} of {n} exceeds the limit of {MAX_WIDTH}")


def _check_format(fmt: str, printf: bool) -> None:
    if printf:
        for width, precision in _PRINTF.findall(fmt):
            if "*" in (width, precision):
                raise RenderLimit("a '*' width in a % format is not allowed")
            for part in (width, precision):
                _width(int(part) if part else 0, "a % format width")
        return
    for match in _FIELD.findall(fmt):
        for digits in re.findall(r"\d+", match.partition(":")[2]):
            _width(int(digits), "a format width")


def _huge_power(base: Any, exponent: Any) -> bool:
    if not (isinstance(base, int) and isinstance(exponent, int)):
        return False
    return exponent > 0 and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS


def _bounded_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise RenderLimit(f"range of {len(r)} items exceeds the limit of {MAX_ITEMS}")
    return r


@pass_context
def _bounded_loop(_context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """What every ``for`` loop iterates: the items, counted and timed."""
    for count, item in enumerate(iterable, 1):
        if count > MAX_ITEMS:
            raise RenderLimit(f"a loop ran more than {MAX_ITEMS} times")
        _tick()
        yield item


class _Namespace(Namespace):
    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _sized(value, f"namespace value {name!r}"))


_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _check_str_method(obj: Any, args: tuple[Any, ...]) -> None:
    """Refuse str methods whose result would be far larger than their inputs."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _STR_WIDTH_METHODS and args:
        _width(args[0], f"str.{name} width")
    elif name == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        grown = len(owner) + (owner.count(old) if old else len(owner) + 1) * len(new)
        _grows(grown, "str.replace result")
    elif name == "join" and args and isinstance(args[0], str | list | tuple):
        _grows(len(owner) * len(args[0]), "str.join result")


class Bounded(ImmutableSandboxedEnvironment):
    """The bounded sandbox (module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.globals.update(range=_bounded_range, namespace=_Namespace)
        self.filters[_LOOP_FILTER] = _bounded_loop
        self.filters.update(_bounded_filters(self.filters))

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            at = loop.lineno
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=at)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**" and _huge_power(left, right):
            raise RenderLimit(f"{left} ** {right} is beyond {MAX_INT_BITS} bits")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    _grows(len(seq) * max(n, 0), "a repetition")
        if operator == "%" and isinstance(left, str):
            _check_format(left, printf=True)
        result = super().call_binop(context, operator, left, right)
        return _sized(result, f"the result of {operator}")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_str_method(__obj, args)
        for arg in (*args, *kwargs.values()):
            _sized(arg, "an argument")
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and isinstance(getattr(value, "__self__", None), str):
            _check_format(value.__self__, printf=False)
        return wrapped


def _bounded_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """The built-in filters that can grow a value, with their growth checked first."""
    center, indent, fmt, join, replace = (
        filters[n] for n in ("center", "indent", "format", "join", "replace")
    )

    def b_center(value: Any, width: int = 80) -> str:
        _width(width, "center width")
        return str(center(value, width))

    def b_indent(s: Any, width: int | str = 4, *args: Any, **kwargs: Any) -> str:
        _width(width if isinstance(width, int) else len(width), "indent width")
        return str(_sized(indent(s, width, *args, **kwargs), "indent result"))

    def b_format(value: Any, *args: Any, **kwargs: Any) -> str:
        _check_format(str(value), printf=True)
        return str(fmt(value, *args, **kwargs))

    @pass_eval_context
    def b_join(ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        return str(_sized(join(ctx, value, d, attribute), "join result"))

    @pass_eval_context
    def b_replace(ctx: Any, s: Any, old: str, new: str, count: int | None = None) -> str:
        text = str(s)
        grown = len(text) + (text.count(old) if old else len(text) + 1) * len(str(new))
        _grows(grown, "replace result")
        return str(replace(ctx, s, old, new, count))

    return {"center": b_center, "indent": b_indent, "format": b_format, "join": b_join,
            "replace": b_replace}  # fmt: skip


def render(template: jinja2.Template, context: Mapping[str, Any], limits: Limits) -> str:
    """``template`` rendered within ``limits``; RenderLimit when it goes over one."""
    token = _budget.set(_Budget(time.monotonic() + limits.time_s))
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > limits.max_output:
                raise RenderLimit(f"output longer than {limits.max_output} characters")
            _tick()
            out.append(chunk)
        return "".join(out)
    finally:
        _budget.reset(token)


def problems(
    env: Bounded, text: str, names: Iterable[str], sample: Mapping[str, Any], limits: Limits
) -> str | None:
    """What is wrong with template ``text`` (None: nothing): a syntax error, a name its
    context lacks, or a limit its trial render against ``sample`` goes over."""
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"template error on line {exc.lineno}: {exc.message}"
    unknown = sorted(meta.find_undeclared_variables(tree) - set(names) - set(env.globals))
    if unknown:
        known = ", ".join(sorted(names))
        return f"unknown name {', '.join(map(repr, unknown))} (a template here sees {known})"
    try:
        render(env.from_string(tree), sample, limits)  # compiled from the parsed tree
    except RenderLimit as exc:
        return f"template goes over its limits: {exc}"
    except Exception:  # noqa: BLE001, S110 - other failures depend on the data; render decides
        pass
    return None


# ------------------------------------------------------------------ the alert templates

# one annotation: a line or two; one message: every alert of a group (HTML email)
ANNOTATION_LIMITS = Limits(time_s=0.25, max_output=16 * 1024)
MESSAGE_LIMITS = Limits(time_s=2.0, max_output=1024 * 1024)
_SAMPLE_LABELS = {"alertname": "r", "severity": "warning"}


@cache
def annotation_env() -> Bounded:
    """Annotations see ``labels`` and ``value``; a missing label renders empty."""
    return Bounded(undefined=jinja2.Undefined, autoescape=False)


@cache
def message_env(autoescape: bool, finalize: Callable[[Any], Any] | None = None) -> Bounded:
    """Messages (templates/alerts/ and channel overrides): StrictUndefined; ``finalize``
    escapes every ``{{ value }}`` for a format that autoescape does not know (Slack)."""
    return Bounded(
        loader=jinja2.FileSystemLoader(str(ALERT_TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _sample_alert(status: str) -> dict[str, Any]:
    return {"status": status, "labels": dict(_SAMPLE_LABELS), "annotations": {"summary": "s"},
            "startsAt": "1970-01-01T00:00:00Z", "endsAt": "", "value": "1",
            "fingerprint": "0" * 16, "generatorURL": "http://atlas.invalid"}  # fmt: skip


def message_sample() -> dict[str, Any]:
    """A notification's context as messages see it (one firing, one resolved alert)."""
    alerts = [_sample_alert("firing"), _sample_alert("resolved")]
    return {"status": "firing", "rule": "r", "receiver": "c", "environment": "e",
            "test": False, "externalURL": "http://atlas.invalid", "groupLabels": {},
            "commonLabels": dict(_SAMPLE_LABELS), "commonAnnotations": {},
            "alerts": alerts, "firing": alerts[:1], "resolved": alerts[1:]}  # fmt: skip


def annotation_problem(text: str) -> str | None:
    sample = {"labels": dict(_SAMPLE_LABELS), "value": 1.0}
    return problems(annotation_env(), text, ANNOTATION_NAMES, sample, ANNOTATION_LIMITS)


def message_problem(text: str, html: bool = False) -> str | None:
    env = message_env(html)
    return problems(env, text, MESSAGE_NAMES, message_sample(), MESSAGE_LIMITS)
