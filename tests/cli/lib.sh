# Shared by the CLI test scripts: `source` it after setting BIN. Gives PY (Debian's python), T (a
# temporary folder removed on exit), counters and:
#   check NAME CMD...             runs CMD; counts and prints ok / FAIL
#   expect_exit CODE PATTERN CMD  CMD exits CODE and its stderr contains PATTERN
#   finish                        prints the totals; the script's exit status
#   need_data PATH...             fails the whole script when a test input is missing
PY=/usr/bin/python3
[ -n "${BIN:-}" ] && BIN=$(readlink -f "$BIN")  # absolute: tests may change folder
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
check() {
  local name=$1; shift
  if "$@"; then pass=$((pass+1)); echo "ok   $name"; else fail=$((fail+1)); echo "FAIL $name"; fi
}
expect_exit() {
  local code=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || { echo "  exit $rc, wanted $code; stderr: $(cat "$T/err")"; return 1; }
  [ -z "$pat" ] || grep -q -- "$pat" "$T/err" || { echo "  stderr lacks '$pat': $(cat "$T/err")"; return 1; }
}
need_data() {
  local f
  for f in "$@"; do
    [ -e "$f" ] || { echo "FAIL missing test data $f (run scripts/fetch_data.sh)"; exit 1; }
  done
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
