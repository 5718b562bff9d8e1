#!/usr/bin/env python3
"""Measures one HTTP server for bench/compare.sh: start -> ready time, then throughput, latency,
errors, CPU and memory under wrk load; and renders the comparison table.

Standard library only (it runs with the system python3, not the peer's venv).

  harness.py startup --port P --runs N [--env K=V ...] -- CMD...
  harness.py load    --port P --wrk-cpus LIST --threads T --connections C --warmup S
                     --duration S --lua FILE [--path /predict] [--probe-body JSON]
                     [--log-dir DIR] [--env K=V ...] -- CMD...
  harness.py report  --modelhost FILE --peer FILE --machine FILE
  harness.py floor-report --run NAME=FILE ... --machine FILE   (the first run is the floor)

`startup` and `load` print one JSON document on stdout. Every server is started in its own
process group and stopped with SIGTERM (SIGKILL after 15 s), also when the harness is interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_POLL_S = 0.001
READY_TIMEOUT_S = 120.0


# ---------------------------------------------------------------------------------------------
# Processes


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, for every process visible in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def process_tree(root: int) -> list[int]:
    """root and all its descendants."""
    tree = children_map()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    return pids


def tree_memory_kib(root: int) -> tuple[int, int]:
    """(RSS, PSS) summed over the process tree, in KiB. RSS counts shared pages once per process;
    PSS divides them among the processes sharing them."""
    rss = pss = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of the live process tree."""
    ticks = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLK_TCK


def parse_cpus(spec: str) -> list[int]:
    cpus = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def cpu_times(cpus: list[int]) -> tuple[float, float, float]:
    """(busy, irq + softirq, total) seconds summed over `cpus`, from /proc/stat."""
    busy = irq = total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
                total += sum(ticks)
                busy += sum(ticks) - ticks[3] - ticks[4]
                irq += ticks[5] + ticks[6]
    return busy / CLK_TCK, irq / CLK_TCK, total / CLK_TCK


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tree_threads(root: int) -> int:
    count = 0
    for pid in process_tree(root):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return count


class MemorySampler(threading.Thread):
    """Samples the tree's RSS and PSS every `interval` seconds and keeps the peaks."""

    def __init__(self, root: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_rss = self.peak_pss = 0
        self.samples = 0
        self.stopping = threading.Event()

    def sample(self) -> None:
        rss, pss = tree_memory_kib(self.root)
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.samples += 1

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.sample()


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"harness: --env expects KEY=VALUE, got {pair!r}")
        if value == "":
            env.pop(key, None)  # KEY= unsets KEY
        else:
            env[key] = value
    return env


RUNNING: list[subprocess.Popen] = []  # servers, each in its own process group
CLIENTS: list[subprocess.Popen] = []  # wrk


def start(cmd: list[str], env: dict[str, str], log) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    RUNNING.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL if it has not exited after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc in RUNNING:
        RUNNING.remove(proc)


def stop_all(*_args) -> None:
    for proc in list(CLIENTS):
        proc.terminate()
    for proc in list(RUNNING):
        stop(proc)
    sys.exit(130)


def http_status(port: int, path: str) -> int | None:
    """Status code of GET path on 127.0.0.1:port, or None if nothing answered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            head = sock.recv(64)
        return int(head.split(b" ", 2)[1])
    except (OSError, IndexError, ValueError):
        return None


def wait_ready(proc: subprocess.Popen, port: int, started: float, path: str = "/ready") -> float:
    """Polls GET `path` every millisecond until it answers 200; returns ms since `started`."""
    while True:
        if http_status(port, path) == 200:
            return (time.perf_counter() - started) * 1000
        if proc.poll() is not None:
            sys.exit(f"harness: server exited with status {proc.returncode} before it was ready")
        if time.perf_counter() - started > READY_TIMEOUT_S:
            sys.exit(f"harness: server not ready after {READY_TIMEOUT_S:.0f} s")
        time.sleep(READY_POLL_S)


PROBE = (
    b'{"request_id":"probe-1","tenure_months":6,"num_complaints":3,'
    b'"avg_session_minutes":12.5,"plan_type":"basic","region":"AF"}'
)


def probe(port: int, path: str = "/predict", body: bytes = PROBE) -> str:
    """The answer to the README's example request, to show both servers do the same work."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return f"{response.status} {body}"


def port_free(port: int) -> bool:
    return http_status(port, "/health") is None


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_startup(args) -> dict:
    env = parse_env(args.env)
    times = []
    with open(args.server_log, "ab") as log:
        for _ in range(args.runs):
            if not port_free(args.port):
                sys.exit(f"harness: something already answers on port {args.port}")
            started = time.perf_counter()
            proc = start(args.cmd, env, log)
            times.append(wait_ready(proc, args.port, started, args.ready_path))
            stop(proc)
    return {
        "runs_ms": [round(t, 1) for t in times],
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
    }


def run_wrk(args, seconds: int) -> dict:
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s"]
    cmd += ["--timeout", "10s", "-s", args.lua, f"http://127.0.0.1:{args.port}{args.path}"]
    if args.wrk_cpus:
        cmd = ["taskset", "-c", args.wrk_cpus] + cmd
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    CLIENTS.append(wrk)
    out, _ = wrk.communicate()
    CLIENTS.remove(wrk)
    if wrk.returncode != 0:
        sys.exit(f"harness: wrk exited with status {wrk.returncode}:\n{out}")
    with open(args.server_log, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n{out}\n")
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON ") :])
    sys.exit(f"harness: wrk printed no WRK_JSON line:\n{out}")


def count_log_lines(log_dir: Path) -> int:
    lines = 0
    for path in log_dir.glob("predictions.log*"):
        with open(path, "rb") as f:
            lines += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return lines


def cmd_load(args) -> dict:
    env = parse_env(args.env)
    # A server without a prediction log (the floor, MLServer) has no --log-dir: no lines counted.
    log_dir = Path(args.log_dir) if args.log_dir else None
    if not port_free(args.port):
        sys.exit(f"harness: something already answers on port {args.port}")
    with open(args.server_log, "ab") as log:
        started = time.perf_counter()
        proc = start(args.cmd, env, log)
        sampler = MemorySampler(proc.pid)
        sampler.start()
        ready_ms = wait_ready(proc, args.port, started, args.ready_path)
        time.sleep(0.5)
        probe_body = args.probe_body.encode() if args.probe_body else PROBE
        sample_response = probe(args.port, args.path, probe_body)
        idle_rss, idle_pss = tree_memory_kib(proc.pid)
        warmup = run_wrk(args, args.warmup) if args.warmup > 0 else None
        lines_before = count_log_lines(log_dir) if log_dir else 0
        server_cpus = parse_cpus(args.server_cpus) if args.server_cpus else []
        load_before = loadavg()
        busy_before, irq_before, total_before = cpu_times(server_cpus)
        cpu_before = tree_cpu_seconds(proc.pid)
        measured = run_wrk(args, args.duration)
        cpu_seconds = tree_cpu_seconds(proc.pid) - cpu_before
        busy_after, irq_after, total_after = cpu_times(server_cpus)
        window = max(total_after - total_before, 1e-9)
        busy, irq = busy_after - busy_before, irq_after - irq_before
        load_after = loadavg()
        threads = tree_threads(proc.pid)
        processes = len(process_tree(proc.pid))
        sampler.stop()
        stop(proc)
    # Both servers flush their prediction log on a graceful stop.
    logged = count_log_lines(log_dir) - lines_before if log_dir else None
    seconds = measured["duration_us"] / 1e6
    errors = measured["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    ok = measured["requests"] - errors["status"]
    return {
        "ready_ms": round(ready_ms, 1),
        "requests": measured["requests"],
        "seconds": round(seconds, 3),
        "throughput_rps": round(measured["requests"] / seconds, 1),
        "latency_ms": {k: v / 1000 for k, v in measured["latency_us"].items()},
        "non_2xx": errors["status"],
        "socket_errors": socket_errors,
        "errors_detail": errors,
        "log_lines": logged,
        "log_lines_missing": max(ok - logged, 0) if logged is not None else None,
        "cpu_seconds": round(cpu_seconds, 2),
        # Of the server CPUs' capacity during the measured run: how much was busy, how much in
        # interrupts (mostly loopback packet delivery), and how much in neither the server nor
        # interrupts, i.e. other processes: the noise in this measurement.
        "server_cpus_busy_pct": round(100 * busy / window, 1),
        "server_cpus_irq_pct": round(100 * irq / window, 1),
        "server_cpus_other_pct": round(100 * max(busy - irq - cpu_seconds, 0) / window, 1),
        "loadavg_during": [load_before, load_after],
        "cpu_us_per_request": round(cpu_seconds / max(measured["requests"], 1) * 1e6, 1),
        "peak_rss_mib": round(sampler.peak_rss / 1024, 1),
        "peak_pss_mib": round(sampler.peak_pss / 1024, 1),
        "idle_rss_mib": round(idle_rss / 1024, 1),
        "idle_pss_mib": round(idle_pss / 1024, 1),
        "memory_samples": sampler.samples,
        "processes": processes,
        "threads": threads,
        "sample_response": sample_response,
        "warmup": warmup,
    }


# ---------------------------------------------------------------------------------------------
# Report


def fmt_ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def cmd_report(args) -> str:
    mh = json.loads(Path(args.modelhost).read_text())
    peer = json.loads(Path(args.peer).read_text())
    machine = json.loads(Path(args.machine).read_text())
    m_load, p_load = mh["load"], peer["load"]
    m_start, p_start = mh["startup"], peer["startup"]

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("inf")

    rows = [
        ("throughput", f"{m_load['throughput_rps']:,.0f} req/s", f"{p_load['throughput_rps']:,.0f} req/s"),
        ("latency p50", fmt_ms(m_load["latency_ms"]["p50"]), fmt_ms(p_load["latency_ms"]["p50"])),
        ("latency p99", fmt_ms(m_load["latency_ms"]["p99"]), fmt_ms(p_load["latency_ms"]["p99"])),
        ("latency max", fmt_ms(m_load["latency_ms"]["max"]), fmt_ms(p_load["latency_ms"]["max"])),
        ("requests (measured)", f"{m_load['requests']:,}", f"{p_load['requests']:,}"),
        ("errors: non-2xx + socket", f"{m_load['non_2xx']} + {m_load['socket_errors']}", f"{p_load['non_2xx']} + {p_load['socket_errors']}"),
        ("prediction log lines (missing)", f"{m_load['log_lines']:,} ({m_load['log_lines_missing']})", f"{p_load['log_lines']:,} ({p_load['log_lines_missing']})"),
        ("server CPU per request", f"{m_load['cpu_us_per_request']:.1f} µs", f"{p_load['cpu_us_per_request']:.1f} µs"),
        ("peak RSS, process tree", f"{m_load['peak_rss_mib']:.1f} MiB", f"{p_load['peak_rss_mib']:.1f} MiB"),
        ("peak PSS, process tree", f"{m_load['peak_pss_mib']:.1f} MiB", f"{p_load['peak_pss_mib']:.1f} MiB"),
        ("idle RSS after ready", f"{m_load['idle_rss_mib']:.1f} MiB", f"{p_load['idle_rss_mib']:.1f} MiB"),
        ("start → ready, median", f"{m_start['median_ms']:.1f} ms", f"{p_start['median_ms']:.1f} ms"),
        ("server CPUs: busy / irq / other processes", *(f"{x['server_cpus_busy_pct']:.0f} / {x['server_cpus_irq_pct']:.0f} / {x['server_cpus_other_pct']:.0f} %" for x in (m_load, p_load))),
        ("load average, measured run start / end", " / ".join(m_load["loadavg_during"]), " / ".join(p_load["loadavg_during"])),
        ("processes / threads under load", f"{m_load['processes']} / {m_load['threads']}", f"{p_load['processes']} / {p_load['threads']}"),
    ]
    out = ["| | modelhost | Python peer |", "|---|---:|---:|"]
    out += [f"| {name} | {a} | {b} |" for name, a, b in rows]

    t = ratio(m_load["throughput_rps"], p_load["throughput_rps"])
    p99 = ratio(p_load["latency_ms"]["p99"], m_load["latency_ms"]["p99"])
    ready = ratio(p_start["median_ms"], m_start["median_ms"])
    rss = ratio(p_load["peak_rss_mib"], m_load["peak_rss_mib"])
    pss = ratio(p_load["peak_pss_mib"], m_load["peak_pss_mib"])
    targets = [
        ("throughput, modelhost / peer", t, 100),
        ("p99 latency, peer / modelhost", p99, 50),
        ("start → ready, peer / modelhost", ready, 20),
        ("peak RSS, peer / modelhost", rss, 5),
    ]
    out += ["", "| ratio | measured | target | met |", "|---|---:|---:|:---:|"]
    out += [f"| {name} | {value:,.1f}× | ≥ {goal}× | {'yes' if value >= goal else '**no**'} |" for name, value, goal in targets]
    cpu = ratio(p_load["cpu_us_per_request"], m_load["cpu_us_per_request"])
    out += [
        f"| server CPU per request, peer / modelhost (least sensitive to other load) | {cpu:,.1f}× | (info) | |",
        f"| peak PSS, peer / modelhost (shared pages split) | {pss:,.1f}× | (info) | |",
    ]
    errors = m_load["non_2xx"] + m_load["socket_errors"] + p_load["non_2xx"] + p_load["socket_errors"]
    out += [
        "",
        f"- start → ready runs (ms): modelhost {m_start['runs_ms']}, peer {p_start['runs_ms']}",
        f"- errors in total: {errors}; prediction log lines missing: modelhost "
        f"{m_load['log_lines_missing']}, peer {p_load['log_lines_missing']}",
        f"- load average before / after: {machine['loadavg_before']} / {machine['loadavg_after']}",
    ]
    return "\n".join(out)


def cmd_floor_report(args) -> str:
    """Every run against the first (the floor): throughput, p99 and CPU per request, and the
    project's targets for modelhost's two routes."""
    runs = []
    for pair in args.run:
        name, sep, file = pair.partition("=")
        if not sep:
            sys.exit(f"harness: --run expects NAME=FILE, got {pair!r}")
        runs.append((name, json.loads(Path(file).read_text())))
    machine = json.loads(Path(args.machine).read_text())
    floor = runs[0][1]["load"]

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("inf")

    out = [
        "| server | req/s | × floor | p50 | p99 | p99 × floor | CPU / request | × floor | errors | idle RSS | start → ready |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in runs:
        load, start = run["load"], run["startup"]
        out.append(
            f"| {name} | {load['throughput_rps']:,.0f} | {ratio(load['throughput_rps'], floor['throughput_rps']):.3f} "
            f"| {fmt_ms(load['latency_ms']['p50'])} | {fmt_ms(load['latency_ms']['p99'])} "
            f"| {ratio(load['latency_ms']['p99'], floor['latency_ms']['p99']):.2f} "
            f"| {load['cpu_us_per_request']:,.1f} µs | {ratio(load['cpu_us_per_request'], floor['cpu_us_per_request']):.2f} "
            f"| {load['non_2xx']} + {load['socket_errors']} | {load['idle_rss_mib']:.1f} MiB | {start['median_ms']:.1f} ms |"
        )
    by_name = dict(runs)
    if "modelhost /predict" in by_name:
        predict = by_name["modelhost /predict"]["load"]
        checks = [
            ("modelhost /predict throughput / floor", ratio(predict["throughput_rps"], floor["throughput_rps"]), "≥ 0.6", lambda v: v >= 0.6),
            ("modelhost /predict p99 / floor's p99", ratio(predict["latency_ms"]["p99"], floor["latency_ms"]["p99"]), "≤ 2", lambda v: v <= 2),
        ]
        if "modelhost v2 infer" in by_name:
            infer = by_name["modelhost v2 infer"]["load"]
            checks.append(("modelhost v2 infer throughput / /predict", ratio(infer["throughput_rps"], predict["throughput_rps"]), "≥ 0.8", lambda v: v >= 0.8))
        out += ["", "| target | measured | goal | met |", "|---|---:|---:|:---:|"]
        out += [f"| {name} | {value:.3f} | {goal} | {'yes' if ok(value) else '**no**'} |" for name, value, goal, ok in checks]
    out += [
        "",
        f"- server CPUs busy / irq / other processes (%): "
        + "; ".join(f"{name} {r['load']['server_cpus_busy_pct']:.0f} / {r['load']['server_cpus_irq_pct']:.0f} / {r['load']['server_cpus_other_pct']:.0f}" for name, r in runs),
        f"- load average before / after: {machine['loadavg_before']} / {machine.get('loadavg_after', '?')}",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("startup", "load"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server; KEY= unsets")
        p.add_argument("--server-log", default="/dev/null")
        p.add_argument("--ready-path", default="/ready", help="GET route that answers 200 when ready")
        p.add_argument("cmd", nargs="+")
    sub.choices["startup"].add_argument("--runs", type=int, default=5)
    load = sub.choices["load"]
    load.add_argument("--wrk-cpus", default="")
    load.add_argument("--server-cpus", default="", help="CPUs the server is pinned to (for the noise figures)")
    load.add_argument("--threads", type=int, default=1)
    load.add_argument("--connections", type=int, default=32)
    load.add_argument("--warmup", type=int, default=10)
    load.add_argument("--duration", type=int, default=30)
    load.add_argument("--lua", required=True)
    load.add_argument("--log-dir", default="")
    load.add_argument("--path", default="/predict", help="the route wrk and the probe POST to")
    load.add_argument("--probe-body", default="", help="JSON body of the sample request")
    report = sub.add_parser("report")
    report.add_argument("--modelhost", required=True)
    report.add_argument("--peer", required=True)
    report.add_argument("--machine", required=True)
    floor = sub.add_parser("floor-report")
    floor.add_argument("--run", action="append", required=True, help="NAME=FILE; the first is the floor")
    floor.add_argument("--machine", required=True)
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    if args.command == "report":
        print(cmd_report(args))
        return
    if args.command == "floor-report":
        print(cmd_floor_report(args))
        return
    result = cmd_startup(args) if args.command == "startup" else cmd_load(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
