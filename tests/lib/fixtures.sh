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
# As a command:
#   bash tests/lib/fixtures.sh build     # builds all, prints the tree
#   bash tests/lib/fixtures.sh repo NAME | key A|B
#
# The tree lives at $AZL_BUILD/fixtures/<hash>/, <hash> covering the specs,
# the sources, this script and the host tools, so a second test (or a second
# run) reuses it.  A flock makes concurrent tests wait for one build.  The
# tree is shared: tests must copy a repository before changing it.
#
# Same specs + same tools give byte-identical unsigned packages (staging/):
# SOURCE_DATE_EPOCH is fixed and used as build time and mtime clamp, the
# build host is fixed and ~/.rpmmacros is ignored.  Keys are generated per
# build (no secrets committed), so signed packages differ between trees.
# shellcheck shell=bash

AZL_FIXTURE_SDE=1700000000
_azl_fx_self=$(readlink -f "${BASH_SOURCE[0]}")
_azl_fx_top=$(cd "$(dirname "$_azl_fx_self")/../.." && pwd)

_azl_fx_root() {
	local b=${AZL_BUILD:-$_azl_fx_top/build}
	case $b in /*) ;; *) b=$_azl_fx_top/$b ;; esac
	echo "$b/fixtures"
}

# The cache key: everything that changes what the build produces.
_azl_fx_hash() {
	(
		cd "$_azl_fx_top" || exit 1
		for f in tests/lib/fixtures.sh tests/fixtures/specs/*.spec tests/fixtures/src/*; do
			echo "== $f"
			cat "$f"
		done
		sha256sum /bin/busybox 2>/dev/null
		rpmbuild --version; createrepo_c --version; gcc --version | head -n 1
	) | sha256sum | cut -c1-16
}

_azl_fx_log() { echo "fixtures: $*" >&2; }

# What each staging set is built from: "set spec [rpmbuild args...]".
_azl_fx_builds() {
	cat <<'EOF'
base azl-filesystem
base azl-busybox
base azl-libfoo
base azl-libfoo --target i686
base azl-foo-tools
base azl-app
base azl-ssl
base azl-extra
base azl-oldname
base azl-newname
base azl-broken
base azl-conflict --define fx_variant_a
base azl-conflict --define fx_variant_b
base azl-shared --define fx_variant_a
base azl-shared --define fx_variant_b
base azl-scriptlets
base azl-zstd-payload
base azl-gzip-payload
base azl-xz-payload
v2 azl-app --define fx_version_1.1
v2 azl-libfoo --define fx_version_1.1
v2 azl-libfoo --define fx_version_1.1 --target i686
keyb azl-keyb
unsigned azl-unsigned
EOF
}

_azl_fx_rpmbuild() { # work set spec args...
	local work=$1 set=$2 spec=$3 a args=()
	shift 3
	# "fx_variant_a" stands for "fx_variant a": the table is split on spaces.
	for a in "$@"; do
		case $a in fx_*_*) args+=("${a%_*} ${a##*_}") ;; *) args+=("$a") ;; esac
	done
	HOME=$work/home SOURCE_DATE_EPOCH=$AZL_FIXTURE_SDE rpmbuild -bb --nodeps \
		--define "_topdir $work/top" \
		--define "_sourcedir $_azl_fx_top/tests/fixtures/src" \
		--define "_rpmdir $work/staging/$set" \
		--define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
		--define "use_source_date_epoch_as_buildtime 1" \
		--define "clamp_mtime_to_source_date_epoch 1" \
		--define "_buildhost azl-fixtures.invalid" \
		--define "_build_id_links none" \
		--define "debug_package %{nil}" \
		--define "__os_install_post %{nil}" \
		--define "_binary_filedigest_algorithm 8" \
		"${args[@]+"${args[@]}"}" \
		"$_azl_fx_top/tests/fixtures/specs/$spec.spec"
}

_azl_fx_genkey() { # gnupghome letter outdir
	local uid="azl-compose fixture key $2 <key-$2@azl-compose.invalid>"
	GNUPGHOME=$1 gpg --batch --pinentry-mode loopback --passphrase '' \
		--quick-generate-key "$uid" rsa2048 sign never
	GNUPGHOME=$1 gpg --batch --armor --export "$uid" >"$3/keys/$2.asc"
	GNUPGHOME=$1 gpg --batch --with-colons --list-keys "$uid" |
		awk -F: '$1 == "fpr" { print $10; exit }' >"$3/keys/$2.fpr"
}

_azl_fx_sign() { # gnupghome letter rpm...
	local gh=$1 fpr
	fpr=$(cat "$out/keys/$2.fpr")
	shift 2
	GNUPGHOME=$gh HOME=$work/home rpmsign --addsign \
		--define "__gpg /usr/bin/gpg" --define "_gpg_name $fpr" "$@" </dev/null
}

# repodata/repomd.xml.asc: an armoured detached signature, as dnf's
# repo_gpgcheck expects.
_azl_fx_sign_repomd() { # gnupghome letter repo
	GNUPGHOME=$1 gpg --batch --yes --armor --local-user "$(cat "$out/keys/$2.fpr")" \
		--detach-sign --output "$3/repodata/repomd.xml.asc" "$3/repodata/repomd.xml"
}

# Copy rpms into repo/Packages/<first letter>/.
_azl_fx_place() { # repo rpm...
	local repo=$1 f b
	shift
	for f in "$@"; do
		b=$(basename "$f")
		mkdir -p "$repo/Packages/${b:0:1}"
		cp "$f" "$repo/Packages/${b:0:1}/$b"
	done
}

_azl_fx_createrepo() { # repo [createrepo_c args...]
	local repo=$1
	shift
	find "$repo/Packages" -exec touch -h -d "@$AZL_FIXTURE_SDE" {} +
	createrepo_c --quiet --no-database \
		--revision "$AZL_FIXTURE_SDE" --set-timestamp-to-revision "$@" "$repo"
}

# Debian's createrepo_c has no zstd support: recompress the .gz metadata
# with zstd and rewrite repomd.xml's href, checksum and size to match
# (open-checksum and open-size describe the uncompressed XML, unchanged).
_azl_fx_recompress_zstd() { # repo
	python3 - "$1/repodata" <<'PY'
import gzip, hashlib, os, re, subprocess, sys
d = sys.argv[1]
md = open(os.path.join(d, "repomd.xml")).read()
def redo(m):
    block = m.group(0)
    href = re.search(r'<location href="repodata/([^"]+)\.gz"/>', block)
    if not href:
        return block
    old = os.path.join(d, href.group(1) + ".gz")
    xml = gzip.open(old).read()
    zst = subprocess.run(["zstd", "-19", "-q", "-c"], input=xml,
                         stdout=subprocess.PIPE, check=True).stdout
    digest = hashlib.sha256(zst).hexdigest()
    base = re.sub(r"^[0-9a-f]{64}-", "", href.group(1))
    name = "%s-%s.zst" % (digest, base)
    open(os.path.join(d, name), "wb").write(zst)
    os.remove(old)
    block = block.replace(href.group(0), '<location href="repodata/%s"/>' % name)
    block = re.sub(r'<checksum type="sha256">[0-9a-f]+</checksum>',
                   '<checksum type="sha256">%s</checksum>' % digest, block)
    block = re.sub(r"<size>[0-9]+</size>", "<size>%d</size>" % len(zst), block)
    return block
md = re.sub(r"<data type=.*?</data>", redo, md, flags=re.S)
open(os.path.join(d, "repomd.xml"), "w").write(md)
PY
}

# Builds everything into $out (a fresh directory).  Runs in a subshell.
_azl_fx_build_into() { # out work
	out=$1 work=$2
	set -euo pipefail
	export LC_ALL=C TZ=UTC
	umask 022
	mkdir -p "$work/home" "$work/top" "$out/keys" "$out/staging"
	local set spec rest
	gh=$(mktemp -d /tmp/azl-fx-gpg.XXXXXX) # short: gpg-agent socket path
	trap 'GNUPGHOME=$gh gpgconf --kill all 2>/dev/null; rm -rf "$gh"' EXIT
	chmod 700 "$gh"

	_azl_fx_genkey "$gh" A "$out"
	_azl_fx_genkey "$gh" B "$out"
	while read -r set spec rest; do
		# shellcheck disable=SC2086
		_azl_fx_rpmbuild "$work" "$set" "$spec" $rest
	done < <(_azl_fx_builds)
	cp -r "$work/staging/." "$out/staging/"

	local s=$out/staging
	_azl_fx_place "$out/base" "$s"/base/*.rpm
	_azl_fx_sign "$gh" A "$out"/base/Packages/*/*.rpm
	_azl_fx_place "$out/base-v2" "$out"/base/Packages/*/*.rpm "$s"/v2/*.rpm
	_azl_fx_sign "$gh" A "$out"/base-v2/Packages/*/*-1.1-*.rpm
	_azl_fx_place "$out/otherkey" "$s"/keyb/*.rpm "$s"/base/azl-extra-*.rpm
	_azl_fx_sign "$gh" B "$out"/otherkey/Packages/*/*.rpm
	_azl_fx_place "$out/unsigned" "$s"/unsigned/*.rpm "$s"/base/azl-extra-*.rpm
	local r
	for r in base base-v2 otherkey unsigned; do
		_azl_fx_createrepo "$out/$r"
	done
	_azl_fx_place "$out/base-zstd" "$out"/base/Packages/*/*.rpm
	_azl_fx_createrepo "$out/base-zstd"
	_azl_fx_recompress_zstd "$out/base-zstd"
	_azl_fx_place "$out/base-xz" "$out"/base/Packages/*/*.rpm
	_azl_fx_createrepo "$out/base-xz" --general-compress-type xz
	for r in base base-v2 base-zstd base-xz; do
		_azl_fx_sign_repomd "$gh" A "$out/$r"
	done
	_azl_fx_sign_repomd "$gh" B "$out/otherkey"

	# Kept for tests that sign or verify with the fixture keys themselves;
	# copy it to a short path before use (gpg-agent socket length).
	GNUPGHOME=$gh gpgconf --kill all 2>/dev/null || true
	cp -r "$gh" "$out/gnupg"
	rm -rf "$out/gnupg"/S.* "$out/gnupg"/*.lock 2>/dev/null || true
}

# Prints the fixture tree, building it first if needed.
azl_fixtures_dir() {
	local root hash dir
	root=$(_azl_fx_root)
	hash=$(_azl_fx_hash) || return 1
	dir=$root/$hash
	if [ ! -e "$dir/.complete" ]; then
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

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	build) azl_fixtures_dir ;;
	repo) azl_fixture_repo "${2:?usage: fixtures.sh repo NAME}" ;;
	key) azl_fixture_key "${2:?usage: fixtures.sh key A|B}" ;;
	*) echo "usage: bash tests/lib/fixtures.sh build | repo NAME | key A|B" >&2; exit 2 ;;
	esac
fi
