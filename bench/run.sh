#!/bin/sh
# make bench: every speed figure, ours beside the peer route and the floor,
# in one run.  Each bench/<stage>.sh prints lines "<stage>: ..." on stdout;
# this collects them into one table at the end.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AZL_BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
export AZL=$build/azl-compose AZL_TOP=$top AZL_BUILD=$build
out=$build/bench; mkdir -p "$out"
: >"$out/summary.txt"
status=0
for b in resolve fetch build vhd; do
	s=$top/bench/$b.sh
	[ -f "$s" ] || continue
	echo "== $b"
	if ! bash "$s" | tee "$out/$b.txt"; then
		echo "$b: FAILED" | tee -a "$out/summary.txt"
		status=1
	fi
	grep "^$b" "$out/$b.txt" >>"$out/summary.txt" || true
done
echo
echo "== summary (nproc=$(nproc), $(date -u +%Y-%m-%dT%H:%MZ))"
cat "$out/summary.txt"
exit $status
