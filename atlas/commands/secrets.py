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
from collections.abc import Callable
from pathlib import Path

import reconciler
from atlas.commands.args import EXIT_OK, Subparsers, add_host, add_key_file, add_output
from atlas.commands.common import layout_of, print_json

MAX_VALUE_BYTES = 32 * 1024


Command = Callable[..., argparse.ArgumentParser]


def register(sub: Subparsers) -> None:
    group = sub.add_parser(
        "secrets",
        help="encrypted secrets of an environment (keys, set, get, list, edit, rotate)",
        description="Manage the encrypted Secrets document of an environment. Run inside a "
        "manifests repository or pass --repo.",
    )
    cmds = group.add_subparsers(dest="secrets_command", metavar="COMMAND")
    cmds.required = True

    def command(name: str, help_text: str, env_positional: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cmds.add_parser(name, help=help_text, description=help_text)
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
    _register_values(command)
    _register_keys(command)
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


def _register_values(command: Command) -> None:
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


def _register_keys(command: Command) -> None:
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


# --------------------------------------------------------------------------- helpers


def _repo(args: argparse.Namespace, required: bool = True) -> Path | None:
    if args.repo is not None:
        if not (args.repo / "environments").is_dir():
            raise reconciler.UsageError(
                f"{args.repo} is not a manifests repository: it has no environments/ folder"
            )
        return Path(args.repo)
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "environments").is_dir():
            return folder
    if required:
        raise reconciler.UsageError(
            "not inside a manifests repository (no environments/ folder here or above): "
            "run it there or pass --repo PATH"
        )
    return None


def _repo_of(args: argparse.Namespace) -> Path:
    repo = _repo(args)
    assert repo is not None  # required: _repo raised otherwise
    return repo


def _key(args: argparse.Namespace, env: str) -> reconciler.manage_secrets.KeyFile:
    layout = layout_of(args)
    return reconciler.manage_secrets.KeyFile.find(
        env,
        args.key_file,
        os.environ.get("ATLAS_SECRETS_KEY_FILE"),
        layout.on_disk(layout.config_dir),
    )


def _result(args: argparse.Namespace, text: str, data: dict[str, object]) -> int:
    if getattr(args, "output", "text") == "json":
        print_json(data)
    else:
        print(text)
    return EXIT_OK


def _note(text: str) -> None:
    print(f"atlas: {text}", file=sys.stderr)


def _too_long(env: str, name: str) -> reconciler.SecretsError:
    return reconciler.SecretsError(
        f"environment {env!r}: secret {name!r}: the value is longer than "
        f"{MAX_VALUE_BYTES} bytes; nothing was changed"
    )


def _prompt(env: str, name: str) -> str:
    import getpass

    try:
        first = getpass.getpass(f"Value of {name} for {env} (hidden): ")
        second = getpass.getpass("Again, to confirm: ")
    except EOFError as exc:
        raise reconciler.SecretsError(
            f"environment {env!r}: secret {name!r}: no value typed; nothing was changed"
        ) from exc
    if first != second:
        raise reconciler.SecretsError(
            f"environment {env!r}: secret {name!r}: the two values differ; nothing was changed"
        )
    reconciler.manage_secrets.ops.check_value(env, name, first)
    return first


def _read_value(env: str, name: str) -> str:
    """The value from stdin (piped) or a hidden prompt typed twice (a terminal)."""
    if sys.stdin is not None and sys.stdin.isatty():
        value = _prompt(env, name)
    else:
        raw = sys.stdin.buffer.read(MAX_VALUE_BYTES + 1) if sys.stdin is not None else b""
        if len(raw) > MAX_VALUE_BYTES + 2:  # allow for a trailing CR LF
            raise _too_long(env, name)
        value = reconciler.manage_secrets.ops.value_from_input(env, name, raw)
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise _too_long(env, name)
    return value


def _private_dir() -> Path:
    """A new 0700 folder for decrypted text, in memory-backed storage when there is one."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):  # noqa: S108 - mkdtemp
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(tempfile.mkdtemp(prefix="atlas-secrets-", dir=candidate))
    return Path(tempfile.mkdtemp(prefix="atlas-secrets-"))


def _run_editor(env: str, path: Path) -> None:
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    argv = [*shlex.split(command), str(path)]
    try:
        status = subprocess.run(argv, check=False).returncode
    except OSError as exc:
        raise reconciler.SecretsError(
            f"environment {env!r}: cannot run the editor {argv[0]!r} ({exc.strerror}); "
            "set $EDITOR. Nothing was changed"
        ) from exc
    if status != 0:
        raise reconciler.SecretsError(
            f"environment {env!r}: the editor exited with status {status}; nothing was changed"
        )


def _editor(env: str) -> Callable[[str, str], str]:
    """``edit(buffer, rel)`` through $VISUAL/$EDITOR, on a private 0600 file removed after."""

    def edit(buffer: str, _rel: str) -> str:
        folder = _private_dir()
        try:
            path = folder / f"{env}-secrets.yaml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(buffer)
            _run_editor(env, path)
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise reconciler.SecretsError(
                    f"environment {env!r}: the edited file cannot be read as UTF-8 text; "
                    "nothing was changed"
                ) from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return edit


# --------------------------------------------------------------------------- commands


def keygen(args: argparse.Namespace) -> int:
    env = args.env
    key = _key(args, env)
    others = reconciler.manage_secrets.keygen(
        _repo(args, required=args.repo is not None), env, key, args.force
    )
    if others:
        _note(
            f"warning: environment {env!r} already has {others} secret(s) encrypted "
            "with another key; this new key cannot decrypt them"
        )
    return _result(
        args,
        f"wrote key file {key.path} (mode 0600) for environment {env}. Keep it out of git; "
        f"copy it to every host of {env} (same path, or --key-file / ATLAS_SECRETS_KEY_FILE).",
        {"environment": env, "keyFile": str(key.path)},
    )


def set_secret(args: argparse.Namespace) -> int:
    env, name = args.env, args.name
    if args.argv_value or args.option_value is not None:
        raise reconciler.UsageError(
            f"environment {env!r}: secret {name!r}: a value is never taken from the command "
            "line (it would stay in shell history and be visible in ps); pipe it on stdin "
            "or type it at the prompt. Nothing was changed"
        )
    done = reconciler.manage_secrets.set_secret(
        _repo_of(args), env, name, _key(args, env), lambda: _read_value(env, name)
    )
    text = (
        f"secret {name} of environment {env} is unchanged"
        if done.change == reconciler.manage_secrets.ops.UNCHANGED
        else f"secret {name} {done.change} in {done.document}; commit it to deploy"
    )
    return _result(
        args,
        text,
        {"environment": env, "secret": name, "change": done.change, "written": done.written},
    )


def get_secret(args: argparse.Namespace) -> int:
    value = reconciler.manage_secrets.get_secret(
        _repo_of(args), args.env, args.name, _key(args, args.env)
    ).reveal()
    sys.stdout.write(value if args.no_newline else value + "\n")
    sys.stdout.flush()
    return EXIT_OK


def list_secrets(args: argparse.Namespace) -> int:
    env = args.env
    listing = reconciler.manage_secrets.list_secrets(_repo_of(args), env)
    found = listing.entries
    if args.output == "json":
        return _result(
            args,
            "",
            {
                "environment": env,
                "document": listing.document,
                "file": listing.file,
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
    env, name = args.env, args.name
    done = reconciler.manage_secrets.remove_secret(_repo_of(args), env, name, args.force)
    return _result(
        args,
        f"secret {name} removed from {done.document}; commit it to deploy",
        {"environment": env, "secret": name, "change": done.change, "written": done.written},
    )


def edit_secrets(args: argparse.Namespace) -> int:
    env = args.env
    done = reconciler.manage_secrets.edit_secrets(
        _repo_of(args), env, _key(args, env), _editor(env)
    )
    if not done.changes:
        return _result(
            args,
            f"no changes to the secrets of {env}",
            {"environment": env, "changes": [], "written": []},
        )
    for warning in done.warnings:
        _note(f"warning: {warning}")
    lines = [f"secret {name} {what}" for name, what in done.changes]
    return _result(
        args,
        "\n".join([*lines, f"wrote {', '.join(done.written)}; commit it to deploy"]),
        {
            "environment": env,
            "changes": [{"name": n, "change": w} for n, w in done.changes],
            "written": done.written,
        },
    )


def rotate_keys(args: argparse.Namespace) -> int:
    env = args.env
    key = _key(args, env)
    done = reconciler.manage_secrets.rotate_keys(_repo_of(args), env, key, args.drop_old)
    advice = (
        f"copy {key.path} to every host of {env} before these changes are merged"
        if args.drop_old
        else f"copy {key.path} to every host of {env} before merging, then run "
        f"`atlas secrets drop-key {env}` once no host needs older revisions"
    )
    return _result(
        args,
        f"rotated environment {env}: {len(done.secrets)} secret(s) re-encrypted with a new "
        f"primary key; {key.path} holds {done.keys} key(s). Next: {advice}.",
        {
            "environment": env,
            "secrets": done.secrets,
            "keyFile": str(key.path),
            "keys": done.keys,
            "written": done.written,
        },
    )


def drop_keys(args: argparse.Namespace) -> int:
    key = _key(args, args.env)
    dropped = reconciler.manage_secrets.drop_keys(_repo_of(args), args.env, key)
    return _result(
        args,
        f"dropped {dropped} older key(s) from {key.path}"
        if dropped
        else f"{key.path} holds only its primary key; nothing to drop",
        {"environment": args.env, "keyFile": str(key.path), "dropped": dropped},
    )


def textconv(args: argparse.Namespace) -> int:
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise reconciler.UsageError(f"{args.file}: cannot read ({exc.strerror})") from exc
    sys.stdout.write(
        reconciler.manage_secrets.ops.textconv(raw.decode("utf-8", "replace"), str(args.file))
    )
    return EXIT_OK
