"""An environment's Secrets document as a file to edit (the ``atlas secrets`` commands).

``open_document`` finds ``environments/<env>/``'s Environment document and the
Secrets document its ``spec.secrets`` names, and loads that file for a round-trip
edit (comments, order and quoting kept; see yamledit.py). With ``create=True`` an
environment without secrets gets ``environments/<env>/secrets.yaml`` holding a
Secrets document named ``<env>-secrets``, and its Environment's ``spec.secrets`` is
set to that name. ``save`` writes the Secrets file first, then the Environment file,
each atomically.

Only tokens (encrypted values) pass through here; nothing here sees a key or a value.
Errors are ``SecretsError`` naming the environment, or ``ManifestError`` for a file
that cannot be parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import SecretsError
from reconciler.manifests.envelope import API_VERSION
from reconciler.manifests.load import Document, load_file, manifest_files
from reconciler.manifests.yamledit import YamlFile, insert_key, parse, read

SECRETS_FILE = "secrets.yaml"

_NEW_FILE = """\
# Secrets of {env}: each value encrypted on its own (Fernet), so names stay readable
# in diffs. Change them with `atlas secrets set|edit|rotate {env}`; never by hand.
apiVersion: {api}
kind: Secrets
metadata:
  name: {name}
spec:
  data: {{}}
"""


@dataclass
class SecretsDocument:
    """The Secrets document of one environment (possibly not written yet)."""

    env: str
    repo: Path
    name: str
    file: YamlFile | None  # None: the environment has no secrets and none are being added
    environment_file: YamlFile | None = None  # set when spec.secrets must be added
    _written: list[str] = field(default_factory=list)

    @property
    def rel(self) -> str:
        """Where the document lives (or will), relative to the repository."""
        return self.file.rel if self.file else f"environments/{self.env}/{SECRETS_FILE}"

    @property
    def ref(self) -> str:
        return f"Secrets/{self.name}"

    def _doc(self) -> Any:
        assert self.file is not None
        for doc in self.file.docs:
            if _is_secrets(doc, self.name):
                return doc
        raise SecretsError(
            f"{self.rel}: no Secrets document named {self.name!r}"
        )  # pragma: no cover

    def _data(self, create: bool) -> Any:
        if self.file is None:
            return None
        doc = self._doc()
        spec = doc.get("spec")
        if not isinstance(spec, dict):
            if not create:
                return None
            from ruamel.yaml.comments import CommentedMap

            spec = doc["spec"] = CommentedMap()
        data = spec.get("data")
        if not isinstance(data, dict):
            if not create:
                return None
            from ruamel.yaml.comments import CommentedMap

            data = spec["data"] = CommentedMap()
        return data

    def tokens(self) -> dict[str, str]:
        """Secret name → encrypted token, in the file's order (non-text tokens as '')."""
        data = self._data(create=False)
        if data is None:
            return {}
        return {str(k): v if isinstance(v, str) else "" for k, v in data.items()}

    def set_token(self, name: str, token: str) -> None:
        """Set ``name``'s token in place; a new name goes where sorted order puts it."""
        data = self._data(create=True)
        if data is None:
            raise SecretsError(f"environment {self.env!r}: no Secrets document to write to")
        if name in data:
            data[name] = token
            return
        fa = getattr(data, "fa", None)
        if fa is not None:
            fa.set_block_style()
        names = [str(k) for k in data]
        if names == sorted(names):
            after = max((n for n in names if n < name), default=None)
            insert_key(data, name, token, after)
        else:
            data[name] = token

    def remove(self, name: str) -> None:
        data = self._data(create=False)
        if data is None or name not in data:
            raise SecretsError(f"environment {self.env!r}: no secret named {name!r} in {self.rel}")
        del data[name]

    def save(self) -> list[str]:
        """Write what changed (Secrets file first, then the Environment); the files written."""
        written = []
        if self.file is not None and self.file.save():
            written.append(self.file.rel)
        if self.environment_file is not None and self.environment_file.save():
            written.append(self.environment_file.rel)
        return written


def _is_secrets(doc: Any, name: str) -> bool:
    if not isinstance(doc, dict) or doc.get("kind") != "Secrets":
        return False
    meta = doc.get("metadata")
    return isinstance(meta, dict) and meta.get("name") == name


def _environment_docs(repo: Path, env: str) -> list[Document]:
    env_dir = repo / "environments" / env
    if not env_dir.is_dir():
        root = repo / "environments"
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise SecretsError(
            f"unknown environment {env!r}: no folder environments/{env}/ in {repo} "
            f"(known: {', '.join(known) or 'none'})"
        )
    docs: list[Document] = []
    for path, rel in manifest_files(env_dir, repo):
        found, _problems = load_file(path, rel)  # `atlas validate` reports problems
        docs.extend(found)
    return docs


def open_document(repo: Path, env: str, create: bool = False) -> SecretsDocument:
    """The Secrets document of ``env`` in the manifests repository ``repo``.

    With ``create`` (commands that add secrets), a missing document is prepared for
    writing; without, a missing document reads as empty.
    """
    docs = _environment_docs(repo, env)
    environment = next((d for d in docs if d.kind == "Environment" and d.name == env), None)
    if environment is None:
        raise SecretsError(
            f"environment {env!r}: no Environment document named {env!r} in environments/{env}/"
        )
    spec = environment.data.get("spec")
    named = spec.get("secrets") if isinstance(spec, dict) else None
    name = named if isinstance(named, str) and named else f"{env}-secrets"
    found = next((d for d in docs if d.kind == "Secrets" and d.name == name), None)
    result = SecretsDocument(env, repo, name, None)
    if found is not None:
        result.file = read(repo / found.file, found.file)
    elif create:
        rel = f"environments/{env}/{SECRETS_FILE}"
        path = repo / rel
        if path.exists():
            raise SecretsError(
                f"environment {env!r}: {rel} exists but holds no Secrets document named "
                f"{name!r}; add one there or set the Environment's spec.secrets to its name"
            )
        text = _NEW_FILE.format(env=env, name=name, api=API_VERSION)
        result.file = parse(text, path, rel)
        result.file.text = ""  # a new file: always written
    if create and named != name:
        env_file = read(repo / environment.file, environment.file)
        for doc in env_file.docs:
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "Environment"
                and isinstance(doc.get("metadata"), dict)
                and doc["metadata"].get("name") == env
            ):
                if not isinstance(doc.get("spec"), dict):
                    from ruamel.yaml.comments import CommentedMap

                    doc["spec"] = CommentedMap()
                if "secrets" in doc["spec"]:
                    doc["spec"]["secrets"] = name
                else:
                    insert_key(doc["spec"], "secrets", name, "logLevel")
                result.environment_file = env_file
                break
    return result
