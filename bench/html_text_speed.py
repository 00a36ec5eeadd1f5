"""HTML to text, old extractor (html.parser + regular expressions) against the new
one (selectolax/lexbor), on a ~130 KiB page and on a feed's worth of entry fragments.

The page is a realistic article: head with styles and scripts, header, nav, an
<article> of entity-heavy paragraphs, lists and tables, asides and a footer.
Prints JSON: milliseconds per page (best of --rounds) and per 1000 fragments, for
each extractor, and new / old.

    .venv/bin/python bench/html_text_speed.py [--rounds 20] [--kib 130]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _old_html_text as old  # noqa: E402

from atlas.core import html_text as new  # noqa: E402

PARAGRAPH = (
    "<p>The keeper climbed the <b>spiral&nbsp;stairs</b> at dusk &mdash; 1 &lt; 2 &amp; "
    '3 &gt; 2 &#8212; trimmed the wick and wound the <a title="a &gt; b" href="/lens">'
    "Fresnel lens</a>. Ships passing the r&eacute;cif saw its beam every <i>twelve</i> "
    "seconds.</p>\n"
)
CHROME = (
    "<header><div class=logo>Lighthouse Weekly</div></header>"
    "<nav><ul>"
    + "".join(f"<li><a href='/s/{i}'>Section {i}</a></li>" for i in range(30))
    + "</ul></nav>"
)
SCRIPT = "<script>window.dataLayer=[];function t(a,b){return a<b&&b>a}</script>\n"
STYLE = "<style>article > p { margin: 0 } a[href^='/'] { color: #333 }</style>\n"


def page(kib: int) -> str:
    parts = ["<!doctype html><html><head><title>Keeper &amp; lamp</title>", STYLE, SCRIPT]
    parts += ["</head><body>", CHROME, "<article><h1>The keeper</h1>"]
    size = sum(map(len, parts))
    i = 0
    while size < kib * 1024 - 600:
        chunk = (
            PARAGRAPH if i % 10 else f"<h2>Part {i}</h2><ul><li>one</li><li>two</li></ul>{SCRIPT}"
        )
        parts.append(chunk)
        size += len(chunk)
        i += 1
    parts += ["</article><aside>related</aside><footer>(c) 2026</footer></body></html>"]
    return "".join(parts)


def best_ms(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--kib", type=int, default=130)
    args = ap.parse_args()
    doc = page(args.kib)
    fragments = [PARAGRAPH * (1 + i % 4) for i in range(1000)]
    figures = {
        "page_kib": round(len(doc.encode()) / 1024, 1),
        "page_ms": {
            "old": best_ms(lambda: old.extract(doc), args.rounds),
            "new": best_ms(lambda: new.extract(doc), args.rounds),
        },
        "fragments_1000_ms": {
            "old": best_ms(lambda: [old.to_text(f) for f in fragments], max(3, args.rounds // 4)),
            "new": best_ms(lambda: [new.to_text(f) for f in fragments], max(3, args.rounds // 4)),
        },
    }
    figures["page_new_over_old"] = round(figures["page_ms"]["new"] / figures["page_ms"]["old"], 3)
    frag = figures["fragments_1000_ms"]
    figures["fragments_new_over_old"] = round(frag["new"] / frag["old"], 3)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
