#!/usr/bin/env python3
"""Groups a flat `perf report --no-children --sort sym --stdio` by component and prints a
Markdown table: each component's share of the server's samples and its top symbols.

The first rule whose pattern occurs in a symbol's name decides its component (kernel symbols
only go to the kernel groups), so the order below matters (e.g. `wasmtime::runtime::vm::instance::allocator` is the instance allocator, the
rest of wasmtime is the call machinery). Standard library only.

  profile_groups.py perf-report.txt [--top N]
"""

from __future__ import annotations

import re
import sys

# (component, patterns): a symbol belongs to the first component one of whose patterns it holds.
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("kernel: scheduler and futex (thread hand-offs)", ("futex", "schedule", "__switch_to", "finish_task_switch", "try_to_wake_up", "pick_next", "enqueue_", "dequeue_", "update_curr", "ttwu", "sched", "wake_up")),
    ("kernel: network (loopback TCP, epoll, syscalls)", ("tcp_", "ip_", "__dev_", "net_rx", "skb", "sock_", "__sys_", "epoll", "loopback", "__netif", "inet_", "nf_", "process_backlog", "__napi", "sk_stream", "sk_reset", "sock_def", "do_softirq", "__local_bh")),
    ("wasm code (the kernel in the sandbox)", ("wasm[", "wasm_function", "wasm-function", "array_to_wasm", "wasm_to_array")),
    ("wasmtime: instance allocation and reset (pooling, pagemap)", ("pooling", "allocator", "PageMap", "pagemap", "reset_with_pagemap", "MemoryImageSlot", "decommit", "instantiate", "InstancePre", "Instance::new", "OnDemand")),
    ("wasmtime: store, calls, exports", ("wasmtime", "cranelift", "Store", "TypedFunc", "catch_traps", "CallThreadState", "tls::")),
    ("kernel: memory (mm, page faults, madvise, ioctl)", ("page_fault", "pagemap", "madvise", "zap_", "do_anonymous", "clear_page", "handle_mm_fault", "do_user_addr_fault", "ioctl", "walk_page", "pagemap_scan", "folio", "mprotect", "tlb")),
    ("prediction log", ("prediction_log", "PredictionLog", "log_line", "telemetry::log")),
    ("metrics (prometheus-client)", ("prometheus", "metrics", "Histogram", "Counter", "Family")),
    ("tracing", ("tracing", "Span", "span::", "dispatcher", "callsite")),
    ("serde / serde_json (parse, validate, serialise)", ("serde", "indexmap", "ryu", "itoa", "schema::", "prepare_row", "Value", "format_escaped", "parse_object")),
    ("hyper / axum / tower (HTTP)", ("hyper", "axum", "tower", "http::", "httparse", "h1::", "bytes::", "matchit", "http_body")),
    ("tokio (runtime, I/O driver, channels)", ("tokio", "mio", "crossbeam", "parking_lot")),
    ("model executor (call threads, coalescing)", ("executor", "model::", "call_thread")),
    ("allocator and libc (malloc, memcpy)", ("malloc", "free", "memcpy", "memmove", "memset", "realloc", "_int_", "cfree", "__libc", "tcache")),
    ("kernel: other", ("[k]", "entry_SYSCALL", "syscall", "__x64", "do_syscall", "irq", "native_", "_raw_spin", "rcu", "kmem_", "__fget", "fput", "mutex_", "copy_", "__check_object")),
]

LINE = re.compile(r"^\s*([0-9.]+)%\s+\[([.k])\]\s+(.*?)\s*$")


def component(symbol: str, kernel: bool) -> str:
    if not kernel and symbol.startswith("0x"):
        return "wasm code (the kernel in the sandbox)"  # JIT code perf cannot name
    text = symbol + (" [k]" if kernel else "")
    for name, patterns in RULES:
        if any(p in text for p in patterns):
            if kernel and not name.startswith("kernel"):
                continue
            return name
    return "kernel: other" if kernel else "other (modelhost and std)"


def main() -> None:
    args = sys.argv[1:]
    top = 3
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i : i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    groups: dict[str, list[tuple[float, str]]] = {}
    for line in open(args[0], encoding="utf-8", errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        share, kind, symbol = float(m.group(1)), m.group(2), m.group(3)
        groups.setdefault(component(symbol, kind == "k"), []).append((share, symbol))
    total = sum(s for entries in groups.values() for s, _ in entries) or 1.0
    print("| component | share of server CPU samples | top symbols (self %) |")
    print("|---|---:|---|")
    for name, entries in sorted(groups.items(), key=lambda kv: -sum(s for s, _ in kv[1])):
        share = sum(s for s, _ in entries)
        tops = ", ".join(
            f"`{sym[:70]}` {s:.1f}" for s, sym in sorted(entries, reverse=True)[:top]
        )
        print(f"| {name} | {100 * share / total:.1f} % | {tops} |")


if __name__ == "__main__":
    main()
