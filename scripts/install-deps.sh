#!/bin/sh
# Installs everything azl-compose needs to build, test and benchmark on
# Debian 12.  Idempotent; runs apt-get update only when a package is missing.
set -eu
PKGS="build-essential clang pkg-config make git ca-certificates
 libarchive-dev libzstd-dev libxml2-dev libssl-dev libsqlite3-dev sqlite3
 libsolv-dev libsolvext-dev libsolv-tools libcurl4-openssl-dev libyaml-dev
 libjansson-dev librpm-dev zlib1g-dev libdeflate-dev liblzma-dev libbz2-dev
 rpm createrepo-c dnf python3 gnupg curl hyperfine zstd xz-utils cpio
 valgrind busybox-static gcc-multilib
 skopeo umoci podman pigz bc reprotest faketime disorderfs
 diffoscope-minimal python3-guestfs
 libext2fs-dev comerr-dev e2fsprogs libguestfs-tools libguestfs-dev linux-image-cloud-amd64
 qemu-utils cryptsetup-bin gdisk dosfstools mtools fdisk
 ovmf qemu-system-x86 systemd-boot-efi sbsigntool osslsigncode binutils
 libcap2-bin attr openssl file util-linux strace
 docker-registry apache2-utils
 libclang-rt-14-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
