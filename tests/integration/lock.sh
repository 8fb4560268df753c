# azl-compose lock over the fixture repositories: what gets resolved, pins,
# --update, determinism and the compressed-repodata variants.
. "$AZL_TOP/tests/lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

base=$(azl_fixture_repo base)
v2=$(azl_fixture_repo base-v2)
key=$(azl_fixture_key A)
t=$(azl_tmpdir)
# Debian's python3 directly: a version-manager shim can take seconds a call.
py() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else python3 "$@"; fi; }
export XDG_CACHE_HOME=$t/xdg-cache   # a private parsed-metadata cache

# manifest FILE REPO_DIR PACKAGES [EXTRA YAML LINES]
manifest() {
	{
		echo "name: $(basename "$1" .yaml)"
		echo "repos:"
		echo "  - id: base"
		echo "    baseurl: file://$2/"
		echo "    gpgkey: $key"
		echo "packages:"
		for p in $3; do echo "  - $p"; done
		[ $# -lt 4 ] || printf '%s\n' "$4"
	} >"$1"
}

# NEVRAs of a lockfile, one per line, sorted.
nevras() {
	py -c 'import json,sys
for p in json.load(open(sys.argv[1]))["packages"]:
    print("%s-%s-%s.%s" % (p["name"], p["version"], p["release"], p["arch"]))' "$1" | sort
}

# "name.arch name.arch ... " of a lockfile.
names() {
	py -c 'import json,sys
print("".join("%s.%s " % (p["name"], p["arch"]) for p in json.load(open(sys.argv[1]))["packages"]), end="")' "$1"
}

# --- the basic solve -------------------------------------------------------
manifest "$t/app.yaml" "$base" azl-app
assert_exit 0 "$AZL" lock "$t/app.yaml"
assert_contains "$ERR" "5 packages from 1 repo"
assert_file "$t/app.lock.json"
got=$(names "$t/app.lock.json")
case $got in
"azl-app.x86_64 azl-busybox.x86_64 azl-filesystem.noarch azl-libfoo.x86_64 azl-ssl-a.x86_64 " | \
"azl-app.x86_64 azl-busybox.x86_64 azl-filesystem.noarch azl-libfoo.x86_64 azl-ssl-b.x86_64 ") ;;
*) fail "unexpected package set: $got" ;;
esac
assert_not_contains "$t/app.lock.json" '"azl-extra"' "weak deps are off by default"
assert_not_contains "$t/app.lock.json" '"i686"' "i686 must not be chosen"

# Every pin matches the file it names: checksum, size, location.
py - "$t/app.lock.json" "$base" <<'EOF' || fail "lockfile does not match the repository files"
import hashlib, json, os, sys
lock = json.load(open(sys.argv[1]))
assert lock["version"] == 1
assert [r["id"] for r in lock["repos"]] == ["base"]
md = open(os.path.join(sys.argv[2], "repodata/repomd.xml"), "rb").read()
assert lock["repos"][0]["repomd_sha256"] == hashlib.sha256(md).hexdigest()
for p in lock["packages"]:
    f = os.path.join(sys.argv[2], p["location"])
    data = open(f, "rb").read()
    assert p["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest(), p
    assert p["size"] == len(data), p
EOF

# Canonical bytes: sorted keys, two-space indent, trailing newline.
py -c 'import json,sys; t=open(sys.argv[1]).read(); assert t == json.dumps(json.loads(t), indent=2, sort_keys=True, separators=(",", ": ")) + "\n"' \
	"$t/app.lock.json" || fail "lockfile is not canonical JSON"

# A rerun changes nothing, not even the mtime; -q prints nothing.
cp -p "$t/app.lock.json" "$t/first.json"
sleep 1
assert_exit 0 "$AZL" lock "$t/app.yaml" -q
[ -s "$ERR" ] && fail "-q printed: $(cat "$ERR")"
cmp "$t/app.lock.json" "$t/first.json" || fail "rerun changed the lockfile"
[ "$t/app.lock.json" -nt "$t/first.json" ] && fail "rerun rewrote an unchanged lockfile"
# ... and a fresh lock elsewhere gives the same bytes.
mkdir "$t/again"
cp "$t/app.yaml" "$t/again/app.yaml"
assert_exit 0 "$AZL" -q lock "$t/again/app.yaml"
cmp "$t/app.lock.json" "$t/again/app.lock.json" || fail "same inputs, different lockfile"

# The parsed-metadata cache: filled by the first run, and the same bytes
# with it, without it, and with a damaged entry.
solv=$(ls "$XDG_CACHE_HOME"/azl-compose/metadata/*.solv)
[ "$(echo "$solv" | wc -l)" -eq 1 ] || fail "expected one cached primary, got: $solv"
rm "$t/again/app.lock.json"
assert_exit 0 "$AZL" -q lock "$t/again/app.yaml" --no-cache
cmp "$t/app.lock.json" "$t/again/app.lock.json" || fail "--no-cache gives another lockfile"
head -c 100 "$solv" >"$solv.cut" && mv "$solv.cut" "$solv"
rm "$t/again/app.lock.json"
assert_exit 0 "$AZL" -q lock "$t/again/app.yaml"
cmp "$t/app.lock.json" "$t/again/app.lock.json" || fail "a damaged cache entry changed the lockfile"
[ "$(stat -c %s "$solv")" -gt 100 ] || fail "the damaged cache entry was not rewritten"

# --- weak deps, obsoletes, excludes, sonames and file deps ------------------
manifest "$t/weak.yaml" "$base" azl-app "install_weak_deps: true"
assert_exit 0 "$AZL" lock "$t/weak.yaml"
assert_contains "$(names "$t/weak.lock.json")" "azl-extra.noarch"

manifest "$t/old.yaml" "$base" azl-oldname
assert_exit 0 "$AZL" lock "$t/old.yaml"
assert_eq "$(names "$t/old.lock.json")" "azl-newname.x86_64 " "azl-oldname resolves to its obsoleter"

chosen=$(names "$t/app.lock.json" | grep -o 'azl-ssl-[ab]')
other=azl-ssl-a
[ "$chosen" = azl-ssl-a ] && other=azl-ssl-b
manifest "$t/ex.yaml" "$base" azl-app "exclude: [\"$chosen\"]"
assert_exit 0 "$AZL" lock "$t/ex.yaml"
assert_contains "$(names "$t/ex.lock.json")" "$other.x86_64"
assert_not_contains "$(names "$t/ex.lock.json")" "$chosen."
manifest "$t/ex2.yaml" "$base" azl-app 'exclude: ["azl-ssl-*"]'
assert_exit 1 "$AZL" lock "$t/ex2.yaml"
assert_contains "$ERR" "azl-ssl"
assert_no_file "$t/ex2.lock.json"

# azl-foo-tools: libfoo through its soname, busybox through /usr/bin/sh.
manifest "$t/tools.yaml" "$base" azl-foo-tools
assert_exit 0 "$AZL" lock "$t/tools.yaml"
assert_eq "$(names "$t/tools.lock.json")" \
	"azl-busybox.x86_64 azl-filesystem.noarch azl-foo-tools.x86_64 azl-libfoo.x86_64 "

manifest "$t/lib.yaml" "$base" azl-libfoo
assert_exit 0 "$AZL" lock "$t/lib.yaml"
assert_eq "$(names "$t/lib.lock.json")" "azl-libfoo.x86_64 "

# --- pins and --update against base-v2 --------------------------------------
manifest "$t/pin.yaml" "$base" "azl-app azl-foo-tools"
assert_exit 0 "$AZL" lock "$t/pin.yaml"
nevras "$t/pin.lock.json" >"$t/pin.v1"
manifest "$t/pin.yaml" "$v2" "azl-app azl-foo-tools"
assert_exit 0 "$AZL" lock "$t/pin.yaml"
nevras "$t/pin.lock.json" | diff "$t/pin.v1" - || fail "pins moved without --update"
assert_contains "$t/pin.lock.json" "file://$v2/"

assert_exit 0 "$AZL" lock "$t/pin.yaml" --update azl-app
nevras "$t/pin.lock.json" >"$t/pin.app"
assert_contains "$t/pin.app" "azl-app-1.1-1.x86_64"
assert_contains "$t/pin.app" "azl-libfoo-1.0-1.x86_64"
diff <(grep -v azl-app "$t/pin.v1") <(grep -v azl-app "$t/pin.app") ||
	fail "--update azl-app moved more than azl-app"

assert_exit 0 "$AZL" lock "$t/pin.yaml" --update
assert_contains "$(nevras "$t/pin.lock.json")" "azl-app-1.1-1.x86_64"
assert_contains "$(nevras "$t/pin.lock.json")" "azl-libfoo-1.1-1.x86_64"
assert_not_contains "$t/pin.lock.json" '"i686"'
cp "$t/pin.lock.json" "$t/pin.all"
assert_exit 0 "$AZL" lock "$t/pin.yaml"
assert_contains "$ERR" "unchanged"
cmp "$t/pin.lock.json" "$t/pin.all" || fail "rerun after --update changed the lockfile"

# A pinned package that vanished: named, with the way out, lockfile kept.
manifest "$t/pin.yaml" "$base" "azl-app azl-foo-tools"
assert_exit 1 "$AZL" lock "$t/pin.yaml"
assert_contains "$ERR" "azl-app-1.1-1.x86_64"
assert_contains "$ERR" "--update azl-app"
cmp "$t/pin.lock.json" "$t/pin.all" || fail "a failed lock touched the lockfile"

# Dropping a package from the manifest drops what only it needed.
manifest "$t/pin.yaml" "$v2" "azl-foo-tools"
assert_exit 0 "$AZL" lock "$t/pin.yaml"
assert_not_contains "$t/pin.lock.json" '"azl-app"'
assert_not_contains "$t/pin.lock.json" '"azl-ssl-'
assert_contains "$(nevras "$t/pin.lock.json")" "azl-libfoo-1.1-1.x86_64"
cp "$t/pin.all" "$t/pin.lock.json"
manifest "$t/pin.yaml" "$base" "azl-app azl-foo-tools"

# --update NAME must name a locked package.
assert_exit 2 "$AZL" lock "$t/pin.yaml" --update azl-nonesuch
assert_contains "$ERR" "azl-nonesuch"

# --- two repositories: each package names the one it came from ------------
cat >"$t/two.yaml" <<EOF
name: two
repos:
  - id: base
    baseurl: file://$base/
    gpgkey: $key
  - id: unsigned
    baseurl: file://$(azl_fixture_repo unsigned)/
    gpgcheck: false
packages: [azl-app, azl-unsigned-hello]
EOF
assert_exit 0 "$AZL" lock "$t/two.yaml"
py - "$t/two.lock.json" <<'EOF' || fail "two-repository lock"
import json, sys
lock = json.load(open(sys.argv[1]))
assert [r["id"] for r in lock["repos"]] == ["base", "unsigned"], lock["repos"]
repo = {p["name"]: p["repo"] for p in lock["packages"]}
assert repo["azl-app"] == "base" and repo["azl-unsigned-hello"] == "unsigned", repo
assert repo["azl-unsigned-world"] == "unsigned", repo
EOF

# --- zstd and xz repodata give the same set ---------------------------------
for kind in base-zstd base-xz; do
	manifest "$t/$kind.yaml" "$(azl_fixture_repo "$kind")" azl-app
	assert_exit 0 "$AZL" lock "$t/$kind.yaml"
	nevras "$t/$kind.lock.json" | diff <(nevras "$t/app.lock.json") - ||
		fail "$kind resolved differently"
done

echo "lock: ok"
