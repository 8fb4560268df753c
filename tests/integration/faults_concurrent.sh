#!/bin/bash
# Two builds of different manifests sharing one cold cache at the same
# time both succeed, and their outputs equal those of the same builds run
# one after the other on caches of their own.  The repository is served
# slowly over HTTP so both builds download the packages they share
# (azl-app, azl-busybox, ...) at the same moment.  Rounds: separate output
# folders, then one output folder for both (each build's work directory
# must survive the other's start).  Afterwards the shared cache is
# consistent: PRAGMA integrity_check, every blob and object hashes to its
# name, every index row has its blob.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"
. "$AZL_TOP/tests/lib/httpd.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 is needed (scripts/install-deps.sh)"
repo=$(azl_fixture_repo base)
t=$(azl_tmpdir)
azl_httpd_start "$(dirname "$repo")" "$t/http.log"

# A and B share most packages; each has one of its own.
manifest() { # FILE PKG...
	local f=$1
	shift
	azl_fixture_manifest "$f" base "$@"
	sed -i "s|file://$repo/|$AZL_HTTPD_URL/@slow/400000/base/|" "$f"
	printf 'outputs:\n  oci: {compression: gzip}\n' >>"$f"
}
outputs() { echo "$1.oci.tar $1.spdx.json $1.provenance.json $1.build.json SHA256SUMS"; }


# Sequential references, each on a cold cache of its own.
mkdir "$t/seq"
manifest "$t/seq/a.yaml" azl-app azl-foo-tools azl-shared-a
manifest "$t/seq/b.yaml" azl-app azl-foo-tools azl-shared-b azl-ssl-a
for m in a b; do
	(cd "$t/seq" && "$AZL" -q build $m.yaml -o out-$m --cache-dir "$t/seq/cache-$m") >/dev/null ||
		fail "sequential build of $m"
done
if cmp -s "$t/seq/out-a/a.oci.tar" "$t/seq/out-b/b.oci.tar"; then
	fail "a and b build the same image: no test"
fi

# now_ms: milliseconds since the epoch (only to show the builds overlapped).
now_ms() { date +%s%3N; }

for round in 1 2 3; do
	d=$t/con$round
	mkdir "$d"
	cp "$t/seq/a.yaml" "$t/seq/b.yaml" "$d/"
	if [ "$round" -eq 3 ]; then out_a=out out_b=out; else out_a=out-a out_b=out-b; fi
	: >"$t/http.log"
	(cd "$d" && { echo "start $(now_ms)"; "$AZL" -q build a.yaml -o $out_a --cache-dir "$d/cache" >/dev/null 2>err-a; echo "rc $?"; echo "end $(now_ms)"; } >times-a) &
	pa=$!
	(cd "$d" && { echo "start $(now_ms)"; "$AZL" -q build b.yaml -o $out_b --cache-dir "$d/cache" >/dev/null 2>err-b; echo "rc $?"; echo "end $(now_ms)"; } >times-b) &
	pb=$!
	wait "$pa" "$pb"
	for m in a b; do
		[ "$(sed -n 's/^rc //p' "$d/times-$m")" = 0 ] || { cat "$d/err-$m" >&2; fail "round $round: concurrent build of $m failed"; }
	done
	sa=$(sed -n 's/^start //p' "$d/times-a") ea=$(sed -n 's/^end //p' "$d/times-a")
	sb=$(sed -n 's/^start //p' "$d/times-b") eb=$(sed -n 's/^end //p' "$d/times-b")
	[ "$sb" -lt "$ea" ] && [ "$sa" -lt "$eb" ] || fail "round $round: the builds did not overlap"
	echo "round $round: a ran $((ea - sa)) ms, b $((eb - sb)) ms, overlapping $(( (ea < eb ? ea : eb) - (sa > sb ? sa : sb) )) ms"
	# Both asked the server for the packages they share.
	n=$(grep -c "^GET /@slow/400000/base/Packages/a/azl-busybox-1.0-1.x86_64.rpm 200" "$t/http.log" || true)
	echo "round $round: azl-busybox downloaded $n times"
	[ "$n" -ge 1 ] || fail "round $round: azl-busybox never downloaded"
	eval "oa=\$out_a ob=\$out_b"
	for f in $(outputs a); do
		# One folder holds one SHA256SUMS: the build that published last.
		if [ "$f" = SHA256SUMS ] && [ "$oa" = "$ob" ]; then
			cmp -s "$t/seq/out-a/$f" "$d/$oa/$f" || cmp -s "$t/seq/out-b/$f" "$d/$oa/$f" ||
				fail "round $round: SHA256SUMS is neither a's nor b's"
			continue
		fi
		cmp "$t/seq/out-a/$f" "$d/$oa/$f" || fail "round $round: a: $f differs"
	done
	for f in $(outputs b); do
		[ "$f" = SHA256SUMS ] && [ "$oa" = "$ob" ] && continue
		cmp "$t/seq/out-b/$f" "$d/$ob/$f" || fail "round $round: b: $f differs"
	done
	for m in a b; do cmp "$t/seq/$m.lock.json" "$d/$m.lock.json" || fail "round $round: $m.lock.json differs"; done
	left=$(ls -A "$d/$oa" "$d/$ob" | grep '^\.azl-work' || true)
	[ -z "$left" ] || fail "round $round: work directories left: $left"
	azl_cache_ok "$d/cache"
	assert_eq "$(find "$d/cache/tmp" -type f | wc -l)" 0 "$d/cache: temporary files left"
done
echo "concurrent: ok"
