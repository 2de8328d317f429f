#!/usr/bin/env python3
"""Install the ml-cicd toolkit once per runner and put `mlcicd` on PATH (stdlib only).

Run by the root action and as the first step of every stage action. The virtualenv lives under
$RUNNER_TOOL_CACHE (shared by the jobs of a runner), keyed on toolkit version + Python version
(+ a hash of the toolkit's files, so an unreleased ref never reuses a stale install). It is
created with --system-site-packages so a runner's own torch/CUDA build is reused, not replaced;
when the base interpreter is itself a virtualenv, whose packages --system-site-packages does not
see (it reaches only the interpreter the virtualenv was made from), a .pth file adds that
virtualenv's site-packages too.
If MLCICD_PYTHON names an interpreter that already has the toolkit, nothing is installed.

Env: MLCICD_PYTHON, INPUT_PYTHON (base interpreter, default: this one), INPUT_EXTRAS (e.g. `torch`).
Outputs: python (interpreter with the toolkit), version, cache-hit.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = ".mlcicd-complete"


def annotate(kind: str, title: str, message: str) -> None:
    text = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::{kind} title={title.replace(':', '%3A').replace(',', '%2C')}::{text}", flush=True)
    else:
        print(f"{kind}: {title}: {message}", file=sys.stderr, flush=True)


def set_output(name: str, value: str) -> None:
    if path := os.environ.get("GITHUB_OUTPUT"):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{name}={value}\n")


def add_path(directory: Path) -> None:
    if path := os.environ.get("GITHUB_PATH"):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{directory}\n")


def export_env(name: str, value: str) -> None:
    if path := os.environ.get("GITHUB_ENV"):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{name}={value}\n")


def write_shim(python: Path) -> Path:
    """A directory holding only an `mlcicd` launcher for `python`: on PATH, it leaves the
    user's own `python` and `pip` first, whatever folder the toolkit's interpreter is in."""
    shims = cache_root() / "shims" / hashlib.sha256(str(python).encode()).hexdigest()[:12]
    shims.mkdir(parents=True, exist_ok=True)
    launcher = shims / "mlcicd"
    tmp = shims / f".mlcicd.{os.getpid()}"
    tmp.write_text(f'#!/bin/sh\nexec "{python}" -m mlcicd "$@"\n')
    tmp.chmod(0o755)
    tmp.replace(launcher)
    return shims


def toolkit_version() -> str:
    match = re.search(
        r'__version__ = "([^"]+)"', (ROOT / "scripts" / "mlcicd" / "__init__.py").read_text(encoding="utf-8")
    )
    return match.group(1) if match else "0"


def toolkit_hash() -> str:
    digest = hashlib.sha256()
    files = [ROOT / "pyproject.toml", *sorted((ROOT / "scripts" / "mlcicd").rglob("*.py"))]
    for file in files:
        digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def probe(python: str) -> str | None:
    """The toolkit version importable by `python`, or None."""
    try:
        out = subprocess.run(
            [python, "-c", "import mlcicd; print(mlcicd.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def python_tag(python: str) -> str:
    code = (
        "import sys, platform; print(platform.python_implementation().lower() + '-' + '.'.join(map(str, "
        "sys.version_info[:3])))"
    )
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def cache_root() -> Path:
    base = (
        os.environ.get("RUNNER_TOOL_CACHE")
        or os.environ.get("MLCICD_HOME")
        or str(Path.home() / ".cache" / "mlcicd")
    )
    return Path(base) / "mlcicd"


def virtualenv_site_packages(python: str) -> list[str]:
    """The site-packages of `python` when it runs in a virtualenv (empty for a plain interpreter)."""
    code = "import site, sys; print(sys.prefix != sys.base_prefix); print(*site.getsitepackages(), sep='\\n')"
    lines = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [line for line in lines[1:] if line] if lines and lines[0] == "True" else []


def make_venv(base_python: str, venv: Path, inherited: list[str]) -> None:
    """A virtualenv that sees the base interpreter's packages and, after its own, those of the `inherited`
    site-packages (the base's virtualenv): its torch comes before a system one."""
    subprocess.run([base_python, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    if inherited:
        code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        own = subprocess.run(
            [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        (Path(own) / "mlcicd-base-virtualenv.pth").write_text("".join(f"{p}\n" for p in inherited))


def install(base_python: str, extras: str) -> tuple[Path, bool]:
    version = toolkit_version()
    inherited = virtualenv_site_packages(base_python)
    key = f"{version}-{python_tag(base_python)}-{toolkit_hash()}" + (
        f"-{extras.replace(',', '+')}" if extras else ""
    )
    if inherited:  # one toolkit per virtualenv: each sees its own packages
        key += "-venv" + hashlib.sha256("\n".join(inherited).encode()).hexdigest()[:8]
    home = cache_root() / key
    venv = home / "venv"
    python = venv / "bin" / "python"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runners sharing a tool cache build it once
        if (home / MARKER).exists() and probe(str(python)):
            return python, True
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        make_venv(base_python, venv, inherited)
        spec = f"{ROOT}[{extras}]" if extras else str(ROOT)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                spec,
            ],
            check=True,
        )
        (home / MARKER).write_text(f"installed in {time.monotonic() - started:.0f}s\n")
    return python, False


def main() -> int:
    preinstalled = os.environ.get("MLCICD_PYTHON", "").strip()
    if preinstalled:
        version = probe(preinstalled)
        if version is None:
            annotate(
                "error",
                "setup: MLCICD_PYTHON has no toolkit",
                f"MLCICD_PYTHON={preinstalled} cannot import mlcicd. Install it there (`{preinstalled} -m "
                "pip install <ml-cicd checkout>`) or unset MLCICD_PYTHON.",
            )
            return 2
        if version != toolkit_version():
            annotate(
                "warning",
                "setup: toolkit version differs",
                f"MLCICD_PYTHON has mlcicd {version}; this action is {toolkit_version()}.",
            )
        python, hit = Path(preinstalled), True
    else:
        base = os.environ.get("INPUT_PYTHON", "").strip() or sys.executable
        if shutil.which(base) is None and not Path(base).exists():
            annotate(
                "error",
                "setup: python not found",
                f"`{base}` is not an interpreter on this runner. Set `python` to a path or command, or add "
                "actions/setup-python before this step.",
            )
            return 2
        try:
            python, hit = install(base, os.environ.get("INPUT_EXTRAS", "").strip())
        except subprocess.CalledProcessError as exc:
            annotate(
                "error",
                "setup: install failed",
                f"`{' '.join(map(str, exc.cmd))}` exited {exc.returncode}; see the log above. The runner "
                "needs network access to its package index.",
            )
            return 2
        version = toolkit_version()
    add_path(write_shim(python))
    # Later stage actions in this job find the toolkit here and install nothing, even when
    # this setup used another interpreter or extras than their own setup step would.
    export_env("MLCICD_PYTHON", str(python))
    set_output("python", str(python))
    set_output("version", version)
    set_output("cache-hit", "true" if hit else "false")
    print(f"ml-cicd {version}: {python} ({'cached' if hit else 'installed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
