#!/usr/bin/env python3
"""Generate a synthetic rpm-md repository (metadata only) for resolver
benchmarks and tests.

    gen_repo.py OUTDIR [--packages N] [--seed S] [--compress gz|xz|zst]

Writes OUTDIR/repodata/{repomd.xml, primary.xml.*, filelists.xml.*,
other.xml.*}.  The package graph looks like a distribution: a few hundred
libraries exporting sonames (some with an i686 build too), applications
requiring sonames, versioned library names, /bin/sh and /usr/bin/* file
dependencies, rich (a or b) dependencies, Recommends, obsoletes of renamed
packages, and a second version of every tenth package.  Every dependency
points at a lower-numbered package, so everything is installable.  The same
seed gives the same bytes (no timestamps).
"""
import argparse
import gzip
import hashlib
import io
import lzma
import os
import random
import subprocess
import sys
from xml.sax.saxutils import quoteattr

COMMON = "http://linux.duke.edu/metadata/common"
RPM = "http://linux.duke.edu/metadata/rpm"


class Pkg:
    def __init__(self, name, ver, arch="x86_64"):
        self.name, self.ver, self.rel, self.arch = name, ver, "1", arch
        self.provides, self.requires, self.recommends = [], [], []
        self.obsoletes, self.files = [], []

    @property
    def pkgid(self):
        key = f"{self.name}-{self.ver}-{self.rel}.{self.arch}"
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def location(self):
        return (f"Packages/{self.name[0]}/"
                f"{self.name}-{self.ver}-{self.rel}.{self.arch}.rpm")


def entry(dep):
    """dep: "name" or ("name", "GE", "1.0")."""
    if isinstance(dep, str):
        return f'<rpm:entry name={quoteattr(dep)}/>'
    name, flags, ver = dep
    return (f'<rpm:entry name={quoteattr(name)} flags="{flags}" '
            f'epoch="0" ver="{ver}"/>')


def deps(tag, items):
    if not items:
        return ""
    return f"<rpm:{tag}>" + "".join(entry(d) for d in items) + f"</rpm:{tag}>"


def primary_xml(p, size):
    self_prov = (f'<rpm:entry name={quoteattr(p.name)} flags="EQ" epoch="0" '
                 f'ver="{p.ver}" rel="{p.rel}"/>')
    provides = ("<rpm:provides>" + self_prov
                + "".join(entry(d) for d in p.provides) + "</rpm:provides>")
    # primary carries only the files dnf and createrepo_c put there.
    files = "".join(f"<file>{f}</file>" for f in p.files
                    if f.startswith("/etc/") or "bin/" in f)
    return (
        f'<package type="rpm"><name>{p.name}</name><arch>{p.arch}</arch>'
        f'<version epoch="0" ver="{p.ver}" rel="{p.rel}"/>'
        f'<checksum type="sha256" pkgid="YES">{p.pkgid}</checksum>'
        f'<summary>{p.name}</summary><description>synthetic</description>'
        f'<packager/><url/><time file="1700000000" build="1700000000"/>'
        f'<size package="{size}" installed="{size * 3}" archive="{size * 3}"/>'
        f'<location href="{p.location}"/>'
        f'<format><rpm:license>MIT</rpm:license><rpm:vendor/>'
        f'<rpm:group>Unspecified</rpm:group><rpm:buildhost>bench</rpm:buildhost>'
        f'<rpm:sourcerpm>{p.name}-{p.ver}-{p.rel}.src.rpm</rpm:sourcerpm>'
        f'<rpm:header-range start="4504" end="{4504 + size // 10}"/>'
        f'{provides}{deps("requires", p.requires)}'
        f'{deps("obsoletes", p.obsoletes)}{deps("recommends", p.recommends)}'
        f'{files}</format></package>\n')


def filelists_xml(p):
    files = "".join(f"<file>{f}</file>" for f in p.files)
    return (f'<package pkgid="{p.pkgid}" name="{p.name}" arch="{p.arch}">'
            f'<version epoch="0" ver="{p.ver}" rel="{p.rel}"/>{files}</package>\n')


def other_xml(p):
    return (f'<package pkgid="{p.pkgid}" name="{p.name}" arch="{p.arch}">'
            f'<version epoch="0" ver="{p.ver}" rel="{p.rel}"/></package>\n')


def generate(n, seed):
    rnd = random.Random(seed)
    pkgs = []
    sh = Pkg("bench-bash", "5.2")
    sh.files = ["/bin/sh", "/usr/bin/bash"]
    glibc = Pkg("bench-glibc", "2.38")
    glibc.provides = ["libc.so.6()(64bit)", "libm.so.6()(64bit)"]
    glibc.files = ["/usr/lib64/libc.so.6", "/etc/ld.so.conf"]
    sh.requires = ["libc.so.6()(64bit)"]
    pkgs += [glibc, sh]
    libs, tools = [], []  # (pkg, soname) and (pkg, file)
    for i in range(n - len(pkgs)):
        kind = rnd.random()
        name = f"bench-{'lib' if kind < 0.3 else 'app'}{i:05d}"
        p = Pkg(name, f"{rnd.randint(1, 9)}.{rnd.randint(0, 20)}")
        p.requires.append("libc.so.6()(64bit)")
        for _ in range(rnd.randint(0, 4)):
            if libs:
                p.requires.append(rnd.choice(libs)[1])
        if libs and rnd.random() < 0.2:
            lib = rnd.choice(libs)[0]
            p.requires.append((lib.name, "GE", "1.0"))
        if rnd.random() < 0.25:
            p.requires.append("/bin/sh")
        if tools and rnd.random() < 0.1:
            p.requires.append(rnd.choice(tools)[1])
        if len(libs) > 2 and rnd.random() < 0.05:
            a, b = rnd.sample(libs, 2)
            p.requires.append(f"({a[0].name} or {b[0].name})")
        if pkgs and rnd.random() < 0.1:
            p.recommends.append(rnd.choice(pkgs).name)
        if kind < 0.3:
            so = f"lib{name}.so.{rnd.randint(0, 3)}"
            p.provides.append(f"{so}()(64bit)")
            p.files.append(f"/usr/lib64/{so}")
            libs.append((p, f"{so}()(64bit)"))
            if rnd.random() < 0.2:
                q = Pkg(name, p.ver, "i686")
                q.provides.append(so)
                q.files.append(f"/usr/lib/{so}")
                pkgs.append(q)
        else:
            f = f"/usr/bin/{name}"
            p.files += [f, f"/usr/share/doc/{name}/README"]
            tools.append((p, f))
        if rnd.random() < 0.02:
            p.obsoletes.append((f"{name}-old", "LT", "2"))
            p.provides.append((f"{name}-old", "EQ", "2"))
        pkgs.append(p)
        if rnd.random() < 0.1:  # an older build beside the newest
            old = Pkg(name, "0." + p.ver, p.arch)
            old.provides, old.requires = list(p.provides), list(p.requires)
            old.files = list(p.files)
            pkgs.append(old)
    return pkgs[:n] if len(pkgs) > n else pkgs


def compress(data, how):
    if how == "gz":
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as g:
            g.write(data)
        return buf.getvalue(), ".gz"
    if how == "xz":
        return lzma.compress(data), ".xz"
    if how == "zst":
        out = subprocess.run(["zstd", "-q", "-c", "-3"], input=data,
                             stdout=subprocess.PIPE, check=True).stdout
        return out, ".zst"
    return data, ""


def write_md(outdir, kind, text, how):
    raw = text.encode()
    data, ext = compress(raw, how)
    href = f"repodata/{kind}.xml{ext}"
    with open(os.path.join(outdir, href), "wb") as f:
        f.write(data)
    return (f'<data type="{kind}">'
            f'<checksum type="sha256">{hashlib.sha256(data).hexdigest()}</checksum>'
            f'<open-checksum type="sha256">{hashlib.sha256(raw).hexdigest()}'
            f'</open-checksum><location href="{href}"/>'
            f'<timestamp>1700000000</timestamp><size>{len(data)}</size>'
            f'<open-size>{len(raw)}</open-size></data>\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--packages", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compress", choices=["gz", "xz", "zst", "none"], default="gz")
    a = ap.parse_args()
    pkgs = generate(a.packages, a.seed)
    os.makedirs(os.path.join(a.outdir, "repodata"), exist_ok=True)
    rnd = random.Random(a.seed + 1)
    n = len(pkgs)
    primary = "".join(primary_xml(p, rnd.randint(2000, 4000000)) for p in pkgs)
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    md = [
        write_md(a.outdir, "primary", f'{head}<metadata xmlns="{COMMON}" '
                 f'xmlns:rpm="{RPM}" packages="{n}">\n{primary}</metadata>\n',
                 a.compress),
        write_md(a.outdir, "filelists", f'{head}<filelists xmlns="http://linux.'
                 f'duke.edu/metadata/filelists" packages="{n}">\n'
                 + "".join(filelists_xml(p) for p in pkgs) + "</filelists>\n",
                 a.compress),
        write_md(a.outdir, "other", f'{head}<otherdata xmlns="http://linux.'
                 f'duke.edu/metadata/other" packages="{n}">\n'
                 + "".join(other_xml(p) for p in pkgs) + "</otherdata>\n",
                 a.compress),
    ]
    with open(os.path.join(a.outdir, "repodata", "repomd.xml"), "w") as f:
        f.write(f'{head}<repomd xmlns="http://linux.duke.edu/metadata/repo" '
                f'xmlns:rpm="{RPM}"><revision>1700000000</revision>\n'
                + "".join(md) + "</repomd>\n")
    print(f"{n} packages in {a.outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
