# The locked set equals what dnf (Debian's dnf 4 over libdnf/libsolv)
# would install for the same repository and request: the fixture repos and
# a synthetic 1,500-package repository with sonames, file and rich deps.
. "$AZL_TOP/tests/lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

command -v dnf >/dev/null || skip "dnf is not installed (apt-get install dnf)"

t=$(azl_tmpdir)
# Debian's python3 directly: a version-manager shim can take seconds a call.
py() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else python3 "$@"; fi; }
export XDG_CACHE_HOME=$t/xdg-cache   # a private parsed-metadata cache
mkdir -p "$t/repos" "$t/root"

# dnf's name-version-release.arch list for: REPO_DIR WEAK(True|False) EXCLUDE PKG...
dnf_set() {
	local repo=$1 weak=$2 exclude=$3
	shift 3
	rm -rf "$t/root" "$t/cache"
	mkdir -p "$t/root"
	printf '[main]\ngpgcheck=0\ninstall_weak_deps=%s\nreposdir=%s\ncachedir=%s\n' \
		"$weak" "$t/repos" "$t/cache" >"$t/dnf.conf"
	printf '[base]\nname=base\nbaseurl=file://%s/\ngpgcheck=0\nexcludepkgs=%s\n' \
		"$repo" "$exclude" >"$t/repos/base.repo"
	dnf -c "$t/dnf.conf" --installroot "$t/root" --releasever 1 --forcearch x86_64 \
		--setopt=install_weak_deps="$weak" --setopt=reposdir="$t/repos" \
		--assumeno install "$@" >"$t/dnf.out" 2>&1 || true
	grep -q '^Transaction Summary' "$t/dnf.out" || {
		cat "$t/dnf.out" >&2
		fail "dnf did not resolve: $*"
	}
	# The transaction table: " name arch [epoch:]version-release repo size unit"
	awk '/^Installing/ { on = 1; next } /^Transaction Summary/ { on = 0 }
	     on && NF >= 5 { v = $3; sub(/^0:/, "", v); print $1 "-" v "." $2 }' \
		"$t/dnf.out" | sort
}

# Ours, in the same form: REPO_DIR WEAK(true|false) EXCLUDE PKG...
azl_set() {
	local repo=$1 weak=$2 exclude=$3
	shift 3
	{
		echo "name: cross"
		echo "repos:"
		echo "  - id: base"
		echo "    baseurl: file://$repo/"
		echo "    gpgcheck: false"
		echo "install_weak_deps: $weak"
		[ -z "$exclude" ] || echo "exclude: [\"$exclude\"]"
		echo "packages:"
		for p in "$@"; do echo "  - $p"; done
	} >"$t/cross.yaml"
	rm -f "$t/cross.lock.json"
	assert_exit 0 "$AZL" -q lock "$t/cross.yaml"
	py -c 'import json,sys
for p in json.load(open(sys.argv[1]))["packages"]:
    e = "%d:" % p["epoch"] if p["epoch"] else ""
    print("%s-%s%s-%s.%s" % (p["name"], e, p["version"], p["release"], p["arch"]))' \
		"$t/cross.lock.json" | sort
}

# crosscheck REPO_DIR WEAK EXCLUDE PKG...
checks=0
crosscheck() {
	local weak_dnf=False
	[ "$2" = true ] && weak_dnf=True
	azl_set "$@" >"$t/ours"
	dnf_set "$1" "$weak_dnf" "$3" "${@:4}" >"$t/theirs"
	[ -s "$t/ours" ] || fail "empty lock for: ${*:4}"
	diff -u "$t/theirs" "$t/ours" || fail "azl-compose and dnf disagree on: ${*:4} (weak=$2, exclude='$3')"
	checks=$((checks + 1))
}

base=$(azl_fixture_repo base)
v2=$(azl_fixture_repo base-v2)
crosscheck "$base" false "" azl-app
crosscheck "$base" true "" azl-app
crosscheck "$base" false "" azl-app azl-foo-tools azl-oldname
crosscheck "$base" false "azl-ssl-a" azl-app
crosscheck "$v2" false "" azl-app azl-foo-tools
crosscheck "$(azl_fixture_repo base-zstd)" false "" azl-app azl-shared-a

# A synthetic repository, big enough for real alternatives and versions.
py "$AZL_TOP/bench/gen_repo.py" "$t/synth" --packages 1500 --seed 7 2>/dev/null
pkgs=$(zcat "$t/synth/repodata/primary.xml.gz" | grep -o '<name>bench-app0[0-9]*</name>' |
	sed 's/<[^>]*>//g' | sort -u | awk 'NR % 97 == 5' | head -n 8)
[ -n "$pkgs" ] || fail "no packages picked from the synthetic repository"
# shellcheck disable=SC2086
crosscheck "$t/synth" false "" $pkgs
# shellcheck disable=SC2086
crosscheck "$t/synth" true "" $pkgs
[ "$(wc -l <"$t/ours")" -gt 20 ] || fail "synthetic request too small to mean much"

echo "lock_dnf_crosscheck: $checks requests agree with dnf"
