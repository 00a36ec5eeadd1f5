"""How long the secrets paths take with many secrets; prints one JSON object.

    .venv/bin/python bench/secrets_bench.py [--secrets 500]

Figures (milliseconds): encrypting and decrypting every value, re-encrypting them
all under a new key (rotate), setting one value in a large Secrets file (a ruamel
round trip and an atomic write), and the git textconv view of that file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from reconciler.secrets.document import open_document
from reconciler.secrets.keys import KeyRing, generate_key
from reconciler.secrets.ops import decrypt_all, rotate, textconv


def ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=500)
    n = parser.parse_args().secrets
    ring = KeyRing((generate_key().encode(),), "bench")
    values = {f"secret_{i:05d}": f"value-{i}-" + "x" * 40 for i in range(n)}
    figures: dict[str, object] = {"secrets": n}

    start = time.perf_counter()
    tokens = {name: ring.encrypt(name, value) for name, value in values.items()}
    figures["encrypt_all_ms"] = ms(start)
    start = time.perf_counter()
    decrypt_all(ring, "bench", tokens)
    figures["decrypt_all_ms"] = ms(start)
    start = time.perf_counter()
    rotate(ring, "bench", tokens)
    figures["rotate_all_ms"] = ms(start)

    with tempfile.TemporaryDirectory() as tmp:
        env_dir = Path(tmp) / "environments" / "bench"
        env_dir.mkdir(parents=True)
        (env_dir / "environment.yaml").write_text(
            "apiVersion: atlas/v1\nkind: Environment\nmetadata: {name: bench}\n"
            "spec: {secrets: bench-secrets}\n"
        )
        body = "".join(f"    {name}: {token}\n" for name, token in tokens.items())
        text = (
            "apiVersion: atlas/v1\nkind: Secrets\nmetadata: {name: bench-secrets}\n"
            f"spec:\n  data:\n{body}"
        )
        (env_dir / "secrets.yaml").write_text(text)
        start = time.perf_counter()
        doc = open_document(Path(tmp), "bench")
        doc.set_token("secret_00000", ring.encrypt("secret_00000", "changed"))
        doc.save()
        figures["set_one_in_file_ms"] = ms(start)
        start = time.perf_counter()
        textconv(text, "secrets.yaml")
        figures["textconv_ms"] = ms(start)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
