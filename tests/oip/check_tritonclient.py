#!/usr/bin/env python3
"""Drives a running modelhost with Triton's official HTTP client (tritonclient[http]).

Checks server and model metadata and health, then scores the same customers three ways — v2
infer with binary tensors (the client's default), v2 infer with JSON tensors and a pinned model
version, and the lab's POST /predict one by one and as a batch — and requires the same
predictions and the same probabilities (to /predict's 6 decimals). Errors must come back as
the client's exception with the right HTTP status.

Usage: check_tritonclient.py --url 127.0.0.1:8000 [--model churn] [--wait-ready SECONDS]
Exits 0 when every check passed; prints one line per check and a closing "N passed, N failed".
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

# /predict rounds probabilities to 6 decimals; v2 sends them unrounded.
TOLERANCE = 5e-7 + 1e-12

FEATURES = [
    ("tenure_months", "INT64"),
    ("num_complaints", "INT64"),
    ("avg_session_minutes", "FP64"),
    ("plan_type", "BYTES"),
    ("region", "BYTES"),
]


def customers():
    """The lab's example customer, then a deterministic spread over every category, ranges'
    ends, untrimmed and mixed-case categories, and unknown ones."""
    rows = [
        {"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5,
         "plan_type": "basic", "region": "AF"},
        {"tenure_months": 0, "num_complaints": 0, "avg_session_minutes": 0.0,
         "plan_type": " Premium ", "region": "eu"},
        {"tenure_months": 200, "num_complaints": 50, "avg_session_minutes": 500.0,
         "plan_type": "gold", "region": "Mars"},
    ]
    plans = ["basic", "premium"]
    regions = ["NA", "EU", "AF", "AS"]
    for i in range(37):
        rows.append({
            "tenure_months": (i * 7) % 60 + 1,
            "num_complaints": i % 5,
            "avg_session_minutes": round(5.0 + (i * 13.37) % 110.0, 2),
            "plan_type": plans[i % 2],
            "region": regions[i % 4],
        })
    return rows


def post_json(base, path, body):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_ready(base, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(base + "/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            sys.exit(f"modelhost at {base} was not ready within {seconds} s")
        time.sleep(0.1)


def inputs_for(rows, binary):
    inputs = []
    for name, datatype in FEATURES:
        values = [row[name] for row in rows]
        if datatype == "BYTES":
            array = np.array([v.encode() for v in values], dtype=np.object_)
        elif datatype == "INT64":
            array = np.array(values, dtype=np.int64)
        else:
            array = np.array(values, dtype=np.float64)
        tensor = httpclient.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, check):
        try:
            check()
        except Exception as error:  # a failed check reports and the others still run
            self.failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def expect_error(call, status, words):
    try:
        call()
    except InferenceServerException as error:
        assert error.status() == str(status), f"status {error.status()}, expected {status}: {error}"
        for word in words:
            assert word in error.message(), f"{word!r} not in {error.message()!r}"
        return
    raise AssertionError(f"expected an error with status {status}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="host:port of a running modelhost")
    parser.add_argument("--model", default="churn")
    parser.add_argument("--wait-ready", type=float, default=0.0,
                        help="first wait this many seconds for GET /ready to answer 200")
    args = parser.parse_args()
    base = "http://" + args.url
    if args.wait_ready > 0:
        wait_ready(base, args.wait_ready)

    client = httpclient.InferenceServerClient(url=args.url)
    rows = customers()
    checks = Checks()
    state = {}

    def server():
        assert client.is_server_live()
        assert client.is_server_ready()
        metadata = client.get_server_metadata()
        assert metadata["name"] == "modelhost", metadata
        assert "binary_tensor_data" in metadata["extensions"], metadata

    def model():
        assert client.is_model_ready(args.model)
        metadata = client.get_model_metadata(args.model)
        inputs = [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]]
        assert inputs == [(n, d, [-1]) for n, d in FEATURES], inputs
        outputs = [(o["name"], o["datatype"]) for o in metadata["outputs"]]
        assert outputs == [("probability", "FP64"), ("prediction", "INT64")], outputs
        (version,) = metadata["versions"]
        assert client.is_model_ready(args.model, version)
        state["version"] = version

    def lab_answers():
        one_by_one = [post_json(base, "/predict", row) for row in rows]
        batch = post_json(base, "/predict", {"instances": rows})["predictions"]
        for single, batched in zip(one_by_one, batch):
            for key in ("prediction", "probability", "model_version", "features"):
                assert single[key] == batched[key], (key, single, batched)
        state["lab"] = one_by_one

    def compare(result, request_id):
        assert result.get_response()["id"] == request_id
        assert result.get_response()["model_version"] == state["version"]
        probability = result.as_numpy("probability")
        prediction = result.as_numpy("prediction")
        assert probability.dtype == np.float64 and prediction.dtype == np.int64
        assert probability.shape == prediction.shape == (len(rows),)
        for i, lab in enumerate(state["lab"]):
            assert abs(probability[i] - lab["probability"]) <= TOLERANCE, (i, probability[i], lab)
            assert prediction[i] == lab["prediction"], (i, prediction[i], lab)

    def infer_binary():
        # The client's defaults: binary input tensors, every output as binary.
        result = client.infer(args.model, inputs_for(rows, binary=True), request_id="bin-1")
        compare(result, "bin-1")

    def infer_json():
        outputs = [httpclient.InferRequestedOutput(name, binary_data=False)
                   for name in ("probability", "prediction")]
        result = client.infer(args.model, inputs_for(rows, binary=False), outputs=outputs,
                              model_version=state["version"], request_id="json-1")
        assert all("data" in o for o in result.get_response()["outputs"])
        compare(result, "json-1")

    def errors():
        expect_error(lambda: client.get_model_metadata("no-such-model"), 404, ["no-such-model"])
        expect_error(lambda: client.infer(args.model, inputs_for(rows[:1], True),
                                          model_version="v000000000000"),
                     404, ["v000000000000"])
        bad = [dict(rows[0]), dict(rows[1], tenure_months=201)]
        expect_error(lambda: client.infer(args.model, inputs_for(bad, True)),
                     400, ["row 1", "tenure_months"])
        expect_error(lambda: client.infer(args.model, inputs_for(rows, True)[:4]),
                     400, ["missing input `region`"])

    checks.run("server live, ready and metadata", server)
    checks.run("model ready and metadata", model)
    checks.run("/predict one by one equals /predict as a batch", lab_answers)
    if "lab" in state and "version" in state:
        checks.run("infer with binary tensors equals /predict", infer_binary)
        checks.run("infer with JSON tensors and a pinned version equals /predict", infer_json)
    checks.run("errors: unknown model and version 404, bad and missing input 400", errors)
    print(f"tritonclient: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
