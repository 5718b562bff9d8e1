"""The churn lab's API: FastAPI, the current model loaded once from the registry and cached in
memory, one JSON line per prediction appended to LOG_DIR/predictions.log.

Run: uvicorn app:app --port 8000   (environment: REGISTRY_DIR, MODELS_DIR, LOG_DIR, LOG_LEVEL)
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

import joblib
import pandas as pd
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import churn

REGISTRY_DIR = Path(os.environ.get("REGISTRY_DIR", "state/registry"))
MODELS_DIR = Path(os.environ.get("MODELS_DIR", "state/models"))
LOG_DIR = Path(os.environ.get("LOG_DIR", "logs"))
MODEL_NAME = os.environ.get("MODEL_NAME", "churn")
logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper())
log = logging.getLogger("churn-api")


class Customer(BaseModel):
    tenure_months: int = Field(..., ge=0, le=200)
    num_complaints: int = Field(..., ge=0, le=50)
    avg_session_minutes: float = Field(..., ge=0, le=500)
    plan_type: str
    region: str
    request_id: Optional[str] = None


class State:
    model = None
    threshold = 0.5
    version: Optional[str] = None


state = State()


def load_current_model() -> None:
    """Loads the model named in REGISTRY_DIR/current_model.txt, if there is one."""
    current = REGISTRY_DIR / "current_model.txt"
    if not current.exists():
        log.warning("no current model: %s does not exist", current)
        return
    file = MODELS_DIR / current.read_text().strip()
    bundle = joblib.load(file)
    state.model = bundle["pipeline"]
    state.threshold = bundle["threshold"]
    state.version = file.stem.removeprefix(f"{MODEL_NAME}_")
    log.info("loaded %s (version %s, threshold %s)", file, state.version, state.threshold)


@asynccontextmanager
async def lifespan(_app: FastAPI):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    load_current_model()
    yield


app = FastAPI(title="churn-api", lifespan=lifespan)


@app.post("/predict")
def predict(customer: Customer):
    if state.model is None:
        raise HTTPException(status_code=500, detail="model not loaded")
    started = time.perf_counter()
    features = {
        "tenure_months": customer.tenure_months,
        "num_complaints": customer.num_complaints,
        "avg_session_minutes": customer.avg_session_minutes,
        "plan_type": customer.plan_type.strip().lower(),
        "region": customer.region.strip().upper(),
    }
    frame = pd.DataFrame([features], columns=churn.FEATURES)
    probability = float(state.model.predict_proba(frame)[0, 1])
    result = {
        "request_id": customer.request_id or str(uuid.uuid4()),
        "model_version": state.version,
        "prediction": int(probability >= state.threshold),
        "probability": round(probability, 6),
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "features": features,
        "ts": int(time.time()),
    }
    with open(LOG_DIR / "predictions.log", "a") as f:
        f.write(json.dumps(result, separators=(",", ":")) + "\n")
    return result


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/ready")
def ready():
    if state.model is None:
        return JSONResponse(status_code=503, content={"status": "not ready"})
    return {"status": "ready", "model": MODEL_NAME, "version": state.version}


@app.get("/startup")
def startup():
    if not REGISTRY_DIR.is_dir() or state.model is None:
        return JSONResponse(status_code=503, content={"status": "starting"})
    return {"status": "started", "version": state.version}
