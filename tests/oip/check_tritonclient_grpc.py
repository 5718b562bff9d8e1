#!/usr/bin/env python3
"""Drives a running modelhost over gRPC with Triton's official client (tritonclient[grpc]).

The gRPC service shares the HTTP port. Checks liveness, readiness, server and model metadata
and the repository index; scores 1 and 1000 customers with the client's own raw tensors and,
through the client's generated protobuf stub, with typed contents (int64_contents,
fp64_contents, bytes_contents); and requires the same predictions and probabilities as the lab's
POST /predict (to its 6 decimals). Errors must come back with the right gRPC code.

Usage: check_tritonclient_grpc.py --url 127.0.0.1:8000 [--model churn] [--wait-ready SECONDS]
Exits 0 when every check passed; prints one line per check and a closing "N passed, N failed".
"""

import argparse
import sys

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc

# The HTTP check's shared parts: the features, the tolerance, the runner and the REST helpers.
from check_tritonclient import FEATURES, TOLERANCE, Checks, expect_error, post_json, wait_ready


def customers(n):
    """The lab's example customer, then a deterministic spread over ranges and categories
    (untrimmed, mixed-case and unknown ones included)."""
    rows = [{"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5,
             "plan_type": "basic", "region": "AF"}]
    plans = ["basic", "premium", " Premium ", "gold"]
    regions = ["NA", "eu", "AF", "AS", "Mars"]
    for i in range(1, n):
        rows.append({
            "tenure_months": (i * 7) % 201,
            "num_complaints": i % 51,
            "avg_session_minutes": round((i * 13.37) % 500.0, 2),
            "plan_type": plans[i % len(plans)],
            "region": regions[i % len(regions)],
        })
    return rows


def column(rows, name, datatype):
    values = [row[name] for row in rows]
    if datatype == "BYTES":
        return np.array([v.encode() for v in values], dtype=np.object_)
    return np.array(values, dtype=np.int64 if datatype == "INT64" else np.float64)


def raw_inputs(rows):
    inputs = []
    for name, datatype in FEATURES:
        tensor = grpcclient.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(column(rows, name, datatype))
        inputs.append(tensor)
    return inputs


def typed_request(model, rows, request_id):
    """A ModelInferRequest with typed contents, built with the client's generated messages."""
    request = service_pb2.ModelInferRequest(model_name=model, id=request_id)
    for name, datatype in FEATURES:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(rows)])
        values = [row[name] for row in rows]
        if datatype == "INT64":
            tensor.contents.int64_contents.extend(values)
        elif datatype == "FP64":
            tensor.contents.fp64_contents.extend(values)
        else:
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
    return request


def expect_grpc_error(call, code, words):
    """expect_error for a gRPC status, which tritonclient reports as `StatusCode.<code>`."""
    expect_error(call, f"StatusCode.{code}", words)


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

    client = grpcclient.InferenceServerClient(url=args.url)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(args.url))
    checks = Checks()
    state = {}

    def server():
        assert client.is_server_live()
        assert client.is_server_ready()
        metadata = client.get_server_metadata(as_json=True)
        assert metadata["name"] == "modelhost", metadata
        index = client.get_model_repository_index(as_json=True)
        (model,) = index["models"]
        assert model["name"] == args.model and model["state"] == "READY", index

    def model():
        assert client.is_model_ready(args.model)
        metadata = client.get_model_metadata(args.model, as_json=True)
        inputs = [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]]
        assert inputs == [(n, d, ["-1"]) for n, d in FEATURES], inputs
        outputs = [(o["name"], o["datatype"]) for o in metadata["outputs"]]
        assert outputs == [("probability", "FP64"), ("prediction", "INT64")], outputs
        (version,) = metadata["versions"]
        assert client.is_model_ready(args.model, version)
        state["version"] = version

    def compare(probability, prediction, lab):
        assert probability.dtype == np.float64 and prediction.dtype == np.int64
        assert probability.shape == prediction.shape == (len(lab),)
        for i, answer in enumerate(lab):
            assert abs(probability[i] - answer["probability"]) <= TOLERANCE, (i, probability[i], answer)
            assert prediction[i] == answer["prediction"], (i, prediction[i], answer)

    def infer(n):
        rows = customers(n)
        lab = post_json(base, "/predict", {"instances": rows})["predictions"]
        result = client.infer(args.model, raw_inputs(rows), request_id=f"grpc-raw-{n}",
                              model_version=state["version"])
        response = result.get_response()
        assert response.id == f"grpc-raw-{n}" and response.model_version == state["version"]
        compare(result.as_numpy("probability"), result.as_numpy("prediction"), lab)

        # Typed contents in, typed contents out (binary_data_output: false).
        request = typed_request(args.model, rows, f"grpc-typed-{n}")
        request.parameters["binary_data_output"].bool_param = False
        response = stub.ModelInfer(request, timeout=30)
        assert not response.raw_output_contents
        by_name = {o.name: o for o in response.outputs}
        compare(np.array(by_name["probability"].contents.fp64_contents, dtype=np.float64),
                np.array(by_name["prediction"].contents.int64_contents, dtype=np.int64), lab)
        # Typed contents in, the client's reading of raw outputs.
        response = stub.ModelInfer(typed_request(args.model, rows, f"grpc-mixed-{n}"), timeout=30)
        typed = grpcclient.InferResult(response)
        compare(typed.as_numpy("probability"), typed.as_numpy("prediction"), lab)

    def errors():
        rows = customers(2)
        expect_grpc_error(lambda: client.get_model_metadata("no-such-model"), "NOT_FOUND",
                     ["no-such-model"])
        expect_grpc_error(lambda: client.infer(args.model, raw_inputs(rows), model_version="v000000000000"),
                     "NOT_FOUND", ["v000000000000"])
        bad = [dict(rows[0]), dict(rows[1], tenure_months=201)]
        expect_grpc_error(lambda: client.infer(args.model, raw_inputs(bad)),
                     "INVALID_ARGUMENT", ["row 1", "tenure_months"])
        expect_grpc_error(lambda: client.infer(args.model, raw_inputs(rows)[:4]),
                     "INVALID_ARGUMENT", ["missing input `region`"])
        expect_grpc_error(lambda: client.infer(args.model, raw_inputs(customers(1001))),
                     "RESOURCE_EXHAUSTED", ["1001 rows", "max_batch_rows"])

    checks.run("server live, ready, metadata and repository index", server)
    checks.run("model ready and metadata", model)
    if "version" in state:
        checks.run("infer 1 row, raw and typed contents, equals /predict", lambda: infer(1))
        checks.run("infer 1000 rows, raw and typed contents, equals /predict", lambda: infer(1000))
    checks.run("errors: NOT_FOUND, INVALID_ARGUMENT naming the row, RESOURCE_EXHAUSTED", errors)
    print(f"tritonclient.grpc: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
