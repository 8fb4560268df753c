# fetch over HTTP from the signed fixture repository: everything lands in
# the cache verified, a second run uses the cache, --offline works from the
# cache and lists every missing package on an empty one, a missing lockfile
# is bad input, and two concurrent fetches into one cache both succeed.
. "$AZL_TOP/tests/lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"
. "$AZL_TOP/tests/lib/httpd.sh"

repo=$(azl_fixture_repo base)
key=$(azl_fixture_key A)
fx=$(dirname "$repo")
t=$(azl_tmpdir)
azl_httpd_start "$fx" "$t/http.log"

cat >"$t/p.yaml" <<YAML
name: p
repos:
  - id: base
    baseurl: file://$repo/
    gpgkey: $key
packages: [azl-app]
YAML
"$AZL" -q lock "$t/p.yaml" || fail "lock failed"
sed -i "s|file://$repo/|$AZL_HTTPD_URL/base/|" "$t/p.yaml" "$t/p.lock.json"
npkgs=$(grep -c '"location"' "$t/p.lock.json")
[ "$npkgs" -ge 5 ] || fail "expected at least 5 locked packages, got $npkgs"

# Cache check from outside: every blob hashes to its name, index agrees.
check_cache() { # dir expected_rows
	local n=0 f
	for f in "$1"/blobs/sha256/*; do
		[ -f "$f" ] || continue
		[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || fail "blob $f is damaged"
		n=$((n + 1))
	done
	assert_eq "$n" "$2" "blob count in $1"
	assert_eq "$(sqlite3 "$1/index.sqlite" 'SELECT count(*) FROM blobs')" "$2" "index rows"
	assert_eq "$(sqlite3 "$1/index.sqlite" 'PRAGMA integrity_check')" ok
	"$AZL" fetch --verify-cache --cache-dir "$1" >/dev/null 2>&1 || fail "--verify-cache failed on $1"
}

assert_exit 0 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "fetched azl-app-1.0-1.x86_64"
assert_contains "$ERR" "$npkgs packages ready"
check_cache "$t/c" "$npkgs"
grep -q "GET /base/Packages/a/azl-app-1.0-1.x86_64.rpm 200" "$t/http.log" || fail "no download seen in the server log"
for sha in $(sed -n 's/.*"checksum": "sha256:\([0-9a-f]*\)".*/\1/p' "$t/p.lock.json"); do
	assert_file "$t/c/blobs/sha256/$sha"
done
assert_eq "$(ls "$t/c/tmp" | wc -l)" 0 "temporary files left"

# Second run: nothing downloaded.
before=$(wc -l <"$t/http.log")
assert_exit 0 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "cached  azl-app-1.0-1.x86_64"
assert_eq "$(wc -l <"$t/http.log")" "$before" "requests on a warm cache"

# -q prints nothing on success.
assert_exit 0 "$AZL" fetch -q "$t/p.yaml" --cache-dir "$t/c"
assert_eq "$(cat "$ERR")" "" "-q output"

# --offline: served from the cache; on an empty cache every package listed.
assert_exit 0 "$AZL" fetch --offline "$t/p.yaml" --cache-dir "$t/c"
assert_exit 1 "$AZL" fetch --offline "$t/p.yaml" --cache-dir "$t/empty"
assert_contains "$ERR" "$npkgs of $npkgs packages are not in the cache"
for n in azl-app-1.0-1.x86_64 azl-busybox-1.0-1.x86_64 azl-filesystem-1.0-1.noarch azl-libfoo-1.0-1.x86_64; do
	assert_contains "$ERR" "$n: not in the cache"
done
assert_eq "$(wc -l <"$t/http.log")" "$before" "requests with --offline"

# The default cache follows XDG_CACHE_HOME.
XDG_CACHE_HOME=$t/xdg assert_exit 0 "$AZL" fetch -q "$t/p.yaml"
check_cache "$t/xdg/azl-compose" "$npkgs"

# Missing lockfile: bad input, pointing at the lock command.
cp "$t/p.yaml" "$t/nolock.yaml"
assert_exit 2 "$AZL" fetch "$t/nolock.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "nolock.lock.json"
assert_contains "$ERR" "azl-compose lock"
assert_exit 2 "$AZL" fetch "$t/p.yaml" -j 0
assert_exit 2 "$AZL" fetch

# On a terminal: a progress bar instead of one line per package.
if command -v script >/dev/null; then
	script -qec "'$AZL' fetch '$t/p.yaml' --cache-dir '$t/tty'" /dev/null >"$t/tty.out" 2>&1 ||
		fail "fetch on a terminal failed: $(cat "$t/tty.out")"
	grep -q "\[#*  *\] [0-9]*/$npkgs packages\|\[#\{30\}\] $npkgs/$npkgs packages" "$t/tty.out" ||
		fail "no progress bar on a terminal: $(cat -v "$t/tty.out")"
	assert_not_contains "$t/tty.out" "fetched azl-app" "terminal output without -v"
	assert_contains "$t/tty.out" "$npkgs packages ready"
fi

# Two processes, one cache, slow server so they overlap.
sed "s|$AZL_HTTPD_URL/base/|$AZL_HTTPD_URL/@slow/2000000/base/|" "$t/p.lock.json" >"$t/slow.lock.json"
cp "$t/p.yaml" "$t/slow.yaml"
"$AZL" fetch -q "$t/slow.yaml" --cache-dir "$t/shared" 2>"$t/one.err" &
p1=$!
"$AZL" fetch -q "$t/slow.yaml" --cache-dir "$t/shared" 2>"$t/two.err" &
p2=$!
wait $p1 || fail "first concurrent fetch failed: $(cat "$t/one.err")"
wait $p2 || fail "second concurrent fetch failed: $(cat "$t/two.err")"
check_cache "$t/shared" "$npkgs"
assert_eq "$(ls "$t/shared/tmp" | wc -l)" 0 "temporary files left by concurrent runs"
# --verify-cache notices a damaged blob, naming it; the next fetch
# re-checks cached blobs, drops the damaged one and downloads it again.
victim=$(ls "$t"/shared/blobs/sha256/* | head -n 1)
chmod u+w "$victim"
printf 'damage' | dd of="$victim" bs=1 seek=100 conv=notrunc 2>/dev/null
assert_exit 1 "$AZL" fetch --verify-cache --cache-dir "$t/shared"
assert_contains "$ERR" "$(basename "$victim")"
assert_exit 0 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/shared"
assert_contains "$ERR" "1 fetched"
check_cache "$t/shared" "$npkgs"
# Blobs are not synced: a power cut can leave one empty or zeroed under its
# index row.  Offline, such a blob counts as missing (named); online it is
# downloaded again.
victims=$(ls "$t"/shared/blobs/sha256/* | head -n 2)
set -- $victims
chmod u+w "$1" "$2"
: >"$1"
head -c "$(stat -c %s "$2")" /dev/zero >"$2.z" && cat "$2.z" >"$2" && rm "$2.z"
assert_exit 1 "$AZL" fetch "$t/p.yaml" --offline --cache-dir "$t/shared"
assert_contains "$ERR" "2 of $npkgs packages are not in the cache"
assert_exit 0 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/shared"
assert_contains "$ERR" "2 fetched"
check_cache "$t/shared" "$npkgs"
echo "fetch over http: ok"
