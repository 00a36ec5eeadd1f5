"""Property tests: the loader and validator never crash; planning is idempotent."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import Problem
from reconciler.manifests.assemble import assemble
from reconciler.manifests.load import load_repository, load_text
from tests.support.examples import EXAMPLE
from tests.support.hosts import FolderHost

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
kinds = st.sampled_from(
    [
        "Source",
        "AlertRule",
        "AlertChannel",
        "Deployment",
        "BackupPolicy",
        "Environment",
        "Secrets",
        "Nope",
        3,
    ]
)
documents = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["atlas/v1", "atlas/v0", None]),
        "kind": kinds,
        "metadata": st.fixed_dictionaries(
            {"name": st.sampled_from(["a", "b", "Bad_Name", 7, "dev"])}
        ),
        "spec": json_values,
    },
)
yaml_texts = (
    st.lists(documents, min_size=1, max_size=3).map(yaml.safe_dump_all)
    | st.text(max_size=300)
    | st.lists(
        st.sampled_from(
            ["a:", " b", "- c", "&x", "*x", "!!tag", "{", "[", "---", "\n", ": :", "'", '"']
        ),
        max_size=30,
    ).map("".join)
)

ENV = "apiVersion: atlas/v1\nkind: Environment\nmetadata: {name: dev}\nspec: {}\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(yaml_texts, min_size=1, max_size=3))
def test_loader_and_validator_never_crash(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "base").mkdir()
        (root / "environments/dev").mkdir(parents=True)
        (root / "environments/dev/env.yaml").write_text(ENV)
        for i, text in enumerate(texts):
            (root / "base" / f"{i}.yaml").write_text(text)
        result = assemble(load_repository(root), "dev")
        for problem in result.problems:
            assert isinstance(problem, Problem)
            assert problem.file and problem.message


@given(text=yaml_texts)
def test_load_text_returns_documents_or_problems(text: str) -> None:
    docs, problems = load_text(text, "x.yaml")
    assert docs or problems


sources = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
            "interval": st.sampled_from(["30s", "5m", "1h", "2h30m"]),
            "enabled": st.booleans(),
        }
    ),
    max_size=6,
    unique_by=lambda s: s["name"],
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    srcs=sources,
    replicas=st.integers(min_value=1, max_value=3),
    drop=st.sets(st.sampled_from(["api", "core", "monitoring", "services"]), max_size=2),
    second=sources,
)
def test_planning_is_idempotent(
    srcs: list[dict], replicas: int, drop: set[str], second: list[dict]
) -> None:
    """Applying a plan's actions yields an empty plan; so does every later change."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(EXAMPLE, repo)
        host = FolderHost(Path(tmp) / "root")
        for generation in (srcs, second):
            _write_variant(repo, generation, replicas, drop)
            host.converge(repo, "development")
            again, _ = host.plan(repo, "development")
            assert again.empty, [(a.verb, a.target, a.reason) for a in again.actions]
            replicas = 1 if replicas > 1 else 2
            drop = set()


def _write_variant(repo: Path, srcs: list[dict], replicas: int, drop: set[str]) -> None:
    docs = [
        {
            "apiVersion": "atlas/v1",
            "kind": "Source",
            "metadata": {"name": f"gen-{s['name']}"},
            "spec": {
                "type": "text",
                "text": s["name"],
                "interval": s["interval"],
                "enabled": s["enabled"],
            },
        }
        for s in srcs
    ]
    (repo / "environments/development/generated.yaml").write_text(
        yaml.safe_dump_all(docs)
        if docs
        else "# none\n---\n"
        + yaml.safe_dump(
            {
                "apiVersion": "atlas/v1",
                "kind": "Source",
                "metadata": {"name": "gen-placeholder"},
                "spec": {"type": "text", "text": "x"},
            }
        )
    )
    env_file = repo / "environments/development/environment.yaml"
    env_file.write_text(env_file.read_text().replace("metricsPort: 19101", "metricsPort: 19201"))
    deployments = list(yaml.safe_load_all((EXAMPLE / "base/deployments.yaml").read_text()))
    kept = []
    for d in deployments:
        if d["spec"]["component"] in drop:
            continue
        if d["spec"]["component"] in ("api", "core"):
            d["spec"]["replicas"] = replicas
        kept.append(d)
    (repo / "base/deployments.yaml").write_text(yaml.safe_dump_all(kept))
