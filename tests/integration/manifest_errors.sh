#!/bin/bash
# `azl-compose lock BAD.yaml` for each class of manifest error: exit 2, the
# message names FILE:LINE:COLUMN and the key, and no lockfile appears.
set -u
: "${AZL:?set by tests/run.sh}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# case NAME EXPECTED-LOCATION EXPECTED-TEXT < manifest
case_() {
	local name=$1 where=$2 what=$3 f="$tmp/$1.yaml" rc
	cat >"$f"
	"$AZL" lock "$f" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 2 ]; then
		echo "FAIL $name: exit $rc, want 2"; fails=$((fails + 1))
	fi
	if ! grep -qF -- "$f:$where" "$tmp/err" || ! grep -qF -- "$what" "$tmp/err"; then
		echo "FAIL $name: stderr lacks '$f:$where' or '$what':"
		sed 's/^/  | /' "$tmp/err"; fails=$((fails + 1))
	fi
	if ls "$tmp"/*.lock.json >/dev/null 2>&1; then
		echo "FAIL $name: a lockfile appeared: $(ls "$tmp"/*.lock.json)"
		fails=$((fails + 1)); rm -f "$tmp"/*.lock.json
	fi
	[ "$rc" -eq 2 ] && echo "ok   $name"
}

case_ malformed "3:1:" "invalid YAML" <<'EOF'
name: x
repos: [
EOF
case_ unknown-key "2:1: key 'nmae'" "unknown key" <<'EOF'
name: x
nmae: y
EOF
case_ unknown-repo-key "5:5: key 'repos[0].gpgchek'" "unknown key" <<'EOF'
name: x
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
    gpgchek: false
packages: [bash]
EOF
case_ wrong-type-list "7:11: key 'packages'" "expected a list" <<'EOF'
name: x
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
    gpgcheck: false
# a string where a list belongs
packages: "bash"
EOF
case_ wrong-type-bool "5:15: key 'repos[0].gpgcheck'" "expected true or false" <<'EOF'
name: x
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
    gpgcheck: "yes"
packages: [bash]
EOF
case_ duplicate-key "6:1: key 'name'" "duplicate key" <<'EOF'
name: x
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
    gpgcheck: false
name: y
packages: [bash]
EOF
case_ missing-key "1:1: key 'packages'" "missing required key" <<'EOF'
name: x
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
    gpgcheck: false
EOF
case_ missing-gpgkey "3:5: key 'repos[0].gpgkey'" "required when gpgcheck is true" <<'EOF'
name: x
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
packages: [bash]
EOF
case_ invalid-name "1:7: key 'name'" "invalid name" <<'EOF'
name: My Image
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
    gpgcheck: false
packages: [bash]
EOF
case_ invalid-baseurl "4:14: key 'repos[0].baseurl'" "not an http://" <<'EOF'
name: x
repos:
  - id: base
    baseurl: ftp://127.0.0.1/repo/
    gpgcheck: false
packages: [bash]
EOF
case_ noarch "2:7: key 'arch'" "noarch is not a machine architecture" <<'EOF'
name: x
arch: noarch
repos:
  - id: base
    baseurl: http://127.0.0.1:9/repo/
    gpgcheck: false
packages: [bash]
EOF

# A manifest that cannot be read is a work failure, not bad input.
"$AZL" lock "$tmp/absent.yaml" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 1 ] || ! grep -qF "absent.yaml" "$tmp/err"; then
	echo "FAIL absent: exit $rc, want 1 naming the file"; fails=$((fails + 1))
fi

[ "$fails" -eq 0 ] || { echo "$fails failures"; exit 1; }
echo "all manifest error cases exit 2 with FILE:LINE:COL and key"
