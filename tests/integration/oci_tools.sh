#!/bin/bash
# OCI archives from lib/compose/emit_oci.c, checked with independent tools:
# skopeo (inspect, copy with digest verification), umoci (unpack), GNU tar
# and getcap.  The sample image comes from the unit-test binary
# (AZL_OCI_OUT=path), which builds a model by hand: until the build command
# exists that is the only way to drive the emitter.
. "$(dirname "$0")/../lib/common.sh"

gen=$AZL_BUILD/tests/test_emit_oci
[ -x "$gen" ] || fail "$gen not built (make BUILD=... unit)"
for tool in skopeo umoci getcap zstd; do
	command -v "$tool" >/dev/null || fail "$tool missing: run scripts/install-deps.sh"
done
# The system python: a version manager's shim costs seconds per start.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || fail "python3 missing"

t=$(azl_tmpdir)
emit() { # compression out
	AZL_OCI_OUT=$2 AZL_OCI_COMPRESSION=$1 "$gen" >"$2.log" 2>&1 ||
		{ cat "$2.log" >&2; fail "emitting the $1 sample"; }
}
digest_of() { # what log
	sed -n "s/^$1 sha256:\([0-9a-f]\{64\}\)$/\1/p" "$2"
}
json() { # file expr...: one line per python expression over the JSON `d`
	local f=$1
	shift
	"$py" -c 'import json,sys
d = json.load(open(sys.argv[1]))
for e in sys.argv[2:]:
    print(eval(e))' "$f" "$@"
}

emit gzip "$t/gz.oci.tar"
emit zstd "$t/zst.oci.tar"
emit gzip "$t/gz2.oci.tar"
cmp "$t/gz.oci.tar" "$t/gz2.oci.tar" || fail "two emits differ"
ls "$t" | grep -q '\.tmp\.\|\.layer\.' && fail "temporary files left in $t: $(ls "$t")"
mdigest=$(digest_of manifest "$t/gz.oci.tar.log")
[ ${#mdigest} -eq 64 ] || fail "no manifest digest printed"

# --- skopeo: what a registry client sees ---
for img in gz zst; do
	skopeo inspect "oci-archive:$t/$img.oci.tar" >"$t/$img.inspect" ||
		fail "skopeo inspect oci-archive:$t/$img.oci.tar"
	want=$(digest_of manifest "$t/$img.oci.tar.log")
	mapfile -t got < <(json "$t/$img.inspect" 'd["Digest"]' 'd["Architecture"]' 'd["Os"]' \
		'd["Created"]' 'd["Labels"]["org.example.a"]' 'd["Layers"][0]')
	assert_eq "${got[0]}" "sha256:$want" "$img manifest digest"
	assert_eq "${got[1]}" amd64
	assert_eq "${got[2]}" linux
	assert_eq "${got[3]}" "2023-11-14T22:13:20Z"
	assert_eq "${got[4]}" first
	assert_eq "${got[5]}" "sha256:$(digest_of layer "$t/$img.oci.tar.log")"
	# The raw manifest skopeo reads hashes to the digest we reported.
	raw=$(skopeo inspect --raw "oci-archive:$t/$img.oci.tar" | sha256sum | cut -d' ' -f1)
	assert_eq "$raw" "$want" "$img raw manifest hash"
	skopeo inspect --config "oci-archive:$t/$img.oci.tar:sample:latest" >"$t/$img.config" ||
		fail "skopeo cannot find the image by its ref name sample:latest"
	mapfile -t got < <(json "$t/$img.config" '" ".join(d["config"]["Entrypoint"] + d["config"]["Cmd"])' \
		'd["rootfs"]["diff_ids"][0]')
	assert_eq "${got[0]}" "/bin/sh -c echo hello"
	assert_eq "${got[1]}" "sha256:$(digest_of diff_id "$t/$img.oci.tar.log")"
	# copy re-hashes every blob against its descriptor.
	skopeo copy -q "oci-archive:$t/$img.oci.tar" "oci:$t/$img-copy:x" ||
		fail "skopeo copy of $img failed (digest or format error)"
done
# Same files, different compression: the uncompressed layer is the same.
assert_eq "$(digest_of diff_id "$t/gz.oci.tar.log")" "$(digest_of diff_id "$t/zst.oci.tar.log")" \
	"diff_id across compressions"

# --- the layer blobs themselves ---
mkdir "$t/gz" "$t/zst"
tar -xf "$t/gz.oci.tar" -C "$t/gz"
tar -xf "$t/zst.oci.tar" -C "$t/zst"
gzlayer=$t/gz/blobs/sha256/$(digest_of layer "$t/gz.oci.tar.log")
zstlayer=$t/zst/blobs/sha256/$(digest_of layer "$t/zst.oci.tar.log")
gzip -t "$gzlayer" || fail "gzip -t rejects the layer"
zstd -q -t "$zstlayer" || fail "zstd -t rejects the layer"
cmp <(gzip -dc "$gzlayer") <(zstd -qdc "$zstlayer") || fail "layers differ once decompressed"
assert_eq "$(gzip -dc "$gzlayer" | sha256sum | cut -d' ' -f1)" "$(digest_of diff_id "$t/gz.oci.tar.log")" \
	"diff_id is the uncompressed layer's hash"
# gzip header: no name, mtime 0, OS byte 3.
assert_eq "$(head -c 10 "$gzlayer" | od -An -tx1 | tr -d ' \n')" "1f8b0800000000000003"
# Pax extended headers are named DIR/PaxHeader/NAME after their entry (no
# host pid, as GNU tar's PaxHeaders.PID would be), and carry no atime/ctime.
gzip -dc "$gzlayer" >"$t/layer.tar"
"$py" - "$t/layer.tar" <<'PY' || fail "pax header names are not derived from their entries"
import os, sys
d = open(sys.argv[1], "rb").read()
off, pax, seen = 0, None, 0
while off + 512 <= len(d) and d[off:off + 512] != bytes(512):
    h = d[off:off + 512]
    name = h[:100].rstrip(b"\0")
    prefix = h[345:500].rstrip(b"\0")
    if prefix:
        name = prefix + b"/" + name
    size = int(h[124:136].strip(b"\0 ") or b"0", 8)
    if h[156:157] == b"x":
        pax = name
    elif pax is not None:
        real = os.path.split(name.rstrip(b"/"))
        want = os.path.join(real[0], b"PaxHeader", real[1])[:100]
        if pax != want:
            sys.exit("pax header %r for %r" % (pax, name))
        pax, seen = None, seen + 1
    off += 512 + (size + 511) // 512 * 512
if seen == 0:
    sys.exit("no pax headers at all (the xattr entry needs one)")
PY
assert_not_contains "$(strings "$t/layer.tar")" "atime="
assert_not_contains "$(strings "$t/layer.tar")" "ctime="
assert_not_contains "$(strings "$t/layer.tar")" "LIBARCHIVE.xattr"

check_rootfs() { # dir tool
	local r=$1
	assert_eq "$(stat -c '%u:%g %a' "$r/home/app")" "1000:1000 700" "$2: owner/mode of home/app"
	assert_eq "$(stat -c '%a' "$r/usr/bin/ping")" 4755 "$2: setuid ping"
	assert_contains "$(getcap "$r/usr/bin/ping")" "cap_net_raw=ep" "$2: getcap ping"
	assert_eq "$(stat -c %i "$r/usr/bin/hard1")" "$(stat -c %i "$r/usr/bin/hard2")" "$2: hardlink inode"
	assert_eq "$(stat -c %h "$r/usr/bin/hard1")" 2 "$2: link count"
	assert_eq "$(readlink "$r/bin")" usr/bin "$2: symlink"
	assert_eq "$(stat -c '%F %t,%T' "$r/dev/null")" "character special file 1,3" "$2: device node"
	assert_eq "$(stat -c %Y "$r/etc/os-release")" 1700000000 "$2: build-made mtime"
	assert_eq "$(stat -c %Y "$r/usr/bin/big")" 1600000000 "$2: package mtime"
	assert_eq "$(cat "$r/etc/os-release")" "ID=azl
VERSION_ID=1" "$2: inline content"
	assert_eq "$(stat -c %s "$r/usr/bin/big")" 3145728 "$2: streamed content size"
	[ -p "$r/run/initctl" ] || fail "$2: fifo missing"
}

# --- GNU tar, as root, keeping owners and xattrs ---
mkdir "$t/gnutar"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$t/layer.tar" -C "$t/gnutar" ||
	fail "GNU tar cannot extract the layer"
check_rootfs "$t/gnutar" "GNU tar"

# --- umoci (0.4 reads gzip layers only) ---
umoci unpack --image "$t/gz:sample:latest" "$t/bundle" >"$t/umoci.log" 2>&1 ||
	{ cat "$t/umoci.log" >&2; fail "umoci unpack failed"; }
check_rootfs "$t/bundle/rootfs" umoci
mapfile -t got < <(json "$t/bundle/config.json" '" ".join(d["process"]["args"])' 'd["process"]["cwd"]')
assert_eq "${got[0]}" "/bin/sh -c echo hello" "umoci: process args"
assert_eq "${got[1]}" /home/app "umoci: cwd"

if command -v podman >/dev/null; then
	podman load -i "$t/gz.oci.tar" >/dev/null || fail "podman load failed"
fi
echo "ok: skopeo, umoci, GNU tar, getcap agree with the emitted archive"
