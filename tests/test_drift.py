"""Drift statistics on synthetic data whose truth is known."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlcicd import drift
from mlcicd.drift import Thresholds, compare_column, is_failure, psi
from mlcicd.profile import CURRENT_SAMPLE, REFERENCE_SAMPLE, ProfileBuilder, load_profile, row_keys, to_json

T = Thresholds()


def profile_of(table: pa.Table, sample: int, batch_rows: int = 250_000) -> dict:
    builder = ProfileBuilder(sample)
    for batch in table.to_batches(max_chunksize=batch_rows):
        builder.add(batch, "test")
    return builder.finish()


def numeric(rows: int, seed: int, shift: float = 0.0, nulls: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    values = rng.normal(10.0 + shift * 3.0, 3.0, rows)  # sigma = 3, so `shift` is in sigmas
    mask = rng.random(rows) < nulls if nulls else None
    return pa.table({"x": pa.array(values, mask=mask)})


def categorical(rows: int, seed: int, shares: list[float], names=("a", "b", "c")) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"c": rng.choice(list(names), size=rows, p=shares)})


def verdict(ref_table, cur_table, column):
    ref = profile_of(ref_table, REFERENCE_SAMPLE)
    cur = profile_of(cur_table, CURRENT_SAMPLE)
    return compare_column(column, ref["columns"][column], cur["columns"].get(column), T)


@pytest.fixture(scope="module")
def reference_1m():
    return numeric(1_000_000, seed=1)


def test_identical_distributions_pass(reference_1m):
    result = verdict(reference_1m, numeric(1_000_000, seed=2), "x")
    assert result["status"] == "OK" and not is_failure(result)


def test_tiny_shift_on_a_million_rows_is_not_flagged(reference_1m):
    # 0.01 sigma is statistically real at 1M rows but far too small to matter.
    result = verdict(reference_1m, numeric(1_000_000, seed=3, shift=0.01), "x")
    assert result["status"] == "OK", result
    assert result["effect_size"] < T.min_wasserstein / 2


def test_fifth_sigma_shift_is_flagged(reference_1m):
    result = verdict(reference_1m, numeric(1_000_000, seed=4, shift=0.2), "x")
    assert result["status"] == "DRIFT" and is_failure(result)
    assert result["effect_size"] == pytest.approx(0.2, abs=0.03)
    assert result["p_value"] < 1e-10
    assert result["current_mean"] == pytest.approx(10.6, abs=0.01)  # exact moments over all rows


def test_fifth_sigma_shift_is_flagged_on_small_data_too():
    result = verdict(numeric(5_000, seed=5), numeric(5_000, seed=6, shift=0.2), "x")
    assert result["status"] == "DRIFT"


def test_no_false_alarm_on_small_samples():
    flagged = sum(
        is_failure(verdict(numeric(1_000, seed=100 + i), numeric(1_000, seed=200 + i), "x"))
        for i in range(100)
    )
    assert flagged <= 1


def test_a_fifth_sigma_mean_shift_on_a_thousand_rows_is_found_by_welch_where_ks_is_weak():
    # Seeds where KS alone (p ~ 0.02) misses the shift; Welch's t on the exact moments does not.
    missed_by_ks = 0
    for i in range(40):
        result = verdict(numeric(1_000, seed=300 + i), numeric(1_000, seed=400 + i, shift=0.2), "x")
        assert result["p_value"] == pytest.approx(
            min(1.0, 2 * min(result["ks_p_value"], result["welch_p_value"]))
        )
        missed_by_ks += result["ks_p_value"] >= T.alpha / 2 and result["status"] == "DRIFT"
    assert missed_by_ks >= 1


def test_categorical_share_moving_ten_points_is_flagged():
    ref = categorical(200_000, 1, [0.5, 0.3, 0.2])
    result = verdict(ref, categorical(200_000, 2, [0.4, 0.4, 0.2]), "c")
    assert result["status"] == "DRIFT"
    assert result["effect_size"] == pytest.approx(0.10, abs=0.01)
    assert result["test"] == "chi2"


def test_categorical_same_shares_pass():
    result = verdict(categorical(200_000, 1, [0.5, 0.3, 0.2]), categorical(200_000, 3, [0.5, 0.3, 0.2]), "c")
    assert result["status"] == "OK"


def test_two_point_share_move_on_a_million_rows_is_not_flagged():
    result = verdict(
        categorical(1_000_000, 1, [0.5, 0.3, 0.2]), categorical(1_000_000, 4, [0.48, 0.32, 0.2]), "c"
    )
    assert result["p_value"] < 1e-10 and result["status"] == "OK"


def test_missing_column_is_critical(reference_1m):
    result = verdict(reference_1m, pa.table({"y": [1.0, 2.0]}), "x")
    assert result["status"] == "MISSING" and result["severity"] == "critical" and is_failure(result)


def test_new_category_is_reported():
    ref = categorical(10_000, 1, [0.5, 0.3, 0.2])
    cur = categorical(10_000, 2, [0.5, 0.29, 0.2, 0.01], names=("a", "b", "c", "zz"))
    result = verdict(ref, cur, "c")
    assert result["status"] == "NEW_CATEGORY"
    assert result["new_categories"] == ["zz"]
    assert result["severity"] == "low" and not is_failure(result)  # 1 % of rows: reported, not failed


def test_missing_values_appearing_is_drift():
    result = verdict(numeric(50_000, 1), numeric(50_000, 2, nulls=0.2), "x")
    assert result["status"] == "DRIFT"
    assert any("missing values" in r for r in result["reasons"])


def test_constant_reference_column():
    ref = pa.table({"x": np.ones(1000)})
    assert verdict(ref, pa.table({"x": np.ones(500)}), "x")["status"] == "OK"
    assert verdict(ref, pa.table({"x": np.full(500, 2.0)}), "x")["status"] == "DRIFT"


def test_psi_of_identical_shares_is_zero_and_grows_with_change():
    same = np.array([0.5, 0.5])
    assert psi(same, same) == pytest.approx(0.0)
    assert psi(same, np.array([0.4, 0.6])) < psi(same, np.array([0.2, 0.8]))


def test_profile_does_not_depend_on_batching():
    table = pa.table({"x": np.random.default_rng(0).normal(size=100_000), "c": ["a", "b"] * 50_000})
    one = profile_of(table, REFERENCE_SAMPLE, batch_rows=100_000)
    many = profile_of(table, REFERENCE_SAMPLE, batch_rows=7_777)
    np.testing.assert_array_equal(one["columns"]["x"]["sample"], many["columns"]["x"]["sample"])
    assert one["columns"]["c"] == many["columns"]["c"]
    for key in ("mean", "std", "min", "max", "count", "nulls"):  # equal up to float summation order
        assert one["columns"]["x"][key] == pytest.approx(many["columns"]["x"][key], rel=1e-12)


def test_row_keys_are_uniform():
    keys = row_keys(0, 200_000)
    assert keys.min() >= 0 and keys.max() < 1
    counts = np.histogram(keys, bins=10, range=(0, 1))[0]
    assert counts.min() > 19_000 and counts.max() < 21_000


def test_profile_is_small_for_wide_large_data(tmp_path):
    rng = np.random.default_rng(0)
    table = pa.table({f"f{i}": rng.normal(size=1_000_000) for i in range(20)})
    path = tmp_path / "p.json"
    path.write_text(to_json(profile_of(table, REFERENCE_SAMPLE)))
    assert path.stat().st_size < 4 * 1024 * 1024
    loaded = load_profile(str(path))
    assert len(loaded["columns"]["f0"]["sample"]) == REFERENCE_SAMPLE


# --- the distributions drift.py computes itself, against scipy ------------------------------------

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize(
    ("x", "dof"), [(0.5, 1), (3.84, 1), (10, 3), (100, 50), (1000, 999), (1e-3, 2), (50, 2), (2000, 1000)]
)
def test_chi2_sf_matches_scipy(x, dof):
    assert drift.chi2_sf(x, dof) == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("t", "dof"), [(0.1, 5), (2, 10), (2.5, 1998), (4, 30), (10, 3), (0, 100), (30, 1e6), (1.96, 1e5)]
)
def test_t_p_value_matches_scipy(t, dof):
    assert drift.t_two_sided_p(t, dof) == pytest.approx(
        2 * scipy_stats.t.sf(abs(t), dof), rel=1e-8, abs=1e-300
    )


@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.8, 0.99, 1.0, 1.2, 1.63, 2, 3])
def test_kolmogorov_sf_matches_scipy(x):
    assert drift.kolmogorov_sf(x) == pytest.approx(scipy_stats.kstwobign.sf(x), rel=1e-12, abs=1e-15)


def test_normal_sf_matches_scipy():
    for z in (-3.0, 0.0, 1.0, 2.576, 8.0):
        assert drift.normal_sf(z) == pytest.approx(scipy_stats.norm.sf(z), rel=1e-12)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"), [(20, 30, 0.5), (50, 80, 0.3), (100, 100, 0.3), (300, 200, 0.0), (1000, 1000, 0.1)]
)
def test_ks_on_small_samples_is_close_to_the_exact_p_value(n1, n2, shift):
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    statistic, w = drift.ks_wasserstein(a, b)
    exact = scipy_stats.ks_2samp(a, b, method="exact")
    assert statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert w == pytest.approx(scipy_stats.wasserstein_distance(a, b), rel=1e-12)
    assert drift.ks_p_value(statistic, n1, n2) == pytest.approx(exact.pvalue, rel=0.25)


def test_ks_on_large_samples_matches_scipy_with_ties():
    rng = np.random.default_rng(7)
    a, b = (
        rng.poisson(4.0, 10_000).astype(float),
        rng.poisson(4.05, 50_000).astype(float),
    )  # integers: many ties
    statistic, w = drift.ks_wasserstein(a, b)
    asymp = scipy_stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(asymp.statistic, abs=1e-12)
    assert w == pytest.approx(scipy_stats.wasserstein_distance(a, b), rel=1e-12)
    assert drift.ks_p_value(statistic, 10_000, 50_000) == pytest.approx(asymp.pvalue, rel=0.02)


def test_chi2_test_matches_scipy():
    ref, cur = np.array([500.0, 300, 150, 50]), np.array([480.0, 330, 140, 60])
    statistic, p_value = drift.chi2_test(ref, cur)
    expected = scipy_stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected[0], rel=1e-12)
    assert p_value == pytest.approx(expected[1], rel=1e-9)


def test_welch_matches_scipy_from_moments():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 700), rng.normal(0.1, 1.5, 400)
    ref = {"count": len(a), "mean": a.mean(), "std": a.std(ddof=1)}
    cur = {"count": len(b), "mean": b.mean(), "std": b.std(ddof=1)}
    t, p = drift.welch_p_value(ref, cur)
    expected = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert t == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-8)
