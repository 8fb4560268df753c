#!/bin/bash
# SIGKILL at chosen points of a cold `azl-compose build`, then a rerun.
#
# The points are deterministic: strace's fault injection sends SIGKILL on
# entry to the Nth rename (or linkat, syncfs, pwrite64, write) of a
# thread, before the call runs.  A traced clean build lists the main
# thread's renames first (solver cache, lockfile, cache records, work
# files, publishing), so the kills cover every stage that names a file.
# Half of the runs, and every kill while publishing, start with an older
# build's outputs (another manifest, same name) in the output folder, as a
# rebuild would.
#
# After each kill:
#   - every entry of the output folder is a final name or a work directory
#     (.azl-work.*); each final name holds a complete file: the killed
#     build's own (equal to the clean build's) or the older build's;
#   - if SHA256SUMS is there, every file it names is there and matches it
#     (never a new output beside an old SHA256SUMS);
#   - the lockfile is absent, or the older one, or the complete new one;
#   - the cache: PRAGMA integrity_check ok, every blob and object hashes
#     to its name, every index row has its blob, fetch --verify-cache ok;
# and the rerun succeeds with outputs equal to the clean build's, byte for
# byte, and leaves no work directory behind.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

command -v strace >/dev/null || fail "strace is needed (scripts/install-deps.sh)"
command -v sqlite3 >/dev/null || fail "sqlite3 is needed (scripts/install-deps.sh)"
strace -qq -o /dev/null -e trace=getpid -e inject=getpid:retval=1:when=1 true 2>/dev/null ||
	skip "strace cannot trace here (ptrace not permitted)"

t=$(azl_tmpdir)
mkdir "$t/new" "$t/old"
azl_fixture_manifest "$t/new/img.yaml" base azl-app azl-foo-tools azl-shared-a azl-shared-b
printf 'outputs:\n  oci: {compression: gzip}\n' >>"$t/new/img.yaml"
azl_fixture_manifest "$t/old/img.yaml" base azl-app
printf 'outputs:\n  oci: {compression: gzip}\n' >>"$t/old/img.yaml"
outputs="img.oci.tar img.spdx.json img.provenance.json img.build.json SHA256SUMS"

# References: the older build and a clean cold build of the new manifest.
(cd "$t/old" && "$AZL" -q build img.yaml -o out --cache-dir "$t/c-old") >/dev/null || fail "old build"
(cd "$t/new" && "$AZL" -q build img.yaml -o ref --cache-dir "$t/c-ref") >/dev/null || fail "reference build"
mv "$t/new/img.lock.json" "$t/ref.lock.json"
for f in $outputs; do
	assert_file "$t/new/ref/$f"
	if cmp -s "$t/old/out/$f" "$t/new/ref/$f"; then
		fail "the older build's $f equals the new one: no test"
	fi
done

cd "$t/new"

outputs_ok() { # WHAT: check out/ and the lockfile after a kill
	local e f
	for e in $(ls -A out); do
		if [[ " $outputs " == *" $e "* ]]; then
			cmp -s "out/$e" "ref/$e" || cmp -s "out/$e" "$t/old/out/$e" ||
				fail "$1: out/$e is neither the new nor the older build's file (partial?)"
		elif [[ $e == .azl-work.* ]]; then
			[ -d "out/$e" ] || fail "$1: out/$e is not a work directory"
		else
			fail "$1: unexpected out/$e"
		fi
	done
	if [ -e out/SHA256SUMS ]; then
		(cd out && sha256sum --quiet --strict -c SHA256SUMS) >&2 ||
			fail "$1: out/SHA256SUMS does not match the files beside it"
	fi
	if [ -e img.lock.json ]; then
		cmp -s img.lock.json "$t/ref.lock.json" || cmp -s img.lock.json "$t/old/img.lock.json" ||
			fail "$1: img.lock.json is incomplete"
	fi
}

# LeakSanitizer cannot run under ptrace: no leak check in traced runs of
# an ASan build (check-asan); the untraced reruns still have it.
traced_env="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# The main thread's renames and writes in a traced clean cold build.
env "$traced_env" strace -f -qq -o "$t/trace" -e trace=rename,renameat,renameat2,write \
	"$AZL" -q build img.yaml -o "$t/traced" --cache-dir "$t/c-traced" >/dev/null ||
	fail "traced build"
main=$(head -n 1 "$t/trace" | awk '{print $1}')
grep "^$main  *rename" "$t/trace" | sed -E 's/^[0-9]+ +//; s/, .*//; s/\.azl-work\.[A-Za-z0-9]+/W/g' >"$t/renames"
rm -rf "$t/traced" "$t/c-traced" img.lock.json
n=$(wc -l <"$t/renames")
[ "$n" -ge 10 ] || fail "only $n renames traced"
nw=$(grep -c "^$main  *write(" "$t/trace") || true
[ "$nw" -ge 2 ] || fail "only $nw writes traced"
grep -q '^rename("[^"]*W/SHA256SUMS"' <(tail -n 1 "$t/renames") ||
	fail "the last rename is not SHA256SUMS being published: $(tail -n 1 "$t/renames")"

# Points: the first renames (solver cache, lockfile), every fourth one in
# the middle (cache records, work files), the last six (SHA256SUMS in the
# work directory, then every output published), and a few other calls:
# an object linked into the store, the sync before the object store's
# records, sqlite's writes, a file's contents being written.
points=()
for ((k = 1; k <= n; k++)); do
	if [ "$k" -le 2 ] || [ $((k % 4)) -eq 0 ] || [ "$k" -gt $((n - 6)) ]; then
		points+=("rename,renameat,renameat2:$k")
	fi
done
points+=(linkat:3 syncfs:1 pwrite64:1 pwrite64:30 "write:$((nw / 2))")

run=0
for i in "${!points[@]}"; do
	p=${points[i]}
	calls=${p%:*} when=${p##*:}
	states=$((i % 2)) # empty output folder, or an older build's outputs
	[[ $calls == rename* && $when -gt $((n - 5)) ]] && states="0 1" # publishing: both
	for old in $states; do
		run=$((run + 1))
		rm -rf out c img.lock.json
		mkdir out
		what="kill at ${calls%%,*} #$when"
		if [ "$old" -eq 1 ]; then
			cp -p "$t/old/out/"* out/
			cp -p "$t/old/img.lock.json" .
			what="$what over an older build"
		fi
		# In a subshell: its "Killed" notice goes to /dev/null, not the log.
		(
			rc=0
			env "$traced_env" strace -f -qq -o "$t/kill.log" -e trace="$calls" -e inject="$calls:signal=KILL:when=$when" \
				"$AZL" -q build img.yaml -o out --cache-dir c >/dev/null 2>"$t/err" || rc=$?
			echo $rc >"$t/rc"
		) 2>/dev/null
		rc=$(cat "$t/rc")
		# strace ends with the tracee's signal: 128 + 9.
		[ "$rc" -eq 137 ] || { cat "$t/err" >&2; fail "$what: exit status $rc, not killed"; }
		at=$(grep -E '^[0-9]+ +[a-z0-9]+\(.*(= \?|<unfinished \.\.\.>)$' "$t/kill.log" | tail -n 1 | cut -c1-130) || true
		echo "$what: ${at:-?}"
		outputs_ok "$what"
		azl_cache_ok c partial
		"$AZL" -q build img.yaml -o out --cache-dir c >/dev/null 2>"$t/err" ||
			{ cat "$t/err" >&2; fail "$what: the rerun failed"; }
		for f in $outputs; do
			cmp out/$f ref/$f || fail "$what: the rerun's $f differs from a clean build's"
		done
		cmp img.lock.json "$t/ref.lock.json" || fail "$what: lockfile after the rerun"
		azl_cache_ok c partial
		left=$(ls -A out | grep '^\.azl-work' || true)
		[ -z "$left" ] || fail "$what: work directories left after the rerun: $left"
	done
done
[ "$run" -ge 20 ] || fail "only $run kills"
echo "kill: ok ($run kills, each followed by a clean rerun)"
