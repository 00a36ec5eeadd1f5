"""A plan as text (terminals), JSON (tools) and Markdown (pull-request comments).

Env files are never diffed: their entries list secret names and what happened to
them ("secret smtp_password changed"), decided by keyed digests.
"""

from __future__ import annotations

import json
from collections import Counter

from reconciler.actions import Plan, WriteFile
from reconciler.errors import Problem

_SYMBOL = {
    "install-release": "⇣",
    "write": "~",
    "remove": "-",
    "mkdir": "+",
    "daemon-reload": "*",
    "stop": "■",
    "disable": "○",
    "reload": "↻",
    "restart": "⟳",
    "start": "▶",
    "enable": "●",
    "prune-release": "✗",
}


def _verb(action_verb: str, created: bool) -> str:
    return "create" if action_verb == "write" and created else action_verb


def summary(plan: Plan) -> str:
    if plan.empty:
        return "no changes"
    counts = Counter(_verb(a.verb, isinstance(a, WriteFile) and a.created) for a in plan.actions)
    return ", ".join(f"{n} {verb}" for verb, n in counts.items())


def as_text(plan: Plan, diffs: bool = True) -> str:
    head = f"Plan for environment {plan.environment} at {plan.revision.short or 'unknown revision'}"
    if plan.empty:
        return f"{head}: no changes; the host matches the desired state.\n"
    lines = [f"{head}: {len(plan.actions)} actions ({summary(plan)})"]
    for a in plan.actions:
        created = isinstance(a, WriteFile) and a.created
        symbol = "+" if created else _SYMBOL.get(a.verb, "?")
        target = f" {a.target}" if a.target else ""
        lines.append(f"  {symbol} {_verb(a.verb, created):<13}{target}  ({a.reason})")
    if diffs:
        for change in plan.changes:
            if change.sensitive:
                if change.secrets:
                    lines.append(f"\n{change.path} (secrets; values not shown):")
                    lines += [f"  secret {name} {what}" for name, what in change.secrets]
                else:
                    lines.append(
                        f"\n{change.path} (secrets; values not shown): rewritten, same secrets"
                    )
            elif change.diff:
                lines.append("")
                lines.append(change.diff.rstrip("\n"))
    return "\n".join(lines) + "\n"


def as_dict(plan: Plan) -> dict[str, object]:
    return {
        "environment": plan.environment,
        "revision": {
            "sha": plan.revision.sha,
            "ref": plan.revision.ref,
            "origin": plan.revision.origin,
            "subject": plan.revision.subject,
        },
        "changes": not plan.empty,
        "summary": summary(plan),
        "actions": [a.as_dict() for a in plan.actions],
        "files": [
            {
                "path": str(c.path),
                "sensitive": c.sensitive,
                "diff": None if c.sensitive else c.diff,
                "secrets": [{"name": n, "change": w} for n, w in c.secrets],
            }
            for c in plan.changes
        ],
    }


def as_json(plan: Plan) -> str:
    return json.dumps(as_dict(plan), indent=2, ensure_ascii=False) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def as_markdown(plan: Plan, problems: list[Problem] | None = None, title: str | None = None) -> str:
    rev = plan.revision
    out = [f"### {title or 'Atlas plan'}: `{plan.environment}` at `{rev.short or 'unknown'}`", ""]
    if problems:
        out += [f"**{len(problems)} validation error(s)** — this revision cannot be applied:", ""]
        out += [
            f"- `{p.file}:{p.line}` {p.ref + ': ' if p.ref else ''}{_md_escape(p.message)}"
            for p in problems
        ]
        out.append("")
        return "\n".join(out) + "\n"
    if plan.empty:
        out.append("No changes: merging this leaves every host of the environment as it is.")
        return "\n".join(out) + "\n"
    out += [
        f"**{len(plan.actions)} actions**: {summary(plan)}",
        "",
        "| # | action | target | reason |",
        "|---:|---|---|---|",
    ]
    for i, a in enumerate(plan.actions, 1):
        created = isinstance(a, WriteFile) and a.created
        target = f"`{a.target}`" if a.target else ""
        out.append(f"| {i} | {_verb(a.verb, created)} | {target} | {_md_escape(a.reason)} |")
    secrets = [(c.path, n, w) for c in plan.changes if c.sensitive for n, w in c.secrets]
    if secrets:
        out += ["", "**Secrets** (values never shown):", ""]
        out += [f"- `{name}` {what} (`{path}`)" for path, name, what in secrets]
    diffs = [c for c in plan.changes if not c.sensitive and c.diff]
    for c in diffs:
        fence = "````" if "```" in c.diff else "```"
        out += [
            "",
            f"<details><summary>diff of <code>{c.path}</code></summary>",
            "",
            f"{fence}diff",
            c.diff.rstrip("\n"),
            fence,
            "",
            "</details>",
        ]
    return "\n".join(out) + "\n"
