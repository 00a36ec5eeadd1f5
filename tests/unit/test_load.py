"""The YAML loader: line marks, duplicate keys, hostile input, and bad files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reconciler.manifests.load import Limits, load_file, load_repository, load_text


def only_problem(text: str, limits: Limits | None = None):
    _, problems = load_text(text, "f.yaml", limits)
    assert len(problems) == 1, problems
    return problems[0]


def test_marks_record_the_line_of_every_key_and_item() -> None:
    docs, problems = load_text("a: 1\nb:\n  c: [x, y]\n  d:\n    - e: 2\n", "f.yaml")
    assert not problems
    doc = docs[0]
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 2}]}}
    assert doc.mark(("a",)) == ("f.yaml", 1)
    assert doc.mark(("b", "c")) == ("f.yaml", 3)
    assert doc.mark(("b", "d", 0, "e")) == ("f.yaml", 5)
    # a path that does not exist falls back to its nearest marked ancestor
    assert doc.mark(("b", "d", 0, "missing")) == ("f.yaml", 5)


def test_several_documents_keep_their_own_lines() -> None:
    docs, problems = load_text("a: 1\n---\nb: 2\n---\n---\nc: 3\n", "f.yaml")
    assert not problems
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert [d.line for d in docs] == [1, 3, 6]


def test_duplicate_key_is_rejected_with_both_lines() -> None:
    p = only_problem("spec:\n  interval: 5m\n  url: x\n  interval: 10m\n")
    assert p.line == 4
    assert "duplicate key 'interval' (first defined on line 2)" in p.message


def test_billion_laughs_fails_fast_without_eating_memory() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.monotonic()
    p = only_problem("\n".join(lines) + "\n")
    assert time.monotonic() - started < 2.0
    assert "aliases expand to more than" in p.message


def test_a_few_aliases_are_fine() -> None:
    docs, problems = load_text("x: &labels {a: b}\ny: *labels\n", "f.yaml")
    assert not problems
    assert docs[0].data == {"x": {"a": "b"}, "y": {"a": "b"}}


def test_recursive_alias_is_rejected() -> None:
    p = only_problem("a: &x [1, *x]\n")
    assert "recursive alias" in p.message


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object:os.system {}\n",
        "a: !custom 1\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x, y}\n",
    ],
)
def test_tags_beyond_plain_json_are_rejected(text: str) -> None:
    p = only_problem(text)
    assert "unsupported YAML tag" in p.message


def test_merge_keys_are_rejected_with_advice() -> None:
    p = only_problem("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert p.line == 3 and "merge keys" in p.message


def test_non_string_keys_are_read_as_written() -> None:
    docs, _ = load_text("on: 1\n1: a\n", "f.yaml")
    assert docs[0].data == {"on": 1, "1": "a"}


def test_timestamps_stay_strings() -> None:
    docs, _ = load_text("when: 2026-01-02\n", "f.yaml")
    assert docs[0].data == {"when": "2026-01-02"}


def test_invalid_yaml_reports_the_line() -> None:
    p = only_problem("a: 1\nb: [unclosed\nc: 3\n")
    assert p.line >= 2
    assert p.message.startswith("invalid YAML")


def test_empty_file_is_an_error() -> None:
    p = only_problem("# only a comment\n")
    assert p.message.startswith("empty file")


def test_size_limit(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("a: " + "x" * 2000 + "\n")
    docs, problems = load_file(f, "big.yaml", Limits(max_file_bytes=1000))
    assert not docs
    assert "the limit is 1000" in problems[0].message


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_bytes(b"a: 1\nb: \xff\xfe\n")
    _, problems = load_file(f, "bad.yaml")
    assert problems[0].line == 2 and "UTF-8" in problems[0].message


def test_deep_nesting_is_bounded() -> None:
    p = only_problem("a: " + "[" * 100 + "]" * 100 + "\n", Limits(max_depth=20))
    assert "nesting deeper than 20" in p.message


def test_repository_without_base_or_environments(tmp_path: Path) -> None:
    repo = load_repository(tmp_path)
    assert "not a manifests repository" in repo.problems[0].message


def test_symlink_leaving_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("a: 1\n")
    root = tmp_path / "repo"
    (root / "base").mkdir(parents=True)
    (root / "base" / "link.yaml").symlink_to(outside)
    repo = load_repository(root)
    assert repo.base == []
    assert repo.problems[0].file == "base/link.yaml"
    assert "outside the repository" in repo.problems[0].message


def test_file_count_limit(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    for i in range(5):
        (tmp_path / "base" / f"{i}.yaml").write_text("a: 1\n")
    repo = load_repository(tmp_path, Limits(max_files=3))
    assert any("more than 3 manifest files" in p.message for p in repo.problems)
