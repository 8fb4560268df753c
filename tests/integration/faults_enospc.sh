#!/bin/bash
# ENOSPC during fetch and during build, without root for the tool: the
# test re-runs itself in a user+mount namespace and gives the cache or the
# output folder a small tmpfs (size=, or nr_inodes= for "no inodes left").
# Sizes grow step by step until the build succeeds, so every run that
# fails does so at a different point.  Each failure must:
#   - exit 1 with "No space left on device" and a path on the full tmpfs;
#   - leave nothing at a final path (the output folder is empty: no
#     NAME.oci.tar, SHA256SUMS, ..., and no work directory);
#   - leave the cache consistent: PRAGMA integrity_check is ok, every blob
#     and object hashes to its name, every index row has its blob;
# and a rerun with space on the same cache must give the clean build's
# outputs byte for byte.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

if [ -z "${AZL_FAULTS_IN_NS:-}" ]; then
	command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
	command -v sqlite3 >/dev/null || fail "sqlite3 is needed (scripts/install-deps.sh)"
	azl_fixtures_dir >/dev/null || fail "fixtures"
	unshare -rm true 2>/dev/null ||
		skip "user+mount namespaces are not available here (unshare -rm failed): no small filesystem without root"
	rm -f "$_azl_tmplist"
	export AZL_FAULTS_IN_NS=1
	exec unshare -rm bash "$0" "$@"
fi

t=$(azl_tmpdir)
mnt=$t/mnt
mkdir "$mnt"
mount -t tmpfs -o size=64k tmpfs "$mnt" 2>/dev/null ||
	skip "cannot mount a tmpfs in a user namespace here"
umount "$mnt"
azl_on_exit "umount $mnt 2>/dev/null"

outputs() { # NAME: the final names a build of NAME writes
	echo "$1.oci.tar $1.spdx.json $1.provenance.json $1.build.json SHA256SUMS"
}

# The reference: a clean build with plenty of space.
azl_fixture_manifest "$t/img.yaml" base azl-app azl-foo-tools azl-shared-a azl-shared-b
printf 'outputs:\n  oci: {compression: gzip}\n' >>"$t/img.yaml"
sed 's/^name: img$/name: skip/' "$t/img.yaml" >"$t/skip.yaml"
echo 'scriptlets: skip' >>"$t/skip.yaml" # no staging tree: few files
cd "$t"
for m in img skip; do
	assert_exit 0 "$AZL" -q build $m.yaml -o "ref-$m" --cache-dir "$t/ref-cache"
	for f in $(outputs $m); do assert_file "ref-$m/$f"; done
done


failed_clearly() { # WHERE: the last command failed because WHERE is full
	assert_contains "$ERR" "No space left on device"
	assert_contains "$ERR" "$1" "the error names the full place"
	assert_not_contains "$ERR" "No space left on device: No space left on device"
}

same_as_ref() { # NAME DIR
	local f
	for f in $(outputs "$1"); do
		cmp "ref-$1/$f" "$2/$f" || fail "$2/$f differs from the clean build's"
	done
}

nothing_left() { # DIR: no output and no work directory
	if [ -d "$1" ] && [ -n "$(ls -A "$1")" ]; then
		ls -lA "$1" >&2
		fail "$1: left behind after a failed build: $(ls -A "$1" | tr '\n' ' ')"
	fi
	return 0
}

declare -A sites # failure sites seen (the message with random names blurred)
site() { sed -E 's/\.azl-work\.[A-Za-z0-9]+/W/g; s/[0-9a-f]{64}/H/g; s/(\.tmp[-.]|\.layer\.)[A-Za-z0-9]{6}/\1X/g' "$ERR" | head -n 2; }

# scan OPTS_FN NAME RUN_FN: mount a tmpfs at $mnt with "$(OPTS_FN i)" for
# i = 1, 2, ... until RUN_FN succeeds on it; after every failure check it
# (check_after_failure), remount with space, rerun, check_after_rerun.
scan() {
	local opts_fn=$1 name=$2 run_fn=$3 i n=0 rc start=$SECONDS
	for ((i = 1; i <= 60; i++)); do
		mount -t tmpfs -o "$($opts_fn $i)" tmpfs "$mnt"
		rc=0
		$run_fn || rc=$?
		if [ "$rc" -eq 0 ]; then
			umount "$mnt"
			break
		fi
		n=$((n + 1))
		failed_clearly "$mnt"
		sites["$name: $(site)"]=1
		# Room first: sqlite needs some to open a WAL index even to
		# read it.  The files stay exactly as the failure left them.
		mount -o remount,size=64m,nr_inodes=100000 "$mnt"
		check_after_failure
		$run_fn || fail "$name: rerun with space after step $i failed: $(cat "$ERR")"
		check_after_rerun
		umount "$mnt"
	done
	[ "$i" -le 60 ] || fail "$name: still failing with the largest tmpfs"
	[ "$n" -ge 3 ] || fail "$name: only $n failing steps; the scan does not exercise ENOSPC"
	echo "$name: $n runs failed cleanly, then one succeeded ($((SECONDS - start)) s)"
}

# --- ENOSPC in the cache: downloads, the index, the object store ---------
cache_bytes() { echo "size=$((8 << $1))k"; } # 16k, 32k, ... 4m
run_cache() {
	rm -rf out-c
	assert_exit_any "$AZL" -q build img.yaml -o out-c --cache-dir "$mnt/c"
}
check_after_failure() {
	azl_cache_ok "$mnt/c" partial
	nothing_left out-c
}
check_after_rerun() {
	azl_cache_ok "$mnt/c" partial
	same_as_ref img out-c
}

# assert_exit_any CMD...: like assert_exit, but returns the status; a
# failure must be a work failure (1), never a crash or a usage error.
assert_exit_any() {
	local rc=0
	"$@" >"$OUT" 2>"$ERR" || rc=$?
	case $rc in
	0 | 1) return $rc ;;
	*) cat "$ERR" >&2; fail "exit status $rc: $*" ;;
	esac
}
assert_exit 0 true # sets OUT and ERR

scan cache_bytes "cache, bytes" run_cache
cache_inodes() { echo "size=64m,nr_inodes=$((1 + (1 << $1)))"; }
scan cache_inodes "cache, inodes" run_cache

# `azl-compose fetch` alone into a full cache: the download is named.
mount -t tmpfs -o size=256k tmpfs "$mnt"
assert_exit 1 "$AZL" fetch img.yaml --cache-dir "$mnt/c"
failed_clearly "$mnt/c/tmp/"
assert_contains "$ERR" ".rpm: write $mnt/c/tmp/"
mount -o remount,size=64m "$mnt"
azl_cache_ok "$mnt/c" partial
assert_exit 0 "$AZL" fetch -q img.yaml --cache-dir "$mnt/c"
azl_cache_ok "$mnt/c" partial
assert_eq "$(ls "$mnt/c/tmp" | wc -l)" 0 "partial downloads left after the rerun"
umount "$mnt"

# --- ENOSPC in the output folder: staging tree, layer, archive, records --
run_out() {
	assert_exit_any "$AZL" -q build "$BUILD_NAME.yaml" -o "$mnt/out" --cache-dir "$t/ref-cache"
}
check_after_failure() {
	azl_cache_ok "$t/ref-cache" partial
	nothing_left "$mnt/out"
	# Not even a temporary file holds space.
	assert_eq "$(df --output=used -k "$mnt" | tail -n 1 | tr -d ' ')" 0 "kB still used on the tmpfs"
}
check_after_rerun() {
	same_as_ref "$BUILD_NAME" "$mnt/out"
	rm -rf "$mnt/out"
}
out_bytes() { echo "size=$(($1 * 256))k"; }
BUILD_NAME=img scan out_bytes "output, bytes" run_out
# Without scriptlets the build makes few files: each inode more gets one
# file further (work dir, rpmdb, layer, archive, SBOM, provenance, ...).
out_inodes() { echo "size=64m,nr_inodes=$(($1 + 1))"; }
BUILD_NAME=skip scan out_inodes "output, inodes" run_out

echo "failure sites:"
printf '  %s\n' "${!sites[@]}" | sort
nsites=${#sites[@]}
[ "$nsites" -ge 8 ] || fail "only $nsites distinct failure sites"
echo "enospc: ok ($nsites distinct failure sites)"
