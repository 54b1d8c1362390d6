"""The wheel is a whole server: built from this checkout, installed (not editable) with the
locked dependencies in a fresh virtual environment outside the repository, it serves the
join page and the client's files and migrates its database."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.deploy.conftest import run_checked as _run
from tests.support.server import free_port

WEB = Path(__file__).resolve().parents[2] / "web"


def test_the_installed_wheel_serves_the_join_page_and_its_assets(
    installed_hearth: Path, tmp_path: Path
) -> None:
    venv = installed_hearth
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    hearth = str(venv / "bin" / "hearth")
    assert _run(hearth, "--version", cwd=tmp_path, env=env).strip() == "hearth 0.1.0"
    where = _run(
        str(venv / "bin" / "python"),
        "-c",
        "import server; print(server.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert where.startswith(str(venv)), f"not the installed package: {where}"

    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [hearth, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env={**env, "HEARTH_ICE_ADDRESSES": "127.0.0.1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as ready:
                    assert ready.status == 200
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "the installed server never got ready"
                time.sleep(0.3)
        with urllib.request.urlopen(f"{base}/c/some-link-token", timeout=5) as page:
            html = page.read().decode()
        assert page.status == 200 and '<script type="module"' in html
        # Every module the page loads, followed from app.js import by import (the wheel's
        # package data is web/*.js: a module left out would break the page, not the build).
        wanted, served = ["app.js"], set()
        while wanted:
            name = wanted.pop()
            with urllib.request.urlopen(f"{base}/static/{name}", timeout=5) as script:
                source = script.read().decode()
            assert script.status == 200, name
            served.add(name)
            imported = set(re.findall(r"from ['\"]\./([\w.]+\.js)['\"]", source))
            wanted.extend(imported - served - set(wanted))
        assert {"app.js", "state.js", "joining.js", "rtc.js", "protocol.js", "dom.js"} <= served
        assert served == {p.name for p in WEB.glob("*.js")} - {"admin.js"}, served
        with urllib.request.urlopen(f"{base}/admin", timeout=5) as admin:
            assert admin.status == 200
    finally:
        process.terminate()
        process.wait(timeout=15)
    # The migrations came with the wheel: the database was created at the newest revision.
    assert (tmp_path / "data" / "hearth.db").exists()
