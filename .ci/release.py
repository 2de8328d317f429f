#!/usr/bin/env python3
"""`make release VERSION=x.y.z [REPOSITORY=owner/name]`: tag a release of this repository.

1. CHANGELOG.md must have a `## [x.y.z]` section, `mlcicd.__version__` must be x.y.z (the version the
   stages report), and the work tree must be clean.
2. The reusable workflows reach the actions by full reference (`org/ml-cicd/actions/<stage>@v1`).
   The release commit stamps every such `uses:` with this repository's real owner/name (REPOSITORY,
   else the `origin` remote's GitHub name) and the release ref `vx.y.z`, so `train.yml@v1` of a fork
   calls the fork's actions of the same release, never `org/…` or a moving tag.
3. That commit (a child of HEAD, on no branch: the branch keeps `org/ml-cicd@v1`, which the act tests
   map to the checkout) is tagged `vx.y.z`, and the major tag `vx` moves to it.

Nothing is pushed: the script prints the `git push` command. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

WORKFLOWS = (".github/workflows/train.yml", ".github/workflows/deploy.yml", ".github/workflows/monitor.yml")
PACKAGE_VERSION = "scripts/mlcicd/__init__.py"
VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
# `uses: <owner>/<name>/actions/<stage>@<ref>` and the setup action `uses: <owner>/<name>@<ref>`
TOOLKIT_USES = re.compile(
    r"^(\s*-?\s*uses:\s*)([\w.-]+/[\w.-]+)(/actions/[\w-]+)?@([\w./-]+)(\s*(?:#.*)?)$", re.M
)
REMOTE = re.compile(r"github\.com[:/]([^/\s]+/[^/\s]+?)(?:\.git)?/?$")


class ReleaseError(Exception):
    pass


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise ReleaseError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def changelog_has(text: str, version: str) -> bool:
    return re.search(rf"^## \[{re.escape(version)}\](\s|$)", text, re.M) is not None


def repository_name(given: str, root: Path) -> str:
    if given:
        name = given.strip()
    else:
        try:
            url = git("remote", "get-url", "origin", cwd=root)
        except ReleaseError:
            raise ReleaseError(
                "no REPOSITORY given and no `origin` remote: pass REPOSITORY=owner/name"
            ) from None
        found = REMOTE.search(url)
        if not found:
            raise ReleaseError(f"the origin remote {url} is not on GitHub: pass REPOSITORY=owner/name")
        name = found.group(1)
    if not NAME.match(name):
        raise ReleaseError(f"{name!r} is not a GitHub owner/name")
    return name


def toolkit_names(text: str) -> set[str]:
    """The owner/name the workflow calls its own actions by (`org/ml-cicd`, or an earlier stamp)."""
    return {m.group(2) for m in TOOLKIT_USES.finditer(text) if m.group(3)}


def stamp(text: str, repository: str, ref: str) -> str:
    """Every `uses:` of this toolkit's actions (and its setup action) → `<repository>…@<ref>`."""
    ours = toolkit_names(text)

    def replace(m: re.Match[str]) -> str:
        if m.group(2) not in ours:
            return m.group(0)  # a third-party action, pinned by SHA: untouched
        return f"{m.group(1)}{repository}{m.group(3) or ''}@{ref}{m.group(5)}"

    stamped = TOOLKIT_USES.sub(replace, text)
    # the usage example in the header comment names the released repository too
    for old in ours:
        stamped = re.sub(rf"^(\s*#.*?){re.escape(old)}/", rf"\g<1>{repository}/", stamped, flags=re.M)
    return stamped


def release(root: Path, version: str, repository: str) -> tuple[str, str]:
    if not VERSION.match(version):
        raise ReleaseError(f"VERSION={version!r} is not x.y.z (e.g. 1.0.0)")
    if not changelog_has((root / "CHANGELOG.md").read_text(), version):
        raise ReleaseError(
            f"CHANGELOG.md has no `## [{version}]` section: move the [Unreleased] entries under "
            f"`## [{version}] - YYYY-MM-DD`, commit, and run again"
        )
    package = re.search(r'^__version__ = "([^"]+)"', (root / PACKAGE_VERSION).read_text(), re.M)
    if not package or package.group(1) != version:
        found = package.group(1) if package else "no __version__"
        raise ReleaseError(
            f'{PACKAGE_VERSION} says {found}: set `__version__ = "{version}"` there, commit, and run again'
        )
    if git("status", "--porcelain", "--untracked-files=no", cwd=root):
        raise ReleaseError("the work tree has uncommitted changes: commit them first")
    name = repository_name(repository, root)
    tag, major = f"v{version}", f"v{version.split('.')[0]}"
    if git("tag", "--list", tag, cwd=root):
        raise ReleaseError(f"tag {tag} exists already")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", "HEAD", cwd=root, env=env)
        for path in WORKFLOWS:
            stamped = stamp((root / path).read_text(), name, tag)
            blob = subprocess.run(
                ["git", "hash-object", "-w", "--stdin", "--path", path],
                cwd=root,
                input=stamped,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            git("update-index", "--cacheinfo", f"100644,{blob},{path}", cwd=root, env=env)
        tree = git("write-tree", cwd=root, env=env)
    commit = git(
        "commit-tree",
        tree,
        "-p",
        "HEAD",
        "-m",
        f"Release {tag}: the workflows call {name} actions @{tag}",
        cwd=root,
    )
    git("tag", "-a", tag, commit, "-m", f"ml-cicd {tag}", cwd=root)
    git("tag", "-f", "-a", major, commit, "-m", f"ml-cicd {major} (= {tag})", cwd=root)
    return tag, major


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("version")
    parser.add_argument("--repository", default="", help="owner/name to stamp; default: the origin remote's")
    args = parser.parse_args()
    root = Path(git("rev-parse", "--show-toplevel", cwd=Path.cwd()))
    try:
        tag, major = release(root, args.version.removeprefix("v"), args.repository)
    except ReleaseError as exc:
        print(f"::error title=release::{exc}", file=sys.stderr)
        return 2
    print(
        f"tagged {tag} and moved {major}. Publish with:\n  git push origin {tag} && git push --force origin {major}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
