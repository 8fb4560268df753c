#!/bin/bash
# lock and fetch over real Fedora 14 packages (i686, xz payloads, signed by
# the Fedora 14 key), read in place from the shared corpus:
#   - a file:// repository made by createrepo_c over symlinks to them;
#   - their libc/ncurses/zlib needs come from a second, locally built
#     "shim" repository whose one package provides exactly what `info`
#     requires (computed from the real header), so `arch: i686` resolves;
#   - fetch accepts the Fedora-signed package with the Fedora key and
#     rejects it with another key (fixture key A);
#   - createrepo_c's own test packages (when present): an epoch, every
#     version operator, non-ASCII dependency names in three encodings.
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

# A shim repository: one noarch package providing (unversioned, which
# satisfies any version) every name the given packages require, minus
# rpmlib() and what the set provides itself.
make_shim() { # dir name rpm...
	local dir=$1 name=$2 w=$t/shim-$2 f
	shift 2
	mkdir -p "$w/top" "$dir/Packages" "$w/home"
	for f in "$@"; do q --requires "$f"; done | sed 's/ .*//' | grep -v '^rpmlib(' | sort -u >"$w/needs"
	for f in "$@"; do q --provides "$f"; done | sed 's/ .*//' | sort -u >"$w/self"
	grep -v -x -F -f "$w/self" "$w/needs" >"$w/needs-other" || true
	# Names that are not UTF-8 (ISO-8859 packages) appear in repodata the
	# way createrepo_c writes them: read as Latin-1, converted to UTF-8.
	python3 -c '
import sys
for line in open(sys.argv[1], "rb"):
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        line = line.decode("latin-1").encode("utf-8")
    sys.stdout.buffer.write(line)' "$w/needs-other" >"$w/provides"
	{
		printf 'Name: %s\nVersion: 1\nRelease: 1\nSummary: shim\n' "$name"
		printf 'License: MIT\nBuildArch: noarch\n'
		sed 's/^/Provides: /' "$w/provides"
		printf '%%description\nWhat the real packages need from a base system.\n'
		printf '%%prep\n%%build\n%%install\n%%files\n'
	} >"$w/shim.spec"
	# rpmbuild checks names are valid in the locale's encoding: UTF-8.
	HOME=$w/home SOURCE_DATE_EPOCH=1700000000 LC_ALL=C.UTF-8 rpmbuild -bb --nodeps \
		--define "_topdir $w/top" --define "_rpmdir $dir/Packages" \
		--define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
		"$w/shim.spec" >"$w/log" 2>&1 || { cat "$w/log"; fail "building $name failed"; }
	createrepo_c --quiet --no-database "$dir" >/dev/null
	cp "$w/provides" "$dir/provides.txt"
}

make_shim "$t/shim" azl-fc14-shim "$info_rpm"
assert_contains "$t/shim/provides.txt" 'libncurses.so.5'
assert_not_contains "$t/shim/provides.txt" 'config(info)'

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
# --- createrepo_c's test packages: an epoch (Archer 2:3.4.5), every
# versioned-dependency operator, and non-ASCII names in ISO-8859-1/2 and
# UTF-8 (balicek-utf8 requires "bílýkůň").  The four "empty" packages share
# one NEVRA and the source rpm is not installable: both are left out.
cr=$AZL_TOP/../shared/corpus/real/createrepo_c-testdata
if [ -f "$cr/Archer-3.4.5-6.x86_64.rpm" ]; then
	want="Archer Rimmer balicek-iso88591 balicek-iso88592 balicek-utf8"
	mkdir -p "$t/cr/Packages"
	picked=()
	for n in $want; do
		f=$(ls "$cr/$n"-[0-9]*.x86_64.rpm)
		ln -s "$f" "$t/cr/Packages/"
		picked+=("$f")
	done
	createrepo_c --quiet --no-database "$t/cr" >/dev/null
	make_shim "$t/shim2" azl-cr-shim "${picked[@]}"
	assert_contains "$t/shim2/provides.txt" 'fooa'
	assert_contains "$t/shim2/provides.txt" 'bílýkůň'
	assert_contains "$t/shim2/provides.txt" 'àáâãäåç'
	mkdir -p "$t/crm"
	cat >"$t/crm/m.yaml" <<YAML
name: interop-createrepo-c
source_date_epoch: 1700000000
repos:
  - id: cr
    baseurl: file://$t/cr/
    gpgcheck: false
  - id: shim
    baseurl: file://$t/shim2/
    gpgcheck: false
packages: [${want// /, }]
YAML
	assert_exit 0 "$AZL" lock "$t/crm/m.yaml"
	l=$t/crm/m.lock.json
	assert_eq "$(grep -c '"name":' "$l")" 6 "packages locked (5 + shim)"
	for n in $want azl-cr-shim; do
		assert_contains "$l" "\"name\": \"$n\""
	done
	# Archer's epoch comes through as 2 (in its entry, epoch precedes name).
	grep -B3 '"name": "Archer"' "$l" | grep -q '"epoch": 2,' ||
		fail "Archer locked without its epoch 2"
	for f in "${picked[@]}"; do
		assert_contains "$l" "\"checksum\": \"sha256:$(sha256sum <"$f" | cut -d' ' -f1)\""
	done
	assert_exit 0 "$AZL" fetch "$t/crm/m.yaml" --cache-dir "$t/crcache"
	assert_contains "$ERR" 'Archer-2:3.4.5-6.x86_64'
else
	echo "createrepo_c-testdata absent: that part skipped"
fi
echo "interop_real OK"
