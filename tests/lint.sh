#!/bin/sh
# Static rules that keep determinism a property of the design:
#  - lib/ never reads the clock or a random source for an output, never asks
#    the host's user database, never prints or exits;
#  - readdir() only where the entries are sorted afterwards (mark the line
#    with "sorted:" in a comment within the next lines);
#  - includes point one way: base <- reproducible <- compose/sign <- cmd.
set -u
cd "$(dirname "$0")/.."
bad=0
report() { echo "lint: $*"; bad=1; }

# Clock, randomness, host identity.
hits=$(grep -nE '\b(time|gettimeofday|rand|srand|random|getpwnam|getpwuid|getgrnam|getgrgid|gethostname|getlogin)[[:space:]]*\(' lib/*/*.c | grep -v 'lint: allow')
[ -n "$hits" ] && { echo "$hits"; report "host clock, randomness or identity used in lib/ (derive from SOURCE_DATE_EPOCH / the seed)"; }

# Library code never prints to the terminal or exits.
if grep -nE '\b(printf|puts|exit|perror)[[:space:]]*\(|fprintf[[:space:]]*\([[:space:]]*std(out|err)' lib/*/*.c | grep -v 'lint: allow' | grep -v 'snprintf\|vsnprintf'; then
	report "lib/ must not print or exit (fill struct azl_err instead)"
fi

# Thread-local arrays: glibc zeroes the whole static TLS block in every
# thread it starts (a 1 MiB buffer made each pthread_create take ~5 ms here).
if grep -nE '(__thread|_Thread_local|thread_local)[^;(]*\[' lib/*/*.c cmd/*.c; then
	report "thread-local array: every new thread zeroes it; use the heap"
fi

# readdir results must be sorted before use.
for f in $(grep -l 'readdir[[:space:]]*(' lib/*/*.c 2>/dev/null); do
	grep -q 'sorted:' "$f" || report "$f uses readdir() without a 'sorted:' note showing where entries are sorted"
done

# Include direction.
for f in lib/base/*.[ch]; do
	grep -nE '#include "(reproducible|compose|sign)/' "$f" && report "$f: lib/base includes a higher layer"
done
for f in lib/reproducible/*.[ch]; do
	grep -nE '#include "(compose|sign)/' "$f" && report "$f: lib/reproducible includes a higher layer"
done
for f in lib/*/*.[ch]; do
	grep -nE '#include "cmd' "$f" && report "$f: lib/ includes cmd/"
done
[ "$bad" -eq 0 ] && echo "lint: ok"
exit "$bad"
