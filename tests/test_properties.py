"""Properties of the parsers every input goes through: config values (durations, whole numbers,
choices, booleans, sizes), check-gates thresholds, router/metrics mappings and canary steps.

Each parser either returns a typed value or raises ValueError (which the CLI turns into one
`::error::` and exit 2); nothing else may escape, whatever the input. Valid values round-trip.
tests/test_config.py and tests/test_metrics.py hold the number and size round-trips.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mlcicd.config import (
    MAX_CONFIG_VALUES,
    boolean,
    build_settings,
    choice,
    duration,
    expanded_size,
    parse_yaml,
    shown,
    whole_number,
)
from mlcicd.errors import UsageError
from mlcicd.metric_sources import metrics_spec
from mlcicd.routers import ROUTER_KEYS, router_spec
from mlcicd.stages.canary_shift import PlanOptions, per_test_alpha, steps_list
from mlcicd.stages.canary_shift import make_plan as plan_of
from mlcicd.stages.check_gates import batch_sizes, optional_number, size


# Anything a YAML file or an action input can hand a parser.
def make_plan(values):  # the plan options as a test writes them
    return plan_of(build_settings(PlanOptions, values))


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["", " ", "5m", "-1", "1e309", "nan", "0x10"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def only_value_error(parse, raw):
    try:
        return parse(raw)
    except ValueError:
        return None


@given(VALUES)
def test_parsers_return_or_raise_value_error_only(raw):
    for parse in (
        duration, boolean, choice("a", "b"), whole_number(), whole_number(minimum=1, maximum=100), steps_list, optional_number(),
        optional_number(positive=True), size, batch_sizes, router_spec, metrics_spec,
    ):  # fmt: skip
        only_value_error(parse, raw)


UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}


@given(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    st.sampled_from(list(UNITS)),
    st.sampled_from(["", " "]),
)
def test_duration_scales_by_its_unit(amount, unit, space):
    text = f"{amount}{space}{unit}"
    seconds = float(amount) * UNITS[unit]
    if seconds <= 0:
        with pytest.raises(ValueError):
            duration(text)
    else:
        assert duration(text) == pytest.approx(seconds)


@given(st.floats(max_value=0, allow_nan=False, allow_infinity=False))
def test_duration_is_never_zero_or_negative(seconds):
    with pytest.raises(ValueError):
        duration(f"{seconds}s")


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=2000),
)
def test_whole_number_round_trips_within_its_bounds(value, minimum, span):
    parse = whole_number(minimum=minimum, maximum=minimum + span)
    inside = minimum <= value <= minimum + span
    for raw in (value, str(value), f" {value} "):
        if inside:
            assert parse(raw) == value
        else:
            with pytest.raises(ValueError):
                parse(raw)


@given(st.sampled_from(["canary", "linear", "blue-green"]), st.sampled_from(["", " ", "\t"]), st.booleans())
def test_choice_ignores_case_and_surrounding_space(word, pad, upper):
    assert choice("canary", "linear", "blue-green")(pad + (word.upper() if upper else word) + pad) == word


@given(st.sampled_from(["true", "yes", "1", "on", "false", "no", "0", "off"]), st.booleans())
def test_boolean_words_in_any_case(word, upper):
    assert boolean(word.upper() if upper else word) is (word in ("true", "yes", "1", "on"))


SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(list(SIZE_UNITS)), st.booleans())
@example(5, "MB", False)
def test_max_model_size_scales_by_its_unit(amount, unit, lower):
    assert size(f"{amount}{unit.lower() if lower else unit}") == amount * SIZE_UNITS[unit]


@given(st.text(alphabet="XYZPEQRWxyzpeqrw", min_size=1, max_size=3), st.integers(min_value=0, max_value=999))
@example("XB", 5)
def test_max_model_size_rejects_unknown_units(unit, amount):
    assume(unit.lower() not in {u.lower() for u in SIZE_UNITS} | {"k", "m", "g", "t"})
    with pytest.raises(ValueError):
        size(f"{amount}{unit}")


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_thresholds_round_trip_and_empty_means_unset(value):
    assert optional_number()(repr(value)) == value
    assert optional_number()("") is None and optional_number()(None) is None
    positive = optional_number(positive=True)
    if value > 0:
        assert positive(value) == value
    else:
        with pytest.raises(ValueError):
            positive(value)


@given(st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=6))
def test_batch_sizes_round_trip(sizes):
    assert batch_sizes(",".join(map(str, sizes))) == sizes
    assert batch_sizes(sizes) == sizes


STEPS = st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=8, unique=True).map(sorted)


@given(STEPS, st.sampled_from([",", ", ", " ,"]), st.booleans())
def test_canary_steps_round_trip(steps, separator, percent):
    text = separator.join(f"{s}{'%' if percent else ''}" for s in steps)
    assert steps_list(text) == tuple(steps)
    assert steps_list(steps) == tuple(steps)


@given(st.lists(st.integers(min_value=-200, max_value=300), min_size=2, max_size=6))
def test_canary_steps_outside_1_to_100_or_not_increasing_are_rejected(steps):
    assume(
        any(not 1 <= s <= 100 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:], strict=False))
    )
    with pytest.raises(ValueError):
        steps_list(",".join(map(str, steps)))


PLANS = st.one_of(
    STEPS.map(
        lambda steps: {"strategy": "canary", "steps": tuple(steps), "step-weight": 0, "max-weight": 50}
    ),
    st.integers(min_value=1, max_value=100).flatmap(
        lambda size: st.integers(min_value=size, max_value=100).map(
            lambda top: {"strategy": "linear", "steps": (), "step-weight": size, "max-weight": top}
        )
    ),
    st.integers(min_value=1, max_value=99).map(
        lambda warm: {"strategy": "blue-green", "steps": (warm,), "step-weight": 0, "max-weight": 50}
    ),
)


@given(PLANS, st.floats(min_value=1e-6, max_value=0.5), st.sampled_from(["threshold", "statistical", "both"]))
def test_every_plan_rises_to_100_and_splits_alpha(values, alpha, judge):
    plan = make_plan(values)
    weights = [w.canary for w in plan]
    assert weights[-1] == 100 and all(0 < w <= 100 for w in weights)
    assert all(b > a for a, b in zip(weights, weights[1:], strict=False))
    assert 0 < per_test_alpha(alpha, plan, judge) <= alpha


def test_blue_green_warm_up_of_100_is_refused():
    # Found by the property above: the plan was [100, 100], a switch with nothing judged before it.
    with pytest.raises(UsageError, match="below 100"):
        make_plan({"strategy": "blue-green", "steps": (100,), "step-weight": 0, "max-weight": 50})


HOSTS = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z]{2,5})?", fullmatch=True)


@given(
    HOSTS,
    st.integers(min_value=1, max_value=65535),
    st.sampled_from(sorted(ROUTER_KEYS)),
    st.floats(min_value=0.01, max_value=300),
)
def test_router_mapping_round_trips_as_yaml_text(host, port, kind, timeout):
    if kind in ("http", "haproxy"):
        spec = {
            "type": kind,
            "address": f"http://{host}:{port}" if kind == "http" else f"{host}:{port}",
            "timeout": timeout,
        }
        spec["route" if kind == "http" else "backend"] = "model"
    else:  # the Kubernetes routers name an object
        spec = {"type": kind, "namespace": host, "name": f"model-{port}", "timeout": timeout}
    assert router_spec(yaml.safe_dump(spec, default_flow_style=True)) == spec == router_spec(spec)


@given(
    st.sampled_from(sorted(ROUTER_KEYS)),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
)
def test_router_rejects_every_unknown_key(kind, key):
    assume(key not in ROUTER_KEYS[kind])
    valid = {
        "http": {"type": "http", "address": "http://r", "route": "m"},
        "haproxy": {"type": "haproxy", "address": "h:1", "backend": "m"},
    }.get(kind, {"type": kind, "namespace": "ml", "name": "m"})
    with pytest.raises(ValueError, match=f"`router.{key}` is not a setting"):
        router_spec({**valid, key: 1})


@given(st.floats(allow_nan=True))
def test_router_timeout_must_be_within_0_and_300_seconds(timeout):
    spec = {"type": "haproxy", "address": "127.0.0.1:1", "backend": "m", "timeout": timeout}
    if 0 < timeout <= 300:
        assert router_spec(spec)["timeout"] == timeout
    else:
        with pytest.raises(ValueError, match="timeout"):
            router_spec(spec)


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(JSONISH)
@settings(max_examples=200)
def test_strict_yaml_reads_back_what_any_writer_wrote(document):
    # The stricter loader (duplicate keys, alias bombs) must not reject anything a YAML writer produces.
    assert parse_yaml(yaml.safe_dump(document)) == document


@given(st.text(alphabet="abc", min_size=1, max_size=3), st.integers(), st.integers())
def test_a_key_given_twice_is_an_error(key, first, second):
    with pytest.raises(yaml.YAMLError, match="given twice"):
        parse_yaml(f"{key}: {first}\n{key}: {second}\n")


@given(st.integers(min_value=1, max_value=12), st.integers(min_value=2, max_value=9))
def test_alias_expansion_is_counted_not_performed(levels, fanout):
    lines = ["root:", f"  - &l0 [{', '.join(['x'] * fanout)}]"]
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]" for i in range(1, levels)]
    source = "\n".join(lines) + "\n"
    leaves = sum(fanout ** (i + 1) for i in range(levels))
    if leaves + levels + 2 > MAX_CONFIG_VALUES * 1.1:
        with pytest.raises(ValueError, match="aliases"):
            parse_yaml(source)
    elif leaves < MAX_CONFIG_VALUES // 2:
        assert expanded_size(parse_yaml(source), MAX_CONFIG_VALUES) >= leaves


@given(VALUES)
def test_error_messages_show_a_bounded_value(value):
    assert len(shown(value)) < 400
