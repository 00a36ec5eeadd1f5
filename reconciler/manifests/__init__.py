"""Manifests: YAML documents in, validated manifests of one environment out.

``load`` (YAML with file and line of every node, hostile input bounded) → ``envelope``
(apiVersion, kind, name) → ``overlay`` (base/ merged with environments/<env>/) →
``schema`` (JSON Schema, explained; the defaults the schemas document) →
``references`` (what no schema can check: references between manifests, paths,
ports, ranges) → ``assemble`` (all of it for one environment). ``migrate`` and
``yamledit`` rewrite manifest files in place for ``atlas migrate`` and ``atlas secrets``.
Nothing here raises for bad input: every problem is collected with its file and line.
"""
