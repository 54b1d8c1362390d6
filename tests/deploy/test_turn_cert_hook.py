"""deploy/turn-cert-hook, certbot's deploy hook for the TURN name (docs/deploy.md): coturn,
without root, gets each new certificate as plain files it alone can read, and is restarted."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

HOOK = Path(__file__).resolve().parents[2] / "deploy" / "turn-cert-hook"


def _certbot_lineage(root: Path, version: int) -> Path:
    """What certbot leaves: live/<name>/*.pem linking into archive/<name>/*<version>.pem."""
    archive = root / "archive" / "turn.example.org"
    live = root / "live" / "turn.example.org"
    archive.mkdir(parents=True, exist_ok=True)
    live.mkdir(parents=True, exist_ok=True)
    for name in ("fullchain", "privkey"):
        target = archive / f"{name}{version}.pem"
        target.write_text(f"{name} {version}\n")
        target.chmod(0o600)
        link = live / f"{name}.pem"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("../../archive/turn.example.org") / target.name)
    return live


def _run(lineage: Path, certs: Path, restart: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "RENEWED_LINEAGE": str(lineage),
        "TURN_CERT_DIR": str(certs),
        "TURN_CERT_USER": str(os.getuid()),
        "TURN_RESTART": restart,
    }
    return subprocess.run([str(HOOK)], env=env, capture_output=True, text=True, check=True)


def test_each_new_certificate_is_copied_for_coturn_alone_and_coturn_restarted(
    tmp_path: Path,
) -> None:
    certs = tmp_path / "turn-certs"
    restarted = tmp_path / "restarted"
    lineage = _certbot_lineage(tmp_path / "letsencrypt", 1)
    _run(lineage, certs, f"echo once >> {restarted}")
    for name in ("fullchain.pem", "privkey.pem"):
        # Plain files: a container that mounts only this folder sees them.
        assert not (certs / name).is_symlink()
        assert (certs / name).read_text() == f"{name.split('.')[0]} 1\n"
    key = (certs / "privkey.pem").stat()
    assert stat.S_IMODE(key.st_mode) == 0o600 and key.st_uid == os.getuid()
    assert stat.S_IMODE((certs / "fullchain.pem").stat().st_mode) == 0o644
    assert restarted.read_text() == "once\n"

    # A renewal: certbot links live/ to the next files and runs the hook again.
    lineage = _certbot_lineage(tmp_path / "letsencrypt", 2)
    _run(lineage, certs, f"echo twice >> {restarted}")
    assert (certs / "privkey.pem").read_text() == "privkey 2\n"
    assert restarted.read_text() == "once\ntwice\n"
    assert sorted(p.name for p in certs.iterdir()) == ["fullchain.pem", "privkey.pem"]


def test_the_first_certificate_before_coturn_exists_is_still_copied(tmp_path: Path) -> None:
    certs = tmp_path / "turn-certs"
    lineage = _certbot_lineage(tmp_path / "letsencrypt", 1)
    result = _run(lineage, certs, "false")  # nothing to restart yet: not a failure
    assert "failed" in result.stderr
    assert (certs / "privkey.pem").read_text() == "privkey 1\n"
