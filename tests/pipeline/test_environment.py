"""environment.json's git revision: this checkout's commit, or None (silently) outside one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import seapo
from seapo.pipeline.run import environment, git_revision

PACKAGE = Path(seapo.__file__).resolve().parent

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_the_checkout_records_its_commit(capfd):
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=PACKAGE)
    if head.returncode != 0:
        pytest.skip("seapo does not run from a git checkout here")
    assert environment()["git_revision"] == head.stdout.strip()
    assert capfd.readouterr().err == ""


@needs_git
def test_an_installed_copy_records_none_silently(tmp_path, capfd):
    installed = tmp_path / "site-packages" / "seapo"
    installed.mkdir(parents=True)
    assert git_revision(installed) is None  # not in any repository: git's "fatal: ..." is not shown
    assert "fatal" not in capfd.readouterr().err


@needs_git
def test_a_copy_inside_another_repository_is_not_credited_with_its_commit(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "other project"], check=True)
    installed = tmp_path / ".venv" / "lib" / "site-packages" / "seapo"
    installed.mkdir(parents=True)
    assert git_revision(installed) is None
    own = tmp_path / "src" / "seapo"
    own.mkdir(parents=True)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert git_revision(own) == head.strip()
