# Fixture RPM repositories, built from tests/fixtures/specs at test time
# (no RPM binaries are committed).  See tests/fixtures/README.md for every
# package and what it exercises.
#
# As a library (bash, after common.sh or on its own):
#   . "$AZL_TOP/tests/lib/fixtures.sh"
#   repo=$(azl_fixture_repo base)        # base base-v2 base-zstd base-xz
#                                        # otherkey unsigned
#   key=$(azl_fixture_key A)             # ASCII-armoured public key A or B
#   dir=$(azl_fixtures_dir)              # the whole fixture tree
#   azl_fixture_copy base "$t/repo"      # a private copy to modify
#   azl_fixture_manifest "$t/m.yaml" base azl-app [PKG...]
#                                        # a manifest over one fixture repo
# As a command:
#   bash tests/lib/fixtures.sh build     # builds all, prints the tree
#   bash tests/lib/fixtures.sh repo NAME | key A|B
#
# The tree lives at $AZL_BUILD/fixtures/<hash>/, <hash> covering the specs,
# the sources, tests/fixtures/build.sh (the build steps) and the host tools,
# so a second test (or a second run) reuses it.  A flock makes concurrent
# tests wait for one build.  The tree is shared: tests must copy a
# repository before changing it (azl_fixture_copy).
#
# Same specs + same tools give byte-identical unsigned packages (staging/):
# SOURCE_DATE_EPOCH is fixed and used as build time and mtime clamp, the
# build host is fixed and ~/.rpmmacros is ignored.  Keys are generated per
# build (no secrets committed), so signed packages differ between trees.
# shellcheck shell=bash

_azl_fx_self=$(readlink -f "${BASH_SOURCE[0]}")
_azl_fx_top=$(cd "$(dirname "$_azl_fx_self")/../.." && pwd)
# shellcheck source=tests/fixtures/build.sh
. "$_azl_fx_top/tests/fixtures/build.sh"

_azl_fx_root() {
	local b=${AZL_BUILD:-$_azl_fx_top/build}
	case $b in /*) ;; *) b=$_azl_fx_top/$b ;; esac
	echo "$b/fixtures"
}

# The cache key: everything that changes what the build produces.
_azl_fx_hash() {
	(
		cd "$_azl_fx_top" || exit 1
		for f in tests/fixtures/build.sh tests/fixtures/specs/*.spec tests/fixtures/src/*; do
			echo "== $f"
			cat "$f"
		done
		sha256sum /bin/busybox 2>/dev/null
		rpmbuild --version; createrepo_c --version
		# sed, not head: no early exit to SIGPIPE gcc under pipefail.
		gcc --version | sed -n 1p
	) | sha256sum | cut -c1-16
}

_azl_fx_log() { echo "fixtures: $*" >&2; }

# Names what is missing to build the tree (scripts/install-deps.sh has it).
_azl_fx_check_tools() {
	local c o missing=""
	for c in rpmbuild rpmsign createrepo_c gpg gpgconf gcc flock zstd python3; do
		command -v "$c" >/dev/null || missing="$missing $c"
	done
	[ -x /bin/busybox ] || missing="$missing /bin/busybox(busybox-static)"
	# Into a temp file: a failing compiler running as root may remove -o.
	o=$(mktemp "${TMPDIR:-/tmp}/azl-fx-m32.XXXXXX")
	echo 'int x;' | gcc -m32 -x c -c -o "$o" - 2>/dev/null || missing="$missing gcc-multilib"
	rm -f "$o"
	[ -z "$missing" ] && return 0
	_azl_fx_log "cannot build fixtures, missing:$missing (run scripts/install-deps.sh)"
	return 1
}

# Prints the fixture tree, building it first if needed.
azl_fixtures_dir() {
	local root hash dir
	root=$(_azl_fx_root)
	hash=$(_azl_fx_hash) || { _azl_fx_check_tools; return 1; }
	dir=$root/$hash
	if [ ! -e "$dir/.complete" ]; then
		_azl_fx_check_tools || return 1
		mkdir -p "$root" || return 1
		(
			flock 9 || exit 1
			[ -e "$dir/.complete" ] && exit 0
			# Under the lock no other build runs: leftovers of killed
			# builds can go, and so can trees of older inputs once no
			# test can still be using them (30 minutes).
			rm -rf "$root"/.tmp-* "$dir"
			find "$root" -mindepth 1 -maxdepth 1 -mmin +30 -regextype posix-extended \
				-regex '.*/(build-)?[0-9a-f]{16}(\.log)?' -exec rm -rf {} +
			tmp=$root/.tmp-$hash-$$
			mkdir -p "$tmp"
			_azl_fx_log "building fixture repositories in $dir (log: $root/build-$hash.log)"
			if ! (_azl_fx_build_into "$tmp/out" "$tmp/work") >"$root/build-$hash.log" 2>&1; then
				tail -n 30 "$root/build-$hash.log" >&2
				_azl_fx_log "build failed; full log: $root/build-$hash.log"
				rm -rf "$tmp"
				exit 1
			fi
			mv "$tmp/out" "$dir"
			rm -rf "$tmp"
			touch "$dir/.complete"
		) 9>"$root/.lock" || return 1
	fi
	echo "$dir"
}

# azl_fixture_repo NAME: prints the repository's directory (has repodata/).
azl_fixture_repo() {
	local dir
	dir=$(azl_fixtures_dir) || return 1
	if [ ! -d "$dir/$1/repodata" ]; then
		_azl_fx_log "no fixture repository named '$1'"
		return 1
	fi
	echo "$dir/$1"
}

# azl_fixture_copy NAME DEST: a private copy of a repository (the shared
# tree must stay intact), for tests that corrupt or extend it.
azl_fixture_copy() {
	local src
	src=$(azl_fixture_repo "$1") || return 1
	mkdir -p "$(dirname "$2")" && cp -r "$src" "$2"
}

# azl_fixture_manifest FILE REPO PKG...: writes a manifest named after
# FILE (without .yaml) over fixture repository REPO with its key (A, B for
# otherkey, gpgcheck off for unsigned), source_date_epoch 1700000000, arch
# x86_64.  Edit the file afterwards for anything else.
azl_fixture_manifest() {
	local file=$1 repo=$2 dir key name p
	shift 2
	dir=$(azl_fixture_repo "$repo") || return 1
	case $repo in
	unsigned) key="    gpgcheck: false" ;;
	otherkey) key="    gpgkey: $(azl_fixture_key B)" ;;
	*) key="    gpgkey: $(azl_fixture_key A)" ;;
	esac
	name=$(basename "$file")
	name=${name%.yaml}
	{
		printf 'name: %s\nsource_date_epoch: %s\narch: x86_64\n' "$name" "$AZL_FIXTURE_SDE"
		printf 'repos:\n  - id: %s\n    baseurl: file://%s/\n%s\n' "$repo" "$dir" "$key"
		printf 'packages:\n'
		for p in "$@"; do printf '  - %s\n' "$p"; done
	} >"$file"
}

# azl_fixture_key A|B: prints the ASCII-armoured public key file.
azl_fixture_key() {
	local dir
	dir=$(azl_fixtures_dir) || return 1
	if [ ! -f "$dir/keys/$1.asc" ]; then
		_azl_fx_log "no fixture key named '$1'"
		return 1
	fi
	echo "$dir/keys/$1.asc"
}

# azl_fixture_kernel: prints a repository (Packages/, repodata/, unsigned)
# holding azl-kernel, Debian's cloud kernel repackaged (specs/azl-kernel.spec),
# and azl-veritysetup, the host's veritysetup with its libraries
# (specs/azl-veritysetup.spec), for images with a verity-protected /usr.
# Built on first use into $AZL_BUILD/fixtures/kernel-<hash>/; the .deb is
# downloaded once (apt-get download, the host's archive) into
# $AZL_BUILD/fixtures/kernel-deb/ and extracted there, never installed.
# Kept out of the common tree: it is 100 MB and takes a minute.
_azl_fx_kdeb() { # dir: the cached kernel .deb, if any
	local f
	for f in "$1"/linux-image-*-cloud-amd64_*.deb; do
		[ -e "$f" ] && echo "$f" && return 0
	done
	return 1
}

azl_fixture_kernel() {
	local root deb ver hash dir d
	root=$(_azl_fx_root)
	mkdir -p "$root/kernel-deb" || return 1
	d=$root/kernel-deb
	(
		flock 9 || exit 1
		if ! deb=$(_azl_fx_kdeb "$d"); then
			ver=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
				sed -n 's/.*Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | sed -n 1p)
			[ -n "$ver" ] || { _azl_fx_log "kernel: apt-cache knows no linux-image-cloud-amd64"; exit 1; }
			(cd "$d" && apt-get download "$ver") >"$d/download.log" 2>&1 ||
				{ _azl_fx_log "kernel: apt-get download $ver failed (see $d/download.log)"; exit 1; }
			deb=$(_azl_fx_kdeb "$d") || exit 1
		fi
		if [ ! -e "$d/x/.complete" ]; then
			rm -rf "$d/x" && mkdir -p "$d/x" && dpkg-deb -x "$deb" "$d/x" && touch "$d/x/.complete"
		fi
	) 9>"$root/.kernel-lock" || return 1
	deb=$(_azl_fx_kdeb "$d") || return 1
	ver=$(basename "$deb")
	ver=${ver#linux-image-}
	ver=${ver%%_*}
	hash=$( (cat "$_azl_fx_top/tests/fixtures/specs/azl-kernel.spec" \
		"$_azl_fx_top/tests/fixtures/specs/azl-veritysetup.spec"; echo "$ver"; rpmbuild --version
		sha256sum "$(readlink -f "$(command -v veritysetup || echo /sbin/veritysetup)")") |
		sha256sum | cut -c1-16)
	dir=$root/kernel-$hash
	if [ ! -e "$dir/.complete" ]; then
		(
			flock 9 || exit 1
			[ -e "$dir/.complete" ] && exit 0
			rm -rf "$dir" "$dir.tmp"
			mkdir -p "$dir.tmp/work/home" "$dir.tmp/work/top"
			_azl_fx_log "building azl-kernel ($ver) in $dir"
			if ! (export LC_ALL=C TZ=UTC; umask 022
				_azl_fx_rpmbuild "$dir.tmp/work" kernel azl-kernel \
					--define "azl_kernel_root $d/x" --define "azl_kernel_ver $ver" &&
				_azl_fx_rpmbuild "$dir.tmp/work" kernel azl-veritysetup &&
				_azl_fx_place "$dir.tmp/out" "$dir.tmp/work/staging/kernel"/*.rpm &&
				_azl_fx_createrepo "$dir.tmp/out") >"$root/kernel-$hash.log" 2>&1; then
				tail -n 20 "$root/kernel-$hash.log" >&2
				_azl_fx_log "azl-kernel build failed; full log: $root/kernel-$hash.log"
				rm -rf "$dir.tmp"
				exit 1
			fi
			mv "$dir.tmp/out" "$dir" && rm -rf "$dir.tmp" && touch "$dir/.complete"
		) 9>"$root/.kernel-lock" || return 1
	fi
	echo "$dir"
}

# azl_fixture_kernel_repo MANIFEST: adds the azl_fixture_kernel repository
# (id kernel, unsigned) to a manifest azl_fixture_manifest wrote.
azl_fixture_kernel_repo() {
	local kern
	kern=$(azl_fixture_kernel) || return 1
	sed -i "/^packages:/i\\  - id: kernel\\n    baseurl: file://$kern/\\n    gpgcheck: false" "$1"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	build) azl_fixtures_dir ;;
	repo) azl_fixture_repo "${2:?usage: fixtures.sh repo NAME}" ;;
	key) azl_fixture_key "${2:?usage: fixtures.sh key A|B}" ;;
	kernel) azl_fixture_kernel ;;
	*) echo "usage: bash tests/lib/fixtures.sh build | repo NAME | key A|B" >&2; exit 2 ;;
	esac
fi
