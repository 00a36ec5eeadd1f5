"""The steps a blue-green rollout will take, in words, for plans (``--dry-run``,
``atlas plan``): pure, from the Deployment's strategy as rendered."""

from __future__ import annotations

from reconciler.model import AnalysisMetric, BlueGreen


def _metric(m: AnalysisMetric) -> str:
    bounds = []
    if m.max is not None:
        bounds.append(f"{m.max:g}")
    if m.max_over_stable is not None:
        bounds.append(f"stable + {m.max_over_stable:g}")
    if m.max_ratio_to_stable is not None:
        bounds.append(f"{m.max_ratio_to_stable:g} x stable")
    return f"{m.name} <= {' and '.join(bounds) or 'anything'}"


def describe(bg: BlueGreen, template: str, replicas: int, version: str | None) -> str:
    """One line: start beside, analyse, promote, switch, stop."""

    def units(first: int) -> str:
        return ", ".join(template.replace("@.", f"@{n}.") for n in range(first, first + replicas))

    a = bg.analysis
    promote = "automatically" if bg.auto_promote else "after atlas rollout promote"
    return (
        f"blueGreen to {version or 'the new version'}: start {units(replicas + 1)} beside "
        f"the stable replicas (weight 50%); pre-promotion analysis {a.count} x "
        f"{a.interval_s:g}s ({'; '.join(_metric(m) for m in a.metrics)}; failureLimit "
        f"{a.failure_limit}); promote {promote}; old replicas keep serving "
        f"{bg.scale_down_delay_s:g}s; restart {units(1)} (weight 100%); stop "
        f"{units(replicas + 1)}; any failure aborts back to the stable replicas"
    )
