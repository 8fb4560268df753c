#!/bin/bash
# azl-compose diff on pairs of builds with planted differences: a different
# SOURCE_DATE_EPOCH (mtimes), a files: entry with other content, another
# mode, an added file, zstd instead of gzip.  Each pair: diff names the
# planted difference (path + what), exits 1, and names every file-level path
# that diffoscope --text names on the same pair -- for the OCI archives, for
# their layer blobs and for the output folders.  Identical inputs exit 0;
# a missing input exits 2.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

command -v diffoscope >/dev/null || fail "diffoscope is not installed (scripts/install-deps.sh installs diffoscope-minimal)"

t=$(azl_tmpdir)
cache=$t/cache

# variant NAME SED-EXPRESSIONS...: builds $t/NAME/out/img.* from the base
# manifest edited by sed (same manifest name, so output names match).
variant() {
	local name=$1
	shift
	mkdir -p "$t/$name"
	cp "$t/base.yaml" "$t/$name/img.yaml"
	cp "$t/base.lock.json" "$t/$name/img.lock.json"
	for e in "$@"; do sed -i "$e" "$t/$name/img.yaml"; done
	(cd "$t/$name" && "$AZL" -q build img.yaml -o out --cache-dir "$cache" --locked >/dev/null) ||
		fail "build of variant $name"
}

azl_fixture_manifest "$t/img.yaml" base azl-app
cat >>"$t/img.yaml" <<'YAML'
files:
  - path: /etc/planted.txt
    content: "one\n"
    mode: "0644"
outputs:
  oci:
    compression: gzip
YAML
(cd "$t" && "$AZL" -q build img.yaml -o base-out --cache-dir "$cache" >/dev/null) || fail "base build"
mv "$t/img.yaml" "$t/base.yaml"
mv "$t/img.lock.json" "$t/base.lock.json"
mkdir -p "$t/base" && mv "$t/base-out" "$t/base/out"

variant sde "s/^source_date_epoch: .*/source_date_epoch: 1700000100/"
variant content 's/content: "one\\n"/content: "two\\n"/'
variant mode 's/mode: "0644"/mode: "0600"/'
variant added 's|^files:$|files:\n  - path: /etc/added.txt\n    content: "new\\n"|'
variant zstd 's/compression: gzip/compression: zstd/'

A=$t/base/out

# Identical and error cases first.
assert_exit 0 "$AZL" diff "$A/img.oci.tar" "$A/img.oci.tar"
assert_contains "$OUT" "identical"
assert_exit 0 "$AZL" diff "$A" "$A"
assert_exit 2 "$AZL" diff "$A/img.oci.tar" "$t/nonexistent.tar"
assert_contains "$ERR" "nonexistent.tar"

# expect VARIANT PATH-SUFFIX WHAT [A B]: the JSON output holds that item.
expect() {
	python3 - "$t/$1.json" "$2" "$3" "${4-}" "${5-}" <<'PY' || fail "variant $1: no '$3' item for ...$2 (see $t/$1.json)"
import json, sys
d = json.load(open(sys.argv[1]))
_, _, suffix, what, a, b = sys.argv
for it in d["differences"]:
    if it["path"].endswith(suffix) and it["what"] == what and (not a or (it["a"], it["b"]) == (a, b)):
        sys.exit(0)
sys.exit(1)
PY
}

for v in sde content mode added zstd; do
	B=$t/$v/out
	assert_exit 1 "$AZL" diff --json --max 1000000 "$A/img.oci.tar" "$B/img.oci.tar"
	cp "$OUT" "$t/$v.json"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["identical"] and d["total"] == len(d["differences"]) > 0' "$t/$v.json" ||
		fail "variant $v: JSON output malformed"
done
expect sde ":layers[0]:etc/planted.txt" mtime 1700000000 1700000100
expect sde ":config[0]" created "2023-11-14T22:13:20Z" "2023-11-14T22:15:00Z"
expect content ":layers[0]:etc/planted.txt" "content digest"
expect mode ":layers[0]:etc/planted.txt" mode 0644 0600
expect added ":layers[0]:etc/added.txt" added "" file
expect zstd ":layers[0]" compression gzip zstd
expect zstd ":manifest[0]" "layers[0].mediaType" \
	application/vnd.oci.image.layer.v1.tar+gzip application/vnd.oci.image.layer.v1.tar+zstd
# Only the planted change: the content variant has no mode or mtime item.
python3 - "$t/content.json" <<'PY' || fail "content variant reports unplanted differences"
import json, sys
for it in json.load(open(sys.argv[1]))["differences"]:
    assert it["what"] not in ("mode", "mtime", "owner", "xattr", "added", "removed") or ":layers[" not in it["path"], it
PY

# Innermost first and --max: the first line is a layer entry, 2 shown.
assert_exit 1 "$AZL" diff --max 2 "$A/img.oci.tar" "$t/sde/out/img.oci.tar"
assert_eq "$(wc -l <"$OUT")" "3" "--max 2 prints 2 items and the count"
head -1 "$OUT" | grep -q '^img.oci.tar:layers\[0\]:' || fail "innermost first: $(head -1 "$OUT")"
assert_contains "$OUT" "not all shown"

# The layer blob of an archive, as a file of its own.
layer_of() { # OUTDIR DEST
	local x=$t/x.$$
	rm -rf "$x" && mkdir -p "$x" && tar -xf "$1/img.oci.tar" -C "$x"
	python3 - "$x" "$2" <<'PY'
import json, shutil, sys
x, dest = sys.argv[1:]
m = json.load(open(x + "/index.json"))["manifests"][0]["digest"].split(":")[1]
l = json.load(open(x + "/blobs/sha256/" + m))["layers"][0]["digest"].split(":")[1]
shutil.copy(x + "/blobs/sha256/" + l, dest)
PY
}

# diffoscope's file-level paths (members, file-list lines, folder entries),
# without its own sections (file list, stat, Pretty-printed, ...); the
# folder names given after the file are cut from the front of a name.
cat >"$t/paths.py" <<'PY'
import json, re, sys
mode, path = sys.argv[1], sys.argv[2]
roots = [r.rstrip("/") + "/" for r in sys.argv[3:]]
out = set()
if mode == "diffoscope":
    longline = re.compile(r'^[-dlhcbpsD?][-rwxsStT]{9}\s.*\d\d:\d\d:\d\d(?:\.\d+)? (.*)$')
    pseudo = re.compile(r'^(file list|stat \{\}|Pretty-printed|filetype from .*|.*\{\}.*|.*-content|encoding|.* vs\. .*|[Ss]ymlink.*)$')
    in_list = None
    for raw in open(path, encoding="utf-8", errors="replace"):
        line = raw.rstrip("\n")
        m = re.match(r'^((?:[│ ] )*)[├└]── (?:[-+]{3} )?(.*)$', line)
        if m:
            name = m.group(2)
            in_list = len(m.group(1)) + 2 if name == "file list" else None
            for r in roots:
                if name.startswith(r):
                    name = name[len(r):]
            if not pseudo.match(name):
                out.add(name)
            continue
        if in_list is None or len(line) <= in_list:
            continue
        marker, entry = line[in_list], line[in_list + 1:]
        if marker not in "+-" or entry.startswith(("@@", "--", "++")):
            continue
        lm = longline.match(entry)
        name = lm.group(1) if lm else entry.strip()
        name = re.sub(r' (->|link to) .*$', '', name)
        if name:
            out.add(name)
else:
    for it in json.load(open(path))["differences"]:
        for c in it["path"].split(":"):
            out.add(c)
for p in sorted(out):
    p = p[2:] if p.startswith("./") else p
    print(p.rstrip("/") or p)
PY

# covers LABEL A B: every path diffoscope names, ours names too.
covers() {
	local label=$1 a=$2 b=$3 rc=0
	diffoscope --no-progress --text "$t/$label.dfs" "$a" "$b" >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 1 ] || fail "$label: diffoscope exit $rc (expected 1: different)"
	# A filesystem image's member (NAME.tar) is diffoscope's own container.
	python3 "$t/paths.py" diffoscope "$t/$label.dfs" "$a" "$b" | { grep -v '^img\.usr\.raw\.tar$' || true; } |
		sort -u >"$t/$label.theirs"
	assert_exit 1 "$AZL" diff --json --max 1000000 "$a" "$b"
	cp "$OUT" "$t/$label.ours.json"
	python3 "$t/paths.py" ours "$t/$label.ours.json" | sort -u >"$t/$label.ours"
	comm -23 "$t/$label.theirs" "$t/$label.ours" >"$t/$label.missing"
	if [ -s "$t/$label.missing" ]; then
		cat "$t/$label.missing" >&2
		fail "$label: diffoscope names paths that azl-compose diff does not (above)"
	fi
	echo "$label: diffoscope names $(wc -l <"$t/$label.theirs") paths, all named by diff"
}

layer_of "$A" "$t/base.layer"
for v in sde content mode added zstd; do
	B=$t/$v/out
	covers "$v-oci" "$A/img.oci.tar" "$B/img.oci.tar"
	layer_of "$B" "$t/$v.layer"
	covers "$v-layer" "$t/base.layer" "$t/$v.layer"
	covers "$v-dir" "$A" "$B"
done
# The planted paths are among what diffoscope named, so the check has teeth.
assert_contains "$t/content-layer.theirs" "etc/planted.txt"
assert_contains "$t/added-layer.theirs" "etc/added.txt"
assert_contains "$t/mode-layer.theirs" "etc/planted.txt"
assert_contains "$t/sde-layer.theirs" "var/lib/rpm/rpmdb.sqlite"
assert_contains "$t/sde-oci.theirs" "index.json"
assert_contains "$t/sde-dir.theirs" "img.build.json"

# Filesystem images: two Flatcar-style builds (one seed) whose /usr differs
# in one file's content and one file's mode.  diffoscope opens the ext4
# /usr images through libguestfs; diff reads them in-process and must name
# every path diffoscope names, and the planted ones in the whole disks too.
/usr/bin/python3 -c "import guestfs" 2>/dev/null || fail "python3-guestfs is not installed (scripts/install-deps.sh installs it): diffoscope needs it to open ext4 images"
for v in fa fb; do
	mkdir -p "$t/$v"
	azl_fixture_manifest "$t/$v/img.yaml" base azl-filesystem azl-busybox azl-kernel
	azl_fixture_kernel_repo "$t/$v/img.yaml" || fail "azl-kernel fixture"
	cat >>"$t/$v/img.yaml" <<'YAML'
seed: "diff-disk"
files:
  - path: /usr/share/planted.txt
    content: "one\n"
  - path: /usr/share/moded.txt
    content: "same\n"
    mode: "0644"
kernel:
  cmdline: "console=ttyS0"
outputs:
  flatcar: {usr_size: 256MiB}
YAML
done
sed -i 's/content: "one\\n"/content: "two\\n"/; s/mode: "0644"/mode: "0600"/' "$t/fb/img.yaml"
for v in fa fb; do
	(cd "$t/$v" && "$AZL" -q build img.yaml -o out --cache-dir "$cache" >/dev/null) || fail "flatcar build $v"
done
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
covers usr-raw "$t/fa/out/img.usr.raw" "$t/fb/out/img.usr.raw"
assert_contains "$t/usr-raw.theirs" "share/planted.txt"
assert_contains "$t/usr-raw.theirs" "share/moded.txt"
assert_exit 1 "$AZL" diff --max 1000 "$t/fa/out/img.flatcar.img" "$t/fb/out/img.flatcar.img"
assert_contains "$OUT" "share/planted.txt: content digest"
assert_contains "$OUT" "share/moded.txt: mode: 0644 -> 0600"
echo "ok"
