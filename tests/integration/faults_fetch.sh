#!/bin/bash
# Network faults beyond fetch_faults.sh (which has each fault alone, and
# permanent 500s, resets and stalls):
#   - a body truncated on every attempt fails after the retry budget,
#     naming package, URL and what happened, with or without Range support;
#     nothing enters the cache, and a rerun against a healthy server resumes
#     the partial files with Range and completes;
#   - `build` through a server whose every file (repodata, packages)
#     answers reset, then 500, then a truncated body, then a stall, then the
#     rest: the attempts are exactly those, in that order, and the image
#     equals a clean build's;
#   - such a chain with a budget one attempt short fails clearly.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"
. "$AZL_TOP/tests/lib/httpd.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 is needed (scripts/install-deps.sh)"
repo=$(azl_fixture_repo base)
t=$(azl_tmpdir)
log=$t/http.log
azl_httpd_start "$(dirname "$repo")" "$log"
export AZL_FETCH_BACKOFF_MS=20 AZL_FETCH_STALL_S=1

azl_fixture_manifest "$t/img.yaml" base azl-app azl-foo-tools
printf 'outputs:\n  oci: {compression: gzip}\n' >>"$t/img.yaml"
sed -i "s|file://$repo/|$AZL_HTTPD_URL/base/|" "$t/img.yaml"
cd "$t"
assert_exit 0 "$AZL" -q build img.yaml -o ref --cache-dir "$t/c-ref"
cp img.lock.json orig.lock.json
npkgs=$(grep -c '"location"' orig.lock.json)
bb=Packages/a/azl-busybox-1.0-1.x86_64.rpm

use() { # PREFIX: the lockfile's packages come through $AZL_HTTPD_URL/PREFIX
	sed "s|$AZL_HTTPD_URL/base/|$AZL_HTTPD_URL/$1base/|" orig.lock.json >img.lock.json
}
nblobs() { find "$1/blobs" -type f | wc -l; }
statuses() { # PREFIX: the answers for azl-busybox under PREFIX, in order
	grep -F "GET /$1base/$bb " "$log" | awk '{print $3}' | tr '\n' ' '
}

# Truncated on every attempt: 1 + AZL_FETCH_RETRIES attempts, then a clear
# error per package; partial files stay in tmp/ for a resume.
for pre in '@fault/truncate/' '@fault/truncate/@fault/norange/'; do
	use "$pre"
	c=$t/c-${pre//[^a-z]/}
	AZL_FETCH_RETRIES=2 assert_exit 1 "$AZL" fetch img.yaml --cache-dir "$c"
	assert_contains "$ERR" "$npkgs of $npkgs packages failed"
	assert_contains "$ERR" "azl-busybox-1.0-1.x86_64: $AZL_HTTPD_URL/${pre}base/$bb: transfer closed with"
	assert_contains "$ERR" "(after 3 attempts)"
	assert_eq "$(statuses "$pre")" "truncate truncate truncate " "attempts for a permanently truncated body"
	assert_eq "$(nblobs "$c")" 0 "blobs after permanent truncation"
	azl_cache_ok "$c"
done
# With Range the attempts continue where the last stopped: a healthy
# server then completes the partial files (206), nothing starts over.
use ''
: >"$log"
assert_exit 0 "$AZL" fetch -q img.yaml --cache-dir "$t/c-faulttruncate"
assert_eq "$(statuses '')" "206 " "the healthy rerun resumes the truncated download"
assert_eq "$(nblobs "$t/c-faulttruncate")" "$npkgs" "blobs after the rerun"
assert_eq "$(ls "$t/c-faulttruncate/tmp" | wc -l)" 0 "temporary files left"
azl_cache_ok "$t/c-faulttruncate"

# A build whose repository answers every file (repodata and packages):
# reset, 500, truncated, stalled, then fine.
chain='@fault/reset*1/@fault/500*1/@fault/truncate*1/@fault/stall*1/'
mkdir chain
sed "s|$AZL_HTTPD_URL/base/|$AZL_HTTPD_URL/${chain}base/|" img.yaml >chain/img.yaml
AZL_FETCH_RETRIES=4 assert_exit 0 "$AZL" -q build chain/img.yaml -o out --cache-dir "$t/c-chain"
assert_eq "$(statuses "$chain")" "reset 500 truncate stall 206 " "attempts for azl-busybox"
for p in repodata/repomd.xml $(sed -n 's/.*"location": "\(.*\)".*/\1/p' orig.lock.json); do
	n=$(grep -cF "GET /${chain}base/$p " "$log" || true)
	assert_eq "$n" 5 "requests for $p"
done
cmp ref/img.oci.tar out/img.oci.tar || fail "the image fetched through faults differs"
(cd out && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS"
azl_cache_ok "$t/c-chain"
assert_eq "$(ls "$t/c-chain/tmp" | wc -l)" 0 "temporary files left"

# The packages with another chain (fresh counters: another prefix) and one
# attempt fewer than it needs: each fails naming its last fault.
chain2='@fault/reset*1/@fault/500*1/@fault/stall*1/@fault/truncate*1/'
use "$chain2"
AZL_FETCH_RETRIES=3 assert_exit 1 "$AZL" fetch img.yaml --cache-dir "$t/c-chain2"
assert_contains "$ERR" "$npkgs of $npkgs packages failed"
assert_contains "$ERR" "azl-busybox-1.0-1.x86_64: $AZL_HTTPD_URL/${chain2}base/$bb: transfer closed with"
assert_contains "$ERR" "(after 4 attempts)"
assert_eq "$(statuses "$chain2")" "reset 500 stall truncate " "attempts within the budget"
assert_eq "$(nblobs "$t/c-chain2")" 0 "blobs after the budget ran out"
azl_cache_ok "$t/c-chain2"
echo "fetch faults (chains and budgets): ok"
