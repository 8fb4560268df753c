# Sourced by the bench scripts: paths, the binary, and best-of-N timing.
# Sets top, build, AZL (exported with AZL_BUILD/AZL_TOP) and runs
# (BUILD_RUNS, default 3).
# shellcheck shell=bash
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${AZL_BUILD:-$top/build}
case $build in /*) ;; *) build=$top/$build ;; esac
AZL=${AZL:-$build/azl-compose}
export AZL_BUILD=$build AZL_TOP=$top
runs=${BUILD_RUNS:-3}

# best_of command... -> the best wall time in seconds over $runs runs; a
# failing run fails the bench (nothing is timed that did not work).
best_of() {
	local b="" i s e t
	for ((i = 0; i < runs; i++)); do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || { echo "bench: FAILED: $*" >&2; return 1; }
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	printf '%.3f\n' "$b"
}
