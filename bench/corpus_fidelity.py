"""Corpus fidelity: of the feeds in tests/corpus/feeds/ (real-world edge cases),
how many give the same entries as bare feedparser finds with content, through the
real fetch path (a server on 127.0.0.1, the worker, SQLite).

Prints JSON: feeds, matching, ratio (target, issue 11: ≥ 0.95), entries expected
and stored, and each mismatch with its explanation from MANIFEST.json
("UNEXPLAINED" when there is none) and what differed. How a feed "matches" is in
tests/support/corpus.py.

    .venv/bin/python bench/corpus_fidelity.py
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.corpus import ingest, summary  # noqa: E402


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the failing cases log their errors
    with tempfile.TemporaryDirectory() as tmp:
        run = ingest(Path(tmp))
    print(json.dumps(summary(run.outcomes), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
