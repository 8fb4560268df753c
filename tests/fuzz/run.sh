#!/bin/bash
# make fuzz: every target (or AZL_FUZZ_TARGETS="lock rpm") for FUZZ_SECONDS
# each, one after the other (two cores are shared), over a corpus kept in
# $AZL_FUZZ_BUILD/corpus/<target> and the seeds seeds.sh makes.  Fails when
# any target stops with a crash, leak, timeout, out-of-memory or broken
# invariant; the input is left in $AZL_FUZZ_BUILD/crashes/<target>/ (make
# it a regression test: tests/fuzz/README.md).  One line per target, with
# the runs made, goes to stdout and to $AZL_FUZZ_BUILD/fuzz-log.txt.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
fb=${AZL_FUZZ_BUILD:-build-fuzz-bin}
secs=${FUZZ_SECONDS:-30}
all=""
for f in tests/fuzz/fuzz_*.c; do
	f=${f##*/fuzz_}
	all="$all ${f%.c}"
done
targets=${AZL_FUZZ_TARGETS:-$all}
export LC_ALL=C TZ=UTC

# Seeds are rebuilt when missing, also for a target added since
# (AZL_FUZZ_RESEED=1 forces it).
reseed=${AZL_FUZZ_RESEED:-}
for t in $targets; do [ -d "$fb/seeds/$t" ] || reseed=1; done
if [ ! -e "$fb/seeds/.complete" ] || [ -n "$reseed" ]; then
	bash tests/fuzz/seeds.sh "$fb/seeds"
	touch "$fb/seeds/.complete"
fi

failed=""
for t in $targets; do
	bin=$fb/fuzz/fuzz_$t
	[ -x "$bin" ] || { echo "fuzz: $bin missing (make fuzz-build)" >&2; exit 1; }
	mkdir -p "$fb/corpus/$t" "$fb/crashes/$t" "$fb/logs"
	log=$fb/logs/$t.log
	rc=0
	"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
		-artifact_prefix="$fb/crashes/$t/" -print_final_stats=1 \
		"$fb/corpus/$t" "$fb/seeds/$t" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
	line="$(date -u +%FT%TZ) $t: ${secs}s, ${runs:-?} runs, ${cov:-cov: ?}, exit $rc"
	echo "$line" | tee -a "$fb/fuzz-log.txt"
	if [ "$rc" -ne 0 ]; then
		failed="$failed $t"
		grep -E 'ERROR|SUMMARY|invariant|Test unit written|==[0-9]+==' "$log" | head -n 20 >&2 || true
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: found something in:$failed (inputs in $fb/crashes/, logs in $fb/logs/)" >&2
	exit 1
fi
echo "fuzz: nothing found in $targets"
