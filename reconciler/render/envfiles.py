"""Env files (``<config>/<component>.env``, mode 0600): the secrets a component needs,
as ``ATLAS_SECRET_<NAME>`` variables, from ``templates/env.j2``.

A sealed secret (no key on this machine: a pull-request plan) is written as its
digest, never as its token, and the file lists every secret's keyed digest so plans
can say "secret X changed" without comparing values.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.render.desired import DesiredFile
from reconciler.render.inputs import Inputs
from reconciler.render.text import env_quote, secret_variable, short_hash, template


def env_text(environment: str, unit: str, variables: Iterable[tuple[str, str]]) -> bytes:
    """The env file: ``templates/env.j2``'s header, then one ``NAME="value"`` per
    variable exactly as ``seams.envfile`` quotes it. The values do not go through the
    template's line tidying, which would drop a blank line or trailing blanks inside
    a multi-line value and turn a carriage return into a newline."""
    header = template("env.j2", environment=environment, unit=unit).decode()
    lines = [f"{name}={env_quote(value)}" for name, value in variables]
    return (header + "".join(line + "\n" for line in lines)).encode()


def env_file(i: Inputs, component: str, unit: str, secrets: Iterable[str]) -> DesiredFile:
    variables = []
    digests = {}
    for name in sorted(set(secrets)):
        value = i.desired.secrets[name]
        digests[name] = value.digest
        variables.append(
            (secret_variable(name), value.reveal() if not value.sealed else value.digest)
        )
    content = env_text(i.settings.name, unit, variables)
    return DesiredFile(i.env_path(component), content, 0o600, "env", component, digests)


def digest_of(env: DesiredFile) -> str:
    """One hash of an env file's secrets, for the restart trigger of its readers."""
    return short_hash(*(f"{k}={v}" for k, v in sorted(env.secret_digests.items())))
