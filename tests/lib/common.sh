# Helpers sourced by every integration test (bash):
#
#   . "$AZL_TOP/tests/lib/common.sh"      (or relative to the script)
#
# Safe under `set -euo pipefail`, which sourcing turns on.  Provides:
#   azl_tmpdir            print a fresh temp dir, removed when the test exits
#   azl_on_exit CMD...    run CMD at exit (after the test, before tmp removal)
#   fail MSG              print "FAIL: MSG" and exit 1
#   skip MSG              print MSG as the last line and exit 77
#   assert_eq A B [MSG]
#   assert_contains FILE_OR_STRING NEEDLE [MSG]
#   assert_not_contains FILE_OR_STRING NEEDLE [MSG]
#   assert_exit CODE CMD...   stdout -> $OUT, stderr -> $ERR (files)
#   assert_file PATH / assert_no_file PATH
# Environment after sourcing: AZL (the binary), AZL_TOP, AZL_BUILD (absolute).
# shellcheck shell=bash

set -euo pipefail
# Sourcing twice must not replace the exit trap and lose its list.
[ -n "${_azl_common_loaded:-}" ] && return 0
_azl_common_loaded=1

if [ -z "${AZL_TOP:-}" ]; then
	AZL_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fi
AZL_BUILD=${AZL_BUILD:-$AZL_TOP/build}
case $AZL_BUILD in /*) ;; *) AZL_BUILD=$AZL_TOP/$AZL_BUILD ;; esac
AZL=${AZL:-$AZL_BUILD/azl-compose}
export AZL AZL_TOP AZL_BUILD

# Tests must not depend on the caller's locale, umask or timezone.
export LC_ALL=C TZ=UTC
umask 022

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "$*"
	exit 77
}

if [ ! -x "$AZL" ]; then
	fail "azl-compose binary not found at $AZL (run make BUILD=... first)"
fi

# Exit handling: commands registered with azl_on_exit run last-registered
# first (a server started after a temp dir is stopped before it goes), then
# every temp dir is removed.  $(azl_tmpdir) runs in a subshell, so the paths
# are recorded in a list file rather than a shell array.
_azl_exit_cmds=()
_azl_tmplist=$(mktemp "${TMPDIR:-/tmp}/azl-tmplist.XXXXXX")
_azl_on_exit_run() {
	local rc=$? i d
	set +e
	for ((i = ${#_azl_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${_azl_exit_cmds[i]}"
	done
	while IFS= read -r d; do
		[ -d "$d" ] || continue
		# Tests create read-only trees (0550 dirs); make them removable.
		chmod -R u+rwx "$d" 2>/dev/null
		rm -rf "$d"
	done <"$_azl_tmplist"
	rm -f "$_azl_tmplist"
	exit "$rc"
}
trap _azl_on_exit_run EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# azl_on_exit CMD...: the words are joined and eval'd at exit.
azl_on_exit() {
	_azl_exit_cmds+=("$*")
}

# Usage: t=$(azl_tmpdir)
azl_tmpdir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/azl-test.XXXXXX") || fail "mktemp -d failed"
	echo "$d" >>"$_azl_tmplist"
	echo "$d"
}

assert_eq() { # actual expected [msg]
	[ "$1" == "$2" ] || fail "${3:-values differ}: got '$1', expected '$2'"
}

# First argument is read as a file when it names one, else as a string.
# No pipe into grep -q: under pipefail, grep exiting at the first match can
# kill the writer with SIGPIPE and turn a match into a failure.
_azl_has() { # file_or_string needle
	if [ -f "$1" ]; then
		grep -qF -- "$2" "$1"
	else
		grep -qF -- "$2" <<<"$1"
	fi
}

_azl_show() { # file_or_string
	echo "--- text searched:" >&2
	if [ -f "$1" ]; then head -n 40 -- "$1" >&2; else head -n 40 <<<"$1" >&2; fi
}

assert_contains() { # file_or_string needle [msg]
	if ! _azl_has "$1" "$2"; then
		_azl_show "$1"
		fail "${3:-expected text} to contain '$2'"
	fi
}

assert_not_contains() { # file_or_string needle [msg]
	if _azl_has "$1" "$2"; then
		_azl_show "$1"
		fail "${3:-text} must not contain '$2'"
	fi
}

assert_file() {
	[ -e "$1" ] || [ -L "$1" ] || fail "expected $1 to exist"
}

assert_no_file() {
	{ [ -e "$1" ] || [ -L "$1" ]; } && fail "expected no $1"
	return 0
}

# assert_exit CODE CMD...: OUT and ERR name files holding the command's
# stdout and stderr (overwritten by each call).
OUT=""
ERR=""
assert_exit() {
	local want=$1 rc=0
	shift
	if [ -z "$OUT" ]; then
		OUT=$(azl_tmpdir)/out
		ERR=${OUT%/out}/err
	fi
	"$@" >"$OUT" 2>"$ERR" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "--- command: $*" >&2
		echo "--- stdout:" >&2; head -n 40 "$OUT" >&2
		echo "--- stderr:" >&2; head -n 40 "$ERR" >&2
		fail "exit status $rc, expected $want: $*"
	fi
}

# azl_oci_layer ARCHIVE DIR: unpack an OCI image-layout archive into DIR
# and print the path of its (first) layer blob, read from index.json and
# the manifest it names — what a registry client would follow.
azl_oci_layer() {
	mkdir -p "$2"
	tar -xf "$1" -C "$2"
	python3 - "$2" <<'PY'
import json, sys
d = sys.argv[1]
m = json.load(open(d + "/index.json"))["manifests"][0]["digest"].split(":")[1]
layer = json.load(open(d + "/blobs/sha256/" + m))["layers"][0]["digest"].split(":")[1]
print(d + "/blobs/sha256/" + layer)
PY
}

# azl_cache_ok DIR [partial]: the cache is consistent: the sqlite index
# passes PRAGMA integrity_check, every blob and object hashes to its name,
# every index row has its blob with the recorded size, and `fetch
# --verify-cache` agrees.  "partial": a run killed or starved while creating
# the cache may have left no index, or an index without its table (the next
# open creates it): both count as empty then.
azl_cache_ok() {
	local c=$1 f rows sum size
	if [ "${2:-}" = partial ]; then
		[ -e "$c/index.sqlite" ] || return 0
	fi
	assert_eq "$(sqlite3 "$c/index.sqlite" 'PRAGMA integrity_check')" ok "$c: integrity_check"
	# One sha256sum over every blob and object: "<sum>  <dir>/<name>".
	f=$(find "$c" \( -path "$c/blobs/sha256/*" -o -path "$c/objects/sha256/*" \) -type f -print0 |
		xargs -0 -r sha256sum | awk '{ n = $2; sub(/.*\//, "", n); if (n != $1) print $2 }')
	[ -z "$f" ] || fail "content does not match the name: $f"
	rows=x
	if [ "${2:-}" = partial ]; then
		rows=$(sqlite3 "$c/index.sqlite" "SELECT name FROM sqlite_master WHERE name='blobs'")
	fi
	[ -z "$rows" ] || rows=$(sqlite3 "$c/index.sqlite" 'SELECT sha256 || " " || size FROM blobs') ||
		fail "$c/index.sqlite: cannot list the rows"
	while read -r sum size; do
		[ -n "$sum" ] || continue
		f=$c/blobs/sha256/$sum
		[ -f "$f" ] || fail "$c: index row $sum without its blob"
		assert_eq "$(stat -c %s "$f")" "$size" "$f: size in the index"
	done <<<"$rows"
	"$AZL" fetch --verify-cache --cache-dir "$c" >/dev/null 2>&1 || fail "$c: fetch --verify-cache"
}
