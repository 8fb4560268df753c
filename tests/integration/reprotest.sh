#!/bin/bash
# reprotest (Debian's) on the example: two builds of one manifest and
# lockfile under every variation reprotest can apply without sudo — time
# (faketime), build path, umask, locales, timezone, environment, home,
# hostname/domain (unshare), kernel, CPU count, ASLR, exec path and file
# ordering (disorderfs) — must give identical outputs.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"
command -v reprotest >/dev/null || fail "reprotest is not installed (scripts/install-deps.sh installs it)"

t=$(azl_tmpdir)
mkdir "$t/src"
azl_fixture_manifest "$t/src/img.yaml" base azl-app azl-foo-tools
printf 'outputs:\n  oci: {compression: gzip}\n' >>"$t/src/img.yaml"
"$AZL" -q lock "$t/src/img.yaml"
cd "$t"
# user_group needs sudo and a second user; fileordering needs FUSE.
vary=+all,-user_group
[ -c /dev/fuse ] || vary=$vary,-fileordering
timeout 900 reprotest --vary="$vary" -s src \
	"$AZL -q build img.yaml -o out --cache-dir \$PWD/.cache" 'out/*' >"$t/log" 2>&1 || {
	tail -n 40 "$t/log"
	fail "reprotest found differences (or failed)"
}
grep -q "Reproduction successful" "$t/log" || { tail -n 20 "$t/log"; fail "no success line"; }
grep -q "img.oci.tar" "$t/log" || fail "the OCI archive was not compared"
echo ok
