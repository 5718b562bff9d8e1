#!/usr/bin/env python3
"""v2 infer over gRPC beside REST, same server, same client library, same run.

Drives a running modelhost with Triton's clients (tritonclient.http with binary tensors, its
default, and tritonclient.grpc with raw tensors, its only form), one request at a time on one
connection each, for 1 and 1000 rows. Rounds alternate between the protocols so load from
elsewhere on the machine falls on both alike. Prints the median and p90 latency per case and
the REST/gRPC ratio of the medians.

Usage: grpc_vs_rest.py --url 127.0.0.1:8000 [--rounds 200] [--warmup 20]
(the venv of tests/oip/requirements.txt has both clients)
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "oip"))
from check_tritonclient import FEATURES  # noqa: E402  (the model's inputs, in order)

def columns(n):
    plans, regions = ["basic", "premium"], ["NA", "EU", "AF", "AS"]
    return {
        "tenure_months": np.array([(i * 7) % 200 for i in range(n)], dtype=np.int64),
        "num_complaints": np.array([i % 50 for i in range(n)], dtype=np.int64),
        "avg_session_minutes": np.array([(i * 13.37) % 500 for i in range(n)], dtype=np.float64),
        "plan_type": np.array([plans[i % 2].encode() for i in range(n)], dtype=np.object_),
        "region": np.array([regions[i % 4].encode() for i in range(n)], dtype=np.object_),
    }


def inputs(module, n):
    data = columns(n)
    tensors = []
    for name, datatype in FEATURES:
        tensor = module.InferInput(name, [n], datatype)
        tensor.set_data_from_numpy(data[name])
        tensors.append(tensor)
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="churn")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    clients = {
        "REST": (httpclient.InferenceServerClient(args.url), httpclient),
        "gRPC": (grpcclient.InferenceServerClient(args.url), grpcclient),
    }
    print(f"| rows | protocol | median | p90 | REST/gRPC (median) |")
    print(f"|---:|---|---:|---:|---:|")
    for n in (1, 1000):
        prepared = {p: inputs(module, n) for p, (_, module) in clients.items()}
        times = {p: [] for p in clients}
        for round_ in range(args.warmup + args.rounds):
            for protocol, (client, _) in clients.items():
                started = time.perf_counter()
                result = client.infer(args.model, prepared[protocol])
                took = time.perf_counter() - started
                assert result.as_numpy("probability").shape == (n,)
                if round_ >= args.warmup:
                    times[protocol].append(took)
        medians = {p: statistics.median(t) for p, t in times.items()}
        for protocol, samples in times.items():
            p90 = statistics.quantiles(samples, n=10)[-1]
            ratio = f"{medians['REST'] / medians['gRPC']:.2f}" if protocol == "gRPC" else ""
            print(f"| {n} | {protocol} | {medians[protocol] * 1000:.2f} ms | {p90 * 1000:.2f} ms | {ratio} |")


if __name__ == "__main__":
    main()
