#!/bin/bash
# azl-compose build -> NAME.oci.tar, checked with independent tools:
# skopeo reads the archive; GNU tar lists and unpacks the layer; rpm reads
# the image's database (-qa equals the lockfile, -Va is clean); getcap sees
# the %caps file; the %post scriptlet's effect is present; sha256sum checks
# SHA256SUMS.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
azl_fixture_manifest "$t/img.yaml" base azl-app azl-foo-tools azl-shared-a azl-shared-b
cat >>"$t/img.yaml" <<'YAML'
outputs:
  oci:
    compression: gzip
    entrypoint: ["/usr/bin/sh"]
    cmd: ["-c", "echo hello"]
    env: ["PATH=/usr/bin"]
    workdir: /root
    labels: {org.opencontainers.image.title: img}
YAML

cd "$t"
assert_exit 0 "$AZL" build img.yaml -o out --cache-dir "$t/cache"
assert_file out/img.oci.tar
assert_file out/img.build.json
assert_file out/SHA256SUMS
assert_file img.lock.json
(cd out && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the outputs"
assert_contains out/SHA256SUMS "img.oci.tar"
assert_contains out/SHA256SUMS "img.build.json"
ls -A out | grep -q '^\.azl-work' && fail "work directory left in the output folder"

# skopeo: the archive is a valid OCI layout with our config.
skopeo inspect oci-archive:out/img.oci.tar >"$t/inspect.json"
skopeo inspect --config oci-archive:out/img.oci.tar >"$t/config.json"
python3 - "$t/inspect.json" "$t/config.json" <<'PY'
import json, sys
i = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
assert i["Architecture"] == "amd64", i
assert i["Os"] == "linux", i
assert i["Created"] == "2023-11-14T22:13:20Z", i["Created"]
assert len(i["Layers"]) == 1, i["Layers"]
cfg = c["config"]
assert cfg["Entrypoint"] == ["/usr/bin/sh"], cfg
assert cfg["Cmd"] == ["-c", "echo hello"], cfg
assert cfg["Env"] == ["PATH=/usr/bin"], cfg
assert cfg["WorkingDir"] == "/root", cfg
assert cfg["Labels"] == {"org.opencontainers.image.title": "img"}, cfg
assert c["rootfs"]["type"] == "layers" and len(c["rootfs"]["diff_ids"]) == 1
assert c["history"][0]["created"] == "2023-11-14T22:13:20Z"
PY

# The layer, unpacked by GNU tar as root would (owners, modes, xattrs).
mkdir "$t/root"
layer=$(azl_oci_layer out/img.oci.tar "$t/oci")
gzip -t "$layer"
tar -tvf "$layer" --numeric-owner >"$t/listing"
# Entries are sorted: every parent before its contents, siblings bytewise.
tar -tf "$layer" | python3 -c '
import sys
names = [l.rstrip("\n").rstrip("/") for l in sys.stdin]
seen, last = set(), {}
for n in names:
    parent, _, base = n.rpartition("/")
    assert parent == "" or parent in seen, "parent after child: " + n
    assert last.get(parent, b"") < base.encode(), "siblings out of order at " + n
    last[parent] = base.encode()
    seen.add(n)
print(len(names), "entries in order")' || fail "layer entries are not in sorted order"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$layer" -C "$t/root"
r=$t/root

assert_eq "$(stat -c '%a %u %g' "$r/usr/bin/azl-app-suid")" "4755 0 0" "setuid file"
assert_eq "$(stat -c '%a %u %g' "$r/etc/azl-app.secret")" "640 1000 1000" "%attr(0640,azl,azl) resolved through the image's passwd"
assert_eq "$(stat -c '%a %U' "$r/var/lib/azl-app/orphan")" "755 root" "missing owner mapped to root"
assert_eq "$(stat -c '%i' "$r/usr/share/azl-app/hardlink-a")" "$(stat -c '%i' "$r/usr/share/azl-app/hardlink-b")" "hardlink pair"
assert_eq "$(readlink "$r/usr/bin/azl-app-link")" "azl-app" "symlink"
assert_eq "$(readlink "$r/bin")" "usr/bin" "/bin symlink"
getcap "$r/usr/sbin/azl-app-bind" | grep -q 'cap_net_bind_service=ep' || fail "security.capability lost: $(getcap "$r/usr/sbin/azl-app-bind")"
assert_eq "$(cat "$r/var/lib/azl-app/installed")" "azl-app 1.0 installed" "%post effect"
assert_no_file "$r/var/log/azl-app.log"   # %ghost: not created
assert_eq "$(stat -c '%Y' "$r/usr/bin/busybox")" "1700000000" "header mtime kept"
assert_eq "$(stat -c '%s' "$r/etc/machine-id")" "0" "empty machine-id"
assert_contains "$t/listing" "usr/share/azl/shared.txt"

# rpm reads the database we wrote: exactly the locked packages, verify clean.
rpm --root "$r" --dbpath /var/lib/rpm -qa --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n' | sort >"$t/qa"
python3 -c '
import json
for p in json.load(open("img.lock.json"))["packages"]:
    print("%s-%s-%s.%s" % (p["name"], p["version"], p["release"], p["arch"]))' | sort >"$t/locked"
diff -u "$t/locked" "$t/qa" || fail "rpm -qa differs from the lockfile"
rpm --root "$r" --dbpath /var/lib/rpm -Va >"$t/va" 2>&1 || { cat "$t/va"; fail "rpm -Va reports changes"; }
assert_eq "$(rpm --root "$r" --dbpath /var/lib/rpm -q --qf '%{INSTALLTIME}' azl-app)" "1700000000" "install time from SOURCE_DATE_EPOCH"

# build.json records what a rebuild needs.
python3 - out/img.build.json <<'PY'
import json, sys, hashlib
b = json.load(open(sys.argv[1]))
assert b["source_date_epoch"] == 1700000000
assert b["name"] == "img"
assert b["lockfile"]["text"] == open("img.lock.json").read()
assert b["manifest"]["sha256"] == hashlib.sha256(open("img.yaml", "rb").read()).hexdigest()
assert b["outputs"]["img.oci.tar"]["sha256"] == hashlib.sha256(open("out/img.oci.tar", "rb").read()).hexdigest()
assert len(b["seed"]) == 64
PY

# zstd layers: the same tree, a zstd blob skopeo accepts.
sed -i 's/compression: gzip/compression: zstd/' img.yaml
assert_exit 0 "$AZL" -q build img.yaml -o outz --cache-dir "$t/cache"
skopeo inspect --raw oci-archive:outz/img.oci.tar | grep -q 'tar+zstd' || fail "zstd layer media type missing"
skopeo inspect oci-archive:outz/img.oci.tar >/dev/null

# librpm's configuration is read once per process, though a cold build
# checks signatures, reads packages and writes the rpmdb.
command -v strace >/dev/null || fail "strace is needed (scripts/install-deps.sh)"
# (LeakSanitizer cannot run under ptrace: no leak check in this run.)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -f -qq -o "$t/opens" -e trace=open,openat "$AZL" -q build img.yaml -o outs \
	--cache-dir "$t/cache-cold" >/dev/null || fail "traced build"
assert_eq "$(grep -c '"/usr/lib/rpm/macros"' "$t/opens")" 1 "reads of rpm's macros"
echo "ok"
