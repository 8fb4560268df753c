# Scriptlet sandbox end to end: the sandbox and staging test programs,
# with the fixture packages (azl-app's %post, a failing and a hanging
# %post installed through lib/compose/install), once as the calling user
# and once as an unprivileged one (nobody), which must work the same
# without root.  Afterwards no scriptlet process and no mount may be left.
# shellcheck shell=bash
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

[ -x /bin/busybox ] || skip "no /bin/busybox (apt-get install busybox-static)"
for t in test_sandbox test_staging; do
	[ -x "$AZL_BUILD/tests/$t" ] || fail "$AZL_BUILD/tests/$t not built (make BUILD=... unit)"
done
repo=$(azl_fixture_repo base)
export AZL_SANDBOX_FIXTURE_REPO=$repo

# run_as WHO: runs both programs (WHO: "self" or a user name); prints a
# note and returns 77 when the sandbox is unavailable for that user.
run_as() {
	local who=$1 tmp out rc=0
	tmp=$(azl_tmpdir)
	out=$tmp/out
	local -a pre=()
	if [ "$who" != self ]; then
		chown "$who" "$tmp"
		pre=(setpriv --reuid="$(id -u "$who")" --regid="$(id -g "$who")" --clear-groups)
	fi
	TMPDIR=$tmp "${pre[@]}" "$AZL_BUILD/tests/test_sandbox" >"$out" 2>&1 || rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "sandbox unavailable as $who: $(tail -n 1 "$out")"
		return 77
	fi
	cat "$out"
	[ "$rc" -eq 0 ] || fail "test_sandbox as $who: exit $rc"
	assert_contains "$out" "fixture scenario: 7 packages installed" "test_sandbox as $who"
	assert_contains "$out" " 0 failed" "test_sandbox as $who"
	TMPDIR=$tmp "${pre[@]}" "$AZL_BUILD/tests/test_staging" >"$out" 2>&1 ||
		{ cat "$out"; fail "test_staging as $who"; }
	assert_contains "$out" " 0 failed" "test_staging as $who"
	# the test programs clean up after themselves, mounts never reach the host
	[ -z "$(ls -A "$tmp" | grep -v '^out$')" ] || fail "left behind in $tmp: $(ls -A "$tmp")"
}

# Scriptlet processes already running (another build on this machine) are
# not ours to judge.
before=$(pgrep -f 'rpm-tmp.script' || true)
notes=""
run_as self || notes="$notes (calling user: sandbox unavailable)"
if [ "$(id -u)" -eq 0 ]; then
	run_as nobody || notes="$notes (unprivileged: user namespaces disabled for non-root)"
else
	notes="$notes (unprivileged run only: not root)"
fi

# the hanging %post and the `sleep 1000 &` must not survive their namespace
leaked() {
	local p
	for p in $(pgrep -f 'rpm-tmp.script' || true); do
		printf '%s\n' "$before" | grep -qx "$p" || echo "$p"
	done
}
for _ in 1 2 3 4 5; do
	[ -z "$(leaked)" ] && break
	sleep 1
done
if [ -n "$(leaked)" ]; then
	ps -o pid,args -p "$(leaked | tr '\n' ',' | sed 's/,$//')" >&2 || true
	fail "scriptlet processes outlived the sandbox"
fi
assert_not_contains /proc/self/mountinfo "azl-test-sandbox" "host mount table"
[ -n "$notes" ] && echo "note:$notes"
[[ "$notes" == *"calling user: sandbox unavailable"* ]] && skip "user namespaces unavailable on this host"
echo "sandbox: ok"
