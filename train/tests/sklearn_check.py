#!/usr/bin/env python3
"""Fit the lab's scikit-learn pipeline to a CSV and print its probabilities as JSON.

This is the reference that modelhost-train's Rust fit is compared against; cargo does not run
it. Typical use:

    cargo run -p modelhost-train --example export_synth -- 1200 42 /tmp/churn.csv /tmp/rust.json
    python3 train/tests/sklearn_check.py /tmp/churn.csv > /tmp/sklearn.json

The pipeline is the lab's, with the solver tolerance tightened (tol=1e-10, max_iter=1000) so
that lbfgs gets close to the exact optimum that the Rust Newton solver reaches; at the lab's
default tol=1e-4 the two agree only to about 1e-4.
"""

import argparse
import json
import sys

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="CSV with a header row, as written by write_csv")
    parser.add_argument("--target", default="churn", help="name of the 0/1 target column")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--solver", default="lbfgs", help="LogisticRegression solver")
    parser.add_argument("--tol", type=float, default=1e-10, help="solver tolerance")
    args = parser.parse_args()

    # Only empty cells are missing: "NA" is the North America region, not a null, so pandas'
    # default NA strings must be switched off.
    frame = pd.read_csv(args.csv, keep_default_na=False, na_values=[""])
    y = frame.pop(args.target).astype(int)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]

    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("clf", LogisticRegression(C=args.c, solver=args.solver, max_iter=1000, tol=args.tol)),
        ]
    )
    model.fit(frame, y)
    probabilities = model.predict_proba(frame)[:, 1]
    json.dump([float(p) for p in probabilities], sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
