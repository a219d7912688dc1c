"""Summarises a LibTorch profiler chrome trace (MEDFM_PROFILE=trace.json medfm_bench_vit ...):
per operator, the time spent in it minus the time of the operators it called (self time), as a
share of the forward pass. Usage: profile_summary.py trace.json [top=15]"""
import collections
import json
import sys


def main(path, top=15):
    ev = [e for e in json.load(open(path)) if e.get("ph") == "X"]
    ev.sort(key=lambda e: (e["tid"], e["ts"], -e["dur"]))
    self_t = collections.Counter()
    count = collections.Counter()
    stack = []  # (end, name) per thread
    tid = None
    for e in ev:
        if e["tid"] != tid:
            stack, tid = [], e["tid"]
        while stack and stack[-1][0] <= e["ts"]:
            stack.pop()
        if stack:
            self_t[stack[-1][1]] -= e["dur"]
        self_t[e["name"]] += e["dur"]
        count[e["name"]] += 1
        stack.append((e["ts"] + e["dur"], e["name"]))
    total = sum(self_t.values())
    print(f"| op | calls | self ms | share |\n|---|---|---|---|")
    for name, t in self_t.most_common(int(top)):
        print(f"| {name} | {count[name]} | {t / 1000:.1f} | {t / total:.1%} |")
    print(f"| (all) | {sum(count.values())} | {total / 1000:.1f} | 100% |")


if __name__ == "__main__":
    main(*sys.argv[1:])
