"""Key files are opened only as themselves: not through a symlink, not another user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import SecretsError
from reconciler.secrets.keys import generate_key, load_key_file, write_key_file

NOBODY = 65534


def _key(path: Path) -> Path:
    write_key_file(path, [generate_key()])
    return path


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    real = _key(tmp_path / "real.key")
    link = tmp_path / "staging.key"
    link.symlink_to(real)
    with pytest.raises(SecretsError) as err:
        load_key_file(link)
    message = str(err.value)
    assert f"key file {link} is a symbolic link" in message, message
    assert str(real) in message, "the error says where the link points, to use it directly"
    assert load_key_file(real).keys, "the file itself is still accepted"


def test_a_symlinked_folder_above_the_key_file_is_still_followed(tmp_path: Path) -> None:
    _key(tmp_path / "keys" / "staging.key")
    (tmp_path / "linked").symlink_to(tmp_path / "keys")
    assert load_key_file(tmp_path / "linked" / "staging.key").keys


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = _key(tmp_path / "staging.key")
    os.chown(path, NOBODY, -1)
    with pytest.raises(SecretsError) as err:
        load_key_file(path)
    message = str(err.value)
    assert f"key file {path} is owned by another user (uid {NOBODY})" in message, message
    assert f"chown {os.geteuid()} {path}" in message, message


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to root")
def test_a_key_file_owned_by_root_is_accepted(tmp_path: Path) -> None:
    path = _key(tmp_path / "staging.key")
    os.chown(path, 0, -1)
    assert load_key_file(path).keys


def test_a_key_path_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "staging.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretsError, match=f"key file {fifo} is not a regular file"):
        load_key_file(fifo)  # and does not hang waiting for a writer
    folder = tmp_path / "production.key"
    folder.mkdir(mode=0o700)
    with pytest.raises(SecretsError, match=f"key file {folder} is not a regular file"):
        load_key_file(folder)
