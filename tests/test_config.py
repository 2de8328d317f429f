from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlcicd.config import Option, boolean, choice, number, resolve, text
from mlcicd.errors import UsageError
from mlcicd.stages import config_sections
from mlcicd.stages.validate_data import OPTIONS

SECTIONS = config_sections()


def resolve_vd(tmp_path, config: str | None = None, flags=None, env=None):
    if config is not None:
        (tmp_path / "mlcicd.yaml").write_text(config)
    flags = {"config": str(tmp_path / "mlcicd.yaml") if config is not None else None, **(flags or {})}
    return resolve("validate-data", OPTIONS, SECTIONS, flags, env or {})


def test_defaults_without_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    values = resolve_vd(tmp_path)
    assert values["drift-threshold"] == 0.01
    assert values["fail-on"] == "both"
    assert values["config"] == ""


def test_precedence_default_config_input_flag(tmp_path):
    config = "validate-data:\n  drift-threshold: 0.01\n  min-psi: 0.3\n  fail-on: schema\n"
    values = resolve_vd(
        tmp_path, config, flags={"fail-on": "none"}, env={"INPUT_MIN_PSI": "0.4", "INPUT_FAIL_ON": "drift"}
    )
    assert values["drift-threshold"] == 0.01  # from the file
    assert values["min-psi"] == 0.4  # action input beats the file
    assert values["fail-on"] == "none"  # CLI flag beats the input
    assert values["min-wasserstein"] == 0.1  # documented default


def test_empty_action_input_means_unset(tmp_path):
    values = resolve_vd(tmp_path, "validate-data:\n  min-psi: 0.3\n", env={"INPUT_MIN_PSI": "  "})
    assert values["min-psi"] == 0.3


def test_paths_in_config_are_relative_to_the_file(tmp_path):
    sub = tmp_path / "repo"
    sub.mkdir()
    (sub / "mlcicd.yaml").write_text(
        "validate-data:\n  data: data/x.csv\n  schema: mypkg.schemas:customers\n"
    )
    values = resolve("validate-data", OPTIONS, SECTIONS, {"config": str(sub / "mlcicd.yaml")}, {})
    assert values["data"] == str(sub / "data" / "x.csv")
    assert values["schema"] == "mypkg.schemas:customers"  # module:attribute is not a path


def test_a_list_of_paths_in_config_is_relative_to_the_file(tmp_path):
    from mlcicd.stages.train_gpu import OPTIONS as TRAIN_OPTIONS

    sub = tmp_path / "repo"
    sub.mkdir()
    (sub / "mlcicd.yaml").write_text("train-gpu:\n  data: [data/a.csv, 'parts/*.parquet', /abs/b.csv]\n")
    values = resolve("train-gpu", TRAIN_OPTIONS, SECTIONS, {"config": str(sub / "mlcicd.yaml")}, {})
    assert values["data"] == [str(sub / "data" / "a.csv"), str(sub / "parts" / "*.parquet"), "/abs/b.csv"]


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        (
            "validate-data:\n  drift-treshold: 0.1\n",
            ["validate-data.drift-treshold", "did you mean `drift-threshold`"],
        ),
        ("validate_data:\n  data: x\n", ["`validate_data` is not a stage", "did you mean `validate-data`"]),
        (
            "validate-data:\n  drift-threshold: abc\n",
            ["validate-data.drift-threshold", "'abc' is not a number"],
        ),
        ("validate-data:\n  drift-threshold: 2\n", ["above the maximum 1"]),
        ("validate-data:\n  fail-on: always\n", ["not one of: both, schema, drift, none"]),
        ("validate-data: [1, 2]\n", ["must be a mapping"]),
        ("- a\n- b\n", ["expected a mapping of stage sections"]),
        ("validate-data:\n  data: [unclosed\n", ["not valid YAML", "line"]),
        ("validate-data:\n  data: [a, b]\n", ["expected a single value"]),
    ],
    ids=[
        "typo-key",
        "typo-section",
        "not-a-number",
        "out-of-range",
        "bad-choice",
        "section-not-mapping",
        "file-not-mapping",
        "bad-yaml",
        "list-for-scalar",
    ],
)
def test_bad_config_names_the_key_and_the_fix(tmp_path, config, needles):
    with pytest.raises(UsageError) as info:
        resolve_vd(tmp_path, config)
    for needle in needles:
        assert needle in str(info.value)


def test_explicit_config_that_does_not_exist(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        resolve("validate-data", OPTIONS, SECTIONS, {"config": str(tmp_path / "nope.yaml")}, {})


def test_bad_input_value_names_the_input(tmp_path):
    with pytest.raises(UsageError, match="input `drift-threshold`: 'abc' is not a number"):
        resolve_vd(tmp_path, env={"INPUT_DRIFT_THRESHOLD": "abc"})


def test_every_option_has_help_and_a_valid_default():
    for section, options in SECTIONS.items():
        for option in options:
            assert option.help, f"{section}.{option.name}"
            assert option.name == option.name.lower() and "_" not in option.name
            option.parse(option.default)  # the documented default is itself valid


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_number_parser_roundtrips_any_finite_float(value):
    assert number()(repr(value)) == value
    assert number()(value) == value


@given(st.text(max_size=20))
def test_number_parser_only_raises_value_error(raw):
    try:
        result = number(minimum=0, maximum=1)(raw)
    except ValueError:
        return
    assert 0 <= result <= 1 and math.isfinite(result)


@given(st.one_of(st.text(max_size=10), st.booleans(), st.integers(), st.none()))
def test_boolean_and_choice_parsers_only_raise_value_error(raw):
    for parser in (boolean, choice("a", "b"), text):
        try:
            parser(raw)
        except ValueError:
            pass


def test_option_env_name():
    assert Option("min-share-change", text, "", "h").env_name == "INPUT_MIN_SHARE_CHANGE"
