#!/bin/bash
# Bad input to build: each a clear error, the documented exit code, and
# nothing at a final output path.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
cd "$t"
no_outputs() { # dir
	[ ! -d "$1" ] && return 0
	local left
	left=$(ls -A "$1")
	[ -z "$left" ] || fail "files left in $1 after a failed build: $left"
}
manifest() { # file pkgs...
	local f=$1
	shift
	azl_fixture_manifest "$f" base "$@"
	printf 'outputs:\n  oci: {}\n' >>"$f"
}

# --locked without a lockfile: exit 2, names the lockfile.
manifest locked.yaml azl-app
assert_exit 2 "$AZL" build locked.yaml -o out-locked --cache-dir cache --locked
assert_contains "$ERR" "locked.lock.json"
assert_contains "$ERR" "azl-compose lock"
no_outputs out-locked
assert_no_file locked.lock.json

# --locked with a lockfile the manifest no longer matches: exit 1.
assert_exit 0 "$AZL" -q lock locked.yaml
sed -i 's/^  - azl-app$/  - azl-app\n  - azl-extra/' locked.yaml
cp locked.lock.json locked.before
assert_exit 1 "$AZL" build locked.yaml -o out-locked --cache-dir cache --locked
assert_contains "$ERR" "--locked"
cmp locked.lock.json locked.before || fail "--locked changed the lockfile"
no_outputs out-locked

# File conflict: both packages named, with the path.
manifest conflict.yaml azl-conflict-a azl-conflict-b
assert_exit 1 "$AZL" build conflict.yaml -o out-conflict --cache-dir cache
assert_contains "$ERR" "/usr/share/azl/conflict.txt"
assert_contains "$ERR" "azl-conflict-a"
assert_contains "$ERR" "azl-conflict-b"
no_outputs out-conflict

# A failing %pre: rpm fails the package, so the build fails naming the
# package, the scriptlet and its output.
manifest failpre.yaml azl-fail-pre
assert_exit 1 "$AZL" build failpre.yaml -o out-fail --cache-dir cache
assert_contains "$ERR" "azl-fail-pre"
assert_contains "$ERR" "%pre"
assert_contains "$ERR" "exit status 1"
assert_contains "$ERR" "refusing to install"
no_outputs out-fail

# A failing %post: rpm 4.18 warns and goes on; so do we, with its output.
manifest failpost.yaml azl-fail-post
assert_exit 0 "$AZL" build failpost.yaml -o out-post --cache-dir cache
assert_contains "$ERR" "warning:"
assert_contains "$ERR" "azl-fail-post"
assert_contains "$ERR" "failing on purpose"

# scriptlets: skip builds without running any, and says what it skipped.
printf 'scriptlets: skip\n' >>failpre.yaml
assert_exit 0 "$AZL" build failpre.yaml -o out-skip --cache-dir cache
assert_contains "$ERR" "azl-fail-pre-1.0-1.noarch %pre"
assert_contains out-skip/failpre.build.json "azl-fail-pre-1.0-1.noarch %pre"

# A hanging %post: killed at the timeout, named.
manifest hang.yaml azl-hang-post
printf 'scriptlet_timeout: 3\n' >>hang.yaml
start=$(date +%s)
assert_exit 1 "$AZL" build hang.yaml -o out-hang --cache-dir cache
took=$(( $(date +%s) - start ))
[ "$took" -lt 60 ] || fail "timeout not enforced (took ${took}s)"
assert_contains "$ERR" "azl-hang-post"
assert_contains "$ERR" "timed out"
no_outputs out-hang

# An owner missing from the image's passwd: root, with a warning.
manifest owner.yaml azl-app
assert_exit 0 "$AZL" build owner.yaml -o out-owner --cache-dir cache
assert_contains "$ERR" "nosuchuser does not exist - using root"

# No outputs requested: exit 2 naming the key.
azl_fixture_manifest none.yaml base azl-app
assert_exit 2 "$AZL" build none.yaml -o out-none --cache-dir cache
assert_contains "$ERR" "outputs"
no_outputs out-none

# Bad options.
assert_exit 2 "$AZL" build
assert_exit 2 "$AZL" build none.yaml -j zero
echo ok
