"""Profiles at scale: wide Parquet tables read a group of columns at a time, and profiles of parts
that merge into the profile of the whole."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcicd import data
from mlcicd.profile import REFERENCE_SAMPLE, ProfileBuilder, merge_profiles, sample_rank_error, to_json
from mlcicd.scanning import DataSource, scan
from mlcicd.schemas import SchemaFailures, load_schema


def wide_table(rows: int, seed: int, numeric: int = 40, strings: int = 10, nulls: bool = True) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(numeric):
        values = rng.normal(i, 1.0 + i % 3, rows)
        mask = (rng.random(rows) < 0.02) if nulls and i % 7 == 0 else None
        columns[f"f{i:03d}"] = pa.array(values, mask=mask)
    for i in range(strings):
        columns[f"s{i:03d}"] = pa.array(rng.choice(["a", "b", "c", "d"], rows, p=[0.4, 0.3, 0.2, 0.1]))
    return pa.table(columns)


def profile_by_batches(
    table: pa.Table, sample: int, batch_rows: int = 7_777, first_row: int = 0
) -> ProfileBuilder:
    builder = ProfileBuilder(sample, first_row=first_row)
    for batch in table.to_batches(max_chunksize=batch_rows):
        builder.add(batch, "test")
    return builder


def assert_same_profile(a: dict, b: dict, sample_equal: bool = True) -> None:
    assert a["rows"] == b["rows"] and list(a["columns"]) == list(b["columns"])
    for name, x in a["columns"].items():
        y = b["columns"][name]
        assert x["kind"] == y["kind"], name
        for key in ("count", "nulls", "counts", "other", "truncated"):
            assert x.get(key) == y.get(key), (name, key)
        if x["kind"] == "numeric":
            assert x["min"] == y["min"] and x["max"] == y["max"], name
            for key in ("mean", "std"):  # equal up to floating-point summation order
                assert x[key] == pytest.approx(y[key], rel=1e-12, abs=1e-12), (name, key)
            if sample_equal:
                np.testing.assert_array_equal(x["sample"], y["sample"], err_msg=name)


@pytest.fixture
def wide_parquet(tmp_path):
    path = tmp_path / "wide.parquet"
    pq.write_table(wide_table(30_000, seed=1), path, row_group_size=8_192)
    return path


def test_a_wide_row_group_is_read_a_column_group_at_a_time_with_the_same_profile(wide_parquet, monkeypatch):
    # 8,192 rows x 8 bytes = 64 KiB per float column: groups of 200 KiB hold a few columns each
    monkeypatch.setattr(data, "COLUMN_GROUP_BYTES", 200 << 10)
    blocks = list(data.iter_blocks([wide_parquet], strings_as_dictionary=True))
    assert [b.rows for b in blocks] == [8_192, 8_192, 8_192, 5_424]
    pieces = [list(b.pieces()) for b in blocks]
    assert all(len(p) > 5 for p in pieces)
    assert [sum(piece.num_columns for piece in p) for p in pieces] == [50] * 4
    assert blocks[0].whole().num_columns == 50

    _, by_groups, failures = scan(DataSource(str(wide_parquet)), REFERENCE_SAMPLE)
    whole = profile_by_batches(pq.read_table(wide_parquet), REFERENCE_SAMPLE).finish()
    assert_same_profile(by_groups, whole)
    assert not failures.groups


def test_a_failure_in_a_later_column_group_is_reported_with_its_row(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "COLUMN_GROUP_BYTES", 200 << 10)
    table = wide_table(20_000, seed=2, nulls=False)
    values = table.column("f039").to_numpy().copy()
    values[12_345] = 1e9
    table = table.set_column(table.column_names.index("f039"), "f039", pa.array(values))
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=8_192)
    checks = "\n".join(
        f"  f{i:03d}:\n    dtype: float64\n    nullable: false\n    less_than: 1000000.0" for i in range(40)
    )
    (tmp_path / "schema.yaml").write_text(f"columns:\n{checks}\n")
    schema = load_schema(str(tmp_path / "schema.yaml"))
    _, _, failures = scan(DataSource(str(path)), REFERENCE_SAMPLE, schema)
    assert isinstance(failures, SchemaFailures)
    [group] = failures.as_list()
    assert (group["column"], group["count"], group["rows"]) == ("f039", 1, [12_345])


def test_merged_builders_of_consecutive_parts_are_the_builder_of_the_whole():
    table = wide_table(40_000, seed=3)
    whole = profile_by_batches(table, REFERENCE_SAMPLE).finish()
    parts = [(0, 9_000), (9_000, 25_000), (25_000, 40_000)]
    builders = [profile_by_batches(table.slice(a, b - a), REFERENCE_SAMPLE, first_row=a) for a, b in parts]
    merged = builders[0]
    for other in builders[1:]:
        merged.merge(other)
    assert_same_profile(merged.finish(), whole)


def test_appending_data_to_a_builder_or_merging_in_any_order_gives_the_same_profile():
    table = wide_table(30_000, seed=4)
    whole = profile_by_batches(table, REFERENCE_SAMPLE).finish()
    late = profile_by_batches(table.slice(20_000), REFERENCE_SAMPLE, first_row=20_000)
    early = profile_by_batches(table.slice(0, 20_000), REFERENCE_SAMPLE)
    assert_same_profile(late.merge(early).finish(), whole)


def test_merged_finished_profiles_are_exact_for_counts_and_moments_and_within_the_stated_error_for_the_sample():
    a, b = wide_table(60_000, seed=5), wide_table(25_000, seed=6)
    union = pa.concat_tables([a, b])
    whole = profile_by_batches(union, REFERENCE_SAMPLE).finish()
    profiles = [profile_by_batches(t, REFERENCE_SAMPLE).finish() for t in (a, b)]
    merged = merge_profiles(profiles)
    assert_same_profile(merged, whole, sample_equal=False)
    bound = sample_rank_error(REFERENCE_SAMPLE)  # 99 % DKW bound: 0.016 at 10,000
    assert 0.015 < bound < 0.017
    for name, col in merged["columns"].items():
        if col["kind"] != "numeric":
            continue
        exact = np.sort(union.column(name).drop_null().to_numpy())
        sample = col["sample"]
        assert len(sample) == REFERENCE_SAMPLE
        # the largest distance between the sample's empirical CDF and the data's, at the sample's points
        cdf = np.searchsorted(exact, sample, side="right") / len(exact)
        ranks = np.arange(1, len(sample) + 1) / len(sample)
        assert np.max(np.abs(cdf - ranks)) < bound, name
    assert (
        merge_profiles(profiles)["columns"]["f001"]["sample"].tobytes()
        == merged["columns"]["f001"]["sample"].tobytes()
    )
    # and the merged profile round-trips through JSON like any other
    assert '"rows": 85000' in to_json(merged)


def test_merging_small_profiles_keeps_every_value():
    a, b = wide_table(300, seed=7), wide_table(200, seed=8)
    whole = profile_by_batches(pa.concat_tables([a, b]), REFERENCE_SAMPLE).finish()
    merged = merge_profiles([profile_by_batches(t, REFERENCE_SAMPLE).finish() for t in (a, b)])
    assert_same_profile(merged, whole)  # below the sample size the sample is all the values: equal


def test_column_groups_split_by_bytes():
    assert data.column_groups({"a": 10, "b": 10, "c": 25, "d": 1}, limit=20) == [["a", "b"], ["c"], ["d"]]
    assert data.column_groups({}, limit=20) == []


def test_profile_cli_merges_parts_in_parallel_or_incrementally(run_cli, tmp_path):
    from mlcicd.profile import load_profile

    a, b = wide_table(6_000, seed=9, numeric=6, strings=2), wide_table(4_000, seed=10, numeric=6, strings=2)
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    pq.write_table(pa.concat_tables([a, b]), tmp_path / "whole.parquet")
    for name in ("a", "b", "whole"):
        assert run_cli("profile", "--data", f"{name}.parquet", "--out", f"{name}.json", cwd=tmp_path).rc == 0
    parallel = run_cli("profile", "--merge", "a.json,b.json", "--out", "parallel.json", cwd=tmp_path)
    incremental = run_cli(
        "profile", "--data", "b.parquet", "--merge", "a.json", "--out", "incremental.json", cwd=tmp_path
    )
    assert parallel.rc == 0 and incremental.rc == 0, parallel.log + incremental.log
    whole = load_profile(str(tmp_path / "whole.json"))
    for name in ("parallel", "incremental"):
        merged = load_profile(str(tmp_path / f"{name}.json"))
        assert_same_profile(merged, whole)  # 10,000 rows: the samples hold every value, so they are equal too
        assert merged["data-digest"].startswith("merged:sha256:")
    assert (
        run_cli("validate-data", "--data", "whole.parquet", "--reference", "parallel.json", cwd=tmp_path).rc
        == 0
    )
