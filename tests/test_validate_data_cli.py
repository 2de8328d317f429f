"""validate-data and profile through the real CLI, with real $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY files."""

from __future__ import annotations

import json
import shutil
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_clear_error

VD = ("validate-data", "--schema", "schema.yaml", "--reference", "reference.json", "--target", "churned")


@pytest.fixture
def workdir(tmp_path, example_data):
    for name in ("current.csv", "defects.csv", "schema.yaml", "reference.json", "train.parquet"):
        shutil.copy(example_data / name, tmp_path / name)
    return tmp_path


def test_healthy_data_passes(run_cli, workdir):
    result = run_cli(*VD, "--data", "current.csv", cwd=workdir)
    assert result.rc == 0, result.log
    assert result.errors == []
    assert result.outputs["passed"] == "true"
    assert result.outputs["drifted-features"] == "[]"
    assert result.outputs["rows"] == "2000"
    assert result.outputs["data-digest"].startswith("sha256:") and len(result.outputs["data-digest"]) == 71
    report = json.loads((workdir / result.outputs["report"]).read_text())
    assert report["passed"] is True and report["data"]["rows"] == 2000
    assert {f["column"] for f in report["drift"]["features"]} >= {"age", "plan", "churned"}
    assert "## validate-data: ✅ passed" in result.summary and "All schema checks passed." in result.summary


def test_planted_defects_are_all_reported(run_cli, workdir):
    result = run_cli(*VD, "--data", "defects.csv", cwd=workdir)
    assert result.rc == 1, result.log
    assert len(result.errors) == 1 and "data check failed" in result.errors[0]
    assert result.outputs["passed"] == "false"
    report = json.loads((workdir / "mlcicd-reports" / "validate-data.json").read_text())
    failures = {(f["column"], f["check"]): f for f in report["schema"]["failures"]}
    assert failures[("age", "in_range(18, 120)")]["count"] == 5
    assert failures[("age", "in_range(18, 120)")]["rows"] == [0, 1, 2, 3, 4]
    assert set(failures[("age", "in_range(18, 120)")]["examples"]) == {
        "-3.0",
        "150.0",
        "212.0",
        "-1.0",
        "130.0",
    }
    assert failures[("plan", "isin(['basic', 'pro', 'enterprise'])")]["count"] == 3
    assert failures[("region", "not_nullable")]["count"] == 10
    assert ("support_tickets", "column_in_dataframe") in failures
    drift = {f["column"]: f for f in report["drift"]["features"]}
    assert drift["income"]["status"] == "DRIFT"
    assert drift["plan"]["status"] == "DRIFT"
    assert (
        drift["support_tickets"]["status"] == "MISSING" and drift["support_tickets"]["severity"] == "critical"
    )
    assert drift["tenure_months"]["status"] == "OK" and drift["region"]["status"] == "OK"
    assert json.loads(result.outputs["drifted-features"]) == report["drift"]["drifted"]
    assert {"income", "plan", "support_tickets"} <= set(report["drift"]["drifted"])
    # the summary shows both tables and the chart
    assert "| `age` | in_range(18, 120) | 5 |" in result.summary
    assert "| `support_tickets` | MISSING |" in result.summary
    assert "```mermaid\nxychart-beta" in result.summary


def test_fail_on_none_reports_but_passes(run_cli, workdir):
    result = run_cli(*VD, "--data", "defects.csv", "--fail-on", "none", cwd=workdir)
    assert result.rc == 0, result.log
    assert result.outputs["passed"] == "true"
    assert result.errors == [] and "::warning" in result.stdout


def test_fail_on_schema_ignores_drift(run_cli, workdir):
    frame = pd.read_csv(workdir / "current.csv")
    frame["income"] *= 1.5
    frame.to_csv(workdir / "shifted.csv", index=False)
    assert run_cli(*VD, "--data", "shifted.csv", cwd=workdir).rc == 1
    assert run_cli(*VD, "--data", "shifted.csv", "--fail-on", "schema", cwd=workdir).rc == 0


def test_inputs_from_env_and_config(run_cli, workdir):
    (workdir / "mlcicd.yaml").write_text(
        "validate-data:\n  schema: schema.yaml\n  reference: reference.json\n  fail-on: drift\n"
    )
    result = run_cli(
        "validate-data", env={"INPUT_DATA": "current.csv", "INPUT_TARGET": "churned"}, cwd=workdir
    )
    assert result.rc == 0, result.log
    assert result.outputs["rows"] == "2000"


def test_directory_and_glob_and_formats(run_cli, workdir):
    data = workdir / "parts"
    data.mkdir()
    frame = pd.read_csv(workdir / "current.csv")
    frame.iloc[:700].to_parquet(data / "a.parquet", index=False)
    frame.iloc[700:1400].to_csv(data / "b.csv", index=False)
    frame.iloc[1400:].to_json(data / "c.jsonl", orient="records", lines=True)
    for spec in ("parts", "parts/*"):
        result = run_cli(*VD, "--data", spec, cwd=workdir)
        assert result.rc == 0, result.log
        assert result.outputs["rows"] == "2000"
    digest_dir = run_cli(*VD, "--data", "parts", cwd=workdir).outputs["data-digest"]
    moved = workdir / "elsewhere"
    shutil.copytree(data, moved)
    assert run_cli(*VD, "--data", "elsewhere", cwd=workdir).outputs["data-digest"] == digest_dir


def test_schema_as_module_attribute(run_cli, workdir):
    (workdir / "myschemas.py").write_text(
        "import pandera.pandas as pa\nschema = pa.DataFrameSchema.from_yaml('schema.yaml')\n"
    )
    result = run_cli("validate-data", "--data", "current.csv", "--schema", "myschemas:schema", cwd=workdir)
    assert result.rc == 0, result.log


def test_profile_writes_a_small_deterministic_profile(run_cli, workdir):
    first = run_cli("profile", "--data", "train.parquet", "--out", "p1.json", cwd=workdir)
    second = run_cli("profile", "--data", "train.parquet", "--out", "p2.json", cwd=workdir)
    assert first.rc == 0 and second.rc == 0, first.log
    assert (workdir / "p1.json").read_bytes() == (workdir / "p2.json").read_bytes()
    profile = json.loads((workdir / "p1.json").read_text())
    assert profile["rows"] == 8000 and profile["format"] == "mlcicd-profile"
    assert profile["columns"]["plan"]["kind"] == "categorical"
    assert first.outputs["rows"] == "8000"


def test_help_starts_without_heavy_imports():
    import subprocess

    code = (
        "import sys, io, contextlib\n"
        "from mlcicd.cli import main\n"
        "from mlcicd.stages import all_stages\n"
        "for args in [['--help']] + [[name, '--help'] for name in all_stages()]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: main(args)\n"
        "        except SystemExit: pass\n"
        "heavy = {'pandas', 'pyarrow', 'pandera', 'mlflow', 'torch', 'scipy', 'numpy'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert time.perf_counter() - started < 5  # generous: the benchmark measures it properly


# --- bad input: each is exit 2 with exactly one ::error:: line and no traceback -------------


def write(path, content: bytes | str):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path.name


BAD_INPUTS = {
    "empty-file": (lambda d: write(d / "empty.csv", b""), [], ["empty.csv", "is empty"]),
    "header-only": (lambda d: write(d / "header.csv", "age,income\n"), [], ["no rows"]),
    "wrong-delimiter": (
        lambda d: write(d / "semi.csv", "age;income;plan\n30;1000;pro\n40;2000;basic\n"),
        [],
        ["delimiter", "';'"],
    ),
    "non-utf8": (
        lambda d: write(d / "latin.csv", b"age,plan\n30,caf\xe9\n40,pro\n"),
        [],
        ["UTF-8", "encoding"],
    ),
    "wrong-dtype": (
        lambda d: write(
            d / "dtype.csv",
            "age,income,tenure_months,plan,region,monthly_spend,support_tickets,churned\nold,1,2,pro,north,3,0,1\n",
        ),
        ["--schema", "schema.yaml"],
        ["age"],
    ),
    "wrong-dtype-parquet": (
        lambda d: (
            pd.read_csv(d / "current.csv").astype({"age": str}).to_parquet(d / "dtype.parquet", index=False),
            "dtype.parquet",
        )[1],
        ["--schema", "schema.yaml"],
        ["`age` is not float64", "schema"],
    ),
    "all-nan-column": (
        lambda d: write(d / "nan.csv", "age,income\n30,\n40,\n50,\n"),
        [],
        ["income", "no values"],
    ),
    "malformed-schema": (
        lambda d: write(d / "ok.csv", "a\n1\n"),
        ["--schema", "bad_schema.yaml"],
        ["bad_schema.yaml", "schema"],
    ),
    "schema-unknown-check": (
        lambda d: write(d / "ok.csv", "a\n1\n"),
        ["--schema", "unknown_check.yaml"],
        ["unknown_check.yaml"],
    ),
    "profile-of-another-schema": (
        lambda d: "current.csv",
        ["--schema", "schema.yaml", "--reference", "other_reference.json"],
        ["another schema", "mlcicd profile"],
    ),
    "profile-of-another-dataset": (
        lambda d: write(d / "ok.csv", "zzz\n1\n2\n"),
        ["--reference", "reference.json"],
        ["another dataset"],
    ),
    "malformed-profile": (
        lambda d: "current.csv",
        ["--reference", "garbage.json"],
        ["garbage.json", "not a JSON file"],
    ),
    "drift-threshold-abc": (
        lambda d: "current.csv",
        ["--drift-threshold", "abc"],
        ["drift-threshold", "'abc' is not a number"],
    ),
    "min-psi-zero": (lambda d: "current.csv", ["--min-psi", "0"], ["min-psi", "must be greater than 0"]),
    "glob-matches-nothing": (lambda d: "nothing/*.parquet", [], ["nothing/*.parquet", "matched no file"]),
    "missing-file": (lambda d: "nope.csv", [], ["nope.csv", "does not exist"]),
    "unsupported-extension": (lambda d: write(d / "data.xlsx", b"PK"), [], ["xlsx"]),
    "target-not-in-data": (lambda d: "current.csv", ["--target", "label"], ["label"]),
    "duplicate-columns": (lambda d: write(d / "dup.csv", "a,a\n1,2\n"), [], ["appears twice"]),
    "binary-garbage-parquet": (
        lambda d: write(d / "junk.parquet", np.random.default_rng(0).bytes(4096)),
        [],
        ["junk.parquet"],
    ),
    "config-typo": (
        lambda d: "current.csv",
        ["--config", "typo.yaml"],
        ["validate-data.fail_on", "did you mean `fail-on`"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_one_clear_error(run_cli, workdir, case):
    make, extra, needles = BAD_INPUTS[case]
    (workdir / "bad_schema.yaml").write_text("columns:\n  a: [unclosed\n")
    (workdir / "unknown_check.yaml").write_text(
        "schema_type: dataframe\napi: pandas\ncolumns:\n  a:\n    dtype: int64\n    no_such_check: 3\n"
    )
    (workdir / "garbage.json").write_text("{not json")
    (workdir / "typo.yaml").write_text("validate-data:\n  fail_on: drift\n")
    other = json.loads((workdir / "reference.json").read_text())
    other["schema-fingerprint"] = "sha256:" + "0" * 64
    other["schema-columns"] = {"age": "int64"}
    (workdir / "other_reference.json").write_text(json.dumps(other))
    data = make(workdir)
    before = sorted(p.name for p in workdir.iterdir())
    result = run_cli("validate-data", "--data", data, *extra, cwd=workdir)
    assert_one_clear_error(result, *needles)
    assert sorted(p.name for p in workdir.iterdir() if p.name != "mlcicd-reports") == before


def test_entry_script_runs_the_same_stage(run_cli, workdir):
    import subprocess

    from conftest import ROOT

    script = ROOT / "scripts" / "validate-data.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--data", "current.csv", "--report", "r.json"],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((workdir / "r.json").read_text())["passed"] is True


def test_profile_reads_csv_with_the_schema_types(run_cli, tmp_path):
    # Postcodes look numeric; the schema says text. Profile and validation must agree on that.
    import pandera.pandas as pa

    rows = "postcode,amount\n" + "".join(f"{10000 + i % 90},{i % 7}.5\n" for i in range(500))
    (tmp_path / "train.csv").write_text(rows)
    pa.DataFrameSchema({"postcode": pa.Column(str), "amount": pa.Column(float)}).to_yaml(
        tmp_path / "schema.yaml"
    )
    assert (
        run_cli(
            "profile", "--data", "train.csv", "--schema", "schema.yaml", "--out", "ref.json", cwd=tmp_path
        ).rc
        == 0
    )
    assert json.loads((tmp_path / "ref.json").read_text())["columns"]["postcode"]["kind"] == "categorical"
    result = run_cli(
        "validate-data",
        "--data",
        "train.csv",
        "--schema",
        "schema.yaml",
        "--reference",
        "ref.json",
        cwd=tmp_path,
    )
    assert result.rc == 0, result.log


# --- schemas of built-in checks run on Arrow, without pandas/pandera, with pandera's reports -----

ARROW_SCHEMA = """\
schema_type: dataframe
api: pandas
columns:
  x:
    dtype: float64
    nullable: true
    in_range: {min_value: 0, max_value: 10, include_min: true, include_max: false}
  n:
    dtype: int64
    unique: true
    greater_than_or_equal_to: 0
    less_than: 100
  c:
    dtype: string[pyarrow]
    isin: [a, b]
  d:
    dtype: string[pyarrow]
    nullable: true
    notin: [zz]
  flag:
    dtype: bool
    required: false
strict: true
"""


def arrow_batches():
    """A clean batch, then one batch per way of breaking it (and a few that only look broken)."""
    import pyarrow as pa

    clean = {
        "x": pa.array([0.0, 5.5, None, 9.99]),
        "n": pa.array([0, 1, 2, 99]),
        "c": pa.array(["a", "b", "a", "a"]),
        "d": pa.array(["p", None, "q", "r"]),
        "flag": pa.array([True, False, True, True]),
    }
    variants = {
        "clean": {},
        "x at the excluded max": {"x": pa.array([0.0, 10.0, 1.0, 2.0])},
        "x below min": {"x": pa.array([-0.1, 1.0, 1.0, 2.0])},
        "x NaN (null, allowed)": {"x": pa.array([float("nan"), 1.0, 1.0, 2.0])},
        "x infinite": {"x": pa.array([float("inf"), 1.0, 1.0, 2.0])},
        "x float32": {"x": pa.array([1.0, 1.0, 1.0, 2.0], pa.float32())},
        "x all null": {"x": pa.array([None, None, None, None], pa.float64())},
        "n duplicate": {"n": pa.array([0, 1, 1, 2])},
        "n null": {"n": pa.array([0, 1, None, 2])},
        "n at the excluded max": {"n": pa.array([0, 1, 100, 2])},
        "n negative": {"n": pa.array([0, -1, 3, 2])},
        "n as float": {"n": pa.array([0.0, 1.0, 3.0, 2.0])},
        "c not in the set": {"c": pa.array(["a", "b", "zz", "a"])},
        "c null": {"c": pa.array(["a", None, "b", "a"])},
        "c large_string": {"c": pa.array(["a", "b", "a", "a"], pa.large_string())},
        "c dictionary": {"c": pa.array(["a", "b", "a", "a"]).dictionary_encode()},
        "d forbidden": {"d": pa.array(["zz", None, "q", "r"])},
        "flag null": {"flag": pa.array([True, None, True, True])},
        "flag missing (not required)": {"flag": None},
        "n missing": {"n": None},
        "extra column (strict)": {"extra": pa.array([1, 2, 3, 4])},
    }
    for name, change in variants.items():
        columns = {**clean, **change}
        yield name, pa.RecordBatch.from_pydict({k: v for k, v in columns.items() if v is not None})


def test_arrow_schema_passes_a_batch_only_when_pandera_does(tmp_path):
    import pandera.errors as pe

    from mlcicd.arrow_schema import ArrowSchema
    from mlcicd.schemas import load_schema

    (tmp_path / "s.yaml").write_text(ARROW_SCHEMA)
    schema = load_schema(str(tmp_path / "s.yaml"))
    assert isinstance(schema, ArrowSchema)
    verdicts = {}
    for name, batch in arrow_batches():
        try:
            schema.pandera().validate(batch.to_pandas(), lazy=True)
            pandera_passes = True
        except pe.SchemaErrors:
            pandera_passes = False
        verdicts[name] = (schema.surely_passes(batch), pandera_passes)
    assert all(pandera for ours, pandera in verdicts.values() if ours), (
        verdicts
    )  # never a pass pandera would fail
    assert (
        verdicts["clean"]
        == verdicts["x NaN (null, allowed)"]
        == verdicts["flag missing (not required)"]
        == (True, True)
    )
    assert verdicts["c large_string"] == verdicts["x all null"] == (True, True)
    assert sum(not pandera for _, pandera in verdicts.values()) >= 15  # the variants do break the schema


def test_arrow_schema_reports_exactly_what_pandera_reports(tmp_path):
    from mlcicd.schemas import SchemaFailures, load_schema, validate_batch

    (tmp_path / "s.yaml").write_text(ARROW_SCHEMA)
    schema = load_schema(str(tmp_path / "s.yaml"))
    for _, batch in arrow_batches():
        ours, theirs = SchemaFailures(), SchemaFailures()
        validate_batch(schema, batch, 1000, ours)
        validate_batch(schema.pandera(), batch, 1000, theirs)
        assert ours.as_list() == theirs.as_list()


@pytest.mark.parametrize(
    "change",
    [
        (
            "    dtype: float64\n    nullable: true\n",
            "    dtype: float64\n    nullable: true\n    coerce: true\n",
        ),
        ("in_range: {min_value: 0", "in_range: {min_value: 20"),  # an empty interval: pandera's error
        ("isin: [a, b]", "isin: [a, true]"),
        ("    dtype: bool\n", "    dtype: bool\n    unique: true\n"),
        ("strict: true", "strict: filter"),
        ("strict: true", "ordered: true"),
        ("greater_than_or_equal_to: 0", "str_length: {min_value: 1}"),
        ("dtype: int64", "dtype: int32"),
        ("dtype: string[pyarrow]\n    isin", "dtype: str\n    isin"),
    ],
)
def test_anything_else_is_left_to_pandera(tmp_path, change):
    from mlcicd.arrow_schema import ArrowSchema

    old, new = change
    assert old in ARROW_SCHEMA
    (tmp_path / "s.yaml").write_text(ARROW_SCHEMA.replace(old, new, 1))
    assert ArrowSchema.from_yaml_file(str(tmp_path / "s.yaml")) is None


def test_arrow_schema_fingerprint_is_pandera_s(example_data):
    import pandera.pandas as pa

    from mlcicd.arrow_schema import ArrowSchema
    from mlcicd.schemas import load_schema, schema_columns

    schema = load_schema(str(example_data / "schema.yaml"))
    assert isinstance(schema, ArrowSchema)
    assert schema_columns(schema) == schema_columns(
        pa.DataFrameSchema.from_yaml(example_data / "schema.yaml")
    )


def test_validate_data_of_clean_data_imports_neither_pandas_nor_pandera(workdir):
    import subprocess

    code = (
        "import sys\nfrom mlcicd.cli import main\n"
        "try: main(['validate-data', '--data', 'current.csv', '--schema', 'schema.yaml', '--reference', 'reference.json'])\n"
        "except SystemExit as exc: assert exc.code in (0, None), exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pandas', 'pandera', 'scipy'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=workdir, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_parquet_strings_read_as_dictionary_change_nothing(tmp_path):
    """validate-data reads dictionary-encoded Parquet strings as dictionaries; the profile, the schema verdict and
    pandera's view of a failing batch are those of the plain strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlcicd.data import iter_batches, plain_strings, read_as_dictionary
    from mlcicd.profile import ProfileBuilder, to_json
    from mlcicd.schemas import SchemaFailures, load_schema, validate_batch

    rng = np.random.default_rng(3)
    n = 5_000
    table = pa.table(
        {
            "x": rng.uniform(0, 9, n),
            "n": np.arange(n),
            "c": rng.choice(["a", "b"], n),
            "d": pa.array(rng.choice(["p", "q", "zz"], n), mask=rng.random(n) < 0.1),
            "already": pa.array(
                rng.choice(["u", "v"], n)
            ).dictionary_encode(),  # a categorical column stays one
        }
    )
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=2_000)
    (tmp_path / "s.yaml").write_text(
        ARROW_SCHEMA.replace("less_than: 100", "less_than: 100000").replace("strict: true", "")
    )
    schema = load_schema(str(tmp_path / "s.yaml"))
    files = [tmp_path / "t.parquet"]
    plain = [b for _, b in iter_batches(files)]
    encoded = [b for _, b in iter_batches(files, strings_as_dictionary=True)]
    assert read_as_dictionary(encoded[0]) == {"c", "d"} and read_as_dictionary(plain[0]) == set()
    assert pa.types.is_dictionary(encoded[0].schema.field("c").type)
    assert all(
        plain_strings(e).equals(p) and plain_strings(e).schema.equals(p.schema, check_metadata=True)
        for e, p in zip(encoded, plain, strict=True)
    )
    profiles = []
    for batches in (plain, encoded):
        builder = ProfileBuilder(1_000)
        for batch in batches:
            builder.add(batch, "t")
        profiles.append(to_json(builder.finish()))
    assert profiles[0] == profiles[1]
    for e, p in zip(encoded, plain, strict=True):
        ours, theirs = SchemaFailures(), SchemaFailures()
        validate_batch(schema, e, 0, ours)  # `d` holds the forbidden "zz": pandera reports it
        validate_batch(schema.pandera(), p, 0, theirs)
        assert ours.as_list() == theirs.as_list() and ours.as_list()
