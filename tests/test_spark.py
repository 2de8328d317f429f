"""engine: spark, on pyspark in local mode: the same profile and verdicts as the Arrow engine, and one
clear error for each way Spark input can be wrong. One SparkSession for the module (its JVM takes
seconds to start); the stage runs in this process and finds it with getOrCreate()."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcicd.errors import UsageError

from conftest import assert_one_clear_error

pytest.importorskip("pyspark")
if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java: `make install` installs openjdk-17-jre-headless", allow_module_level=True)

ROWS = 30_000


@pytest.fixture(scope="module")
def spark():
    from mlcicd import spark as engine

    session = engine.session("local[2]")
    yield session
    session.stop()


def table(seed: int, shift: float = 0.0, share: float = 0.0, broken_row: int | None = None) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0 + shift * 2.0, 2.0, ROWS)
    if broken_row is not None:
        x[broken_row] = 1_000.0
    y = rng.exponential(3.0, ROWS)
    y[rng.random(ROWS) < 0.05] = np.nan  # NaN counts as missing, as in the Arrow engine
    plan = rng.choice(["basic", "plus", "pro"], ROWS, p=[0.5 - share, 0.3, 0.2 + share])
    return pa.table(
        {
            "x": x,
            "y": y,
            "n": pa.array(rng.integers(0, 50, ROWS)),
            "plan": pa.array(plan),
            "flag": pa.array(rng.random(ROWS) < 0.3),
            "when": pa.array((rng.integers(0, 10**6, ROWS) * 1_000_000).astype("datetime64[us]")),
        }
    )


SCHEMA = """schema_type: dataframe
version: 0.35.0
columns:
  x:
    dtype: float64
    nullable: false
    in_range: {min_value: -100.0, max_value: 100.0}
  y:
    dtype: float64
    nullable: true
  n:
    dtype: int64
    greater_than_or_equal_to: 0
  plan:
    dtype: str
    isin: [basic, plus, pro]
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("spark-data")
    pq.write_table(table(1), d / "reference.parquet", row_group_size=10_000)
    # a directory of part files, as Spark and most lakehouse writers leave a table
    (d / "current").mkdir()
    current = table(2, shift=0.3, share=0.1, broken_row=123)
    for i, start in enumerate(range(0, ROWS, 12_000)):
        pq.write_table(current.slice(start, 12_000), d / "current" / f"part-{i:05d}.parquet")
    (d / "schema.yaml").write_text(SCHEMA)
    return d


def values(**overrides):
    from mlcicd.stages.validate_data import OPTIONS, PROFILE_OPTIONS

    out = {o.name: o.default for o in (*OPTIONS, *PROFILE_OPTIONS)}
    out.update({"engine": "spark", **overrides})
    return out


def source(**overrides):
    from mlcicd.config import build_settings
    from mlcicd.scanning import DataSource

    return build_settings(DataSource, values(**overrides))


def test_spark_profile_is_the_arrow_profile(spark, files):
    from mlcicd.profile import CURRENT_SAMPLE, sample_rank_error
    from mlcicd.scanning import read_data

    sources, by_spark, failures, digest = read_data(
        source(data=str(files / "reference.parquet")), CURRENT_SAMPLE, None
    )
    _, by_arrow, _, _ = read_data(
        source(data=str(files / "reference.parquet"), engine="arrow"), CURRENT_SAMPLE, None
    )
    assert sources == [f"parquet {files / 'reference.parquet'}"] and digest.startswith("spark:sha256:")
    assert not failures.groups
    assert by_spark["rows"] == by_arrow["rows"] == ROWS
    assert by_spark["columns-fingerprint"] == by_arrow["columns-fingerprint"]
    for name, ours in by_arrow["columns"].items():
        theirs = by_spark["columns"][name]
        assert (theirs["kind"], theirs["count"], theirs["nulls"]) == (
            ours["kind"],
            ours["count"],
            ours["nulls"],
        ), name
        if ours["kind"] == "categorical":
            assert theirs["counts"] == ours["counts"], name
        else:
            assert theirs["min"] == ours["min"] and theirs["max"] == ours["max"], name
            assert theirs["mean"] == pytest.approx(ours["mean"], rel=1e-12) and theirs[
                "std"
            ] == pytest.approx(ours["std"], rel=1e-9)
            # both samples hold every row here (30,000 < 50,000): the same values
            np.testing.assert_array_equal(theirs["sample"], ours["sample"], err_msg=name)
    assert sample_rank_error(CURRENT_SAMPLE) < 0.01


def test_validate_data_on_spark_finds_the_drift_and_the_schema_failure(spark, files, tmp_path, monkeypatch):
    from mlcicd.stages.validate_data import run, run_profile

    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary"))
    monkeypatch.chdir(tmp_path)
    # the reference is built by the default engine, the current data is read by Spark: one format
    reference = str(tmp_path / "reference.json")
    assert (
        run_profile(
            values(
                data=str(files / "reference.parquet"),
                schema=str(files / "schema.yaml"),
                out=reference,
                engine="arrow",
            )
        )
        == 0
    )
    spark.read.parquet(str(files / "current")).createOrReplaceTempView("current_view")
    report_path = tmp_path / "report.json"
    rc = run(
        values(
            data="table:current_view",
            schema=str(files / "schema.yaml"),
            reference=reference,
            report=str(report_path),
        )
    )
    report = json.loads(report_path.read_text())
    assert rc == 1
    assert report["data"]["rows"] == ROWS and report["data"]["files"] == ["table current_view"]
    assert sorted(report["drift"]["drifted"]) == ["plan", "x"]
    [failure] = report["schema"]["failures"]
    assert failure["column"] == "x" and failure["check"].startswith("in_range")


@pytest.mark.parametrize(
    ("data", "schema", "needles"),
    [
        ("missing/table.parquet", None, ("data not found", "missing/table.parquet")),
        ("table:no_such_table", None, ("table not readable by Spark", "no_such_table")),
        ("delta", None, ("Delta Lake is not available", "jars")),
        ("current", "uint8", ("column type not supported on Spark", "`n`", "uint8")),
        ("current", "custom check", ("schema check not supported on Spark", "`plan`", "non_empty")),
    ],
    ids=["no path", "no table", "delta without jars", "unsupported dtype", "unsupported check"],
)
def test_bad_spark_input_is_a_usage_error_before_any_work(spark, files, tmp_path, data, schema, needles):
    from mlcicd.scanning import scan_spark
    from mlcicd.schemas import load_schema

    if data == "delta":
        (tmp_path / "delta" / "_delta_log").mkdir(parents=True)
        pq.write_table(table(3), tmp_path / "delta" / "part-0.parquet")
        data = str(tmp_path / "delta")
    elif data == "current":
        data = str(files / "current")
    loaded = None
    if schema == "uint8":
        (tmp_path / "s.yaml").write_text(SCHEMA.replace("dtype: int64", "dtype: uint8"))
        loaded = load_schema(str(tmp_path / "s.yaml"))
    elif schema == "custom check":  # a schema from module:attribute may hold any function
        import pandera.pandas as pandera

        (tmp_path / "s.yaml").write_text(SCHEMA)
        loaded = load_schema(str(tmp_path / "s.yaml"))
        loaded = loaded.pandera() if hasattr(loaded, "pandera") else loaded
        loaded.columns["plan"].checks.append(pandera.Check(lambda s: s.str.len() > 0, name="non_empty"))
    with pytest.raises(UsageError) as caught:
        scan_spark(source(data=data, schema=str(tmp_path / "s.yaml")), 1_000, loaded)
    text = str(caught.value)
    assert all(n in text for n in needles), text


def test_a_spark_session_that_cannot_start_is_one_clear_error(run_cli, files):
    result = run_cli(
        "validate-data",
        "--engine",
        "spark",
        "--data",
        str(files / "current"),
        env={"JAVA_HOME": "/nonexistent-java", "PATH": os.path.dirname(os.sys.executable) + ":/usr/bin:/bin"},
        timeout=120,
    )
    assert_one_clear_error(result, "Spark session did not start", "Java 17")


def test_pandera_on_spark_imports_where_main_has_no_file():
    # Spark Connect's import ends the process with exit 0 where __main__ has no __file__ and grpc is
    # missing; under `python -c` the stage would have passed without validating.
    import subprocess
    import sys

    code = "from mlcicd.spark import pandera_pyspark\npandera_pyspark()\nprint('imported')"
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "imported"), done.stderr
    assert "Skipping doctests" not in done.stderr
