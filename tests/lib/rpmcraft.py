#!/usr/bin/env python3
"""Craft minimal RPM packages with arbitrary, even hostile, contents.

rpmbuild refuses to make the packages the hardening tests need ("../" in
payload names, payload entries bigger than the header says, absurd header
counts), so this writes the format directly: a lead, a signature header
(region tag, SIZE, SHA256 of the main header), the main header (region
tag, name/version/release/arch, payload format and compressor, the file
tags rpm reads) and a gzip'd newc cpio payload.  Nothing is signed.

Usage: rpmcraft.py SPEC.json OUT.rpm  (SPEC "-" reads stdin)
       rpmcraft.py repo DIR SPEC.json...
The second form writes DIR/Packages/NAME.rpm for each spec and a minimal
repodata (repomd.xml, primary.xml.gz) from the specs themselves, so even a
package that rpm and createrepo_c refuse to read gets into a repository, as
it would from a hostile mirror.

SPEC keys (all optional but name):
  name, version ("1"), release ("1"), arch ("noarch")
  files: [{path, mode (int, with type bits; default 0o100644),
           data (str) | zeros (int: that many zero bytes), link, rdev,
           user, group, flags, mtime, caps ("cap_net_raw=ep"),
           hdr_size (int: the size the header declares, default the
           content's), cpio_name (default "." + path), cpio_size (the
           entry's size in cpio, default the content's; extra bytes are
           zeros), in_cpio (false: no payload entry)}]
  extra_cpio: [{name, zeros}]   entries the header does not list
  post: "shell text"            a %post scriptlet (/bin/sh)
  synthetic_files: N            N more empty files /f/<i> (header only)
  trailing_zeros: N             N zero bytes after the cpio trailer
  xz_dict: N                    an xz payload declaring an N-byte dictionary
  hdr_il, hdr_dl, sig_il, sig_dl: override the counts in a header's intro
                                 (the rest of the file stays as it was)
  tag_counts: {"TAG": N}        override one index entry's value count
  tag_values: {"TAG": [...]}    replace one tag's values (data and count)
  truncate: N                   cut the file to N bytes at the end

Zero runs are compressed once per MiB and the deflate block repeated, so a
multi-GiB payload costs seconds and a few MB, like a real decompression
bomb.
"""
import gzip
import hashlib
import json
import os
import struct
import sys
import zlib

# tag numbers (rpm/rpmtag.h)
T = dict(
    HEADERSIGNATURES=62, HEADERIMMUTABLE=63,
    SIG_SIZE=1000, SIG_SHA256=273,
    NAME=1000, VERSION=1001, RELEASE=1002, SUMMARY=1004, DESCRIPTION=1005,
    BUILDTIME=1006, SIZE=1009, LICENSE=1014, GROUP=1016, OS=1021, ARCH=1022,
    FILESIZES=1028, FILEMODES=1030, FILERDEVS=1033, FILEMTIMES=1034,
    FILEDIGESTS=1035, FILELINKTOS=1036, FILEFLAGS=1037, FILEUSERNAME=1039,
    FILEGROUPNAME=1040, FILEVERIFYFLAGS=1045, FILEDEVICES=1095,
    FILEINODES=1096, FILELANGS=1097, DIRINDEXES=1116, BASENAMES=1117,
    DIRNAMES=1118, PAYLOADFORMAT=1124, PAYLOADCOMPRESSOR=1125,
    PAYLOADFLAGS=1126, FILEDIGESTALGO=5011, PAYLOADDIGEST=5092,
    PAYLOADDIGESTALGO=5093, POSTIN=1024, POSTINPROG=1086, FILECAPS=5010,
)
# types
INT16, INT32, STRING, BIN, STRING_ARRAY = 3, 4, 6, 7, 8
ALIGN = {INT16: 2, INT32: 4}
MIB = 1 << 20


def header(entries, region, il=None, dl=None, counts=None):
    """entries: [(tag, type, values)]; returns the header bytes.  counts
    {tag: n} replaces an entry's count in the index (the data stays)."""
    entries = sorted(entries)
    store = b""
    index = []
    for tag, typ, val in entries:
        pad = (-len(store)) % ALIGN.get(typ, 1)
        store += b"\0" * pad
        off = len(store)
        if typ == INT16:
            data, count = b"".join(struct.pack(">H", v) for v in val), len(val)
        elif typ == INT32:
            data, count = b"".join(struct.pack(">I", v) for v in val), len(val)
        elif typ == STRING:
            data, count = val.encode() + b"\0", 1
        elif typ == STRING_ARRAY:
            data, count = b"".join(v.encode() + b"\0" for v in val), len(val)
        else:
            data, count = val, len(val)
        store += data
        count = (counts or {}).get(str(tag), count)
        index.append(struct.pack(">iIiI", tag, typ, off, count))
    n = len(index) + 1
    # The region trailer: a copy of the region entry whose offset is minus
    # the size of the region's index (rpm's hdrblobVerifyRegion).
    trailer = struct.pack(">iIiI", region, BIN, -n * 16, 16)
    reg = struct.pack(">iIiI", region, BIN, len(store), 16)
    store += trailer
    intro = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(
        ">II", n if il is None else il, len(store) if dl is None else dl)
    return intro + reg + b"".join(index) + store


def cpio_entry(name, mode, size, nlink=1, ino=0, rdev=0):
    # newc sizes are 8 hex digits: a bigger entry claims the most it can
    fields = [ino, mode, 0, 0, nlink, 0, min(size, 0xFFFFFFFF), 0, 0, rdev >> 8, rdev & 0xff,
              len(name) + 1, 0]
    h = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
    return h + b"\0" * ((-len(h)) % 4)


class Payload:
    """A gzip stream written in pieces; zero runs cost one deflate block."""

    def __init__(self):
        # Raw deflate with our own gzip wrapper: the trailer's CRC and size
        # must count the repeated blocks the compressor never saw.
        self.z = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"]
        self.crc = 0
        self.size = 0
        self.zero_block = None

    def add(self, data):
        self.out.append(self.z.compress(data))
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)

    def zeros(self, n):
        if n < 4 * MIB:
            self.add(b"\0" * n)
            return
        # A full flush resets the window, so compressing the same MiB again
        # yields the same bytes: compress it once, repeat it.
        self.out.append(self.z.flush(zlib.Z_FULL_FLUSH))
        mib = b"\0" * MIB
        if self.zero_block is None:
            self.zero_block = self.z.compress(mib) + self.z.flush(zlib.Z_FULL_FLUSH)
        else:
            self.z.compress(mib)
            self.z.flush(zlib.Z_FULL_FLUSH)
        whole = n // MIB
        self.out.append(self.zero_block * whole)
        self.crc = crc32_zeros(self.crc, whole * MIB)
        self.size += whole * MIB
        self.add(b"\0" * (n - whole * MIB))

    def finish(self):
        self.out.append(self.z.flush())
        self.out.append(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        return b"".join(self.out)


def _gf2_times(mat, vec):
    s, i = 0, 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat):
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_zeros(crc, n):
    """crc32 of (data whose crc32 is crc) followed by n zero bytes, in
    log(n) steps: zlib's crc32_combine operator squaring."""
    reg = crc ^ 0xFFFFFFFF  # the register before the final inversion
    odd = [0xEDB88320] + [1 << k for k in range(31)]  # one zero bit
    even = _gf2_square(odd)   # two bits
    odd = _gf2_square(even)   # four bits
    while n:
        even = _gf2_square(odd)
        if n & 1:
            reg = _gf2_times(even, reg)
        n >>= 1
        if not n:
            break
        odd = _gf2_square(even)
        if n & 1:
            reg = _gf2_times(odd, reg)
        n >>= 1
    return reg ^ 0xFFFFFFFF


def content(f):
    if "data" in f:
        return len(f["data"].encode()), f["data"].encode()
    return f.get("zeros", 0), None


def build(spec):
    files = spec.get("files", [])
    nsyn = spec.get("synthetic_files", 0)
    dirs, dirindex, bases = [], [], []
    for f in files:
        d, _, b = f["path"].rpartition("/")
        d += "/"
        if d not in dirs:
            dirs.append(d)
        dirindex.append(dirs.index(d))
        bases.append(b)
    if nsyn:
        dirs.append("/f/")
        dirindex += [len(dirs) - 1] * nsyn
        bases += ["%d" % i for i in range(nsyn)]
    n = len(files) + nsyn
    modes = [f.get("mode", 0o100644) for f in files] + [0o100644] * nsyn
    sizes = [f.get("hdr_size", len(f.get("link", "")) if f.get("link") else content(f)[0])
             for f in files] + [0] * nsyn
    digests = []
    for f in files:
        size, data = content(f)
        if (f.get("mode", 0o100644) & 0o170000) != 0o100000:
            digests.append("")
        elif data is not None:
            digests.append(hashlib.sha256(data).hexdigest())
        else:
            digests.append("")  # big zero runs: no digest, size still checked
    digests += [""] * nsyn
    hdr = [
        (T["NAME"], STRING, spec["name"]),
        (T["VERSION"], STRING, spec.get("version", "1")),
        (T["RELEASE"], STRING, spec.get("release", "1")),
        (T["SUMMARY"], STRING, "crafted"),
        (T["DESCRIPTION"], STRING, "crafted by tests/lib/rpmcraft.py"),
        (T["BUILDTIME"], INT32, [1700000000]),
        (T["LICENSE"], STRING, "MIT"),
        (T["GROUP"], STRING, "Unspecified"),
        (T["OS"], STRING, "linux"),
        (T["ARCH"], STRING, spec.get("arch", "noarch")),
        (T["PAYLOADFORMAT"], STRING, "cpio"),
        (T["PAYLOADCOMPRESSOR"], STRING, "@COMPRESSOR@"),
        (T["PAYLOADFLAGS"], STRING, "9"),
    ]
    if "post" in spec:
        hdr += [(T["POSTIN"], STRING, spec["post"]),
                (T["POSTINPROG"], STRING, "/bin/sh")]
    if n:
        hdr += [
            (T["SIZE"], INT32, [min(sum(sizes), 0xFFFFFFFF)]),
            (T["FILESIZES"], INT32, [min(s, 0xFFFFFFFF) for s in sizes]),
            (T["FILEMODES"], INT16, modes),
            (T["FILERDEVS"], INT16, [f.get("rdev", 0) for f in files] + [0] * nsyn),
            (T["FILEMTIMES"], INT32, [f.get("mtime", 1700000000) for f in files] + [1700000000] * nsyn),
            (T["FILEDIGESTS"], STRING_ARRAY, digests),
            (T["FILELINKTOS"], STRING_ARRAY, [f.get("link", "") for f in files] + [""] * nsyn),
            (T["FILEFLAGS"], INT32, [f.get("flags", 0) for f in files] + [0] * nsyn),
            (T["FILEUSERNAME"], STRING_ARRAY, [f.get("user", "root") for f in files] + ["root"] * nsyn),
            (T["FILEGROUPNAME"], STRING_ARRAY, [f.get("group", "root") for f in files] + ["root"] * nsyn),
            (T["FILEVERIFYFLAGS"], INT32, [0xFFFFFFFF] * n),
            (T["FILEDEVICES"], INT32, [1] * n),
            (T["FILEINODES"], INT32, list(range(1, n + 1))),
            (T["FILELANGS"], STRING_ARRAY, [""] * n),
            (T["DIRINDEXES"], INT32, dirindex),
            (T["BASENAMES"], STRING_ARRAY, bases),
            (T["DIRNAMES"], STRING_ARRAY, dirs),
            (T["FILEDIGESTALGO"], INT32, [8]),
        ]
        if any("caps" in f for f in files):
            hdr.append((T["FILECAPS"], STRING_ARRAY,
                        [f.get("caps", "") for f in files] + [""] * nsyn))
    p = Payload()
    for i, f in enumerate(files):
        if not f.get("in_cpio", True):
            continue
        size, data = content(f)
        mode = f.get("mode", 0o100644)
        kind = mode & 0o170000
        if kind == 0o120000:
            data, size = f.get("link", "").encode(), len(f.get("link", ""))
        elif kind != 0o100000:
            data, size = b"", 0
        csize = f.get("cpio_size", size)
        p.add(cpio_entry(f.get("cpio_name", "." + f["path"]), mode, csize,
                         ino=i + 1, rdev=f.get("rdev", 0)))
        if data is not None:
            p.add(data[:csize])
            p.zeros(max(0, csize - len(data)))
        else:
            p.zeros(csize)
        p.add(b"\0" * ((-csize) % 4))
    for e in spec.get("extra_cpio", []):
        p.add(cpio_entry(e["name"], 0o100644, e.get("zeros", 0)))
        p.zeros(e.get("zeros", 0))
        p.add(b"\0" * ((-e.get("zeros", 0)) % 4))
    p.add(cpio_entry("TRAILER!!!", 0, 0))
    p.zeros(spec.get("trailing_zeros", 0))
    gz = p.finish()
    compressor = "gzip"
    if "xz_dict" in spec:
        # Small payloads only: recompressed whole, with the dictionary size
        # asked for (the decoder allocates what the stream declares).
        import lzma
        compressor = "xz"
        gz = lzma.compress(gzip.decompress(gz), format=lzma.FORMAT_XZ, filters=[
            {"id": lzma.FILTER_LZMA2, "dict_size": spec["xz_dict"], "mf": lzma.MF_HC3,
             "nice_len": 8, "depth": 1}])
    hdr = [(t, ty, compressor if v == "@COMPRESSOR@" else v) for t, ty, v in hdr]
    values = spec.get("tag_values", {})
    hdr = [(t, ty, values.get(str(t), v)) for t, ty, v in hdr]
    hdr += [(T["PAYLOADDIGEST"], STRING_ARRAY, [hashlib.sha256(gz).hexdigest()]),
            (T["PAYLOADDIGESTALGO"], INT32, [8])]
    main = header(hdr, T["HEADERIMMUTABLE"], spec.get("hdr_il"), spec.get("hdr_dl"),
                  spec.get("tag_counts"))

    sig = header([
        (T["SIG_SIZE"], INT32, [min(len(main) + len(gz), 0xFFFFFFFF)]),
        (T["SIG_SHA256"], STRING, hashlib.sha256(main).hexdigest()),
    ], T["HEADERSIGNATURES"], spec.get("sig_il"), spec.get("sig_dl"))
    sig += b"\0" * ((-len(sig)) % 8)
    lead = struct.pack(">4sBBhh66shh16s", b"\xed\xab\xee\xdb", 3, 0, 0, 0,
                       ("%s-%s-%s" % (spec["name"], spec.get("version", "1"),
                                      spec.get("release", "1"))).encode()[:65],
                       1, 5, b"")
    out = lead + sig + main + gz
    if "truncate" in spec:
        out = out[:spec["truncate"]]
    return out


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def primary_entry(spec, rpm, href):
    e = lambda k, d: xml_escape(str(spec.get(k, d)))
    return (
        '<package type="rpm"><name>%s</name><arch>%s</arch>'
        '<version epoch="0" ver="%s" rel="%s"/>'
        '<checksum type="sha256" pkgid="YES">%s</checksum>'
        '<summary>crafted</summary><description>crafted</description>'
        '<packager></packager><url></url><time file="1700000000" build="1700000000"/>'
        '<size package="%d" installed="0" archive="0"/><location href="%s"/>'
        '<format><rpm:license>MIT</rpm:license><rpm:provides>'
        '<rpm:entry name="%s" flags="EQ" epoch="0" ver="%s" rel="%s"/>'
        '</rpm:provides></format></package>\n'
        % (e("name", ""), e("arch", "noarch"), e("version", "1"), e("release", "1"),
           hashlib.sha256(rpm).hexdigest(), len(rpm), xml_escape(href),
           e("name", ""), e("version", "1"), e("release", "1")))


def write_repo(d, specs):
    os.makedirs(os.path.join(d, "Packages"), exist_ok=True)
    os.makedirs(os.path.join(d, "repodata"), exist_ok=True)
    body = []
    for path in specs:
        with open(path) as f:
            spec = json.load(f)
        rpm = build(spec)
        href = "Packages/%s.rpm" % spec["name"]
        with open(os.path.join(d, href), "wb") as f:
            f.write(rpm)
        body.append(primary_entry(spec, rpm, href))
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<metadata xmlns="http://linux.duke.edu/metadata/common" '
           'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="%d">\n%s</metadata>\n'
           % (len(body), "".join(body))).encode()
    gz = gzip.compress(xml, mtime=0)
    with open(os.path.join(d, "repodata", "primary.xml.gz"), "wb") as f:
        f.write(gz)
    repomd = ('<?xml version="1.0" encoding="UTF-8"?>\n'
              '<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1700000000</revision>'
              '<data type="primary"><checksum type="sha256">%s</checksum>'
              '<open-checksum type="sha256">%s</open-checksum>'
              '<location href="repodata/primary.xml.gz"/><timestamp>1700000000</timestamp>'
              '<size>%d</size><open-size>%d</open-size></data></repomd>\n'
              % (hashlib.sha256(gz).hexdigest(), hashlib.sha256(xml).hexdigest(),
                 len(gz), len(xml)))
    with open(os.path.join(d, "repodata", "repomd.xml"), "w") as f:
        f.write(repomd)


def main(argv):
    if len(argv) >= 3 and argv[1] == "repo":
        write_repo(argv[2], argv[3:])
        return 0
    if len(argv) != 3:
        sys.stderr.write("usage: rpmcraft.py SPEC.json|- OUT.rpm | repo DIR SPEC.json...\n")
        return 2
    src = sys.stdin if argv[1] == "-" else open(argv[1])
    spec = json.load(src)
    data = build(spec)
    with open(argv[2], "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
