# fetch against a misbehaving server (tests/lib/httpd.py fault injection):
# 5xx, resets, truncated bodies and stalls are retried and then succeed;
# 404 is not retried; permanent faults fail after the retry budget naming the
# package, the URL and what happened; a truncated download resumes with
# Range and restarts cleanly when the server ignores Range; a fetch killed
# with SIGKILL resumes on the next run.  The cache stays consistent.
. "$AZL_TOP/tests/lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"
. "$AZL_TOP/tests/lib/httpd.sh"

repo=$(azl_fixture_repo base)
key=$(azl_fixture_key A)
t=$(azl_tmpdir)
log=$t/http.log
azl_httpd_start "$(dirname "$repo")" "$log"
export AZL_FETCH_BACKOFF_MS=20 AZL_FETCH_RETRIES=3 AZL_FETCH_STALL_S=1

cat >"$t/p.yaml" <<YAML
name: p
repos:
  - id: base
    baseurl: file://$repo/
    gpgkey: $key
packages: [azl-app]
YAML
"$AZL" -q lock "$t/p.yaml" || fail "lock failed"
cp "$t/p.lock.json" "$t/orig.lock.json"
busybox_sha=$(python3 -c 'import json,sys; print([p["checksum"][7:] for p in json.load(open(sys.argv[1]))["packages"] if p["name"]=="azl-busybox"][0])' "$t/p.lock.json")

# use PREFIX: point the lockfile at $AZL_HTTPD_URL/PREFIX/base/.
use() {
	sed "s|file://$repo/|$AZL_HTTPD_URL/$1base/|" "$t/orig.lock.json" >"$t/p.lock.json"
}
requests() { # count log lines for the azl-app package under PREFIX
	grep -c "^GET /$1base/Packages/a/azl-app-1.0-1.x86_64.rpm " "$log" || true
}
cache_ok() {
	"$AZL" fetch --verify-cache --cache-dir "$1" >/dev/null 2>&1 || fail "cache $1 inconsistent"
	for f in "$1"/blobs/sha256/*; do
		[ -f "$f" ] || continue
		[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || fail "blob $f damaged"
	done
}
nblobs() { find "$1/blobs" -type f | wc -l; }
app_url() { echo "$AZL_HTTPD_URL/$1base/Packages/a/azl-app-1.0-1.x86_64.rpm"; }

# Transient faults: retried, then fine.
for mode in '500*2' 'reset*2' 'truncate*1' 'stall*1'; do
	use "@fault/$mode/"
	c=$t/c-${mode%\*?}
	assert_exit 0 "$AZL" fetch -q "$t/p.yaml" --cache-dir "$c"
	cache_ok "$c"
	assert_eq "$(nblobs "$c")" "$(grep -c '"location"' "$t/p.lock.json")" "blobs after $mode"
done
assert_eq "$(requests '@fault/500\*2/')" 3 "requests for 500*2"
assert_eq "$(requests '@fault/reset\*2/')" 3 "requests for reset*2"

# A truncated download continues with Range (206) ...
grep -q "^GET /@fault/truncate\*1/base/Packages/a/azl-busybox-1.0-1.x86_64.rpm 206" "$log" ||
	fail "truncated download was not resumed with Range"
# ... and restarts cleanly when the server ignores Range.
use '@fault/truncate*1/@fault/norange/'
assert_exit 0 "$AZL" fetch -q "$t/p.yaml" --cache-dir "$t/c-norange"
cache_ok "$t/c-norange"
grep -q "^GET /@fault/truncate\*1/@fault/norange/base/Packages/a/azl-busybox-1.0-1.x86_64.rpm 200" "$log" ||
	fail "no full answer after the ignored Range"

# Permanent faults: fail after the retry budget, named, nothing cached.
use '@fault/500/'
assert_exit 1 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/c-500p"
assert_contains "$ERR" "azl-app-1.0-1.x86_64: $(app_url '@fault/500/'): HTTP 500"
assert_contains "$ERR" "after 4 attempts"
assert_eq "$(requests '@fault/500/')" 4 "requests for a permanent 500"
assert_eq "$(nblobs "$t/c-500p")" 0 "blobs after permanent 500"
cache_ok "$t/c-500p"

use '@fault/reset/'
assert_exit 1 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/c-resetp"
assert_contains "$ERR" "azl-app-1.0-1.x86_64: $(app_url '@fault/reset/')"
assert_contains "$ERR" "after 4 attempts"

use '@fault/stall/'
start=$(date +%s)
AZL_FETCH_RETRIES=1 assert_exit 1 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/c-stallp"
[ $(( $(date +%s) - start )) -lt 30 ] || fail "stall detection took too long"
assert_contains "$ERR" "azl-app-1.0-1.x86_64: $(app_url '@fault/stall/')"
assert_contains "$ERR" "stalled"
assert_eq "$(nblobs "$t/c-stallp")" 0 "blobs after permanent stall"
cache_ok "$t/c-stallp"

# 404: not retried.
use '@fault/404/'
assert_exit 1 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/c-404"
assert_contains "$ERR" "azl-app-1.0-1.x86_64: $(app_url '@fault/404/'): HTTP 404"
assert_eq "$(requests '@fault/404/')" 1 "requests for 404"
cache_ok "$t/c-404"

# SIGKILL in the middle of a slow download, then a second run resumes.
use '@slow/150000/'
"$AZL" fetch -q "$t/p.yaml" --cache-dir "$t/c-kill" &
pid=$!
part=$t/c-kill/tmp/$busybox_sha.part
for ((i = 0; i < 100; i++)); do
	[ -f "$part" ] && [ "$(stat -c %s "$part")" -gt 200000 ] && break
	sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ "$(stat -c %s "$part")" -gt 200000 ] || fail "no partial download to resume"
cache_ok "$t/c-kill"
use '@slow/4000000/'
assert_exit 0 "$AZL" fetch -q "$t/p.yaml" --cache-dir "$t/c-kill"
grep -q "^GET /@slow/4000000/base/Packages/a/azl-busybox-1.0-1.x86_64.rpm 206" "$log" ||
	fail "the second run did not resume the killed download"
cache_ok "$t/c-kill"
assert_file "$t/c-kill/blobs/sha256/$busybox_sha"
assert_eq "$(ls "$t/c-kill/tmp" | wc -l)" 0 "temporary files left"
echo "fetch faults: ok"
