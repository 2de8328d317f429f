"""canary-shift against real routers and a real metrics source on loopback.

HAProxy (runtime API) fronts two model servers that expose a Prometheus histogram; a real
Prometheus scrapes them every second; a load generator sends bounded traffic and records which
variant answered, so each step's real split is checked against the weight. The `http` router and
metrics contracts run against tests/fixtures/http_router.py, a reference implementation of them.
Intervals are seconds here instead of minutes.
"""

from __future__ import annotations

import pytest

from mlcicd.config import duration
from mlcicd.errors import UsageError
from mlcicd.stages.canary_shift import DEFAULT_STEPS, make_plan, steps_list

from conftest import assert_one_clear_error

PLAN_DEFAULTS = {"strategy": "canary", "steps": (), "step-weight": 0, "max-weight": 50}


def plan(**values):
    return [(w.canary, w.shadow) for w in make_plan({**PLAN_DEFAULTS, **values})]


def test_plans_of_each_strategy():
    assert plan() == [(w, 0) for w in DEFAULT_STEPS]
    assert plan(steps=(10, 40)) == [(10, 0), (40, 0), (100, 0)]  # the switch to 100 is added
    assert plan(strategy="linear") == [(10, 0), (20, 0), (30, 0), (40, 0), (50, 0), (100, 0)]
    assert plan(strategy="linear", **{"step-weight": 30, "max-weight": 100}) == [(30, 0), (60, 0), (90, 0), (100, 0)]
    assert plan(**{"step-weight": 25}) == [(25, 0), (50, 0), (100, 0)]
    assert plan(strategy="blue-green") == [(5, 0), (100, 0)]
    assert plan(strategy="blue-green", steps=(20,)) == [(20, 0), (100, 0)]
    assert plan(strategy="shadow") == [(0, 100), (100, 0)]


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"steps": (10, 50), "step-weight": 10}, "not both"),
        ({"strategy": "linear", "steps": (10, 50)}, "strategy canary"),
        ({"strategy": "blue-green", "steps": (10, 50)}, "one warm-up share"),
        ({"strategy": "shadow", "steps": (10,)}, "shadow"),
        ({"strategy": "linear", "step-weight": 60, "max-weight": 50}, "above max-weight"),
    ],
)
def test_plan_conflicts_are_usage_errors(values, needle):
    with pytest.raises(UsageError) as error:
        make_plan({**PLAN_DEFAULTS, **values})
    assert needle in error.value.message


def test_option_parsers():
    assert steps_list("5, 25,50%,100") == (5, 25, 50, 100)
    assert steps_list([10, 20]) == (10, 20)
    assert steps_list("") == ()
    for bad in ("5,3", "0,50", "5,150", "5,x", "2.5,10"):
        with pytest.raises(ValueError):
            steps_list(bad)
    assert duration("30s") == 30 and duration("5m") == 300 and duration("1h") == 3600 and duration("250ms") == 0.25 and duration(2) == 2
    for bad in ("-5m", "0s", "5 minutes", "", True):
        with pytest.raises(ValueError):
            duration(bad)


HAPROXY = "{type: haproxy, address: '127.0.0.1:1', backend: model}"
PROMETHEUS = "{type: prometheus, address: 'http://127.0.0.1:1'}"


@pytest.mark.parametrize(
    "args, needles",
    [
        ([], ["missing router"]),
        (["--router", "{type: nginx, address: x}"], ["router.type", "http, haproxy"]),
        (["--router", "{type: haproxy, address: '127.0.0.1:1', backnd: model}"], ["router.backnd", "did you mean `backend`"]),
        (["--router", "{type: haproxy, address: '127.0.0.1:1', route: model}"], ["router.route", "only the http router"]),
        (["--router", "{type: haproxy, address: '127.0.0.1:1'}"], ["needs `backend`"]),
        (["--router", "{type: http, address: 'lb:80', route: m}"], ["http:// or https://"]),
        (["--router", "[1, 2"], ["router", "YAML mapping"]),
        (["--router", HAPROXY], ["missing metrics"]),
        (["--router", HAPROXY, "--metrics", "{type: prometheus, address: 'http://p', queries: {p99: x}}"], ["metrics.queries.p99"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--steps", "50,20"], ["steps", "must increase"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--interval=-1m"], ["interval", "30s"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--strategy", "shadow"], ["cannot mirror"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--model-name", "churn"], ["model-name and version"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS], ["router unreachable", "nothing was changed"]),
    ],
)
def test_bad_input_is_one_clear_error(run_cli, args, needles):
    assert_one_clear_error(run_cli("canary-shift", "--interval", "1s", *args), *needles)


def test_config_section_is_checked_strictly(run_cli, tmp_path):
    (tmp_path / "mlcicd.yaml").write_text("canary-shift:\n  router:\n    type: haproxy\n    adress: 127.0.0.1:9999\n    backend: model\n")
    assert_one_clear_error(run_cli("canary-shift", cwd=tmp_path), "router.adress", "did you mean `address`", "mlcicd.yaml")
