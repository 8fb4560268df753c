#!/bin/bash
# Hostile packages from a `gpgcheck: false` repository (issue 8): traversal
# paths, symlink escapes, device nodes, setuid files and capabilities,
# absurd header counts and sizes, decompression bombs.  Each is crafted at
# test time by tests/lib/rpmcraft.py (no binaries committed), served with
# repodata written from the specs (so even packages rpm cannot read get
# into the repository, as from a hostile mirror), locked, fetched and
# built.  Every build must fail with its exit code and a message naming
# the package and the offending path or field, within 60 s and 100 MB of
# resident memory, leaving no output at a final path and nothing on the
# host outside the test's folders.  Positive controls: the same privileged
# files build under `allow_setuid: true`, and symlinks that merely point
# outside (absolute, or with too many "..") build, with a scriptlet
# writing through them landing inside the image.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
cd "$t"
base=$(azl_fixture_repo base)
key=$(azl_fixture_key A)
craft=$AZL_TOP/tests/lib/rpmcraft.py
tag=azl-hostile-$$                  # names that must never appear on the host
GIB10=10737418240
RSS_MAX_KB=100000
TIME_MAX=60

# Nothing named $tag anywhere a ".." or a symlink could have led a write:
# the host's /, /tmp, /var, /etc, and the test's own tree (work dirs are
# gone after a build; the image's files live only inside its archive).
host_clean() {
	local p left
	for p in /tmp/"$tag"* /var/"$tag"* /"$tag"* /etc/"$tag"*; do
		[ -e "$p" ] || [ -L "$p" ] || continue
		fail "a package wrote $p on the host"
	done
	left=$(find "$t" -name "$tag*" | head -n 3)
	[ -z "$left" ] || fail "a package wrote $left"
}

mkdir specs
spec() { printf '%s\n' "$2" >"specs/$1.json"; }

# --- the packages --------------------------------------------------------
spec h-trav '{"name":"h-trav","files":[{"path":"/usr/../../etc/'$tag'","data":"x"}]}'
spec h-cpio-trav '{"name":"h-cpio-trav","files":[{"path":"/usr/share/h-cpio","data":"x","cpio_name":"./../../../tmp/'$tag'-cpio"}]}'
spec h-cpio-extra '{"name":"h-cpio-extra","files":[{"path":"/usr/share/h-ok","data":"x"}],"extra_cpio":[{"name":"../../../../tmp/'$tag'-extra","zeros":3}]}'
spec h-symdir '{"name":"h-symdir","files":[{"path":"/opt/h-symdir","mode":41471,"link":"../../../../../../../../tmp/'$tag'-symdir"},{"path":"/opt/h-symdir/pwned","data":"x"}]}'
spec h-suid '{"name":"h-suid","files":[{"path":"/usr/bin/h-suid","mode":35309,"data":"#!/bin/sh\n"}]}'
spec h-sgid '{"name":"h-sgid","files":[{"path":"/usr/bin/h-sgid","mode":34285,"data":"#!/bin/sh\n"}]}'
spec h-caps '{"name":"h-caps","files":[{"path":"/usr/bin/h-caps","mode":33261,"data":"#!/bin/sh\n","caps":"cap_net_raw=ep"}]}'
spec h-dev '{"name":"h-dev","files":[{"path":"/usr/lib/h-sda","mode":25014,"rdev":2048}]}'
spec h-tags '{"name":"h-tags","files":[{"path":"/usr/share/h-ok","data":"x"}],"hdr_il":2147483648}'
spec h-data '{"name":"h-data","files":[{"path":"/usr/share/h-ok","data":"x"}],"hdr_dl":4294967280}'
spec h-short '{"name":"h-short","files":[{"path":"/usr/share/h-ok","data":"x"}],"hdr_dl":200000000}'
spec h-sigtags '{"name":"h-sigtags","files":[{"path":"/usr/share/h-ok","data":"x"}],"sig_il":70000}'
spec h-count '{"name":"h-count","files":[{"path":"/usr/share/h-ok","data":"x"}],"tag_counts":{"1117":2000000}}'
spec h-files '{"name":"h-files","synthetic_files":1100000}'
spec h-biglink '{"name":"h-biglink","files":[{"path":"/usr/share/h-link","mode":41471,"link":"h-ok","hdr_size":4294967295,"cpio_size":4294967295}]}'
# Decompression bombs: 10 GiB of zeros in ~10 MB of gzip, where the header
# declares 1 byte, after the archive's trailer, or in an unlisted entry.
spec h-bomb '{"name":"h-bomb","files":[{"path":"/usr/share/h-bomb","data":"x","cpio_size":'$GIB10'}]}'
spec h-bomb-tail '{"name":"h-bomb-tail","files":[{"path":"/usr/share/h-ok","data":"x"}],"trailing_zeros":'$GIB10'}'
spec h-bomb-extra '{"name":"h-bomb-extra","files":[{"path":"/usr/share/h-ok","data":"x"}],"extra_cpio":[{"name":"./usr/share/h-hidden","zeros":'$GIB10'}]}'
# An xz payload whose stream asks for a 1.5 GiB dictionary: the decoder
# refuses it rather than allocate (rpm's xz memory limit).
spec h-xzdict '{"name":"h-xzdict","files":[{"path":"/usr/share/h-ok","data":"x"}],"xz_dict":1610612736}'
# Builds: symlinks pointing outside are fine in an image; a scriptlet
# writing through them must stay inside it.
spec h-links '{"name":"h-links","files":[
 {"path":"/opt/h-abs","mode":41471,"link":"/var/'$tag'-abs"},
 {"path":"/opt/h-abs/f","data":"through an absolute symlink\n"},
 {"path":"/opt/h-leaf","mode":41471,"link":"../../../../../../../../../../var/'$tag'-leaf"},
 {"path":"/opt/h-etc","mode":41471,"link":"../../../../../../../../../../etc"}],
 "post":"echo pwned > /opt/h-leaf; echo pwned > /opt/h-abs/g; ln -s ../../../../../../../../var/'$tag'-post /opt/h-post; echo pwned > /opt/h-post; rm /opt/h-etc && mkdir /opt/h-etc && echo x > /opt/h-etc/shadow"}'
python3 "$craft" repo "$t/hostile" specs/*.json
bombsize=$(stat -c %s hostile/Packages/h-bomb.rpm)
[ "$bombsize" -lt 20000000 ] || fail "the bomb is $bombsize bytes: not a bomb"

manifest() { # file pkg [allow_setuid line]
	local name
	name=$(basename "$1" .yaml)
	cat >"$1" <<EOF
name: $name
source_date_epoch: 1700000000
arch: x86_64
repos:
  - id: base
    baseurl: file://$base/
    gpgkey: $key
  - id: hostile
    baseurl: file://$t/hostile/
    gpgcheck: false
${3:-}
packages: [azl-filesystem, azl-busybox, $2]
outputs:
  oci: {}
EOF
}

# run NAME CMD...: under the time and memory limits; $ERR, $RC set.
run() {
	local name=$1 rss
	shift
	RC=0
	/usr/bin/time -f '%M %e' -o "$name.usage" timeout "$TIME_MAX" "$@" \
		>"$name.out" 2>"$name.err" || RC=$?
	ERR=$name.err
	[ "$RC" -ne 124 ] || fail "$name: not done within ${TIME_MAX}s"
	# time(1) prefixes a line when the command failed; the numbers are last.
	read -r rss secs < <(tail -n 1 "$name.usage")
	[ "$rss" -lt "$RSS_MAX_KB" ] || fail "$name: ${rss} kB resident, more than $RSS_MAX_KB"
	echo "$name: exit $RC, ${rss} kB, ${secs}s"
}

no_outputs() { # dir
	[ ! -d "$1" ] && return 0
	local left
	left=$(ls -A "$1")
	[ -z "$left" ] || fail "files left in $1 after a failed build: $left"
}

# expect PKG EXIT NEEDLE...: lock and fetch take the package (they read no
# payload); build fails with EXIT and every NEEDLE in its message.
expect() {
	local pkg=$1 code=$2 n
	shift 2
	manifest "$pkg.yaml" "$pkg"
	run "$pkg-lock" "$AZL" lock "$pkg.yaml"
	[ "$RC" -eq 0 ] || { cat "$ERR" >&2; fail "$pkg: lock failed"; }
	run "$pkg-fetch" "$AZL" fetch "$pkg.yaml" --cache-dir cache
	[ "$RC" -eq 0 ] || { cat "$ERR" >&2; fail "$pkg: fetch failed"; }
	run "$pkg" "$AZL" build "$pkg.yaml" -o "out-$pkg" --cache-dir cache
	[ "$RC" -eq "$code" ] || { cat "$ERR" >&2; fail "$pkg: exit $RC, expected $code"; }
	assert_contains "$ERR" "$pkg"
	for n in "$@"; do
		assert_contains "$ERR" "$n" "$pkg's error"
	done
	no_outputs "out-$pkg"
	host_clean
}

# Paths: lexically bad, unlisted in the header, through a symlink above /.
expect h-trav 2 "/usr/../../etc/$tag" '"." or ".." component'
expect h-cpio-trav 1 "./../../../tmp/$tag-cpio" "not a file of the header"
expect h-cpio-extra 1 "../../../../tmp/$tag-extra" "not a file of the header"
expect h-symdir 2 "/opt/h-symdir/pwned" "leads outside the image"
# Privilege from a repository that does not allow it.
expect h-suid 2 "/usr/bin/h-suid" "set-user-ID file (mode 4755)" "repository 'hostile'" "allow_setuid"
expect h-sgid 2 "/usr/bin/h-sgid" "set-group-ID file (mode 2755)" "repository 'hostile'"
expect h-caps 2 "/usr/bin/h-caps" "capabilities (cap_net_raw=ep)" "repository 'hostile'"
expect h-dev 2 "/usr/lib/h-sda" "block device node (8,0)" "repository 'hostile'"
# Headers over rpm's limits or over the file's end.
expect h-tags 2 "header declares 2147483648 tags"
expect h-data 2 "header declares 4294967280 bytes of data"
expect h-short 2 "header declares" "the file ends"
expect h-sigtags 2 "signature header declares 70000 tags"
expect h-count 2 "2000000 files (tag Basenames)"
expect h-files 2 "1100000 files (tag Basenames)"
expect h-biglink 2 "/usr/share/h-link" "gives this symlink 4294967295 bytes"
# Bombs: refused long before 10 GiB are decompressed.
expect h-bomb 1 "after /usr/share/h-bomb" "Bad magic"
expect h-bomb-tail 1 "after the archive's end"
expect h-bomb-extra 1 "./usr/share/h-hidden" "not a file of the header"
expect h-xzdict 1 "payload does not decompress"
for p in h-bomb h-bomb-tail h-bomb-extra h-xzdict; do
	read -r _ secs < <(tail -n 1 "$p.usage")
	awk -v s="$secs" 'BEGIN { exit !(s < 20) }' || fail "$p took ${secs}s"
done
big=$(find cache -type f -size +100M | head -n 3)
[ -z "$big" ] || fail "a bomb left large files in the cache: $big"

# --- positive controls ------------------------------------------------------
layers() { # oci.tar: every layer's listing
	local b
	for b in $(tar tf "$1" | grep '^blobs/sha256/.'); do
		tar xOf "$1" "$b" | tar tvzf - 2>/dev/null || true
	done
}

# The same privileged files build when the manifest allows them.
manifest allowed.yaml "h-suid, h-sgid, h-caps" "    allow_setuid: true"
run allowed "$AZL" build allowed.yaml -o out-allowed --cache-dir cache
[ "$RC" -eq 0 ] || { cat "$ERR" >&2; fail "allow_setuid: true: build failed"; }
layers out-allowed/allowed.oci.tar >allowed.list
assert_contains allowed.list "-rwsr-xr-x root/root"
assert_contains allowed.list "usr/bin/h-suid"
assert_contains allowed.list "-rwxr-sr-x root/root"
# allow_setuid: false refuses them from a verified repository too: the
# fixture azl-app ships a set-user-ID file.
manifest deny.yaml azl-app
sed -i "/gpgkey: /a\\    allow_setuid: false" deny.yaml
run deny "$AZL" build deny.yaml -o out-deny --cache-dir cache
[ "$RC" -eq 2 ] || { cat "$ERR" >&2; fail "allow_setuid: false on base: exit $RC"; }
assert_contains "$ERR" "azl-app-1.0-1.x86_64: /usr/bin/azl-app-suid: set-user-ID file"
assert_contains "$ERR" "repository 'base'"

# Symlinks pointing out of the image build; the scriptlet's writes through
# them land inside it, never on the host.
manifest links.yaml h-links
run links "$AZL" build links.yaml -o out-links --cache-dir cache
if [ "$RC" -ne 0 ] && grep -q "cannot run on this host" "$ERR"; then
	echo "links: no sandbox here; building with scriptlets: skip"
	printf 'scriptlets: skip\n' >>links.yaml
	run links "$AZL" build links.yaml -o out-links --cache-dir cache
	scripted=false
else
	scripted=true
fi
[ "$RC" -eq 0 ] || { cat "$ERR" >&2; fail "h-links: build failed"; }
host_clean
layers out-links/links.oci.tar >links.list
assert_contains links.list "opt/h-leaf -> ../../../../../../../../../../var/$tag-leaf"
assert_contains links.list "var/$tag-abs/f"
if $scripted; then
	assert_contains links.list "var/$tag-abs/g"
	assert_contains links.list "var/$tag-leaf"
	assert_contains links.list "var/$tag-post"
	# The scriptlet replaced the symlink to /etc by a directory: its file
	# is the scriptlet's (root, 0644), not the host's /etc/shadow's.
	grep -Eq '^-rw-r--r-- root/root +2 .* opt/h-etc/shadow$' links.list ||
		fail "opt/h-etc/shadow is not the scriptlet's root 0644 file: $(grep h-etc links.list)"
fi
echo "hostile: all cases refused with named package and path; limits held"
