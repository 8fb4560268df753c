# fetch refuses packages that fail a check, naming the package, the URL and
# what mismatched, and caches nothing for them: a wrong sha256 in the
# lockfile, a wrong size, an unsigned package under gpgcheck, a package
# signed by a key other than the repository's, and a signed package whose
# payload was altered (its lockfile digest matching the altered file, so
# only rpm's payload digest can catch it).  gpgcheck: false accepts the
# unsigned package; a package cached unverified is re-checked later.
. "$AZL_TOP/tests/lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

fx=$(azl_fixtures_dir)
keyA=$(azl_fixture_key A)
t=$(azl_tmpdir)

# project NAME REPO_DIR GPGCHECK PKG: manifest + lockfile in $t/NAME.*
project() {
	cat >"$t/$1.yaml" <<YAML
name: $1
repos:
  - id: r
    baseurl: file://$2/
    gpgkey: $keyA
    gpgcheck: $3
packages: [$4]
YAML
	"$AZL" -q lock "$t/$1.yaml" || fail "lock $1 failed"
}
nblobs() { find "$1/blobs" -type f 2>/dev/null | wc -l; }
cache_ok() {
	"$AZL" fetch --verify-cache --cache-dir "$1" >/dev/null 2>&1 || fail "cache $1 inconsistent"
}
field() { # lockfile package field
	python3 -c 'import json,sys
for p in json.load(open(sys.argv[1]))["packages"]:
    if p["name"] == sys.argv[2]: print(p[sys.argv[3]])' "$1" "$2" "$3"
}

# Wrong checksum: expected and actual digests named.
project sum "$fx/base" true azl-ssl-a
good=$(field "$t/sum.lock.json" azl-ssl-a checksum)
bad=sha256:$(printf 'x' | sha256sum | cut -c1-64)
sed -i "s|$good|$bad|" "$t/sum.lock.json"
assert_exit 1 "$AZL" fetch "$t/sum.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "azl-ssl-a-1.0-1.x86_64: file://$fx/base/Packages/a/azl-ssl-a-1.0-1.x86_64.rpm: sha256 mismatch: expected ${bad#sha256:}, got ${good#sha256:}"
assert_eq "$(nblobs "$t/c")" 0 "blobs after checksum mismatch"
assert_eq "$(ls "$t/c/tmp" | wc -l)" 0 "temporary files after checksum mismatch"
cache_ok "$t/c"

# Wrong size.
sed -i "s|$bad|$good|" "$t/sum.lock.json"
size=$(field "$t/sum.lock.json" azl-ssl-a size)
sed -i "s|\"size\": $size,|\"size\": $((size + 7)),|" "$t/sum.lock.json"
assert_exit 1 "$AZL" fetch "$t/sum.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "azl-ssl-a-1.0-1.x86_64: file://$fx/base/Packages/a/azl-ssl-a-1.0-1.x86_64.rpm: size mismatch: expected $((size + 7)) bytes, got $size"
assert_eq "$(nblobs "$t/c")" 0 "blobs after size mismatch"

# Unsigned package, gpgcheck on.
project uns "$fx/unsigned" true azl-unsigned-world
assert_exit 1 "$AZL" fetch "$t/uns.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "azl-unsigned-world-1.0-1.noarch: file://$fx/unsigned/Packages/a/azl-unsigned-world-1.0-1.noarch.rpm"
assert_contains "$ERR" "not signed"
assert_eq "$(nblobs "$t/c")" 0 "blobs after unsigned"
cache_ok "$t/c"

# Signed by key B, repository configured with key A.
project okey "$fx/otherkey" true azl-keyb-world
keyid=$(tr 'A-F' 'a-f' <"$fx/keys/B.fpr" | tr -d ' \n' | tail -c 8)
assert_exit 1 "$AZL" fetch "$t/okey.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "azl-keyb-world-1.0-1.noarch: file://$fx/otherkey/Packages/a/azl-keyb-world-1.0-1.noarch.rpm"
assert_contains "$ERR" "signed by unknown key $keyid"
assert_eq "$(nblobs "$t/c")" 0 "blobs after wrong key"

# Corrupted payload of a signed package, lockfile matching the bad bytes.
mkdir -p "$t/corrupt/Packages/a"
src=$fx/base/Packages/a/azl-ssl-a-1.0-1.x86_64.rpm
dst=$t/corrupt/Packages/a/azl-ssl-a-1.0-1.x86_64.rpm
cp "$src" "$dst"
python3 - "$dst" <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
d[len(d) - 40] ^= 0x01   # inside the compressed payload, past the header
open(p, "wb").write(d)
PY
project cor "$fx/base" true azl-ssl-a
newsum=$(sha256sum "$dst" | cut -c1-64)
sed -i -e "s|$good|sha256:$newsum|" -e "s|file://$fx/base/|file://$t/corrupt/|" "$t/cor.lock.json"
assert_exit 1 "$AZL" fetch "$t/cor.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "azl-ssl-a-1.0-1.x86_64: file://$t/corrupt/Packages/a/azl-ssl-a-1.0-1.x86_64.rpm"
assert_contains "$ERR" "digest mismatch (corrupted payload)"
assert_eq "$(nblobs "$t/c")" 0 "blobs after corrupted payload"
cache_ok "$t/c"

# gpgcheck: false takes the unsigned package ...
project unsoff "$fx/unsigned" false azl-unsigned-world
assert_exit 0 "$AZL" fetch "$t/unsoff.yaml" --cache-dir "$t/c"
assert_eq "$(nblobs "$t/c")" 1 "blobs after gpgcheck false"
# ... but the cached blob is not trusted by a gpgcheck-on repository later.
assert_exit 1 "$AZL" fetch "$t/uns.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "not signed"
# A missing key file is bad input naming it.
sed "s|$keyA|$t/nokey.asc|" "$t/uns.yaml" >"$t/nokey.yaml"
cp "$t/uns.lock.json" "$t/nokey.lock.json"
assert_exit 2 "$AZL" fetch "$t/nokey.yaml" --cache-dir "$t/c"
assert_contains "$ERR" "$t/nokey.asc"
cache_ok "$t/c"
echo "fetch verification: ok"
