#!/bin/bash
# lock and fetch over real Fedora 14 packages (i686, xz payloads, signed by
# the Fedora 14 key), read in place from the shared corpus:
#   - a file:// repository made by createrepo_c over symlinks to them;
#   - their libc/ncurses/zlib needs come from a second, locally built
#     "shim" repository whose one package provides exactly what `info`
#     requires (computed from the real header), so `arch: i686` resolves;
#   - fetch accepts the Fedora-signed package with the Fedora key and
#     rejects it with another key (fixture key A).
. "$(dirname "$0")/../lib/common.sh" || exit 1

real=$AZL_TOP/../shared/corpus/real/fedora14
fedkey=$real/RPM-GPG-KEY-fedora-14-primary
info_rpm=$real/info-4.13a-10.fc14.i686.rpm
if [ ! -f "$info_rpm" ] || [ ! -f "$fedkey" ]; then
	skip "real Fedora 14 corpus not present at $real"
fi
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
q() { rpm -qp --nosignature --nodigest "$@" 2>/dev/null; }

# --- the real repository: symlinks only, nothing copied
mkdir -p "$t/fedora/Packages"
for f in "$real"/*.rpm; do
	ln -s "$f" "$t/fedora/Packages/$(basename "$f")"
done
createrepo_c --quiet --no-database "$t/fedora" >"$t/cr.log" 2>&1 ||
	{ cat "$t/cr.log"; fail "createrepo_c over the real packages failed"; }

# --- the shim: Provides = what info requires, minus rpmlib() and itself
q --requires "$info_rpm" | sort -u | grep -v '^rpmlib(' >"$t/needs"
q --provides "$info_rpm" | sed 's/ .*//' | sort -u >"$t/self"
grep -v -x -F -f "$t/self" <(sed 's/ .*//' "$t/needs") >"$t/shim-provides" || true
assert_contains "$t/shim-provides" 'libncurses.so.5'
mkdir -p "$t/shim-top" "$t/shim/Packages" "$t/home"
{
	printf 'Name: azl-fc14-shim\nVersion: 1\nRelease: 1\nSummary: shim\n'
	printf 'License: MIT\nBuildArch: noarch\n'
	sed 's/^/Provides: /' "$t/shim-provides"
	printf '%%description\nWhat info needs from a Fedora 14 base.\n'
	printf '%%prep\n%%build\n%%install\n%%files\n'
} >"$t/shim.spec"
HOME=$t/home SOURCE_DATE_EPOCH=1700000000 rpmbuild -bb --nodeps \
	--define "_topdir $t/shim-top" --define "_rpmdir $t/shim/Packages" \
	--define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
	"$t/shim.spec" >"$t/shim.log" 2>&1 || { cat "$t/shim.log"; fail "building the shim failed"; }
createrepo_c --quiet --no-database "$t/shim" >/dev/null

manifest() { # file gpgkey-line-for-fedora
	cat >"$1" <<EOF
name: interop-real
source_date_epoch: 1700000000
arch: i686
repos:
  - id: fedora14
    baseurl: file://$t/fedora/
$2
  - id: shim
    baseurl: file://$t/shim/
    gpgcheck: false
packages: [info]
EOF
}

# --- lock: info resolves, from the real repository, with its real digest
mkdir -p "$t/good"
manifest "$t/good/m.yaml" "    gpgkey: $fedkey"
assert_exit 0 "$AZL" lock "$t/good/m.yaml"
lock=$t/good/m.lock.json
assert_file "$lock"
assert_contains "$lock" '"name": "info"'
assert_contains "$lock" '"arch": "i686"'
assert_contains "$lock" '"version": "4.13a"'
assert_contains "$lock" '"release": "10.fc14"'
assert_contains "$lock" '"location": "Packages/info-4.13a-10.fc14.i686.rpm"'
assert_contains "$lock" "\"checksum\": \"sha256:$(sha256sum <"$info_rpm" | cut -d' ' -f1)\""
assert_contains "$lock" "\"size\": $(stat -L -c %s "$info_rpm")"
assert_contains "$lock" '"name": "azl-fc14-shim"'
# Only info and the shim: the other Fedora packages are not needed.
assert_eq "$(grep -c '"name":' "$lock")" 2 "packages in the lockfile"
assert_not_contains "$lock" 'icedax'

# Same inputs, same bytes.
cp "$lock" "$t/lock.first"
rm "$lock"
assert_exit 0 "$AZL" lock "$t/good/m.yaml"
cmp "$lock" "$t/lock.first" || fail "second lock of the same inputs differs"

# --- fetch: the Fedora signature verifies with the Fedora key
assert_exit 0 "$AZL" fetch "$t/good/m.yaml" --cache-dir "$t/cache"
assert_contains "$(cat "$OUT" "$ERR")" 'info-4.13a-10.fc14.i686'
assert_exit 0 "$AZL" fetch "$t/good/m.yaml" --cache-dir "$t/cache" --offline

# --- ... and fails with another key, naming the package
mkdir -p "$t/bad"
manifest "$t/bad/m.yaml" "    gpgkey: $(azl_fixture_key A)"
cp "$lock" "$t/bad/m.lock.json"
assert_exit 1 "$AZL" fetch "$t/bad/m.yaml" --cache-dir "$t/cache-bad"
assert_contains "$ERR" 'info-4.13a-10.fc14.i686'
grep -qi 97a1071f "$ERR" || fail "the rejection does not name the Fedora 14 key id 97a1071f"
# A rejected package never enters the cache: an offline fetch still misses it.
assert_exit 1 "$AZL" fetch "$t/bad/m.yaml" --cache-dir "$t/cache-bad" --offline
assert_contains "$ERR" 'info'
echo "interop_real OK"
