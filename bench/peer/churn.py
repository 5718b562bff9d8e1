"""The churn lab's data, cleaning and model pipeline, as the Python system does it.

Shared by the training job (train.py) and the API (app.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["tenure_months", "num_complaints", "avg_session_minutes"]
CATEGORICAL = ["plan_type", "region"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "churn"
MAX_NULL_FRACTION = 0.05


def synthetic(n: int = 1200, seed: int = 42) -> pd.DataFrame:
    """The lab's synthetic customers: n rows drawn with numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 60, size=n)
    complaints = rng.poisson(1.2, size=n)
    session = np.round(np.clip(rng.normal(35, 12, size=n), 1, 120), 2)
    plan = rng.choice(["basic", "premium"], size=n, p=[0.72, 0.28])
    region = rng.choice(["NA", "EU", "AF", "AS"], size=n, p=[0.25, 0.30, 0.25, 0.20])
    logit = (
        1.2
        + 0.55 * complaints
        - 0.03 * tenure
        - 0.02 * session
        - 0.35 * (plan == "premium")
        - 0.05 * (region == "EU")
        + 0.08 * (region == "AF")
    )
    churn = rng.binomial(1, 1.0 / (1.0 + np.exp(-logit)))
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "num_complaints": complaints,
            "avg_session_minutes": session,
            "plan_type": plan,
            "region": region,
            TARGET: churn,
        }
    )


class DataCheckError(ValueError):
    """A quality check failed; the training run stops."""


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """The lab's checks and cleaning: required columns, <= 5 % nulls per column, numeric columns
    numeric, session minutes clipped at 0, plan lower-cased, region upper-cased."""
    missing = [c for c in FEATURES + [TARGET] if c not in df.columns]
    if missing:
        raise DataCheckError(f"missing columns: {missing}")
    for column in FEATURES + [TARGET]:
        fraction = float(df[column].isna().mean())
        if fraction > MAX_NULL_FRACTION:
            raise DataCheckError(f"column {column}: {fraction:.1%} nulls")
    df = df.copy()
    for column in NUMERIC:
        converted = pd.to_numeric(df[column], errors="coerce")
        if converted.isna().sum() > df[column].isna().sum():
            raise DataCheckError(f"column {column} is not numeric")
        df[column] = converted
    df["avg_session_minutes"] = df["avg_session_minutes"].clip(lower=0)
    df["plan_type"] = df["plan_type"].astype(str).str.strip().str.lower()
    df["region"] = df["region"].astype(str).str.strip().str.upper()
    return df.dropna()


def pipeline() -> Pipeline:
    """StandardScaler on the numeric columns, one-hot (unknown ignored) on the categorical ones,
    L2 logistic regression (C = 1, lbfgs, 200 iterations)."""
    features = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = LogisticRegression(C=1.0, solver="lbfgs", max_iter=200)
    return Pipeline([("features", features), ("model", model)])
