#!/bin/sh
# Resolution speed: `azl-compose lock` over a synthetic 5,000-package
# repository (bench/gen_repo.py) beside dnf's resolution of the same request
# (`dnf install --assumeno`), both with parsed metadata already cached
# (ours: DIR/metadata/*.solv; dnf: its cachedir, run with -C).  Prints
#   resolve: azl-compose 85 ms | dnf 2400 ms | ratio 28x
# Medians over several runs; hyperfine when installed, else a timed loop.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AZL_BUILD:-$top/build}
case $build in /*) ;; *) build=$top/$build ;; esac
AZL=${AZL:-$build/azl-compose}
npkgs=${RESOLVE_PACKAGES:-5000}
runs=${RESOLVE_RUNS:-15}
w=$build/bench/resolve
repo=$w/repo-$npkgs
mkdir -p "$w"
# Debian's python3 directly: a version-manager shim can take seconds a call.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

[ -x "$AZL" ] || { echo "resolve: no binary at $AZL (make first)"; exit 1; }
if [ ! -f "$repo/repodata/repomd.xml" ]; then
	$py "$top/bench/gen_repo.py" "$repo" --packages "$npkgs" --seed 1
fi

# The request: every 150th application, a closure of a few hundred packages.
pkgs=$(gzip -dc "$repo"/repodata/primary.xml.gz | grep -o '<name>bench-app[0-9]*</name>' |
	sed 's/<[^>]*>//g' | sort -u | awk 'NR % 150 == 1' | head -n 10)
{
	echo "name: resolve"
	echo "repos:"
	echo "  - id: bench"
	echo "    baseurl: file://$repo/"
	echo "    gpgcheck: false"
	echo "packages:"
	for p in $pkgs; do echo "  - $p"; done
} >"$w/resolve.yaml"
rm -f "$w/resolve.lock.json"
"$AZL" -q lock "$w/resolve.yaml" --cache-dir "$w/cache"
locked=$(grep -c '"name"' "$w/resolve.lock.json")

mkdir -p "$w/dnf/repos" "$w/dnf/root"
printf '[main]\ngpgcheck=0\ninstall_weak_deps=False\nreposdir=%s\ncachedir=%s\n' \
	"$w/dnf/repos" "$w/dnf/cache" >"$w/dnf/dnf.conf"
printf '[bench]\nname=bench\nbaseurl=file://%s/\ngpgcheck=0\n' "$repo" >"$w/dnf/repos/bench.repo"
dnf_cmd="dnf -q -c $w/dnf/dnf.conf --installroot $w/dnf/root --releasever 1 --forcearch x86_64 --setopt=install_weak_deps=False --assumeno install $(echo $pkgs)"
# Our command re-resolves from scratch (--update ignores the pins) and finds
# the lockfile unchanged: the whole `lock` work except the final write.
ours_cmd="$AZL -q lock $w/resolve.yaml --update --cache-dir $w/cache"

# median_ms RUNS CMD: median wall time of CMD in ms; the CPU time (user +
# system, mean) goes to $w/cpu, a figure a busy machine distorts less.
median_ms() {
	n=$1
	shift
	if command -v hyperfine >/dev/null; then
		hyperfine -N -i -w 2 -r "$n" --export-json "$w/h.json" "$*" >/dev/null 2>&1
		$py -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(round(r["median"] * 1000)); open(sys.argv[2], "w").write("%d\n" % round((r["user"] + r["system"]) * 1000))' "$w/h.json" "$w/cpu"
		return
	fi
	i=0
	: >"$w/times"
	while [ "$i" -lt "$n" ]; do
		s=$(date +%s%N)
		sh -c "$*" >/dev/null 2>&1 || true
		echo $(( ($(date +%s%N) - s) / 1000000 )) >>"$w/times"
		i=$((i + 1))
	done
	sort -n "$w/times" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
	echo "?" >"$w/cpu"
}

ours=$(median_ms "$runs" "$ours_cmd")
ours_cpu=$(cat "$w/cpu")
cold=$(median_ms "$runs" "$ours_cmd --no-cache")
floor=$(median_ms "$runs" "$AZL --version")
echo "resolve: $npkgs-package repo, $(echo $pkgs | wc -w) requested, $locked locked"
if command -v dnf >/dev/null; then
	sh -c "$dnf_cmd" >/dev/null 2>&1 || true   # fills dnf's metadata cache
	theirs=$(median_ms 5 "$dnf_cmd -C")
	echo "resolve: cpu time azl-compose $ours_cpu ms | dnf $(cat "$w/cpu") ms"
	echo "resolve: azl-compose $ours ms | dnf $theirs ms | ratio $(awk -v a="$theirs" -v b="$ours" 'BEGIN { printf "%.0f", a / (b ? b : 1) }')x (both with parsed metadata cached; ours parsing primary afresh: $cold ms; process start alone: $floor ms)"
else
	echo "resolve: azl-compose $ours ms | dnf not installed (parsing primary afresh: $cold ms; process start alone: $floor ms)"
fi
