#!/bin/bash
# rpmdb: the rpmdb.sqlite azl writes is one rpm reads and trusts.
#  - rpm -qa lists exactly the packages, in install order; INSTALLTIME/TID
#    are the given time; -ql, -qf, --whatprovides/requires (rich deps too),
#    weak deps, conflicts, obsoletes, triggers, changelog, INSTPREFIXES and
#    per-file states answer from our indexes;
#  - the same input gives a byte-identical file, another time a different one;
#  - as root: rpm itself installing the same packages (--justdb, same
#    SOURCE_DATE_EPOCH) stores the same header blobs byte for byte and the
#    same index rows, for the fixtures and for real distro packages, and
#    `rpm -Va` over the unpacked packages reports only what we changed.
# No CLI command writes a database alone yet, so this drives the library
# through the unit-test binary's `write` mode.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

W=$AZL_BUILD/tests/test_rpmdb
[ -x "$W" ] || fail "$W missing (make BUILD=... unit)"
command -v rpm >/dev/null || skip "rpm is not installed"
tmp=$(azl_tmpdir)
T=1700000000

# Packages the fixtures lack: triggers, file triggers, weak/negative deps,
# a changelog, a relocatable package, one without files.
mkrpms() { # outdir
	local out=$1 top=$tmp/rpmbuild
	mkdir -p "$top/SPECS" "$out" "$tmp/home"
	cat >"$top/SPECS/alpha.spec" <<'EOF'
Name: azl-alpha
Version: 1.2
Release: 3
Summary: alpha test package
License: MIT
Group: System/Test
BuildArch: noarch
Provides: alpha-cap = 7
Requires(post): /bin/sh
Requires(postun): /bin/sh
Requires: azl-beta >= 1
Requires: (azl-beta if azl-gamma else azl-empty)
Conflicts: azl-gamma
Obsoletes: azl-old < 2
Recommends: azl-rec
Suggests: azl-sug
Supplements: azl-supp
Enhances: azl-enh
%description
alpha
%install
mkdir -p %{buildroot}/etc/alpha %{buildroot}/usr/share/alpha %{buildroot}/var/log
echo conf >%{buildroot}/etc/alpha/alpha.conf
echo data >%{buildroot}/usr/share/alpha/data
ln %{buildroot}/usr/share/alpha/data %{buildroot}/usr/share/alpha/data2
ln -s data %{buildroot}/usr/share/alpha/link
touch %{buildroot}/var/log/alpha.log
%post
true
%postun
true
%triggerin -- azl-beta
true
%triggerun -- azl-beta
true
%filetriggerin -- /usr/lib
true
%transfiletriggerin -- /usr/share
true
%files
%dir /etc/alpha
%config(noreplace) /etc/alpha/alpha.conf
/usr/share/alpha
%ghost /var/log/alpha.log
%changelog
* Mon Jan 01 2024 Test <t@example.com> - 1.2-3
- first entry
EOF
	cat >"$top/SPECS/beta.spec" <<'EOF'
Name: azl-beta
Epoch: 2
Version: 1.0
Release: 1
Summary: beta relocatable
License: MIT
BuildArch: noarch
Prefix: /opt
%description
beta
%install
mkdir -p %{buildroot}/opt/beta
echo b >%{buildroot}/opt/beta/b.txt
%files
/opt/beta
EOF
	cat >"$top/SPECS/empty.spec" <<'EOF'
Name: azl-empty
Version: 0
Release: 0
Summary: no files
License: MIT
BuildArch: noarch
%description
empty
%files
EOF
	local s
	for s in "$top"/SPECS/*.spec; do
		HOME=$tmp/home SOURCE_DATE_EPOCH=$T rpmbuild -bb --quiet \
			--define "_topdir $top" --define "_rpmdir $out" \
			--define '_build_name_fmt %%{NAME}.rpm' \
			--define 'use_source_date_epoch_as_buildtime 1' \
			--define '_buildhost azl.invalid' "$s" >"$tmp/rpmbuild.log" 2>&1 ||
			{ cat "$tmp/rpmbuild.log"; fail "rpmbuild $s"; }
	done
}

repo=$(azl_fixture_repo base)
mkrpms "$tmp/own"
F=$repo/Packages/a
pkgs=("$F/azl-filesystem-1.0-1.noarch.rpm" "$F/azl-busybox-1.0-1.x86_64.rpm"
	"$F/azl-libfoo-1.0-1.x86_64.rpm" "$F/azl-ssl-a-1.0-1.x86_64.rpm"
	"$F/azl-app-1.0-1.x86_64.rpm" "$F/azl-zstd-payload-1.0-1.noarch.rpm"
	"$tmp/own/azl-empty.rpm" "$tmp/own/azl-beta.rpm" "$tmp/own/azl-alpha.rpm")
for p in "${pkgs[@]}"; do assert_file "$p"; done

q() { # dbdir rpm-args... (Debian's rpm keeps its own db elsewhere: always --dbpath)
	local d=$1
	shift
	rpm --dbpath "$d" "$@" 2>&1
}

mkdir -p "$tmp/d1" "$tmp/d2" "$tmp/d3"
"$W" write "$tmp/d1/rpmdb.sqlite" $T "${pkgs[@]}" || fail "write d1"
"$W" write "$tmp/d2/rpmdb.sqlite" $T "${pkgs[@]}" || fail "write d2"
"$W" write "$tmp/d3/rpmdb.sqlite" $((T + 1)) "${pkgs[@]}" || fail "write d3"
assert_eq "$(ls -A "$tmp/d1")" "rpmdb.sqlite" "only the database in its directory"
d=$tmp/d1

# -- what rpm reads back ---------------------------------------------------
want=$(for p in "${pkgs[@]}"; do rpm -qp --nosignature --qf '%{NEVRA}\n' "$p"; done)
assert_eq "$(q "$d" -qa --qf '%{NEVRA}\n')" "$want" "rpm -qa (install order)"
assert_eq "$(q "$d" -qa --qf '%{INSTALLTIME} %{INSTALLTID} %{INSTALLCOLOR}\n' | sort -u)" \
	"$T $T 3" "install time, tid and color"
assert_eq "$(q "$d" -ql azl-app)" "$(rpm -qlp --nosignature "$F/azl-app-1.0-1.x86_64.rpm")" "rpm -ql azl-app"
assert_eq "$(q "$d" -qf /etc/azl-app.conf)" "azl-app-1.0-1.x86_64" "rpm -qf (Basenames)"
assert_eq "$(q "$d" -qf /usr/bin/sh)" "azl-busybox-1.0-1.x86_64" "rpm -qf symlink owner"
assert_eq "$(q "$d" -q --whatprovides 'libfoo.so.1()(64bit)')" "azl-libfoo-1.0-1.x86_64" "--whatprovides"
assert_eq "$(q "$d" -q --whatprovides /bin/sh)" "azl-busybox-1.0-1.x86_64" "--whatprovides /bin/sh"
assert_eq "$(q "$d" -q --whatrequires azl-ssl-a)" "azl-app-1.0-1.x86_64" "--whatrequires inside a rich dependency"
assert_eq "$(q "$d" -q --whatrequires azl-empty)" "azl-alpha-1.2-3.noarch" "--whatrequires (else branch)"
assert_eq "$(q "$d" -q --whatrecommends azl-extra)" "azl-app-1.0-1.x86_64" "--whatrecommends"
assert_eq "$(q "$d" -q --whatsuggests azl-sug)" "azl-alpha-1.2-3.noarch" "--whatsuggests"
assert_eq "$(q "$d" -q --whatsupplements azl-supp)" "azl-alpha-1.2-3.noarch" "--whatsupplements"
assert_eq "$(q "$d" -q --whatenhances azl-enh)" "azl-alpha-1.2-3.noarch" "--whatenhances"
assert_eq "$(q "$d" -q --whatconflicts azl-gamma)" "azl-alpha-1.2-3.noarch" "--whatconflicts"
assert_eq "$(q "$d" -q --whatobsoletes azl-old)" "azl-alpha-1.2-3.noarch" "--whatobsoletes"
assert_eq "$(q "$d" -q --triggeredby azl-beta | head -n 1)" "azl-alpha-1.2-3.noarch" "--triggeredby"
assert_contains "$(q "$d" -q --changelog azl-alpha)" "- first entry" "changelog"
assert_eq "$(q "$d" -q --qf '[%{INSTPREFIXES}]' azl-beta)" "/opt" "INSTPREFIXES of a relocatable package"
assert_eq "$(q "$d" -q --qf '%{INSTPREFIXES}' azl-app)" "(none)" "no INSTPREFIXES otherwise"
assert_eq "$(q "$d" -q --qf '[%{FILESTATES:fstate}\n]' azl-alpha | sort -u)" "normal" "file states (%ghost too)"
assert_contains "$(q "$d" -q --whatrequires /bin/sh)" "azl-app" "--whatrequires /bin/sh"
# rpmlib() requirements are install-time only: rpm does not index them.
[ "$(q "$d" -q --requires azl-alpha | grep -c '^rpmlib(')" -gt 0 ] || fail "azl-alpha has no rpmlib() requires"
if command -v sqlite3 >/dev/null; then
	assert_eq "$(sqlite3 "file:$d/rpmdb.sqlite?immutable=1" \
		"SELECT count(*) FROM Requirename WHERE key LIKE 'rpmlib(%'")" "0" "rpmlib() requires indexed"
fi

# -- determinism -----------------------------------------------------------
cmp "$tmp/d1/rpmdb.sqlite" "$tmp/d2/rpmdb.sqlite" || fail "two writes differ"
cmp -s "$tmp/d1/rpmdb.sqlite" "$tmp/d3/rpmdb.sqlite" && fail "install time did not reach the file"
assert_eq "$(q "$tmp/d3" -q --qf '%{INSTALLTIME}' azl-app)" "$((T + 1))" "other install time"

# -- explicit file states (an excluded file) -------------------------------
mkdir -p "$tmp/d4"
"$W" write "$tmp/d4/rpmdb.sqlite" $T "$tmp/own/azl-alpha.rpm:0,0,0,0,0,0,2" || fail "write d4"
assert_eq "$(q "$tmp/d4" -q --qf '[%{FILESTATES:fstate} %{FILENAMES}\n]' azl-alpha | tail -n 1)" \
	"not installed /var/log/alpha.log" "explicit file state"
assert_exit 1 "$W" write "$tmp/d4/x.sqlite" $T "$tmp/own/azl-alpha.rpm:0,0"
assert_contains "$ERR" "azl-alpha.rpm: 2 file states given for 7 files"
assert_no_file "$tmp/d4/x.sqlite"

if [ "$(id -u)" != 0 ]; then
	echo "note: not root; the comparison with rpm's own database and rpm -Va are not run"
	exit 0
fi

# -- rpm itself, installing the same packages into a scratch root ----------
# rpm 4.18 takes INSTALLTIME/TID from SOURCE_DATE_EPOCH, so the header blobs
# and index rows must be equal byte for byte (older rpms used the clock:
# then those two tags are masked).
rpm_oracle() { # dir rpm...
	local o=$1 p
	shift
	mkdir -p "$o"
	for p in "$@"; do # one transaction each: rpm would reorder them
		SOURCE_DATE_EPOCH=$T rpm --root "$o" --dbpath /var/lib/rpm -i --justdb \
			--nodeps --noscripts --notriggers --nosignature --nodigest \
			--ignorearch --ignoreos "$p" >"$tmp/rpm.log" 2>&1 ||
			{ cat "$tmp/rpm.log"; fail "rpm -i --justdb $p"; }
	done
}
same_as_rpm() { # ours theirs
	python3 - "$1" "$2" "$T" <<'EOF'
import sqlite3, struct, sys
T = int(sys.argv[3])
TIMES = (1008, 1128)  # INSTALLTIME, INSTALLTID

def blobs(path):
    c = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    return c, [bytes(r[0]) for r in c.execute("SELECT blob FROM Packages ORDER BY hnum")]

def times(blob):
    il, _ = struct.unpack(">II", blob[:8])
    store = 8 + 16 * il
    for i in range(il):
        tag, typ, off, cnt = struct.unpack(">iiii", blob[8 + 16 * i:24 + 16 * i])
        if tag in TIMES:
            yield store + off

def masked(blob):
    b = bytearray(blob)
    for at in times(blob):
        b[at:at + 4] = bytes(4)
    return bytes(b)

ours, a = blobs(sys.argv[1])
theirs, b = blobs(sys.argv[2])
exact = all(struct.unpack(">I", x[at:at + 4])[0] == T for x in b for at in times(x))
if not exact:
    print("note: this rpm took the install time from the clock; masking it")
bad = 0
if len(a) != len(b):
    print("package count", len(a), len(b)); sys.exit(1)
for i, (x, y) in enumerate(zip(a, b), 1):
    if (x if exact else masked(x)) != (y if exact else masked(y)):
        print("header blob of package", i, "differs"); bad = 1
tables = [r[0] for r in theirs.execute(
    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite%' AND name != 'Packages'")]
for t in tables:
    key = "hex(key), typeof(key)" if exact or t != "Installtid" else "NULL"
    sql = f"SELECT {key}, hnum, idx FROM '{t}' ORDER BY rowid"
    if ours.execute(sql).fetchall() != theirs.execute(sql).fetchall():
        print("index table", t, "differs"); bad = 1
print(len(a), "headers and", len(tables), "index tables compared", "exactly" if exact else "")
sys.exit(bad)
EOF
}
rpm_oracle "$tmp/oracle" "${pkgs[@]}"
same_as_rpm "$d/rpmdb.sqlite" "$tmp/oracle/var/lib/rpm/rpmdb.sqlite" || fail "database differs from rpm's"

# Real distro packages when the corpus is there: Fedora 14 (signed,
# i686, xz payloads, many files) and createrepo_c's test packages (rich
# dependencies, EdDSA signature, odd encodings).
corpus=${AZL_CORPUS:-/work/shared/corpus/real}
if [ -d "$corpus/fedora14" ] && [ -d "$corpus/createrepo_c-testdata" ]; then
	real=("$corpus"/fedora14/*.rpm)
	for n in Archer-3.4.5-6 Rimmer-1.0.2-2 balicek-iso88592-1.1.1-1 \
		empty-signed-eddsa-0-0 fake_bash-1.1.1-1 super_kernel-6.0.1-2; do
		real+=("$corpus/createrepo_c-testdata/$n.x86_64.rpm")
	done
	mkdir -p "$tmp/real"
	"$W" write "$tmp/real/rpmdb.sqlite" $T "${real[@]}" || fail "write real"
	rpm_oracle "$tmp/oracle-real" "${real[@]}"
	same_as_rpm "$tmp/real/rpmdb.sqlite" "$tmp/oracle-real/var/lib/rpm/rpmdb.sqlite" ||
		fail "database of real packages differs from rpm's"
else
	echo "note: $corpus absent: real packages not compared"
fi

# -- rpm -Va over the unpacked packages ------------------------------------
root=$tmp/root
mkdir -p "$root/var/lib/rpm"
for p in "${pkgs[@]}"; do (cd "$root" && rpm2cpio "$p" | cpio -idm --quiet) || fail "unpack $p"; done
# What cpio cannot do, the assembly stage does: owners by the image's
# passwd (azl = 1000) and file capabilities.
chown 1000:1000 "$root/etc/azl-app.secret"
if command -v setcap >/dev/null; then
	setcap cap_net_bind_service=ep "$root/usr/sbin/azl-app-bind"
	capflag=""
else
	capflag="--nocaps"
fi
cp "$d/rpmdb.sqlite" "$root/var/lib/rpm/rpmdb.sqlite"
rpm --root "$root" --dbpath /var/lib/rpm -Va $capflag >"$tmp/va" 2>&1 ||
	{ cat "$tmp/va"; fail "rpm -Va reported differences on a pristine tree"; }
assert_eq "$(cat "$tmp/va")" "" "rpm -Va output on a pristine tree"
echo changed >>"$root/etc/azl-app.conf"
echo changed >>"$root/usr/share/azl-payload/zstd.txt"
rpm --root "$root" --dbpath /var/lib/rpm -Va $capflag >"$tmp/va" 2>&1 && fail "rpm -Va saw no change"
assert_eq "$(grep -c . "$tmp/va")" "2" "rpm -Va lines"
assert_contains "$tmp/va" "  c /etc/azl-app.conf"
assert_contains "$tmp/va" "    /usr/share/azl-payload/zstd.txt"
echo "ok: rpmdb"
