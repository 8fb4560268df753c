#!/bin/bash
# podman (Debian's, daemonless) loads the OCI archive, gzip and zstd layers
# alike, into a private store (vfs, under the test's folder): the image id
# podman reports is the config digest of our manifest, and `podman image
# inspect` shows the entrypoint, cmd, env, working directory, user, labels
# and exposed ports the manifest asked for.  The gzip layer is a series of
# gzip members (lib/reproducible/pgzip.h): podman must read every one, so
# the layer it saves back from its store hashes to our diff_id.  (Running the image is not
# checked here: crun cannot set RLIMIT_NPROC inside this build sandbox.)
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

command -v podman >/dev/null || fail "podman is not installed (scripts/install-deps.sh installs it)"

t=$(azl_tmpdir)
export TMPDIR=$t
P="podman --root $t/store --runroot $t/run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none"
cd "$t"
for comp in gzip zstd; do
	azl_fixture_manifest "$t/p$comp.yaml" base azl-app azl-busybox
	cat >>"$t/p$comp.yaml" <<YAML
outputs:
  oci:
    compression: $comp
    entrypoint: ["/usr/bin/sh"]
    cmd: ["-c", "echo hello"]
    env: ["PATH=/usr/bin:/usr/sbin", "AZL=1"]
    workdir: /srv
    user: "2000:2000"
    labels:
      org.opencontainers.image.title: p$comp
    exposed_ports: [8080]
YAML
	assert_exit 0 "$AZL" build "p$comp.yaml" -o out --cache-dir "$t/cache"
	$P load -i "out/p$comp.oci.tar" >"$t/load.log" 2>&1 || { cat "$t/load.log" >&2; fail "podman load ($comp)"; }
	assert_contains "$t/load.log" "Loaded image"
	cfg=$(tar -xOf "out/p$comp.oci.tar" index.json | python3 -c '
import json, sys, tarfile
d = json.load(sys.stdin)["manifests"][0]["digest"].split(":")[1]
t = tarfile.open(sys.argv[1])
m = json.load(t.extractfile("blobs/sha256/" + d))
print(m["config"]["digest"].split(":")[1])' "out/p$comp.oci.tar")
	ref=$(sed -n 's/^Loaded image: //p' "$t/load.log" | head -1)
	$P image inspect "$ref" >"$t/inspect.json" || fail "podman image inspect ($comp)"
	python3 - "$t/inspect.json" "$cfg" "p$comp" <<'PY' || fail "podman's view of the $comp image differs from the manifest"
import json, sys
i = json.load(open(sys.argv[1]))[0]
assert i["Id"] == sys.argv[2], (i["Id"], sys.argv[2])
c = i["Config"]
assert c["Entrypoint"] == ["/usr/bin/sh"], c.get("Entrypoint")
assert c["Cmd"] == ["-c", "echo hello"], c.get("Cmd")
assert "AZL=1" in c["Env"] and "PATH=/usr/bin:/usr/sbin" in c["Env"], c.get("Env")
assert c["WorkingDir"] == "/srv", c.get("WorkingDir")
assert c["User"] == "2000:2000", c.get("User")
assert c["Labels"]["org.opencontainers.image.title"] == sys.argv[3], c.get("Labels")
assert "8080/tcp" in c["ExposedPorts"], c.get("ExposedPorts")
assert i["Architecture"] == "amd64" and i["Os"] == "linux", (i["Architecture"], i["Os"])
assert len(i["RootFS"]["Layers"]) == 1, i["RootFS"]
PY
	# What podman stored, saved back uncompressed, is our whole layer.
	rm -rf "$t/saved"
	$P save --format oci-dir --uncompressed -o "$t/saved" "$ref" >"$t/save.log" 2>&1 ||
		{ cat "$t/save.log" >&2; fail "podman save ($comp)"; }
	python3 - "$t/saved" "out/p$comp.oci.tar" "$comp" <<'PY' || fail "podman's stored $comp layer is not our layer"
import hashlib, json, os, sys, tarfile, zlib
saved, ours, comp = sys.argv[1], tarfile.open(sys.argv[2]), sys.argv[3]
def blob(d): return open(os.path.join(saved, "blobs/sha256", d[7:]), "rb")
idx = json.load(ours.extractfile("index.json"))
man = json.load(ours.extractfile("blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
cfg = json.load(ours.extractfile("blobs/sha256/" + man["config"]["digest"][7:]))
diff_id = cfg["rootfs"]["diff_ids"][0]
smani = json.load(blob(json.load(open(os.path.join(saved, "index.json")))["manifests"][0]["digest"]))
got = "sha256:" + hashlib.sha256(blob(smani["layers"][0]["digest"]).read()).hexdigest()
assert got == diff_id, (got, diff_id)
if comp == "gzip":  # the case this checks: more than one gzip member
    data, members = ours.extractfile("blobs/sha256/" + man["layers"][0]["digest"][7:]).read(), 0
    while data:
        d = zlib.decompressobj(31)
        d.decompress(data)
        assert d.eof, "truncated gzip member"
        data, members = d.unused_data, members + 1
    assert members > 1, members
    print("gzip layer: %d members" % members)
PY
	echo "podman loaded the $comp image: id ${cfg:0:12}"
done
