"""The wheel: contents, and a clean install that runs both commands."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.harness import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build_dir = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        cwd=build_dir,
        timeout=300,
    )
    (whl,) = out.glob("mailsuite-*.whl")
    return whl


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twisted/plugins/mailsuite_plugin.py" in names
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names
    assert "mailsuite/__init__.py" in names
    assert "mailsuite/py.typed" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "mailsuite-admin = mailsuite.admin.cli:main" in text
    metadata = next(n for n in names if n.endswith("METADATA"))
    meta = zipfile.ZipFile(wheel).read(metadata).decode().lower().replace("-", "_")
    for dep in ("twisted", "libpass", "pyopenssl", "service_identity", "cryptography"):
        assert f"requires_dist: {dep}" in meta, dep
    assert "requires_dist: passlib" not in meta


@pytest.mark.slow
def test_clean_install_runs_commands(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    r = subprocess.run(
        [env_dir / "bin" / "twistd", "mailsuite", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "--demo" in r.stdout
    r = subprocess.run(
        [env_dir / "bin" / "mailsuite-admin", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "check-config" in r.stdout
