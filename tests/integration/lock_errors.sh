# azl-compose lock failures: each one a clear message, exit 1, no lockfile.
. "$AZL_TOP/tests/lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

base=$(azl_fixture_repo base)
t=$(azl_tmpdir)
# Debian's python3 directly: a version-manager shim can take seconds a call.
py() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else python3 "$@"; fi; }
export XDG_CACHE_HOME=$t/xdg-cache   # a private parsed-metadata cache

# manifest NAME BASEURL PACKAGE: writes $t/NAME.yaml
manifest() {
	printf 'name: %s\nrepos:\n  - id: errs\n    baseurl: %s\n    gpgcheck: false\npackages:\n  - %s\n' \
		"$1" "$2" "$3" >"$t/$1.yaml"
}

# expect_fail NAME NEEDLE...: lock exits 1, names every needle, writes nothing.
# --no-cache: the parsed-metadata cache, keyed by the checksum repomd.xml
# names, would otherwise (rightly) never look at a primary swapped behind it.
expect_fail() {
	local name=$1
	shift
	assert_exit 1 "$AZL" lock "$t/$name.yaml" --no-cache
	for n in "$@"; do assert_contains "$ERR" "$n" "$name: error message"; done
	assert_no_file "$t/$name.lock.json"
	ls "$t" | grep -q '\.tmp' && fail "$name: left a temporary file in $t"
	return 0
}

# A private copy of the base repository, whose repodata a test may break.
copy_repo() {
	rm -rf "$t/$1"
	mkdir -p "$t/$1"
	cp -r "$base/repodata" "$t/$1/"
	primary=$(ls "$t/$1"/repodata/*primary.xml.gz)
}

# Make repomd.xml agree with the primary file as it now is.
fix_repomd() {
	py - "$t/$1/repodata/repomd.xml" "$primary" <<'EOF'
import hashlib, os, re, sys
md, prim = sys.argv[1], sys.argv[2]
data = open(prim, "rb").read()
text = open(md).read()
block = re.search(r'<data type="primary">.*?</data>', text, re.S).group(0)
new = re.sub(r'(<checksum type="sha256">)[0-9a-f]+', r'\g<1>' + hashlib.sha256(data).hexdigest(), block)
new = re.sub(r'<size>\d+</size>', '<size>%d</size>' % len(data), new)
open(md, "w").write(text.replace(block, new))
EOF
}

# An unresolvable request names the missing dependency and who needs it.
manifest broken "file://$base/" azl-broken
expect_fail broken azl-missing-dep azl-broken

# A package that is in no repository.
manifest nosuch "file://$base/" azl-nosuch
expect_fail nosuch azl-nosuch "repositories"

# A missing repository (file:// of a directory that does not exist).
manifest missing "file://$t/no-such-repo/" azl-app
expect_fail missing "repo errs" "$t/no-such-repo/repodata/repomd.xml"

# repomd.xml claims another checksum for primary.
copy_repo badsum
want=$(sha256sum "$primary" | cut -c1-64)
sed -i "s/>$want</>$(echo "$want" | tr '0-9a-f' '1-9a-f0')</" "$t/badsum/repodata/repomd.xml"
manifest badsum "file://$t/badsum/" azl-app
expect_fail badsum "repo errs" "checksum mismatch" "$(basename "$primary")" "sha256:$want"

# primary replaced behind repomd.xml's back.
copy_repo swapped
echo '<metadata/>' | gzip -n >"$primary"
manifest swapped "file://$t/swapped/" azl-app
expect_fail swapped "repo errs" "checksum mismatch" "$want" "$(sha256sum "$primary" | cut -c1-64)"

# Truncated primary (checksums made to match): the parse fails.
copy_repo trunc
head -c 2000 "$base/repodata/$(basename "$primary")" >"$primary"
fix_repomd trunc
manifest trunc "file://$t/trunc/" azl-app
expect_fail trunc "repo errs" "primary" "$(basename "$primary")"

# Garbage XML inside a valid gzip stream.
copy_repo garbage
printf '<metadata><package><name>azl-app</name></metadata>\n' | gzip -n >"$primary"
fix_repomd garbage
manifest garbage "file://$t/garbage/" azl-app
expect_fail garbage "repo errs" "primary" "$(basename "$primary")" "invalid or truncated"

# A repomd.xml that is not XML.
copy_repo badmd
echo '<repomd><data type="primary"' >"$t/badmd/repodata/repomd.xml"
manifest badmd "file://$t/badmd/" azl-app
expect_fail badmd "repo errs" "repomd.xml" "invalid XML"

# sha1 repodata: refused, naming what we pin.
rm -rf "$t/sha1"
mkdir -p "$t/sha1/Packages"
cp "$base"/Packages/a/azl-libfoo-1.0-1.x86_64.rpm "$t/sha1/Packages/"
createrepo_c -q --checksum sha1 "$t/sha1" >/dev/null
manifest sha1 "file://$t/sha1/" azl-libfoo
expect_fail sha1 "repo errs" "sha1" "sha256"

# A damaged lockfile is bad input (exit 2) naming the field and is left
# alone; --update regenerates it without reading it.
manifest damaged "file://$base/" azl-app
printf '{"version": 1, "repos": [], "packages": [{"name": 7}]}\n' >"$t/damaged.lock.json"
cp "$t/damaged.lock.json" "$t/damaged.orig"
assert_exit 2 "$AZL" lock "$t/damaged.yaml"
assert_contains "$ERR" "damaged.lock.json: packages[0].name"
cmp "$t/damaged.lock.json" "$t/damaged.orig" || fail "a refused lockfile was changed"
assert_exit 0 "$AZL" lock "$t/damaged.yaml" --update
assert_contains "$t/damaged.lock.json" '"azl-app"'

# --- over HTTP (tests/lib/httpd.py on 127.0.0.1) ----------------------------
. "$AZL_TOP/tests/lib/httpd.sh"
azl_httpd_start "$(dirname "$base")" "$t/httpd.log"
export AZL_FETCH_BACKOFF_MS=20 AZL_FETCH_RETRIES=2

# A working repository gives the same lock as over file://.
manifest http "$AZL_HTTPD_URL/base/" azl-app
manifest file "file://$base/" azl-app
assert_exit 0 "$AZL" -q lock "$t/http.yaml" --no-cache
assert_exit 0 "$AZL" -q lock "$t/file.yaml" --no-cache
diff <(grep -v baseurl "$t/http.lock.json") <(grep -v baseurl "$t/file.lock.json") ||
	fail "http:// and file:// locks differ"

# A transient 500 on repomd.xml is retried.
manifest flaky "$AZL_HTTPD_URL/@fault/500*1/base/" azl-app
assert_exit 0 "$AZL" -q lock "$t/flaky.yaml" --no-cache
[ "$(grep -c ' /@fault/500\*1/base/repodata/repomd.xml ' "$t/httpd.log")" -eq 2 ] ||
	fail "repomd.xml was not fetched twice: $(grep repomd "$t/httpd.log")"

# 404 for the whole repository; a primary cut short on every attempt.
manifest http404 "$AZL_HTTPD_URL/@fault/404/base/" azl-app
expect_fail http404 "repo errs" "$AZL_HTTPD_URL/@fault/404/base/repodata/repomd.xml" "404"
manifest httptrunc "$AZL_HTTPD_URL/@fault/truncate/base/" azl-app
expect_fail httptrunc "repo errs" "repomd.xml"

echo "lock_errors: ok"
