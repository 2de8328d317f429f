from __future__ import annotations

import os
import time

import pytest

from mlcicd import tracking
from mlcicd.errors import UsageError


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://user:pw@mlflow.example.com:8443/path?token=x", "https://mlflow.example.com:8443/path"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////home/runner/.mlcicd/mlflow.db", "sqlite:////home/runner/.mlcicd/mlflow.db"),
        ("databricks", "databricks"),
    ],
)
def test_redact_drops_credentials_and_query(uri, shown):
    assert tracking.redact(uri) == shown


def test_embedded_store_stays_embedded_after_connect(embedded_home):
    assert tracking.is_embedded()
    uri = tracking.connect()
    try:
        assert uri == f"sqlite:///{embedded_home / 'mlflow.db'}" and os.environ["MLFLOW_TRACKING_URI"] == uri
        assert tracking.is_embedded()  # the exported URI is still "no server": locks stay file locks
        started = time.monotonic()
        with tracking.registry_lock("m"):
            pass
        assert time.monotonic() - started < 0.5
        assert (embedded_home / "locks" / "m.lock").exists()
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_credentials_are_masked_first(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://u:pass-456@host")
    tracking.mask_credentials()
    assert capsys.readouterr().out.splitlines() == ["::add-mask::tok-123", "::add-mask::pass-456"]


def test_unreachable_server_is_a_usage_error_without_secrets(monkeypatch):
    from conftest import free_port

    monkeypatch.setattr(tracking.time, "sleep", lambda _s: None)
    uri = f"http://admin:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(UsageError) as info:
        tracking.check_server(uri)
    assert "127.0.0.1" in str(info.value) and "hunter2" not in str(info.value)


def test_git_context_from_actions(monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "abc")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/m")
    monkeypatch.setenv("GITHUB_RUN_ID", "7")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://ghe.example.com")
    monkeypatch.setenv("GITHUB_ACTOR", "octo")
    assert tracking.git_context()["run_url"] == "https://ghe.example.com/acme/m/actions/runs/7"
    assert tracking.git_context()["actor"] == "octo"
