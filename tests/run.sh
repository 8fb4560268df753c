#!/bin/sh
# Runs every unit test binary, then every tests/integration/*.sh.
# Each integration script exits 0 (pass), 77 (skipped: say why on stdout)
# or anything else (fail).  Ends with "N passed, N failed, N skipped".
# AZL_ONLY=unit|integration limits the run; AZL_TESTS="a b" picks scripts.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AZL_BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
export AZL=$build/azl-compose AZL_TOP=$top AZL_BUILD=$build
# AZL_WRAP="valgrind ...": unit tests and every $AZL call run under it
# (a shell command prefix: it may hold redirections and $$).
wrap=""
if [ -n "${AZL_WRAP:-}" ]; then
	wrap=$build/wrap
	printf '#!/bin/sh\nexec %s "$@"\n' "$AZL_WRAP" >"$wrap"
	printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$wrap" "$AZL" >"$build/azl-wrapped"
	chmod +x "$wrap" "$build/azl-wrapped"
	AZL=$build/azl-wrapped
fi
pass=0 fail=0 skip=0 failed=""
logdir=$build/test-logs
rm -rf "$logdir"; mkdir -p "$logdir/unit" "$logdir/integration"

run_one() { # name, command...
	name=$1; shift
	start=$(date +%s)
	"$@" >"$logdir/$name.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS  $name (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP  $name: $(tail -n 1 "$logdir/$name.log")" ;;
	*) fail=$((fail + 1)); failed="$failed $name"
	   echo "FAIL  $name (exit $rc, ${secs}s)"; sed 's/^/    | /' "$logdir/$name.log" | tail -n 40 ;;
	esac
}

if [ "${AZL_ONLY:-}" != integration ]; then
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "unit/$(basename "$t")" $wrap "$t"
	done
fi
if [ "${AZL_ONLY:-}" != unit ]; then
	for t in ${AZL_TESTS:-$(ls "$top"/tests/integration/*.sh 2>/dev/null)}; do
		case $t in /*) ;; *) t=$top/tests/integration/$t ;; esac
		run_one "integration/$(basename "$t" .sh)" bash "$t"
	done
fi
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
