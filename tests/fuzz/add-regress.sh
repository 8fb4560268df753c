#!/bin/bash
# Keep a fuzz finding as a regression input:
#   bash tests/fuzz/add-regress.sh TARGET CRASH-FILE NAME
# writes tests/fuzz/regress/TARGET/NAME.b64 (base64: text-safe in git;
# NAME.gz.b64, gzipped first, above 16 KiB),
# which tests/unit/test_fuzz_regress.c feeds to azl_fuzz_TARGET in every
# `make check`.  Minimize first when the input is large:
#   build-fuzz-bin/fuzz/fuzz_TARGET -minimize_crash=1 -max_total_time=60 CRASH-FILE
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -eq 3 ] || { echo "usage: add-regress.sh TARGET FILE NAME" >&2; exit 2; }
[ -f "$top/tests/fuzz/fuzz_$1.c" ] || { echo "no target $1" >&2; exit 2; }
mkdir -p "$top/tests/fuzz/regress/$1"
# Large inputs (disk images, mostly zeros) go in gzipped: NAME.gz.b64.
if [ "$(stat -c %s "$2")" -gt 16384 ]; then
	out=tests/fuzz/regress/$1/$3.gz.b64
	gzip -9nc "$2" | base64 -w 76 >"$top/$out"
else
	out=tests/fuzz/regress/$1/$3.b64
	base64 -w 76 "$2" >"$top/$out"
fi
echo "$out ($(stat -c %s "$2") bytes, $(stat -c %s "$top/$out") committed)"
