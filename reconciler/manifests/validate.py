"""Validate manifests: structure, overlays, JSON Schema, and cross-references.

For one environment, ``assemble`` takes the documents of ``base/`` and of
``environments/<env>/``, checks each document's envelope (a mapping with a known
apiVersion, kind and a valid name), merges overlays (same kind and name: maps merge
deeply, lists replace), validates every merged manifest against its kind's schema,
then checks what no schema can: references between manifests, paths that must stay
inside the repository, one Deployment per component, ports that collide.

Every problem is collected and reported with file, line, Kind/name and what was
expected; nothing here raises for bad input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import Problem
from reconciler.manifests import ranges as settingsrules
from reconciler.manifests.load import Document, Limits, Mark, PathKey, RepoDocuments
from reconciler.manifests.migrate import SUPERSEDED
from reconciler.manifests.schemacheck import Check, Unsupported, compile_schema
from seams.resources import SCHEMA_DIR

if TYPE_CHECKING:  # imported when a document fails the fast check (see validator_for)
    import jsonschema

API_VERSION = "atlas/v1"
KIND_SCHEMAS = {
    "Source": "source.json",
    "AlertChannel": "alertchannel.json",
    "AlertRule": "alertrule.json",
    "Environment": "environment.json",
    "Deployment": "deployment.json",
    "BackupPolicy": "backuppolicy.json",
    "Secrets": "secrets.json",
}
# Kinds that exist once per environment and only in environments/<env>/.
ENVIRONMENT_ONLY_KINDS = ("Environment", "Secrets")
# Older apiVersions we know of, and what to tell the operator about them (migrate.py).
SUPERSEDED_API_VERSIONS: dict[str, str] = dict(SUPERSEDED)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SELECTOR = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<matchers>.*)\})?$", re.S)
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(,|$)'
)


@dataclass(frozen=True)
class Manifest:
    """One manifest after overlays: the merged data and where each part came from."""

    kind: str
    name: str
    data: dict[str, Any]
    file: str  # where the document was first defined (the base file for an overlay)
    line: int
    marks: dict[PathKey, Mark] = field(repr=False, compare=False)
    overlaid_by: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    def mark(self, path: PathKey) -> Mark:
        p = tuple(path)
        while p:
            found = self.marks.get(p)
            if found is not None:
                return found
            p = p[:-1]
        return (self.file, self.line)

    def problem(self, path: PathKey, message: str) -> Problem:
        file, line = self.mark(path)
        return Problem(file, line, self.ref, message)


@dataclass(frozen=True)
class EnvManifests:
    """The valid manifests of one environment, and every problem found assembling them."""

    environment: str
    manifests: tuple[Manifest, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def get(self, kind: str, name: str) -> Manifest | None:
        for m in self.manifests:
            if m.kind == kind and m.name == name:
                return m
        return None


# --------------------------------------------------------------------------- schemas


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace ``$ref``s to common.json definitions by the definitions themselves.

    The schemas keep their refs for editors; validating against a bundled copy
    spares jsonschema a reference lookup per field (more than half its time).
    A field's own keywords override the definition's, except ``description``: the
    definition's says what is expected, which is what an error message needs.
    """
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.split("#")[0] in ("", "common.json") and "/$defs/" in ref:
        merged = dict(_inline(defs[ref.rsplit("/", 1)[1]], defs))
        for key, value in node.items():
            if key != "$ref" and not (key == "description" and "description" in merged):
                merged[key] = _inline(value, defs)
        return merged
    return {k: _inline(v, defs) for k, v in node.items()}


@cache
def bundled_schema(kind: str) -> dict[str, Any]:
    """The kind's schema with every reference to common.json inlined."""
    common = json.loads((SCHEMA_DIR / "v1" / "common.json").read_text(encoding="utf-8"))
    schema = json.loads((SCHEMA_DIR / "v1" / KIND_SCHEMAS[kind]).read_text(encoding="utf-8"))
    inlined: dict[str, Any] = _inline(schema, common["$defs"])
    return inlined


@cache
def validator_for(kind: str) -> jsonschema.protocols.Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(bundled_schema(kind))


@cache
def fast_check_for(kind: str) -> Check | None:
    """A compiled yes/no check of the kind's schema, or None if it cannot be compiled."""
    try:
        return compile_schema(bundled_schema(kind))
    except Unsupported:
        return None


def _field(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _expected(error: jsonschema.ValidationError) -> str:
    """What the failing (sub)schema asks for, from its description."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    desc = schema.get("description")
    return desc if isinstance(desc, str) else f"a value valid for {error.validator}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_problems(manifest: Manifest) -> list[Problem]:
    fast = fast_check_for(manifest.kind)
    if fast is not None and fast(manifest.data):
        return []  # valid: no need for jsonschema's slower, explaining walk
    problems = []
    validator = validator_for(manifest.kind)
    for error in validator.iter_errors(manifest.data):
        problems.extend(_explain(manifest, error))
    return problems


def _explain(manifest: Manifest, error: jsonschema.ValidationError) -> list[Problem]:
    path: PathKey = tuple(error.absolute_path)
    where = _field(path)
    v = error.validator
    # jsonschema types these loosely; they are plain JSON values here.
    schema: Any = error.schema
    value: Any = error.validator_value
    instance: Any = error.instance
    if v == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in sorted(k for k in instance if k not in allowed):
            out.append(
                manifest.problem(
                    (*path, key),
                    f"{where}: unknown field {key!r}; expected one of: {', '.join(allowed)}",
                )
            )
        return out
    if v == "required":
        missing = [k for k in value if k not in instance]
        return [manifest.problem(path, f"{where}: missing required field {k!r}") for k in missing]
    if v == "enum":
        options = ", ".join(str(o) for o in value)
        hint = ""
        if isinstance(instance, bool) and {"no", "yes", "on", "off"} & set(value):
            hint = " (YAML reads a bare yes/no/on/off as true/false: quote it)"
        elif isinstance(instance, str):
            close = [o for o in value if isinstance(o, str) and o.startswith(instance.lower())]
            if len(close) == 1 and close[0] != instance:
                hint = f" (did you mean {close[0]}?)"
        return [
            manifest.problem(
                path, f"{where}: expected one of {options}; got {_show(instance)}{hint}"
            )
        ]
    if v == "not" and value == {}:
        spec_type = manifest.spec.get("type")
        return [
            manifest.problem(
                path, f"{where}: field {path[-1]!r} does not apply to type {spec_type!r}"
            )
        ]
    if v == "oneOf" and all(isinstance(s, dict) and set(s) == {"required"} for s in value):
        names = " or ".join(s["required"][0] for s in value)
        return [manifest.problem(path, f"{where}: expected exactly one of {names}")]
    if v == "propertyNames":
        bad = instance if isinstance(instance, str) else None
        return [
            manifest.problem(
                path, f"{where}: invalid key {_show(bad)}: expected {_expected(error)}"
            )
        ]
    if v in {
        "type",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "const",
    }:
        return [
            manifest.problem(path, f"{where}: expected {_expected(error)}; got {_show(instance)}")
        ]
    return [manifest.problem(path, f"{where}: {error.message}")]


# --------------------------------------------------------------------------- envelope


def _envelope_problems(doc: Document) -> list[Problem]:
    """Problems that make a document unusable before any merging."""
    data = doc.data
    if not isinstance(data, dict):
        what = type(data).__name__ if data is not None else "nothing"
        return [
            Problem(
                doc.file,
                doc.line,
                "",
                f"expected a mapping with apiVersion, kind, metadata and spec; got a {what}",
            )
        ]
    problems = []
    api = data.get("apiVersion")
    kind = data.get("kind")
    ref = doc.ref
    if api is None:
        problems.append(
            Problem(doc.file, doc.line, ref, f"missing apiVersion: expected {API_VERSION}")
        )
    elif api != API_VERSION:
        hint = SUPERSEDED_API_VERSIONS.get(str(api))
        file, line = doc.mark(("apiVersion",))
        problems.append(
            Problem(file, line, ref, hint or f"unknown apiVersion {api!r}: expected {API_VERSION}")
        )
    if kind is None:
        problems.append(
            Problem(
                doc.file, doc.line, ref, f"missing kind: expected one of {', '.join(KIND_SCHEMAS)}"
            )
        )
    elif kind not in KIND_SCHEMAS:
        file, line = doc.mark(("kind",))
        problems.append(
            Problem(
                file,
                line,
                ref,
                f"unknown kind {_show(kind)}: expected one of {', '.join(KIND_SCHEMAS)}",
            )
        )
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(meta, dict):
        problems.append(
            Problem(doc.file, doc.line, ref, "missing metadata: expected a mapping with a name")
        )
    elif name is None:
        file, line = doc.mark(("metadata",))
        problems.append(Problem(file, line, ref, "metadata.name is missing: expected a DNS label"))
    elif not isinstance(name, str) or not _NAME.match(name):
        file, line = doc.mark(("metadata", "name"))
        problems.append(
            Problem(
                file,
                line,
                ref,
                f"invalid name {_show(name)}: expected a DNS label (lowercase letters, digits "
                "and '-', starting and ending with a letter or digit, at most 63 characters)",
            )
        )
    return problems


# --------------------------------------------------------------------------- merging


def deep_merge(base: Any, overlay: Any) -> Any:
    """Maps merge key by key, recursively; anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return overlay


def _manifest(doc: Document) -> Manifest:
    return Manifest(doc.kind, doc.name, doc.data, doc.file, doc.line, dict(doc.marks))


def _overlay(base: Manifest, doc: Document) -> Manifest:
    marks = dict(base.marks)
    marks.update(doc.marks)
    return Manifest(
        base.kind,
        base.name,
        deep_merge(base.data, doc.data),
        base.file,
        base.line,
        marks,
        (*base.overlaid_by, doc.file),
    )


def _collect(
    docs: list[Document], problems: list[Problem], where: str
) -> dict[tuple[str, str], Manifest]:
    found: dict[tuple[str, str], Manifest] = {}
    for doc in docs:
        bad = _envelope_problems(doc)
        if bad:
            problems.extend(bad)
            continue
        key = (doc.kind, doc.name)
        if key in found:
            first = found[key]
            problems.append(
                Problem(
                    doc.file,
                    doc.line,
                    doc.ref,
                    f"duplicate {doc.ref} in {where} (first defined at {first.file}:{first.line})",
                )
            )
            continue
        found[key] = _manifest(doc)
    return found


# --------------------------------------------------------------------------- assembling


def environment_names(repo: RepoDocuments) -> list[str]:
    return sorted(repo.environments)


def assemble(repo: RepoDocuments, env: str, limits: Limits | None = None) -> EnvManifests:
    """Merge base/ with environments/<env>/ and validate the result."""
    problems: list[Problem] = list(repo.problems)
    if env not in repo.environments:
        known = ", ".join(environment_names(repo)) or "none"
        problems.append(
            Problem("environments", 0, "", f"unknown environment {env!r}: expected one of {known}")
        )
        return EnvManifests(env, (), tuple(sorted(set(problems))))

    base = _collect(repo.base, problems, "base/")
    for (kind, _name), m in list(base.items()):
        if kind in ENVIRONMENT_ONLY_KINDS:
            problems.append(m.problem((), f"a {kind} belongs in environments/<env>/, not in base/"))
            del base[(kind, _name)]
    overlays = _collect(repo.environments[env], problems, f"environments/{env}/")

    merged = dict(base)
    for key, m in overlays.items():
        if key in merged:
            doc = next(d for d in repo.environments[env] if (d.kind, d.name) == key)
            merged[key] = _overlay(merged[key], doc)
        else:
            merged[key] = m

    valid: list[Manifest] = []
    for m in merged.values():
        bad = _schema_problems(m)
        problems.extend(bad)
        if not bad:
            valid.append(m)

    problems.extend(
        _reference_problems(repo.root, env, list(merged.values()), valid, limits or Limits())
    )
    ordered = tuple(sorted(valid, key=lambda m: (list(KIND_SCHEMAS).index(m.kind), m.name)))
    return EnvManifests(env, ordered, tuple(sorted(set(problems))))


def _reference_problems(
    root: Path, env: str, every: list[Manifest], valid: list[Manifest], limits: Limits
) -> list[Problem]:
    problems: list[Problem] = []
    names: dict[str, set[str]] = {}
    for m in every:
        names.setdefault(m.kind, set()).add(m.name)

    envs = [m for m in every if m.kind == "Environment"]
    if not envs:
        problems.append(
            Problem(
                f"environments/{env}",
                0,
                "",
                f"no Environment document: expected one named {env!r} in environments/{env}/",
            )
        )
    for m in envs:
        if m.name != env:
            problems.append(
                m.problem(
                    ("metadata", "name"),
                    f"the Environment in environments/{env}/ must be named {env!r}",
                )
            )
    environment = next((m for m in valid if m.kind == "Environment"), None)

    secret_names: set[str] | None = None
    # The Secrets document is found even when the Environment has other problems, so
    # a bad port does not also produce "no Secrets document" for every secret reference.
    named = next((m for m in every if m.kind == "Environment" and m.name == env), None)
    wanted = named.spec.get("secrets") if named else None
    secrets_doc_name = wanted if isinstance(wanted, str) else None
    secrets_docs = [m for m in every if m.kind == "Secrets"]
    if secrets_doc_name:
        doc = next((m for m in secrets_docs if m.name == secrets_doc_name), None)
        if doc is None:
            assert named is not None
            problems.append(
                named.problem(
                    ("spec", "secrets"),
                    f"spec.secrets: no Secrets document named {secrets_doc_name!r} "
                    f"in environments/{env}/",
                )
            )
        else:
            data = doc.spec.get("data")
            secret_names = set(data) if isinstance(data, dict) else set()
    for m in secrets_docs:
        if m.name != secrets_doc_name:
            problems.append(
                m.problem(
                    (),
                    f"this Secrets document is not used: the Environment's spec.secrets names "
                    f"{secrets_doc_name!r}"
                    if secrets_doc_name
                    else "this Secrets document is not used: "
                    "set spec.secrets of the Environment to its name",
                )
            )

    def need_secret(m: Manifest, path: PathKey, secret: Any) -> None:
        if not isinstance(secret, str):
            return
        if secret_names is None:
            problems.append(
                m.problem(
                    path,
                    f"{_field(path)}: refers to secret {secret!r} but environment "
                    f"{env!r} has no Secrets document (set spec.secrets of its Environment)",
                )
            )
        elif secret not in secret_names:
            known = ", ".join(sorted(secret_names)) or "none"
            problems.append(
                m.problem(
                    path,
                    f"{_field(path)}: no secret named {secret!r} in environment "
                    f"{env!r} (its secrets: {known})",
                )
            )

    components: dict[str, Manifest] = {}
    for m in valid:
        spec = m.spec
        if m.kind == "AlertRule":
            for i, channel in enumerate(spec.get("channels", [])):
                if channel not in names.get("AlertChannel", set()):
                    known = ", ".join(sorted(names.get("AlertChannel", set()))) or "none"
                    problems.append(
                        m.problem(
                            ("spec", "channels", i),
                            f"spec.channels[{i}]: no AlertChannel named {channel!r} "
                            f"(known: {known})",
                        )
                    )
            bad = selector_problem(spec.get("metric", ""))
            if bad:
                problems.append(m.problem(("spec", "metric"), f"spec.metric: {bad}"))
        elif m.kind == "AlertChannel":
            for block in ("email", "webhook", "slack"):
                settings = spec.get(block)
                if isinstance(settings, dict):
                    for key, value in settings.items():
                        if key.endswith("Secret"):
                            need_secret(m, ("spec", block, key), value)
        elif m.kind == "BackupPolicy":
            if spec.get("encrypt"):
                need_secret(m, ("spec", "encryptionKeySecret"), spec.get("encryptionKeySecret"))
        elif m.kind == "Environment":
            webhook = spec.get("reconciler", {}).get("webhookSecret")
            if webhook is not None:
                need_secret(m, ("spec", "reconciler", "webhookSecret"), webhook)
        elif m.kind == "Source" and spec.get("type") == "file":
            problems.extend(_path_problems(root, m, limits))
        elif m.kind == "Deployment":
            component = spec["component"]
            if component in components:
                first = components[component]
                problems.append(
                    m.problem(
                        ("spec", "component"),
                        f"spec.component: a second Deployment of {component!r} "
                        f"(first: {first.ref} at {first.file}:{first.line})",
                    )
                )
            components[component] = m
            if component == "services":
                if spec.get("replicas", 1) != 1:
                    problems.append(
                        m.problem(
                            ("spec", "replicas"),
                            "spec.replicas: the services component runs as one "
                            "scheduled job; expected 1",
                        )
                    )
                if "http" in spec.get("healthCheck", {}):
                    problems.append(
                        m.problem(
                            ("spec", "healthCheck", "http"),
                            "spec.healthCheck.http: the services component is a "
                            "scheduled job with no HTTP endpoint",
                        )
                    )
    backups = [m for m in valid if m.kind == "BackupPolicy"]
    for extra in backups[1:]:
        problems.append(
            extra.problem(
                (), f"a second BackupPolicy (first: {backups[0].ref}); expected at most one"
            )
        )
    if environment is not None:
        problems.extend(_port_problems(environment))
        core = components.get("core")
        if core is not None:
            problems.extend(_replica_port_problems(environment, core))
        problems.extend(
            environment.problem(path, message)
            for path, message in settingsrules.problems(environment.spec)
        )
    return problems


def _path_problems(root: Path, m: Manifest, limits: Limits) -> list[Problem]:
    rel = m.spec.get("path", "")
    target = (root / rel).resolve()
    try:
        target.relative_to(root.resolve())
    except ValueError:
        return [m.problem(("spec", "path"), f"spec.path: {rel!r} points outside the repository")]
    if not target.is_file():
        return [m.problem(("spec", "path"), f"spec.path: no file {rel!r} in the repository")]
    size = target.stat().st_size
    if size > limits.max_file_bytes:
        return [
            m.problem(
                ("spec", "path"),
                f"spec.path: {rel!r} is {size} bytes; the limit is {limits.max_file_bytes}",
            )
        ]
    return []


DEFAULT_PORTS = {
    ("api", "port"): 8080,
    ("core", "metricsPort"): 9101,
    ("monitoring", "metricsPort"): 9102,
    ("reconciler", "metricsPort"): 9110,
}


def _port_problems(environment: Manifest) -> list[Problem]:
    """Two components on one port: reported at the port that was set explicitly."""
    spec = environment.spec
    seen: dict[int, tuple[str, bool, PathKey]] = {}
    problems = []
    for (section, key), default in DEFAULT_PORTS.items():
        block = spec.get(section, {})
        explicit = key in block
        port = block.get(key, default)
        here = (f"spec.{section}.{key}", explicit, ("spec", section, key))
        if port in seen:
            first = seen[port]
            at, other = (here, first) if here[1] or not first[1] else (first, here)
            other_name = other[0] + ("" if other[1] else f" (default {port})")
            problems.append(
                environment.problem(
                    at[2] if at[1] else ("spec",),
                    f"{at[0]}: port {port} is already used by {other_name}",
                )
            )
        seen[port] = here
    return problems


def _replica_port_problems(environment: Manifest, core: Manifest) -> list[Problem]:
    """Core replica N serves metrics on metricsPort + N - 1: that range must be free."""
    replicas = core.spec.get("replicas", 1)
    spec = environment.spec
    base = spec.get("core", {}).get("metricsPort", DEFAULT_PORTS[("core", "metricsPort")])
    taken = {
        spec.get(section, {}).get(key, default): f"spec.{section}.{key}"
        for (section, key), default in DEFAULT_PORTS.items()
        if section != "core"
    }
    for port in range(base + 1, base + replicas):
        if port in taken:
            return [
                core.problem(
                    ("spec", "replicas"),
                    f"spec.replicas: {replicas} core replicas serve metrics on ports "
                    f"{base}-{base + replicas - 1}, but {port} is {taken[port]} of "
                    f"Environment/{environment.name}",
                )
            ]
    return []


def parse_selector(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """``name{label="v",other=~"re"}`` → (name, [(label, op, value)]); ValueError when malformed."""
    match = _SELECTOR.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f'expected a metric selector like name{{label="value"}}; got {text!r}')
    matchers: list[tuple[str, str, str]] = []
    body = match.group("matchers")
    if body is not None and body.strip():
        pos = 0
        while pos < len(body):
            m = _MATCHER.match(body, pos)
            if not m or m.end() == pos:
                raise ValueError(
                    f"cannot read label matcher at {body[pos : pos + 20]!r}: expected "
                    'label="value" (operators = != =~ !~), separated by commas'
                )
            value = m.group("value").encode().decode("unicode_escape")
            if m.group("op") in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
            matchers.append((m.group("label"), m.group("op"), value))
            pos = m.end()
    return match.group("name"), matchers


def selector_problem(text: str) -> str | None:
    try:
        parse_selector(text)
    except ValueError as exc:
        return str(exc)
    return None


def validate_repository(
    repo: RepoDocuments, envs: Iterable[str] | None = None, limits: Limits | None = None
) -> dict[str, EnvManifests]:
    """Assemble each environment (all of them when ``envs`` is None)."""
    chosen = list(envs) if envs is not None else environment_names(repo)
    return {env: assemble(repo, env, limits) for env in chosen}


def all_problems(results: Mapping[str, EnvManifests], repo: RepoDocuments) -> list[Problem]:
    found = set(repo.problems)
    for result in results.values():
        found.update(result.problems)
    if not results and not repo.problems:
        found.add(
            Problem("environments", 0, "", "no environments: expected environments/<name>/ folders")
        )
    return sorted(found)
