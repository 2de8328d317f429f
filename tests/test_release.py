"""`make release` in a scratch clone: the changelog check, the stamped workflows, the tags."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from demo import git, lean_copy

TOOLKIT_USES = re.compile(r"^\s*-?\s*uses:\s*(\S+)", re.M)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    repo = lean_copy(ROOT, tmp_path / "fork")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "git@github.com:acme/ml-cicd-fork.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a fork of ml-cicd")
    return repo


def make_release(repo: Path, version: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "release", f"VERSION={version}", *extra], cwd=repo, capture_output=True, text=True
    )


def set_version(repo: Path, version: str) -> None:
    init = repo / "scripts" / "mlcicd" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text()))
    git(repo, "commit", "-qam", f"version {version}")


def out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_release_stamps_the_fork_and_the_ref_into_every_nested_uses_and_tags(clone: Path):
    head = out(clone, "rev-parse", "HEAD")
    refused = make_release(clone, "9.8.7")
    assert refused.returncode == 2 and "CHANGELOG.md has no `## [9.8.7]` section" in refused.stderr, (
        refused.stderr
    )
    assert out(clone, "tag") == ""

    changelog = clone / "CHANGELOG.md"
    changelog.write_text(
        changelog.read_text().replace("## [Unreleased]", "## [Unreleased]\n\n## [9.8.7] - 2026-12-05", 1)
    )
    git(clone, "commit", "-qam", "changelog 9.8.7")
    unversioned = make_release(clone, "9.8.7")
    assert unversioned.returncode == 2 and 'set `__version__ = "9.8.7"`' in unversioned.stderr, (
        unversioned.stderr
    )
    set_version(clone, "9.8.7")
    head = out(clone, "rev-parse", "HEAD")
    done = make_release(clone, "9.8.7")
    assert done.returncode == 0, done.stderr
    assert "git push origin v9.8.7 && git push --force origin v9" in done.stdout
    assert out(clone, "rev-parse", "v9.8.7^{commit}") == out(clone, "rev-parse", "v9^{commit}")
    assert (
        out(clone, "rev-parse", "v9.8.7^{commit}^") == head and out(clone, "rev-parse", "HEAD") == head
    )  # the branch keeps org/…@v1
    for name in ("train.yml", "deploy.yml", "monitor.yml"):
        released = out(clone, "show", f"v9.8.7:.github/workflows/{name}")
        uses = TOOLKIT_USES.findall(released)
        ours = [u for u in uses if not u.startswith("actions/")]
        assert ours, name
        assert all(re.fullmatch(r"acme/ml-cicd-fork(/actions/[\w-]+)?@v9\.8\.7", u) for u in ours), (
            name,
            ours,
        )
        assert "org/ml-cicd" not in released
        third_party = [u for u in uses if u.startswith("actions/")]
        assert all(re.fullmatch(r"actions/[\w-]+@[0-9a-f]{40}", u) for u in third_party), (
            third_party
        )  # untouched SHAs
        assert released.replace("acme/ml-cicd-fork", "org/ml-cicd").replace("@v9.8.7", "@v1") == (
            clone / ".github/workflows" / name
        ).read_text().rstrip("\n")

    again = make_release(clone, "9.8.7")
    assert again.returncode == 2 and "exists already" in again.stderr
    # The next minor moves the major tag; REPOSITORY overrides the remote.
    changelog.write_text(changelog.read_text().replace("## [Unreleased]", "## [Unreleased]\n\n## [9.9.0]", 1))
    set_version(clone, "9.9.0")
    assert make_release(clone, "9.9.0", "REPOSITORY=other/name").returncode == 0
    assert (
        out(clone, "rev-parse", "v9^{commit}")
        == out(clone, "rev-parse", "v9.9.0^{commit}")
        != out(clone, "rev-parse", "v9.8.7^{commit}")
    )
    assert "uses: other/name/actions/train-gpu@v9.9.0" in out(
        clone, "show", "v9.9.0:.github/workflows/train.yml"
    )
