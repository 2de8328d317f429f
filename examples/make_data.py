#!/usr/bin/env python3
"""Write the example datasets (deterministic): a training set, a healthy current batch, and one with planted defects.

    python examples/make_data.py [--rows N] [--out examples/data]

train.parquet   the training data: validate-data checks it, train.py trains on it, the reference profile is built from it
current.csv     recent production inputs from the same distribution, for monitor (validate-data passes on it too)
test.parquet    a labelled hold-out set for check-gates: the model's numeric features and the label
defects.csv     data with planted defects: out-of-range and unknown values, nulls where none
                are allowed, a dropped column, a shifted numeric feature and a shifted category mix
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def customers(rows: int, seed: int, *, income_shift: float = 0.0, pro_share: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "pro", "enterprise"], size=rows, p=[0.6 - (pro_share - 0.3), pro_share, 0.1])
    age = np.clip(rng.normal(42, 12, rows), 18, 90).round(1)
    income = np.exp(rng.normal(10.8 + income_shift, 0.4, rows)).round(2)
    tenure = rng.integers(0, 120, rows)
    tickets = rng.poisson(1.5, rows)
    spend = (
        20
        + 0.0004 * income
        + np.where(plan == "enterprise", 80, np.where(plan == "pro", 30, 0))
        + rng.normal(0, 5, rows)
    ).round(2)
    logit = -1.0 + 1.1 * tickets - 0.05 * tenure + 0.03 * (age - 42)
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "tenure_months": tenure,
            "plan": plan,
            "region": rng.choice(["north", "south", "east", "west"], size=rows),
            "monthly_spend": spend,
            "support_tickets": tickets,
            "churned": churned,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "data"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    customers(args.rows, seed=1).to_parquet(out / "train.parquet", index=False)
    customers(args.rows // 4, seed=2).to_csv(out / "current.csv", index=False)
    customers(args.rows // 4, seed=4).select_dtypes("number").to_parquet(out / "test.parquet", index=False)

    bad = customers(args.rows // 4, seed=3, income_shift=0.3, pro_share=0.45)
    bad.loc[:4, "age"] = [-3.0, 150.0, 212.0, -1.0, 130.0]  # out of range
    bad.loc[10:12, "plan"] = "platinum"  # not an allowed plan
    bad.loc[20:29, "region"] = None  # region is not nullable
    bad = bad.drop(columns=["support_tickets"])  # a column the model needs
    bad.to_csv(out / "defects.csv", index=False)
    print(f"wrote {out}/train.parquet, current.csv, test.parquet, defects.csv")


if __name__ == "__main__":
    main()
