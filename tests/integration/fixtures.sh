#!/bin/bash
# The fixture repositories are what tests/fixtures/README.md says they are:
# dependencies as designed, signatures by the right key, repodata that
# matches its files, byte-identical rebuilds, and dnf (an independent
# solver) resolving the base repository the way the lock tests expect.
. "$(dirname "$0")/../lib/common.sh" || exit 1
. "$AZL_TOP/tests/lib/fixtures.sh"

fx=$(azl_fixtures_dir)
base=$fx/base
t=$(azl_tmpdir)
pkg() { # repo name-version-release.arch
	local f=$fx/$1/Packages/${2:0:1}/$2.rpm
	[ -f "$f" ] || fail "missing package $f"
	echo "$f"
}
q() { rpm -qp --nosignature --nodigest "$@" 2>/dev/null; }

# --- every repository has its packages and consistent repodata
for r in base base-v2 base-zstd base-xz otherkey unsigned; do
	assert_file "$fx/$r/repodata/repomd.xml"
	# Each <data> entry: the file exists, its sha256 and size match.
	awk '/<checksum type="sha256">/ { gsub(/.*">|<.*/, ""); sum = $0 }
	     /<location href=/ { gsub(/.*href="|".*/, ""); loc = $0 }
	     /<size>/ { gsub(/.*<size>|<.*/, ""); print sum, loc, $0 }' \
		"$fx/$r/repodata/repomd.xml" >"$t/md-$r"
	[ "$(wc -l <"$t/md-$r")" -ge 3 ] || fail "$r: repomd.xml lists fewer than 3 files"
	while read -r sum loc size; do
		f=$fx/$r/$loc
		assert_file "$f"
		assert_eq "$(sha256sum <"$f" | cut -d' ' -f1)" "$sum" "$r: checksum of $loc"
		assert_eq "$(stat -c %s "$f")" "$size" "$r: size of $loc"
	done <"$t/md-$r"
done
# Every staged package is in its repositories (counts follow the specs).
count() { find "$@" -name '*.rpm' | wc -l; }
nbase=$(count "$fx/staging/base")
nv2=$(count "$fx/staging/v2")
[ "$nbase" -ge 21 ] || fail "only $nbase packages built for base"
assert_eq "$nv2" 3 "1.1 packages built for base-v2"
for r in base base-zstd base-xz; do
	assert_eq "$(count "$fx/$r/Packages")" "$nbase" "packages in $r"
done
assert_eq "$(count "$fx/base-v2/Packages")" $((nbase + nv2)) "packages in base-v2"
assert_eq "$(count "$fx/otherkey/Packages")" 3 "packages in otherkey"
assert_eq "$(count "$fx/unsigned/Packages")" 3 "packages in unsigned"
for p in azl-app-1.0-1.x86_64 azl-app-1.1-1.x86_64 azl-libfoo-1.1-1.i686; do
	pkg base-v2 "$p" >/dev/null
done
zstd -t "$fx"/base-zstd/repodata/*-primary.xml.zst >/dev/null 2>&1 || fail "base-zstd primary is not zstd"
xz -t "$fx"/base-xz/repodata/*-primary.xml.xz || fail "base-xz primary is not xz"
zcat "$base"/repodata/*-primary.xml.gz >"$t/primary.xml"
assert_contains "$t/primary.xml" '<file>/usr/bin/sh</file>' "primary file list"

# --- dependencies as designed
q --provides "$(pkg base azl-libfoo-1.0-1.x86_64)" >"$t/p"
assert_contains "$t/p" 'libfoo.so.1()(64bit)'
q --provides "$(pkg base azl-libfoo-1.0-1.i686)" >"$t/p"
assert_contains "$t/p" 'libfoo.so.1'
assert_not_contains "$t/p" '(64bit)'
assert_eq "$(q --qf '%{ARCH}' "$(pkg base azl-libfoo-1.0-1.i686)")" i686 "i686 libfoo arch"
q --requires "$(pkg base azl-foo-tools-1.0-1.x86_64)" >"$t/r"
assert_contains "$t/r" 'libfoo.so.1()(64bit)'
assert_contains "$t/r" '/usr/bin/sh'
assert_not_contains "$t/r" 'libc.so'
app=$(pkg base azl-app-1.0-1.x86_64)
q --requires "$app" >"$t/r"
for d in '/bin/sh' 'azl-libfoo >= 1.0' '(azl-ssl-a or azl-ssl-b)'; do
	assert_contains "$t/r" "$d"
done
assert_eq "$(q --recommends "$app")" azl-extra "azl-app Recommends"
assert_contains "$(q --provides "$(pkg base azl-busybox-1.0-1.x86_64)")" '/bin/sh'
q --obsoletes --provides "$(pkg base azl-newname-2.0-1.x86_64)" >"$t/o"
assert_contains "$t/o" 'azl-oldname < 2.0'
assert_contains "$t/o" 'azl-oldname = 2.0'
assert_contains "$(q --requires "$(pkg base azl-broken-1.0-1.noarch)")" azl-missing-dep

# --- files of azl-app: caps, setuid, ghost, owners, hardlinks, symlink
q --qf '[%{FILEMODES:perms}|%{FILEUSERNAME}:%{FILEGROUPNAME}|%{FILEFLAGS:fflags}|%{FILECAPS}|%{FILENAMES}\n]' "$app" >"$t/files"
assert_contains "$t/files" '-rwsr-xr-x|root:root|||/usr/bin/azl-app-suid'
assert_contains "$t/files" '|cap_net_bind_service=ep|/usr/sbin/azl-app-bind'
assert_contains "$t/files" '-rw-r--r--|root:root|cn||/etc/azl-app.conf'
assert_contains "$t/files" '-rw-r-----|root:root|g||/var/log/azl-app.log'
assert_contains "$t/files" '-rw-r-----|azl:azl|||/etc/azl-app.secret'
assert_contains "$t/files" 'drwxr-xr-x|nosuchuser:nosuchgroup|||/var/lib/azl-app/orphan'
q --qf '[%{FILEINODES} %{FILENAMES}\n]' "$app" | grep hardlink | awk '{print $1}' | sort -u >"$t/ino"
assert_eq "$(wc -l <"$t/ino")" 1 "hardlink-a and hardlink-b share an inode"
assert_contains "$(q --qf '[%{FILENAMES} -> %{FILELINKTOS}\n]' "$app")" '/usr/bin/azl-app-link -> azl-app'
assert_contains "$(q --scripts "$app")" '/var/lib/azl-app/installed'
assert_contains "$(q --scripts "$(pkg base azl-fail-post-1.0-1.noarch)")" 'exit 1'
fs=$(pkg base azl-filesystem-1.0-1.noarch)
q --qf '[%{FILEMODES:perms} %{FILENAMES} %{FILELINKTOS}\n]' "$fs" >"$t/fs"
for l in 'drwxrwxrwt /tmp' 'dr-xr-x--- /root' 'lrwxrwxrwx /bin usr/bin' 'lrwxrwxrwx /lib64 usr/lib64'; do
	assert_contains "$t/fs" "$l"
done
rpm2cpio "$fs" | (cd "$t" && cpio -idm --quiet ./etc/passwd ./etc/group)
assert_contains "$t/etc/passwd" 'azl:x:1000:1000:'
assert_contains "$t/etc/group" 'azl:x:1000:'
# foo-tool really runs against libfoo: it exits with libfoo's version (10).
mkdir -p "$t/run"
for p in azl-foo-tools-1.0-1.x86_64 azl-libfoo-1.0-1.x86_64; do
	rpm2cpio "$(pkg base "$p")" | (cd "$t/run" && cpio -idm --quiet)
done
rc=0
LD_LIBRARY_PATH=$t/run/usr/lib64 "$t/run/usr/bin/foo-tool" || rc=$?
assert_eq "$rc" 10 "foo-tool's exit status (libfoo 1.0's foo_version)"
for c in zstd gzip xz; do
	assert_eq "$(q --qf '%{PAYLOADCOMPRESSOR}' "$(pkg base azl-$c-payload-1.0-1.noarch)")" "$c" "payload of azl-$c-payload"
done

# --- signatures: base and base-v2 by A, otherkey by B, unsigned by nobody
db() { # key -> an rpmdb with that key imported
	mkdir -p "$t/db-$1"
	rpmkeys --dbpath "$t/db-$1" --import "$(azl_fixture_key "$1")"
	echo "$t/db-$1"
}
dbA=$(db A)
dbB=$(db B)
rpmkeys --dbpath "$dbA" -K "$base"/Packages/a/*.rpm "$fx"/base-v2/Packages/a/*.rpm >"$t/k" ||
	{ cat "$t/k"; fail "rpm -K with key A failed on base"; }
assert_eq "$(grep -c 'digests signatures OK' "$t/k")" $((2 * nbase + nv2)) "base + base-v2 packages signed by A"
assert_exit 0 rpmkeys --dbpath "$dbB" -K "$fx"/otherkey/Packages/a/*.rpm
assert_exit 1 rpmkeys --dbpath "$dbA" -K "$(pkg otherkey azl-extra-1.0-1.noarch)"
assert_contains "$OUT" 'SIGNATURES NOT OK'
assert_exit 1 rpmkeys --dbpath "$dbB" -K "$app"
rpmkeys --dbpath "$dbA" -Kv "$(pkg unsigned azl-extra-1.0-1.noarch)" >"$t/u"
assert_not_contains "$t/u" 'Signature' "an unsigned package's check"
assert_contains "$t/u" 'Payload SHA256 digest: OK'

# --- repomd.xml.asc: detached signatures by the repository's key
gh=$t/gpg
mkdir -m 700 "$gh"
azl_on_exit "GNUPGHOME='$gh' gpgconf --kill all"
vgpg() { GNUPGHOME=$gh gpg --batch "$@"; }
vgpg -q --import "$(azl_fixture_key A)" 2>/dev/null
for r in base base-v2 base-zstd base-xz; do
	vgpg --verify "$fx/$r/repodata/repomd.xml.asc" "$fx/$r/repodata/repomd.xml" 2>/dev/null ||
		fail "$r: repomd.xml.asc does not verify with key A"
done
vgpg --verify "$fx/otherkey/repodata/repomd.xml.asc" "$fx/otherkey/repodata/repomd.xml" 2>/dev/null &&
	fail "otherkey: repomd.xml.asc verifies with key A"
assert_no_file "$fx/unsigned/repodata/repomd.xml.asc"

# --- azl_fixture_copy: a private copy, the shared tree untouched
azl_fixture_copy unsigned "$t/copy/unsigned"
assert_file "$t/copy/unsigned/repodata/repomd.xml"
echo junk >"$t/copy/unsigned/repodata/repomd.xml"
assert_contains "$fx/unsigned/repodata/repomd.xml" '<repomd'

# --- reproducible: rebuilding a spec gives the staged bytes again
(
	out=$t/re work=$t/re-work
	mkdir -p "$work/home" "$work/top"
	_azl_fx_rpmbuild "$work" x azl-libfoo >"$t/re.log" 2>&1 &&
		_azl_fx_rpmbuild "$work" x azl-app >>"$t/re.log" 2>&1
) || { cat "$t/re.log"; fail "rebuilding specs failed"; }
for p in azl-libfoo-1.0-1.x86_64 azl-app-1.0-1.x86_64; do
	cmp "$t/re-work/staging/x/$p.rpm" "$fx/staging/base/$p.rpm" ||
		fail "$p.rpm differs when rebuilt from the same spec"
done

# --- azl_fixture_manifest: gz, zstd and xz repodata lock to the same set
for r in base base-zstd base-xz; do
	mkdir -p "$t/m-$r"
	azl_fixture_manifest "$t/m-$r/m.yaml" "$r" azl-app azl-foo-tools
	assert_contains "$t/m-$r/m.yaml" "baseurl: file://$fx/$r/"
	assert_exit 0 "$AZL" lock "$t/m-$r/m.yaml"
	grep -E '"(name|version|arch|checksum)"' "$t/m-$r/m.lock.json" >"$t/set-$r"
	assert_contains "$t/set-$r" '"name": "azl-foo-tools"'
done
cmp "$t/set-base" "$t/set-base-zstd" || fail "base and base-zstd lock differently"
cmp "$t/set-base" "$t/set-base-xz" || fail "base and base-xz lock differently"
mkdir -p "$t/m-unsigned"
azl_fixture_manifest "$t/m-unsigned/m.yaml" unsigned azl-unsigned-hello
assert_contains "$t/m-unsigned/m.yaml" 'gpgcheck: false'
assert_exit 0 "$AZL" lock "$t/m-unsigned/m.yaml"
assert_contains "$t/m-unsigned/m.lock.json" '"name": "azl-unsigned-world"'

# --- an independent solver (dnf/libsolv) agrees with the design
dnfq() { # repo packages... -> the transaction's package list
	dnf --setopt=reposdir=/dev/null --setopt=cachedir="$t/dnf-cache" \
		--setopt=install_weak_deps=False --setopt=gpgcheck=0 \
		--installroot="$t/dnf-root" --releasever=1 --forcearch=x86_64 \
		--repofrompath="fx,file://$fx/$1/" --assumeno install "${@:2}" 2>&1 || true
}
if command -v dnf >/dev/null; then
	dnfq base-zstd azl-app azl-foo-tools >"$t/dnf"
	for p in azl-app azl-foo-tools azl-busybox azl-filesystem azl-libfoo; do
		assert_contains "$t/dnf" " $p "
	done
	assert_not_contains "$t/dnf" 'i686'
	assert_not_contains "$t/dnf" 'azl-extra'
	assert_eq "$(grep -cE ' azl-ssl-(a|b) ' "$t/dnf")" 1 "exactly one ssl alternative"
	# /usr/bin/sh is only in azl-busybox's file list.
	dnfq base azl-foo-tools >"$t/dnf"
	assert_contains "$t/dnf" ' azl-busybox '
	dnfq base-xz azl-broken >"$t/dnf"
	assert_contains "$t/dnf" 'nothing provides azl-missing-dep needed by azl-broken'
	dnfq base-v2 azl-app >"$t/dnf"
	assert_contains "$t/dnf" '1.1-1'
fi
echo "fixtures OK: $fx"
