#!/usr/bin/env python3
"""Prints the ratio table of the last `cargo bench --bench suite` run, from criterion's
estimates under target/criterion (median times).

Columns: time of nnpool on 1 thread and on all threads, the copy of the same bytes, the naive
reference; effective bandwidth (input + output bytes / time) as a fraction of the copy's; speed-up
over the reference; 2-thread speed-up; and channels-first time over channels-last time."""

import json
import os
import sys

root = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
suite = json.load(open(os.path.join(os.path.dirname(__file__), "..", "benches", "bench-suite.json")))


def median(case, layout, *parts):
    path = os.path.join(root, f"{case}_{layout}", *parts, "new", "estimates.json")
    if not os.path.exists(path):
        path = os.path.join(root, f"{case}", layout, *parts, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    return json.load(open(path))["median"]["point_estimate"] * 1e-9


def fmt(t):
    if t is None:
        return "—"
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


rows = []
print("| case | layout | nnpool 1 thr | nnpool all | copy | reference | copy/nnpool (1 thr) | copy/nnpool (all) | × reference | 2-thr speed-up |")
print("|---|---|---|---|---|---|---|---|---|---|")
threads = None
best = {}
for case in suite["cases"]:
    name = case["name"]
    for layout in ("nchw", "nhwc"):
        one = median(name, layout, "nnpool", "1-thread")
        alls = [d for d in os.listdir(os.path.join(root, f"{name}_{layout}", "nnpool"))
                if d.endswith("-threads")] if os.path.isdir(os.path.join(root, f"{name}_{layout}", "nnpool")) else []
        many = median(name, layout, "nnpool", alls[0]) if alls else None
        copy = median(name, layout, "copy")
        ref = median(name, layout, "reference")
        ratio = lambda t: f"{copy / t:.2f}" if t and copy else "—"
        print(f"| {name} | {layout} | {fmt(one)} | {fmt(many)} | {fmt(copy)} | {fmt(ref)} | {ratio(one)} | {ratio(many)} | "
              f"{(ref / one) if ref and one else float('nan'):.0f} | {(one / many) if one and many else float('nan'):.2f} |")
        best[(name, layout)] = one
print()
print("channels-first time / channels-last time (1 thread):")
for case in suite["cases"]:
    a, b = best.get((case["name"], "nchw")), best.get((case["name"], "nhwc"))
    if a and b:
        print(f"  {case['name']}: {a / b:.2f}")
