"""Runs the reader case corpus (tests/cases/*/case.json, see README.md) against the medfm binary.

Usage: run_cases.py MEDFM_BINARY DATA_DIR [CASES_DIR]
For each case: `MEDFM_BINARY info --json --stats [args] DATA_DIR/<input>` must exit 0 with a JSON
object on stdout holding every key of `expect` (numbers within tolerance); each region must match
`MEDFM_BINARY region ...` output by the SHA-256 of its RGB bytes; a failure case must exit 1 with
no stdout and exactly one stderr line containing `expect_error` (case-insensitive).
Prints one "ok/FAIL/skip name: detail" line per case and a summary; exits 1 when any case failed.
MEDFM_CASES_ALLOW_MISSING=1 skips (instead of failing) cases whose input is missing."""
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile

from PIL import Image

TIMEOUT_S = 300
# default tolerances by top-level key of `expect`; a case's "tolerance" overrides them
ABS_TOL = {"affine": 1e-4, "spacing": 1e-5}
REL_TOL = {"stats": 1e-6}
STATS_ABS_FLOOR = 1e-6
FLOAT_REL_TOL = 1e-9  # any other float (downsample, mpp): equal up to rounding


class Mismatch(Exception):
    pass


def close(key, want, got, tol):
    if key in ABS_TOL:
        return abs(got - want) <= tol.get(key, ABS_TOL[key])
    if key in REL_TOL:
        return abs(got - want) <= max(tol.get(key, REL_TOL[key]) * abs(want), STATS_ABS_FLOOR)
    return abs(got - want) <= max(tol.get(key, FLOAT_REL_TOL) * abs(want), 1e-12)


def compare(want, got, path, key, tol):
    """Raises Mismatch naming the first difference; key is the top-level key of `expect`."""
    where = path or key
    if isinstance(want, dict):
        if not isinstance(got, dict):
            raise Mismatch(f"{where}: expected an object, got {json.dumps(got)}")
        for k, v in want.items():
            if k not in got:
                raise Mismatch(f"{where}.{k}: missing")
            compare(v, got[k], f"{where}.{k}", key, tol)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            raise Mismatch(f"{where}: expected {json.dumps(want)}, got {json.dumps(got)}")
        for i, (w, g) in enumerate(zip(want, got)):
            compare(w, g, f"{where}[{i}]", key, tol)
    elif isinstance(want, bool) or want is None or isinstance(want, str):
        if type(got) is not type(want) or got != want:
            raise Mismatch(f"{where}: expected {json.dumps(want)}, got {json.dumps(got)}")
    elif isinstance(want, int):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != want:
            raise Mismatch(f"{where}: expected {want}, got {json.dumps(got)}")
    elif isinstance(want, float):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isfinite(got) \
                or not close(key, want, float(got), tol):
            raise Mismatch(f"{where}: expected {want!r}, got {got!r}")
    else:
        raise Mismatch(f"{where}: cannot compare {type(want).__name__}")


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Mismatch(f"timed out after {TIMEOUT_S} s: {' '.join(cmd)}")


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def check_error(binary, case, path):
    p = run([binary, "info", "--json", "--stats", *case.get("args", []), path])
    want = case["expect_error"]
    if p.returncode != 1:
        raise Mismatch(f"exit code {p.returncode}, expected 1 (stderr: {last_line(p.stderr)!r})")
    if p.stdout:
        raise Mismatch(f"stdout not empty: {p.stdout[:200]!r}")
    lines = p.stderr.rstrip("\n").split("\n") if p.stderr.strip() else []
    if len(lines) != 1:
        raise Mismatch(f"{len(lines)} stderr lines, expected 1: {p.stderr[:300]!r}")
    if want.lower() not in lines[0].lower():
        raise Mismatch(f"stderr {lines[0]!r} lacks {want!r}")
    return f"error {want!r}"


def check_info(binary, case, path):
    p = run([binary, "info", "--json", "--stats", *case.get("args", []), path])
    if p.returncode != 0:
        raise Mismatch(f"exit code {p.returncode}: {last_line(p.stderr)}")
    try:
        got = json.loads(p.stdout)
    except json.JSONDecodeError as e:
        raise Mismatch(f"stdout is not one JSON object ({e}): {p.stdout[:200]!r}")
    tol = case.get("tolerance", {})
    for key, want in case.get("expect", {}).items():
        if key not in got:
            raise Mismatch(f"{key}: missing")
        compare(want, got[key], "", key, tol)
    n = len(case.get("regions", []))
    for r in case.get("regions", []):
        check_region(binary, r, path)
    return f"{len(case.get('expect', {}))} keys" + (f", {n} regions" if n else "")


def check_region(binary, r, path):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "region.png")
        p = run([binary, "region", path, "--level", str(r["level"]), "--x", str(r["x"]),
                 "--y", str(r["y"]), "--width", str(r["w"]), "--height", str(r["h"]),
                 "--out", out])
        what = f"region level {r['level']} ({r['x']},{r['y']}) {r['w']}x{r['h']}"
        if p.returncode != 0:
            raise Mismatch(f"{what}: exit code {p.returncode}: {last_line(p.stderr)}")
        with Image.open(out) as im:
            if im.mode != "RGB" or im.size != (r["w"], r["h"]):
                raise Mismatch(f"{what}: got {im.mode} {im.size[0]}x{im.size[1]}")
            digest = hashlib.sha256(im.tobytes()).hexdigest()
    if digest != r["sha256_rgb"]:
        raise Mismatch(f"{what}: sha256 {digest[:16]}..., expected {r['sha256_rgb'][:16]}...")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    binary, data = sys.argv[1], sys.argv[2]
    cases_dir = sys.argv[3] if len(sys.argv) == 4 else os.path.dirname(os.path.abspath(__file__))
    allow_missing = os.environ.get("MEDFM_CASES_ALLOW_MISSING") == "1"
    names = sorted(n for n in os.listdir(cases_dir)
                   if os.path.isfile(os.path.join(cases_dir, n, "case.json")))
    counts = {"ok": 0, "FAIL": 0, "skip": 0}
    for name in names:
        case = json.load(open(os.path.join(cases_dir, name, "case.json")))
        path = os.path.join(data, case["input"])
        if not os.path.exists(path):
            status = "skip" if allow_missing else "FAIL"
            detail = f"input missing: {path} (run scripts/fetch_data.sh)"
        else:
            try:
                check = check_error if "expect_error" in case else check_info
                status, detail = "ok", check(binary, case, path)
            except Mismatch as e:
                status, detail = "FAIL", str(e)
        counts[status] += 1
        print(f"{status} {name}: {detail}", flush=True)
    print(f"{counts['ok']} ok, {counts['FAIL']} failed, {counts['skip']} skipped "
          f"of {len(names)} cases")
    sys.exit(1 if counts["FAIL"] else 0)


if __name__ == "__main__":
    main()
