#!/bin/bash
# ext4 images from lib/compose/emit_ext4.c read by an independent reader:
# libguestfs mounts the image in its appliance (a real kernel's ext4, no
# loop device on the host) and we check owners, modes, a capability xattr,
# a hardlink group, a device node and file contents.  The sample image
# comes from the unit-test binary (AZL_EXT4_OUT=path), which builds the
# model by hand: there is no CLI subcommand for the emitter yet.
. "$(dirname "$0")/../lib/common.sh"

gen=$AZL_BUILD/tests/test_emit_ext4
[ -x "$gen" ] || fail "$gen not built (make BUILD=... unit)"
command -v guestfish >/dev/null ||
	skip "guestfish missing (libguestfs-tools): scripts/install-deps.sh installs it"
command -v e2fsck >/dev/null || fail "e2fsck missing: run scripts/install-deps.sh"
# No KVM here: TCG is slow but works; the direct backend needs no libvirtd.
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg

t=$(azl_tmpdir)
AZL_EXT4_OUT=$t/root.img "$gen" >"$t/gen.log" 2>&1 ||
	{ cat "$t/gen.log" >&2; fail "emitting the sample image"; }
ls "$t" | grep -q '\.tmp\.' && fail "temporary files left in $t: $(ls "$t")"
e2fsck -fn "$t/root.img" >"$t/fsck.log" 2>&1 || { cat "$t/fsck.log" >&2; fail "e2fsck -fn"; }

# One appliance run answers every question (a start costs 15-60 s).
if ! guestfish --ro -a "$t/root.img" >"$t/gf.out" 2>"$t/gf.err" <<'EOF'
run
mount-ro /dev/sda /
echo == vfs-type
vfs-type /dev/sda
echo == su
lstatns /usr/bin/su
echo == notes
lstatns /home/user/notes
echo == wide
lstatns /home/wide
echo == h1
lstatns /usr/bin/h1
echo == h3
lstatns /usr/sbin/h3
echo == wdev
lstatns /dev/wide
echo == cap
getxattr /usr/bin/ping security.capability | od -An -tx1 -v | tr -s ' \n' ' '; echo
echo == link
readlink /usr/lib/long
echo == fast
readlink /usr/bin/sh
echo == os
cat /etc/os-release
echo == sum
checksum sha256 /usr/bin/big
echo == sparse
checksum sha256 /usr/bin/sparse
echo == count
ls /usr/share/big
echo == end
EOF
then
	# Only an appliance that cannot start is a skip; a failing command
	# after a successful start is a failure.
	if ! grep -q '^== vfs-type' "$t/gf.out"; then
		tail -n 5 "$t/gf.err"
		skip "libguestfs cannot start its appliance here: $(grep -m1 -i error "$t/gf.err" || tail -n 1 "$t/gf.err")"
	fi
	cat "$t/gf.err" >&2
	fail "guestfish failed after the appliance started"
fi

section() { # name: the lines between "== name" and the next "=="
	awk -v s="== $1" '$0 == s {on = 1; next} /^== / {on = 0} on' "$t/gf.out"
}
field() { # section field
	section "$1" | sed -n "s/^$2: //p"
}

assert_eq "$(section vfs-type)" ext4 "filesystem type"
assert_eq "$(field su st_mode)" $((8#104755)) "setuid mode of /usr/bin/su"
assert_eq "$(field su st_uid)" 0 "owner of su"
assert_eq "$(field notes st_uid)" 1000 "owner of notes"
assert_eq "$(field notes st_gid)" 1000 "group of notes"
assert_eq "$(field notes st_mtime_sec)" 1650000001 "mtime of notes"
assert_eq "$(field wide st_uid)" 100000 "uid above 65535"
assert_eq "$(field wide st_gid)" 200000 "gid above 65535"
assert_eq "$(field h1 st_ino)" "$(field h3 st_ino)" "hardlinks share an inode"
assert_eq "$(field h3 st_nlink)" 3 "link count of the hardlink group"
assert_eq "$(field wdev st_mode)" $((8#20600)) "char device mode"
# makedev(300, 70000) as glibc encodes it
assert_eq "$(field wdev st_rdev)" $(( ((70000 & 0xff) | ((300 & 0xfff) << 8) | ((70000 & ~0xff) << 12)) )) "device number"
# VFS_CAP_REVISION_2 with cap_net_raw, as the unit test's model sets it
assert_eq "$(section cap)" " 01 00 00 02 00 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00 " "security.capability value"
assert_eq "$(section link)" "../../some/very/long/relative/path/that/does/not/fit/in/the/inode/i_block/array/target" "slow symlink"
assert_eq "$(section fast)" bash "fast symlink"
assert_contains "$(section os)" "ID=azl" "inline file content"
assert_eq "$(section count | wc -l)" 500 "entries of the large directory"

# Contents against what debugfs dumps (e2fsprogs' own reader).
debugfs -R "dump /usr/bin/big $t/big" "$t/root.img" 2>/dev/null
debugfs -R "dump /usr/bin/sparse $t/sparse" "$t/root.img" 2>/dev/null
assert_eq "$(section sum)" "$(sha256sum <"$t/big" | cut -d' ' -f1)" "content of /usr/bin/big"
assert_eq "$(section sparse)" "$(sha256sum <"$t/sparse" | cut -d' ' -f1)" "content of /usr/bin/sparse"
echo "ext4 image read back by libguestfs: ok"
