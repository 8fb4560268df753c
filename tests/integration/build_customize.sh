#!/bin/bash
# examples/container/container.yaml (every build-stage key) built against
# the fixture repository; the image is unpacked by GNU tar and checked for
# each customization, and skopeo reads the OCI config.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
fx=$(azl_fixtures_dir)
mkdir -p "$t/ct/keys"
cp "$fx/keys/A.asc" "$t/ct/keys/"
cp -r "$AZL_TOP/examples/container/files" "$t/ct/"
sed "s|file:///srv/azl-fixtures/base/|file://$(azl_fixture_repo base)/|" \
	"$AZL_TOP/examples/container/container.yaml" >"$t/ct/container.yaml"
cd "$t/ct"
assert_exit 0 "$AZL" build container.yaml -o out --cache-dir "$t/cache"

skopeo inspect --config oci-archive:out/container.oci.tar >"$t/config.json"
python3 - "$t/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["User"] == "2000:2000", c
assert c["WorkingDir"] == "/srv/data", c
assert c["ExposedPorts"] == {"8080/tcp": {}}, c
assert list(c["Labels"]) == sorted(c["Labels"]), c["Labels"]
PY

mkdir "$t/root"
layer=$(azl_oci_layer out/container.oci.tar "$t/oci")
zstd -dc "$layer" | tar --numeric-owner -xpf - -C "$t/root"
r=$t/root
assert_contains "$r/etc/passwd" "alice:x:2000:2000:Alice Example:/home/alice:/bin/sh"
grep -q '^appsvc:x:999:' "$r/etc/passwd" || fail "system user appsvc not allocated below 1000"
assert_contains "$r/etc/group" "ops:x:2000:"
grep -q '^alice:!:19675:' "$r/etc/shadow" || fail "shadow entry (lastchg from SOURCE_DATE_EPOCH)"
assert_eq "$(stat -c '%a' "$r/etc/shadow")" "0" "shadow mode"
assert_eq "$(stat -c '%a %u %g' "$r/home/alice")" "700 2000 2000" "home directory"
assert_no_file "$r/home/appsvc"
assert_eq "$(stat -c '%a %u %g' "$r/srv/data")" "750 2000 2000" "directory owner and mode"
assert_eq "$(cat "$r/etc/motd")" "Built by azl-compose from examples/container." "inline file"
cmp "$r/usr/lib/systemd/system/hello.service" "$AZL_TOP/examples/container/files/hello.service" || fail "source file"
assert_eq "$(readlink "$r/etc/issue")" "motd" "symlink"
assert_eq "$(readlink "$r/etc/systemd/system/multi-user.target.wants/hello.service")" \
	"/usr/lib/systemd/system/hello.service" "systemctl-style enable link"
assert_eq "$(cat "$r/etc/hostname")" "azl-container" "hostname"
assert_contains "$r/etc/os-release" 'VARIANT_ID="container"'
assert_eq "$(stat -c '%s %a' "$r/etc/machine-id")" "0 444" "empty machine-id"
assert_eq "$(stat -c '%Y' "$r/etc/motd")" "1700000000" "created files get SOURCE_DATE_EPOCH"
echo ok
