"""The browser client's modules: index.html preloads exactly the modules the page imports.

app.js is split along its seams (docs/architecture.md, "The browser client"); without the
preload the browser finds the modules import by import, and the join page became usable about
100 ms later on loopback (median of 25 loads: 412 ms against 309 ms for the one-file page,
362 ms with the preload). A module added to the page and left out of the list would still
work, only later; one left in the list after it is gone would be a 404 on every visit.
"""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
IMPORT = re.compile(r"""from ['"]\./([\w.]+\.js)['"]""")


def reached_from(entry: str) -> set[str]:
    """Every module ``entry`` imports, directly or through others (``entry`` included)."""
    seen: set[str] = set()
    wanted = [entry]
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        wanted.extend(IMPORT.findall((WEB / name).read_text()))
    return seen


def test_index_preloads_every_module_the_page_imports_and_no_other() -> None:
    html = (WEB / "index.html").read_text()
    preloaded = re.findall(r'<link rel="modulepreload" href="/static/([\w.]+\.js)">', html)
    assert len(preloaded) == len(set(preloaded)), "a module is preloaded twice"
    assert set(preloaded) == reached_from("app.js") - {"app.js"}
    assert '<script type="module" src="/static/app.js"></script>' in html
    # CSP script-src 'self': no inline script on the page.
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/static/app.js">']


def test_every_module_in_web_is_reached_by_a_page() -> None:
    pages = reached_from("app.js") | reached_from("admin.js")
    assert {p.name for p in WEB.glob("*.js")} == pages
