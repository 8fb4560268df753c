#!/bin/bash
# podman (Debian's, daemonless) loads the OCI archive, gzip and zstd layers
# alike, into a private store (vfs, under the test's folder): the image id
# podman reports is the config digest of our manifest, and `podman image
# inspect` shows the entrypoint, cmd, env, working directory, user, labels
# and exposed ports the manifest asked for.  (Running the image is not
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
	echo "podman loaded the $comp image: id ${cfg:0:12}"
done
