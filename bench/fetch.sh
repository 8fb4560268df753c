#!/bin/bash
# Fetch throughput: azl-compose fetch into an empty cache against
# `curl --parallel --parallel-max 8` over the same 100 URLs, both served by
# tests/lib/httpd.py on 127.0.0.1 (so the server's limits weigh on both
# sides equally).  azl-compose runs with gpgcheck on and off; each figure
# is the best of $BENCH_RUNS interleaved runs (default 9: on a shared
# 2-core machine single rounds vary by a third, and 5 left the figures
# swinging by ~10% from run to run).  azl-compose does more than curl: it
# hashes while writing, checks sizes on insert, indexes the blobs in
# sqlite, and with gpgcheck on runs rpm's signature and payload digest
# checks (in worker threads, overlapping the downloads).
#
# The packages (100 x ~1 MiB of incompressible payload, signed with the
# fixture key A) are generated once by a single rpmbuild of 100
# subpackages and kept under $AZL_BUILD/bench/fetch-pkgs/.
#
# Prints: fetch: azl-compose X MB/s | curl Y MB/s | ratio Z%
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AZL_BUILD:-$top/build}
case $build in /*) ;; *) build=$top/$build ;; esac
export AZL_BUILD=$build AZL_TOP=$top
AZL=${AZL:-$build/azl-compose}
runs=${BENCH_RUNS:-9}
npkgs=100
pkgs=$build/bench/fetch-pkgs

. "$top/tests/lib/fixtures.sh"
fx=$(azl_fixtures_dir)

gen_spec() {
	echo "Name: azl-bench"
	echo "Version: 1.0"
	echo "Release: 1"
	echo "Summary: fetch benchmark payloads"
	echo "License: MIT"
	echo "BuildArch: noarch"
	echo "%description"
	echo "Benchmark."
	for i in $(seq -w 1 $npkgs); do
		printf '%%package -n azl-bench-%s\nSummary: payload %s\n' "$i" "$i"
		printf '%%description -n azl-bench-%s\npayload\n' "$i"
		printf '%%files -n azl-bench-%s\n/usr/share/azl-bench/%s.bin\n' "$i" "$i"
	done
	echo "%install"
	echo "mkdir -p %{buildroot}/usr/share/azl-bench"
	echo "for i in \$(seq -w 1 $npkgs); do head -c 1048576 /dev/urandom >%{buildroot}/usr/share/azl-bench/\$i.bin; done"
}

generate() {
	local work gh
	work=$(mktemp -d)
	gh=$(mktemp -d /tmp/azl-bench-gpg.XXXXXX)
	trap 'GNUPGHOME=$gh gpgconf --kill all 2>/dev/null; rm -rf "$work" "$gh"' RETURN
	echo "fetch: generating $npkgs packages in $pkgs" >&2
	gen_spec >"$work/bench.spec"
	mkdir -p "$work/home"
	HOME=$work/home rpmbuild -bb --quiet --define "_topdir $work/top" \
		--define "_binary_payload w1.gzdio" --define "__os_install_post %{nil}" \
		--define "debug_package %{nil}" "$work/bench.spec" >&2
	cp -r "$fx/gnupg/." "$gh/"
	GNUPGHOME=$gh HOME=$work/home rpmsign --addsign --define "__gpg /usr/bin/gpg" \
		--define "_gpg_name $(cat "$fx/keys/A.fpr")" "$work"/top/RPMS/noarch/*.rpm </dev/null >/dev/null 2>&1 ||
		{ echo "fetch: rpmsign failed" >&2; return 1; }
	rm -rf "$pkgs"
	mkdir -p "$pkgs/repo/Packages"
	mv "$work"/top/RPMS/noarch/azl-bench-*.rpm "$pkgs/repo/Packages/"
	echo "$fx" >"$pkgs/.complete" # signed with this tree's key A
}

# manifest + lockfile for BASEURL with GPGCHECK into DIR/NAME.*
project() { # dir name baseurl gpgcheck
	cat >"$1/$2.yaml" <<EOF
name: $2
repos:
  - id: bench
    baseurl: $3
    gpgkey: $fx/keys/A.asc
    gpgcheck: $4
packages: [azl-bench-001]
EOF
	python3 - "$pkgs/repo/Packages" "$3" >"$1/$2.lock.json" <<'PY'
import hashlib, json, os, sys
d, base = sys.argv[1], sys.argv[2]
pkgs = []
for f in sorted(os.listdir(d)):
    data = open(os.path.join(d, f), "rb").read()
    name = f[: -len("-1.0-1.noarch.rpm")]
    pkgs.append({"arch": "noarch", "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
                 "epoch": 0, "location": "Packages/" + f, "name": name,
                 "release": "1", "repo": "bench", "size": len(data), "version": "1.0"})
print(json.dumps({"packages": pkgs, "repos": [{"baseurl": base, "id": "bench",
      "repomd_sha256": "0" * 64}], "version": 1}, indent=2, sort_keys=True))
PY
}

now() { date +%s.%N; }
best() { sort -g | head -n 1; }

[ "$(cat "$pkgs/.complete" 2>/dev/null)" = "$fx" ] || generate
total=$(cat "$pkgs"/repo/Packages/*.rpm | wc -c)
t=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$t"' EXIT
python3 "$top/tests/lib/httpd.py" --root "$pkgs/repo" --port-file "$t/port" &
pid=$!
for ((i = 0; i < 200; i++)); do [ -s "$t/port" ] && break; sleep 0.05; done
url=http://127.0.0.1:$(cat "$t/port")

for f in "$pkgs"/repo/Packages/*.rpm; do
	printf 'url = "%s/Packages/%s"\noutput = "%s/curl/%s"\n' "$url" "$(basename "$f")" "$t" "$(basename "$f")"
done >"$t/curl.cfg"
project "$t" on "$url/" true
project "$t" off "$url/" false

# Each run ends with an untimed `sync`, so that no run pays for writing
# back the previous run's 100 MiB of dirty pages.
run_curl() {
	rm -rf "$t/curl"; mkdir -p "$t/curl"
	local s; s=$(now)
	curl -s --no-progress-meter --fail --parallel --parallel-max 8 -K "$t/curl.cfg" 2>/dev/null
	echo "$(now) - $s" | bc -l
	sync
}
run_azl() { # gpgcheck on|off
	rm -rf "$t/cache"
	local s; s=$(now)
	"$AZL" fetch -q "$t/$1.yaml" --cache-dir "$t/cache"
	echo "$(now) - $s" | bc -l
	sync
}

# Interleaved, so a change in the machine's load hits all three alike.
load0=$(cut -d' ' -f1-3 /proc/loadavg)
run_curl >/dev/null # warm the page cache and the server
for ((r = 0; r < runs; r++)); do
	run_curl >>"$t/curl.times"
	run_azl off >>"$t/off.times"
	run_azl on >>"$t/on.times"
done
curl_s=$(best <"$t/curl.times")
off_s=$(best <"$t/off.times")
on_s=$(best <"$t/on.times")

mbs() { echo "scale=1; $total / 1000000 / $1" | bc -l; }
pct() { echo "scale=0; 100 * $2 / $1" | bc -l; }
echo "fetch ($npkgs x 1 MiB, -j 8, best of $runs, $(nproc) cores):"
echo "fetch: azl-compose $(mbs "$off_s") MB/s | curl $(mbs "$curl_s") MB/s | ratio $(pct "$off_s" "$curl_s")% (gpgcheck off)"
echo "fetch: azl-compose $(mbs "$on_s") MB/s | curl $(mbs "$curl_s") MB/s | ratio $(pct "$on_s" "$curl_s")% (gpgcheck on)"
# The best of each side can come from different moments of a noisy
# machine; the ratio within each round (curl's time over azl-compose's,
# measured seconds apart) is steadier.  Its median, per mode:
paired() { paste "$t/curl.times" "$1" | awk '{ print 100 * $1 / $2 }' | sort -g |
	awk '{ r[NR] = $1 } END { printf "%.0f%% (rounds from %.0f%% to %.0f%%)", r[int((NR + 1) / 2)], r[1], r[NR] }'; }
echo "fetch: median of the $runs rounds' ratios: $(paired "$t/off.times") (gpgcheck off), $(paired "$t/on.times") (gpgcheck on)"
# Both sides are CPU-bound on a busy machine: say how busy it was.
echo "fetch: load average (1/5/15 min) $load0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end"
