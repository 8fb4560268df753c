#!/bin/sh
# A CI job for an image: build, rebuild from the record and compare byte for
# byte, diff against the previous release, sign, verify.  See README.md.
#
#   examples/ci/ci.sh MANIFEST KEY.pem PUB.pem [PREVIOUS_OUT]
#
# Environment: AZL (the azl-compose binary, default azl-compose), OUT (the
# output folder, default out), CACHE (package cache, default .azl-cache).
# Exits non-zero when any step fails, and when the rebuild differs.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 MANIFEST KEY.pem PUB.pem [PREVIOUS_OUT]" >&2; exit 2; }
manifest=$1 key=$2 pub=$3 previous=${4:-}
AZL=${AZL:-azl-compose}
OUT=${OUT:-out}
CACHE=${CACHE:-.azl-cache}
lock=${manifest%.yaml}.lock.json

step() { printf '\n== %s\n' "$*"; }

# 1. Build from the committed lockfile: --locked fails rather than re-resolve.
step "build $manifest"
"$AZL" build "$manifest" -o "$OUT" --cache-dir "$CACHE" --locked

# 2. Rebuild from NAME.build.json alone, in a fresh folder with a fresh
#    cache: what a third party would do.  Exit 1 prints where it differs.
step "rebuild $OUT (fresh cache)"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
"$AZL" rebuild "$OUT" --cache-dir "$fresh/cache" --source-dir "$(dirname "$manifest")"

# 3. What changed since the previous release (informational: exit 1 means
#    "different", which a new release usually is).
if [ -n "$previous" ]; then
	step "diff $previous $OUT"
	rc=0
	"$AZL" diff --max 50 "$previous" "$OUT" || rc=$?
	[ "$rc" -le 1 ] || exit "$rc"
	"$AZL" diff --json --max 100000 "$previous" "$OUT" >"$OUT.diff.json" || [ $? -eq 1 ]
fi

# 4. Sign SHA256SUMS (covers every output and the build record), then check
#    the signature, the digests and the package sets against the lockfile.
step "sign $OUT"
"$AZL" sign "$OUT" --key "$key"
step "verify $OUT"
"$AZL" verify "$OUT" --key "$pub" --lock "$lock"
