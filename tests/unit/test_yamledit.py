"""Round-trip editing (reconciler/manifests/yamledit.py) and the Secrets document as a file
(reconciler/secrets/document.py): what is not edited comes back byte for byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconciler.errors import ManifestError, SecretsError
from reconciler.manifests.yamledit import (
    guess_indent,
    insert_key,
    parse,
    read,
    rename_key,
    write_atomic,
)
from reconciler.secrets.document import open_document
from tests.support.examples import EXAMPLE


@pytest.mark.parametrize(
    "path", sorted(EXAMPLE.rglob("*.yaml")), ids=lambda p: p.relative_to(EXAMPLE).as_posix()
)
def test_every_example_file_round_trips_unchanged(path: Path) -> None:
    loaded = read(path, path.name)
    assert loaded.dump() == path.read_text()
    assert not loaded.changed


@pytest.mark.parametrize(
    "text",
    [
        "# lead\n---\na: 1\n",
        "---\na: 1\n...\n",
        "# a\n\n--- # b\nx: [1, 2]\n---\ny: 2\n",
        "a:\n  - x\n  - y\n",
        "a:\n- x\n",
        "a:\n    b: 1\n    c:\n        - d\n",
        "l:\n  - k:\n      v: 1\n",
        "a: 'single'\nb: \"double\"\nc: |\n  block\n  text\nd: >-\n  folded\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: 1   # trailing\n\n\n# between\nb: 2\n",
    ],
)
def test_tricky_files_round_trip_unchanged(text: str, tmp_path: Path) -> None:
    assert parse(text, tmp_path / "x.yaml", "x.yaml").dump() == text


def test_guess_indent() -> None:
    assert guess_indent("a:\n  b: 1\n") == (2, 2, 0)
    assert guess_indent("a:\n    b: 1\n") == (4, 4, 0)
    assert guess_indent("a:\n  - x\n") == (2, 4, 2)
    assert guess_indent("just: scalars\n") == (2, 2, 0)


def test_rename_and_insert_keep_position_and_comments(tmp_path: Path) -> None:
    text = "spec:\n  first: 1  # one\n  old: 2  # two\n  last: 3\n"
    loaded = parse(text, tmp_path / "x.yaml", "x.yaml")
    spec = loaded.docs[0]["spec"]
    assert rename_key(spec, "old", "new")
    insert_key(spec, "added", 9, "first")
    assert loaded.dump() == ("spec:\n  first: 1  # one\n  added: 9\n  new: 2  # two\n  last: 3\n")
    assert not rename_key(spec, "absent", "x")
    with pytest.raises(ValueError, match="both"):
        rename_key(spec, "first", "last")
    plain = {"a": 1, "b": 2, "c": 3}
    rename_key(plain, "b", "x")
    insert_key(plain, "z", 0, None)
    assert list(plain) == ["z", "a", "x", "c"]


def test_parse_errors_are_manifest_problems_with_lines(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as err:
        parse("# c\n---\na: 1\nb: [\n", tmp_path / "x.yaml", "x.yaml")
    [problem] = err.value.problems
    assert problem.file == "x.yaml" and problem.line >= 4 and "invalid YAML" in problem.message
    with pytest.raises(ManifestError, match="duplicate"):
        parse("a: 1\na: 2\n", tmp_path / "x.yaml", "x.yaml")


def test_write_atomic_keeps_the_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    write_atomic(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.yaml"]
    with pytest.raises(ManifestError, match="cannot write"):
        write_atomic(tmp_path / "missing-dir" / "f.yaml", b"x")


def _repo(tmp_path: Path, secrets: str, environment: str | None = None) -> Path:
    env_dir = tmp_path / "environments" / "qa"
    env_dir.mkdir(parents=True)
    (env_dir / "environment.yaml").write_text(
        environment
        or "apiVersion: atlas/v1\nkind: Environment\nmetadata: {name: qa}\n"
        "spec:\n  logLevel: info\n  secrets: qa-secrets\n"
    )
    (env_dir / "secrets.yaml").write_text(secrets)
    return tmp_path


def test_secrets_in_a_multi_document_file_are_edited_in_place(tmp_path: Path) -> None:
    text = (
        "# keep me\n"
        "apiVersion: atlas/v1\nkind: Secrets\nmetadata: {name: other}\nspec: {data: {}}\n"
        "---\n"
        "# the one in use\n"
        "apiVersion: atlas/v1\nkind: Secrets\nmetadata:\n  name: qa-secrets\nspec:\n"
        "  data: {b_name: gAAAAAbbb}   # flow style\n"
    )
    repo = _repo(tmp_path, text)
    doc = open_document(repo, "qa", create=True)
    assert doc.tokens() == {"b_name": "gAAAAAbbb"}
    doc.set_token("a_name", "gAAAAAaaa")
    doc.set_token("c_name", "gAAAAAccc")
    assert doc.save() == ["environments/qa/secrets.yaml"]
    after = (repo / "environments/qa/secrets.yaml").read_text()
    assert after.startswith(
        "# keep me\napiVersion: atlas/v1\nkind: Secrets\nmetadata: {name: other}"
    )
    assert "# the one in use\n" in after
    reread = open_document(repo, "qa")
    assert list(reread.tokens()) == ["a_name", "b_name", "c_name"]
    reread.remove("b_name")
    reread.save()
    assert list(open_document(repo, "qa").tokens()) == ["a_name", "c_name"]
    with pytest.raises(SecretsError, match="no secret named 'zzz'"):
        reread.remove("zzz")


def test_an_unsorted_secrets_list_gets_new_names_at_the_end(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "apiVersion: atlas/v1\nkind: Secrets\nmetadata: {name: qa-secrets}\n"
        "spec:\n  data:\n    z_name: gAAAAAzzz\n    a_name: gAAAAAaaa\n",
    )
    doc = open_document(repo, "qa")
    doc.set_token("m_name", "gAAAAAmmm")
    doc.save()
    assert list(open_document(repo, "qa").tokens()) == ["z_name", "a_name", "m_name"]


def test_a_secrets_file_holding_something_else_is_not_overwritten(tmp_path: Path) -> None:
    environment = "apiVersion: atlas/v1\nkind: Environment\nmetadata: {name: qa}\nspec: {}\n"
    repo = _repo(tmp_path, "# my notes\nfoo: bar\n", environment)
    with pytest.raises(SecretsError, match=r"secrets\.yaml exists but holds no Secrets document"):
        open_document(repo, "qa", create=True)
    assert open_document(repo, "qa").tokens() == {}  # reading is fine: no secrets
    assert (repo / "environments/qa/secrets.yaml").read_text() == "# my notes\nfoo: bar\n"


def test_an_environment_without_its_document_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "environments" / "qa").mkdir(parents=True)
    with pytest.raises(SecretsError, match="no Environment document named 'qa'"):
        open_document(tmp_path, "qa")
    with pytest.raises(SecretsError, match=r"unknown environment 'prod'.*known: qa"):
        open_document(tmp_path, "prod")
