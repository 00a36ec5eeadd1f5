"""``atlas secrets``: keys and encrypted values of an environment, inside a manifests repo.

    atlas secrets keygen --env ENV          a new key file (0600), default under the config dir
    atlas secrets set ENV NAME              the value from stdin or a hidden prompt, never argv
    atlas secrets get ENV NAME              print one value
    atlas secrets list ENV                  names and when each was set; no key needed
    atlas secrets rm ENV NAME               remove a secret nothing refers to
    atlas secrets edit ENV                  all values in $EDITOR (a private 0600 temp file)
    atlas secrets rotate ENV [--drop-old]   new primary key, every value re-encrypted
    atlas secrets drop-key ENV              forget the older keys once nothing needs them
    atlas secrets textconv FILE             git diff driver: names and fingerprints

Commands run inside a manifests repository (a folder with ``environments/``, found
from the current folder upwards) or with ``--repo PATH``. The key file is
``--key-file``, else ``$ATLAS_SECRETS_KEY_FILE``, else ``<config dir>/keys/<env>.key``
for ``--scope``/``--root`` (DESIGN.md §4). Every error names the environment and the
secret, exits 1, and leaves the repository and the key file as they were; no output
except ``get``'s contains a value.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from atlas.commands.args import EXIT_OK, add_host, add_output

MAX_VALUE_BYTES = 32 * 1024


def register(sub: Any) -> None:
    from atlas.commands.args import add_key_file

    group = sub.add_parser(
        "secrets",
        help="encrypted secrets of an environment (keys, set, get, list, edit, rotate)",
        description="Manage the encrypted Secrets document of an environment. Run inside a "
        "manifests repository or pass --repo.",
    )
    cmds = group.add_subparsers(dest="secrets_command", metavar="COMMAND")
    cmds.required = True

    def command(name: str, help_text: str, env_positional: bool = True) -> Any:
        p = cmds.add_parser(name, help=help_text, description=help_text)
        if env_positional:
            p.add_argument("env", metavar="ENV", help="the environment (environments/ENV/)")
        p.add_argument(
            "--repo",
            type=Path,
            default=None,
            help="the manifests repository (default: the current folder or the nearest "
            "parent with an environments/ folder)",
        )
        add_key_file(p)
        add_host(p)
        return p

    p = command("keygen", "create the key file of an environment", env_positional=False)
    p.add_argument("--env", required=True, help="the environment the key is for")
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    add_output(p)
    p.set_defaults(handler=keygen)

    p = command("set", "encrypt a value read from stdin or a hidden prompt")
    p.add_argument("name", metavar="NAME", help="the secret's name, e.g. smtp_password")
    # Catch a value typed on the command line, to refuse it without echoing it.
    p.add_argument("argv_value", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--value", dest="option_value", nargs="?", const="", help=argparse.SUPPRESS)
    add_output(p)
    p.set_defaults(handler=set_secret)

    p = command("get", "print the decrypted value of one secret")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--no-newline", "-n", action="store_true", help="no newline after the value")
    p.set_defaults(handler=get_secret)

    p = command("list", "list names and when each was set (no key needed, no values)")
    add_output(p)
    p.set_defaults(handler=list_secrets)

    p = command("rm", "remove a secret")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--force", action="store_true", help="remove it even if a manifest uses it")
    add_output(p)
    p.set_defaults(handler=remove_secret)

    p = command("edit", "edit every value in $VISUAL/$EDITOR, then re-encrypt the changes")
    add_output(p)
    p.set_defaults(handler=edit_secrets)

    p = command("rotate", "add a new primary key and re-encrypt every value with it")
    p.add_argument(
        "--drop-old",
        action="store_true",
        help="also remove the older keys from the key file (hosts then need the new file "
        "before they can decrypt any revision)",
    )
    add_output(p)
    p.set_defaults(handler=rotate_keys)

    p = command("drop-key", "remove the older keys once every value uses the primary key")
    add_output(p)
    p.set_defaults(handler=drop_keys)

    p = cmds.add_parser(
        "textconv",
        help="git textconv driver: show a Secrets file as names and token fingerprints",
        description="Print FILE as `git diff` should show it: one line per secret with "
        "the time it was set and a fingerprint of its encrypted value. Configure with "
        "`git config diff.atlas-secrets.textconv 'atlas secrets textconv'` and a "
        "`.gitattributes` line `environments/*/secrets.yaml diff=atlas-secrets`.",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(handler=textconv)


# --------------------------------------------------------------------------- helpers


def _repo(args: argparse.Namespace, required: bool = True) -> Path | None:
    from reconciler.errors import UsageError

    if args.repo is not None:
        if not (args.repo / "environments").is_dir():
            raise UsageError(
                f"{args.repo} is not a manifests repository: it has no environments/ folder"
            )
        return Path(args.repo)
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "environments").is_dir():
            return folder
    if required:
        raise UsageError(
            "not inside a manifests repository (no environments/ folder here or above): "
            "run it there or pass --repo PATH"
        )
    return None


def _keyring(args: argparse.Namespace, env: str, name: str | None = None) -> Any:
    """The environment's keys; errors say which environment and secret needed them."""
    from atlas.commands.common import key_file_of, layout_of
    from reconciler.errors import SecretsError
    from reconciler.secrets.keys import load_key_file

    path, chosen = key_file_of(args, layout_of(args), env)
    what = f"environment {env!r}" + (f": secret {name!r}" if name else "")
    if not path.exists():
        how = (
            "check --key-file / ATLAS_SECRETS_KEY_FILE"
            if chosen
            else f"create it with `atlas secrets keygen --env {env}` or pass --key-file"
        )
        raise SecretsError(f"{what}: no key file {path} ({how})")
    try:
        return load_key_file(path)
    except SecretsError as exc:
        raise SecretsError(f"{what}: {exc}") from exc


def _key_path(args: argparse.Namespace, env: str) -> Path:
    from atlas.commands.common import key_file_of, layout_of

    return key_file_of(args, layout_of(args), env)[0]


def _result(args: argparse.Namespace, text: str, data: dict[str, Any]) -> int:
    from atlas.commands.common import print_json

    if getattr(args, "output", "text") == "json":
        print_json(data)
    else:
        print(text)
    return EXIT_OK


def _note(text: str) -> None:
    print(f"atlas: {text}", file=sys.stderr)


def _read_value(env: str, name: str) -> str:
    """The value from stdin (piped) or a hidden prompt typed twice (a terminal)."""
    import getpass

    from reconciler.errors import SecretsError
    from reconciler.secrets.ops import check_value, value_from_input

    if sys.stdin is not None and sys.stdin.isatty():
        try:
            first = getpass.getpass(f"Value of {name} for {env} (hidden): ")
            second = getpass.getpass("Again, to confirm: ")
        except EOFError as exc:
            raise SecretsError(
                f"environment {env!r}: secret {name!r}: no value typed; nothing was changed"
            ) from exc
        if first != second:
            raise SecretsError(
                f"environment {env!r}: secret {name!r}: the two values differ; nothing was changed"
            )
        check_value(env, name, first)
        value = first
    else:
        raw = sys.stdin.buffer.read(MAX_VALUE_BYTES + 1) if sys.stdin is not None else b""
        if len(raw) > MAX_VALUE_BYTES + 2:  # allow for a trailing CR LF
            raise SecretsError(
                f"environment {env!r}: secret {name!r}: the value is longer than "
                f"{MAX_VALUE_BYTES} bytes; nothing was changed"
            )
        value = value_from_input(env, name, raw)
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise SecretsError(
            f"environment {env!r}: secret {name!r}: the value is longer than "
            f"{MAX_VALUE_BYTES} bytes; nothing was changed"
        )
    return value


def _references(repo: Path, env: str) -> dict[str, str]:
    """Secret name → the Kind/name that uses it, from the environment's valid manifests."""
    from reconciler.build import referenced_secrets
    from reconciler.manifests.assemble import assemble
    from reconciler.manifests.load import load_repository

    return referenced_secrets(assemble(load_repository(repo), env))


# --------------------------------------------------------------------------- commands


def keygen(args: argparse.Namespace) -> int:
    from reconciler.errors import SecretsError
    from reconciler.secrets.document import open_document
    from reconciler.secrets.keys import generate_key, write_key_file

    env = args.env
    repo = _repo(args, required=args.repo is not None)
    tokens: dict[str, str] = open_document(repo, env).tokens() if repo else {}
    path = _key_path(args, env)
    if path.exists() and not args.force:
        raise SecretsError(
            f"environment {env!r}: key file {path} already exists; refusing to replace it "
            f"(it decrypts the secrets committed for {env}). Use `atlas secrets rotate {env}` "
            "to change keys, or --force to replace it anyway"
        )
    write_key_file(path, [generate_key()])
    if tokens:
        _note(
            f"warning: environment {env!r} already has {len(tokens)} secret(s) encrypted "
            "with another key; this new key cannot decrypt them"
        )
    return _result(
        args,
        f"wrote key file {path} (mode 0600) for environment {env}. Keep it out of git; copy "
        f"it to every host of {env} (same path, or --key-file / ATLAS_SECRETS_KEY_FILE).",
        {"environment": env, "keyFile": str(path)},
    )


def set_secret(args: argparse.Namespace) -> int:
    from reconciler.errors import UsageError
    from reconciler.secrets.document import open_document
    from reconciler.secrets.ops import UNCHANGED, check_key, check_name, set_value

    env, name = args.env, args.name
    if args.argv_value or args.option_value is not None:
        raise UsageError(
            f"environment {env!r}: secret {name!r}: a value is never taken from the command "
            "line (it would stay in shell history and be visible in ps); pipe it on stdin "
            "or type it at the prompt. Nothing was changed"
        )
    check_name(env, name)
    repo = _repo(args)
    assert repo is not None
    doc = open_document(repo, env, create=True)
    tokens = doc.tokens()
    ring = _keyring(args, env, name)
    check_key(ring, env, {n: t for n, t in tokens.items() if n != name})
    value = _read_value(env, name)
    token, what = set_value(ring, env, tokens, name, value)
    written: list[str] = []
    if token is not None:
        doc.set_token(name, token)
        written = doc.save()
    text = (
        f"secret {name} of environment {env} is unchanged"
        if what == UNCHANGED
        else f"secret {name} {what} in {doc.rel}; commit it to deploy"
    )
    return _result(
        args,
        text,
        {"environment": env, "secret": name, "change": what, "written": written},
    )


def get_secret(args: argparse.Namespace) -> int:
    from reconciler.errors import SecretsError
    from reconciler.secrets.document import open_document

    env, name = args.env, args.name
    repo = _repo(args)
    assert repo is not None
    doc = open_document(repo, env)
    tokens = doc.tokens()
    if name not in tokens:
        raise SecretsError(
            f"environment {env!r}: no secret named {name!r} "
            f"(its secrets: {', '.join(tokens) or 'none'})"
        )
    ring = _keyring(args, env, name)
    value = ring.decrypt(env, name, tokens[name]).reveal()
    sys.stdout.write(value if args.no_newline else value + "\n")
    sys.stdout.flush()
    return EXIT_OK


def list_secrets(args: argparse.Namespace) -> int:
    from reconciler.secrets.document import open_document
    from reconciler.secrets.ops import entries

    env = args.env
    repo = _repo(args)
    assert repo is not None
    doc = open_document(repo, env)
    found = entries(doc.tokens())
    if args.output == "json":
        return _result(
            args,
            "",
            {
                "environment": env,
                "document": doc.ref if doc.file else None,
                "file": doc.rel if doc.file else None,
                "secrets": [e.as_dict() for e in found],
            },
        )
    if not found:
        print(f"environment {env} has no secrets")
        return EXIT_OK
    width = max(len("NAME"), *(len(e.name) for e in found))
    print(f"{'NAME':<{width}}  {'SET':<23}  FINGERPRINT")
    for e in found:
        print(f"{e.name:<{width}}  {e.set_at_text:<23}  {e.fingerprint}")
    return EXIT_OK


def remove_secret(args: argparse.Namespace) -> int:
    from reconciler.errors import SecretsError
    from reconciler.secrets.document import open_document

    env, name = args.env, args.name
    repo = _repo(args)
    assert repo is not None
    doc = open_document(repo, env)
    if name not in doc.tokens():
        raise SecretsError(f"environment {env!r}: no secret named {name!r}")
    user = _references(repo, env).get(name)
    if user and not args.force:
        raise SecretsError(
            f"environment {env!r}: secret {name!r} is used by {user}; remove that reference "
            "first, or pass --force. Nothing was changed"
        )
    doc.remove(name)
    written = doc.save()
    return _result(
        args,
        f"secret {name} removed from {doc.rel}; commit it to deploy",
        {"environment": env, "secret": name, "change": "removed", "written": written},
    )


def _private_dir() -> Path:
    """A new 0700 folder for decrypted text, in memory-backed storage when there is one."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):  # noqa: S108 - mkdtemp
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(tempfile.mkdtemp(prefix="atlas-secrets-", dir=candidate))
    return Path(tempfile.mkdtemp(prefix="atlas-secrets-"))


def _run_editor(env: str, path: Path) -> None:
    from reconciler.errors import SecretsError

    command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    argv = [*shlex.split(command), str(path)]
    try:
        status = subprocess.run(argv, check=False).returncode
    except OSError as exc:
        raise SecretsError(
            f"environment {env!r}: cannot run the editor {argv[0]!r} ({exc.strerror}); "
            "set $EDITOR. Nothing was changed"
        ) from exc
    if status != 0:
        raise SecretsError(
            f"environment {env!r}: the editor exited with status {status}; nothing was changed"
        )


def edit_secrets(args: argparse.Namespace) -> int:
    from reconciler.secrets.document import open_document
    from reconciler.secrets.ops import apply_edit, decrypt_all, edit_buffer, parse_edit_buffer

    env = args.env
    repo = _repo(args)
    assert repo is not None
    doc = open_document(repo, env, create=True)
    tokens = doc.tokens()
    ring = _keyring(args, env)
    before = decrypt_all(ring, env, tokens)
    folder = _private_dir()
    try:
        path = folder / f"{env}-secrets.yaml"
        buffer = edit_buffer(env, doc.rel, before)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(buffer)
        _run_editor(env, path)
        try:
            edited = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            from reconciler.errors import SecretsError

            raise SecretsError(
                f"environment {env!r}: the edited file cannot be read as UTF-8 text; "
                "nothing was changed"
            ) from exc
        after = parse_edit_buffer(env, edited)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = apply_edit(ring, env, before, after)
    if not result.changes:
        return _result(
            args,
            f"no changes to the secrets of {env}",
            {"environment": env, "changes": [], "written": []},
        )
    used = _references(repo, env)
    for name in result.remove:
        if name in used:
            _note(f"warning: environment {env!r}: removed secret {name!r} is used by {used[name]}")
    for name, token in result.write.items():
        doc.set_token(name, token)
    for name in result.remove:
        doc.remove(name)
    written = doc.save()
    lines = [f"secret {name} {what}" for name, what in result.changes]
    return _result(
        args,
        "\n".join([*lines, f"wrote {', '.join(written)}; commit it to deploy"]),
        {
            "environment": env,
            "changes": [{"name": n, "change": w} for n, w in result.changes],
            "written": written,
        },
    )


def rotate_keys(args: argparse.Namespace) -> int:
    from reconciler.secrets.document import open_document
    from reconciler.secrets.keys import write_key_file
    from reconciler.secrets.ops import rotate

    env = args.env
    repo = _repo(args)
    assert repo is not None
    doc = open_document(repo, env)
    tokens = doc.tokens()
    ring = _keyring(args, env)
    path = _key_path(args, env)
    new_ring, new_tokens = rotate(ring, env, tokens)
    # Key file first: until the Secrets file is written, its old key still decrypts it.
    write_key_file(path, new_ring)
    for name, token in new_tokens.items():
        doc.set_token(name, token)
    written = doc.save()
    kept = len(new_ring.keys)
    if args.drop_old:
        write_key_file(path, new_ring.primary_only())
        kept = 1
    advice = (
        f"copy {path} to every host of {env} before these changes are merged"
        if args.drop_old
        else f"copy {path} to every host of {env} before merging, then run "
        f"`atlas secrets drop-key {env}` once no host needs older revisions"
    )
    return _result(
        args,
        f"rotated environment {env}: {len(new_tokens)} secret(s) re-encrypted with a new "
        f"primary key; {path} holds {kept} key(s). Next: {advice}.",
        {
            "environment": env,
            "secrets": sorted(new_tokens),
            "keyFile": str(path),
            "keys": kept,
            "written": written,
        },
    )


def drop_keys(args: argparse.Namespace) -> int:
    from reconciler.secrets.document import open_document
    from reconciler.secrets.keys import write_key_file
    from reconciler.secrets.ops import primary_only

    env = args.env
    repo = _repo(args)
    assert repo is not None
    tokens = open_document(repo, env).tokens()
    ring = _keyring(args, env)
    path = _key_path(args, env)
    dropped = len(ring.keys) - 1
    if dropped:
        write_key_file(path, primary_only(ring, env, tokens))
    return _result(
        args,
        f"dropped {dropped} older key(s) from {path}"
        if dropped
        else f"{path} holds only its primary key; nothing to drop",
        {"environment": env, "keyFile": str(path), "dropped": dropped},
    )


def textconv(args: argparse.Namespace) -> int:
    from reconciler.errors import UsageError
    from reconciler.secrets.ops import textconv as convert

    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read ({exc.strerror})") from exc
    sys.stdout.write(convert(raw.decode("utf-8", "replace"), str(args.file)))
    return EXIT_OK
