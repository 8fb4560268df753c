#!/bin/bash
# azl-compose sign / verify / build --sign-key over a fixture build, checked
# with stock openssl (the commands docs/signing.md gives), tamper tests
# (one flipped byte per artifact and in the signature, a swapped key, a
# missing file, a lockfile that differs), encrypted keys (passphrase from
# AZL_SIGN_PASSPHRASE and --passphrase-file), the key-mode warning, and
# no private key bytes in any output or temporary directory.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
touch "$t/.started" # the temp-dir scan looks at files written after this
azl_fixture_manifest "$t/img.yaml" base azl-app azl-foo-tools azl-shared-a azl-shared-b
printf 'outputs:\n  oci:\n    compression: gzip\n' >>"$t/img.yaml"
cd "$t"
assert_exit 0 "$AZL" build img.yaml -o out --cache-dir "$t/cache"
for f in img.spdx.json img.provenance.json; do
	assert_file "out/$f"
	assert_contains out/SHA256SUMS "  $f"
done
(cd out && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the outputs"

# Provenance: in-toto v1 + SLSA v1, subject = the outputs with their digests,
# resolved dependencies = the lockfile and every locked rpm.
python3 - out img.lock.json <<'PY'
import hashlib, json, sys
out, lock = sys.argv[1], json.load(open(sys.argv[2]))
p = json.load(open(out + "/img.provenance.json"))
assert p["_type"] == "https://in-toto.io/Statement/v1", p["_type"]
assert p["predicateType"] == "https://slsa.dev/provenance/v1"
subj = {s["name"]: s["digest"]["sha256"] for s in p["subject"]}
assert "img.oci.tar" in subj and "img.spdx.json" in subj, subj
for n, d in subj.items():
    assert hashlib.sha256(open(out + "/" + n, "rb").read()).hexdigest() == d, n
bd = p["predicate"]["buildDefinition"]
assert bd["buildType"].startswith("https://"), bd["buildType"]
assert bd["internalParameters"]["SOURCE_DATE_EPOCH"] == 1700000000
assert bd["externalParameters"]["manifest"]["digest"]["sha256"] == hashlib.sha256(open("img.yaml", "rb").read()).hexdigest()
deps = bd["resolvedDependencies"]
assert deps[0]["digest"]["sha256"] == hashlib.sha256(open("img.lock.json", "rb").read()).hexdigest()
want = sorted(q["checksum"].split(":")[1] for q in lock["packages"])
assert sorted(d["digest"]["sha256"] for d in deps[1:]) == want
assert all(d["uri"].endswith(".rpm") for d in deps[1:])
rb = p["predicate"]["runDetails"]["builder"]
assert rb["id"].startswith("https://") and rb["version"]["azl-compose"], rb
# SBOM: every locked package with version, arch (purl), license, sha256.
s = json.load(open(out + "/img.spdx.json"))
assert s["spdxVersion"] == "SPDX-2.3" and s["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
pk = {q["name"]: q for q in s["packages"] if q["SPDXID"].startswith("SPDXRef-Package-rpm-")}
assert sorted(pk) == sorted(q["name"] for q in lock["packages"]), sorted(pk)
for q in lock["packages"]:
    e = pk[q["name"]]
    assert e["versionInfo"] == q["version"] + "-" + q["release"], e
    assert e["checksums"][0]["checksumValue"] == q["checksum"].split(":")[1]
    assert e["externalRefs"][0]["referenceLocator"].startswith("pkg:rpm/%s/%s@" % (q["repo"], q["name"]))
    assert "arch=" + q["arch"] in e["externalRefs"][0]["referenceLocator"]
    assert e["licenseDeclared"] not in ("", None), e
PY
# The license comes from the rpm header, not a default.
lic=$(rpm -qp --qf '%{LICENSE}' "$(azl_fixture_repo base)"/Packages/a/azl-busybox-*.rpm 2>/dev/null)
python3 -c 'import json,sys; p=[q for q in json.load(open("out/img.spdx.json"))["packages"] if q["name"]=="azl-busybox"][0]; assert p["licenseDeclared"]==sys.argv[1], (p["licenseDeclared"], sys.argv[1])' "$lic"

keygen() { # TYPE FILE
	case $1 in
	ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" ;;
	ed25519) openssl genpkey -algorithm ED25519 -out "$2" ;;
	rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" ;;
	esac 2>/dev/null
	chmod 600 "$2"
	openssl pkey -in "$2" -pubout -out "${2%.pem}.pub"
}

# The stock openssl check for each key type, exactly as docs/signing.md.
openssl_verify() { # TYPE PUB DIR
	if [ "$1" = ed25519 ]; then
		openssl pkeyutl -verify -pubin -inkey "$2" -rawin -in "$3/SHA256SUMS" -sigfile <(base64 -d "$3/SHA256SUMS.sig")
	else
		openssl dgst -sha256 -verify "$2" -signature <(base64 -d "$3/SHA256SUMS.sig") "$3/SHA256SUMS"
	fi
}

flip_byte() { # FILE OFFSET: invert one byte in place
	python3 - "$1" "$2" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); i = int(sys.argv[2]) % len(b)
b[i] ^= 0xff; open(sys.argv[1], "wb").write(bytes(b))
PY
}

for type in ec ed25519 rsa; do
	keygen $type "$t/$type.pem"
	rm -f out/SHA256SUMS.sig
	assert_exit 0 "$AZL" sign out --key "$t/$type.pem"
	assert_file out/SHA256SUMS.sig
	assert_not_contains "$ERR" "warning" "$type: a 0600 key got a warning"
	openssl_verify $type "$t/$type.pub" out >/dev/null || fail "$type: stock openssl rejects the signature"
	assert_exit 0 "$AZL" verify out --key "$t/$type.pub" --lock img.lock.json
	assert_contains "$OUT" "PASS signature SHA256SUMS.sig"
	assert_contains "$OUT" "PASS packages img.spdx.json == img.lock.json"
	assert_contains "$OUT" "PASS packages img.oci.tar:/var/lib/rpm == img.lock.json"
	assert_not_contains "$OUT" "FAIL"
	cp -r out "out-$type"
done
# ECDSA signatures are DER ECDSA-Sig-Value (a SEQUENCE), Ed25519 raw 64 bytes.
base64 -d out-ec/SHA256SUMS.sig | head -c1 | od -An -tx1 | grep -q 30 || fail "ECDSA signature is not DER"
assert_eq "$(base64 -d out-ed25519/SHA256SUMS.sig | wc -c)" 64 "Ed25519 signature size"

# --json: one document, ok true.
assert_exit 0 "$AZL" verify out-ec --key ec.pub --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is True and len(d["checks"]) >= 5, d' "$OUT"

# Tampering: each artifact, the signature, a swapped key, a missing file.
tamper() { # NAME WHAT-TO-EXPECT CMD...
	local d="$t/tamper-$1" want=$2
	shift 2
	rm -rf "$d" && cp -r out-ec "$d"
	(cd "$d" && "$@")
	assert_exit 1 "$AZL" verify "$d" --key ec.pub --lock img.lock.json
	assert_contains "$OUT" "$want" "tamper $d"
	assert_contains "$OUT" "FAIL verification"
}
for f in img.oci.tar img.spdx.json img.provenance.json img.build.json; do
	tamper "$f" "FAIL file $f" flip_byte "$f" 1000
done
tamper sums "FAIL signature SHA256SUMS.sig" flip_byte SHA256SUMS 3
tamper missing "FAIL file img.provenance.json" rm img.provenance.json
resign_flipped() {
	base64 -d SHA256SUMS.sig >sig.bin && flip_byte sig.bin 20 && base64 -w0 sig.bin >SHA256SUMS.sig && rm sig.bin
}
tamper sig "FAIL signature SHA256SUMS.sig" resign_flipped
openssl_verify ec ec.pub "$t/tamper-sig" >/dev/null 2>&1 && fail "stock openssl accepts a flipped signature"
assert_exit 1 "$AZL" verify out-ec --key ed25519.pub
assert_contains "$OUT" "FAIL signature SHA256SUMS.sig"
assert_exit 1 "$AZL" verify out-ec --key rsa.pub --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is False and [c for c in d["checks"] if not c["ok"]][0]["check"]=="signature SHA256SUMS.sig", d' "$OUT"
# A lockfile that differs from the image (another rpm digest).
sed 's/"checksum": "sha256:[0-9a-f]\{4\}/"checksum": "sha256:0000/' img.lock.json >other.lock.json
cmp -s img.lock.json other.lock.json && fail "could not alter the lockfile copy"
assert_exit 1 "$AZL" verify out-ec --key ec.pub --lock other.lock.json
assert_contains "$OUT" "FAIL packages img.spdx.json == other.lock.json"
assert_contains "$OUT" "PASS packages img.oci.tar:/var/lib/rpm == other.lock.json" # NEVRAs still agree
# A lockfile missing one package: the SBOM and the image's rpmdb both differ.
python3 -c '
import json; l = json.load(open("img.lock.json"))
gone = [p for p in l["packages"] if p["name"] == "azl-shared-b"]; assert gone
l["packages"] = [p for p in l["packages"] if p["name"] != "azl-shared-b"]
json.dump(l, open("short.lock.json", "w"), indent=2)'
assert_exit 1 "$AZL" verify out-ec --key ec.pub --lock short.lock.json
assert_contains "$OUT" "FAIL packages img.spdx.json == short.lock.json: azl-shared-b-1.0-1.noarch"
assert_contains "$OUT" "FAIL packages img.oci.tar:/var/lib/rpm == short.lock.json: azl-shared-b-1.0-1.noarch only in the image's rpmdb"

# Encrypted key: passphrase from the environment or a file, never argv.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass pass:s3cret-pass -out enc.pem 2>/dev/null
chmod 600 enc.pem
openssl pkey -in enc.pem -passin pass:s3cret-pass -pubout -out enc.pub
assert_exit 2 env -u AZL_SIGN_PASSPHRASE "$AZL" sign out --key enc.pem
assert_contains "$ERR" "AZL_SIGN_PASSPHRASE"
assert_exit 2 env AZL_SIGN_PASSPHRASE=wrong "$AZL" sign out --key enc.pem
assert_contains "$ERR" "wrong passphrase"
assert_exit 0 env AZL_SIGN_PASSPHRASE=s3cret-pass "$AZL" sign out --key enc.pem
openssl_verify ec enc.pub out >/dev/null || fail "env passphrase: openssl rejects the signature"
printf 's3cret-pass\n' >pass.txt
rm out/SHA256SUMS.sig
assert_exit 0 env -u AZL_SIGN_PASSPHRASE "$AZL" sign out --key enc.pem --passphrase-file pass.txt
assert_exit 0 "$AZL" verify out --key enc.pub

# A key others can read gets a warning (and still signs).
cp ec.pem open.pem && chmod 644 open.pem
assert_exit 0 "$AZL" sign out --key open.pem
assert_contains "$ERR" "open.pem is readable by group or others"

# build --sign-key: signed at the end; SBOM and provenance unchanged by signing.
openssl req -new -x509 -key ec.pem -subj /CN=azl-test -days 1 -out ec.crt 2>/dev/null
assert_exit 0 "$AZL" build img.yaml -o signed --cache-dir "$t/cache" --sign-key ed25519.pem
assert_file signed/SHA256SUMS.sig
openssl_verify ed25519 ed25519.pub signed >/dev/null || fail "build --sign-key: openssl rejects the signature"
assert_exit 0 "$AZL" verify signed --key ed25519.pub --lock img.lock.json
cmp out/img.spdx.json signed/img.spdx.json || fail "SBOM differs between two builds"
cmp out/img.provenance.json signed/img.provenance.json || fail "provenance differs between two builds"
assert_exit 0 "$AZL" build img.yaml -o withcert --cache-dir "$t/cache" --sign-key ec.pem --sign-cert ec.crt
assert_file withcert/SHA256SUMS.pem
assert_exit 0 "$AZL" verify withcert --key withcert/SHA256SUMS.pem
assert_exit 2 "$AZL" sign out --key rsa.pem --cert ec.crt
assert_contains "$ERR" "not for the signing key"

# No private key material anywhere but the key files: outputs, the work
# area, the temporary directory.
python3 - "$t" "${TMPDIR:-/tmp}" <<'PY'
import os, subprocess, sys
t, tmp = sys.argv[1], sys.argv[2]
since = os.path.getmtime(os.path.join(t, ".started"))
keys = {"ec.pem", "ed25519.pem", "rsa.pem", "enc.pem", "open.pem"}
needles = []
for k in ("ec.pem", "ed25519.pem", "rsa.pem"):
    der = subprocess.run(["openssl", "pkey", "-in", os.path.join(t, k), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    needles.append(der)
    body = [l for l in open(os.path.join(t, k)).read().splitlines() if not l.startswith("-----")]
    needles += [l.encode() for l in body if len(l) >= 40]
needles.append(b"s3cret-pass")
skip_files = {os.path.join(t, k) for k in keys} | {os.path.join(t, "pass.txt")}
bad = []
for root in (t, tmp):
    for d, dirs, files in os.walk(root):
        if root == tmp and d.startswith(t):
            continue  # scanned as the first root
        for f in files:
            p = os.path.join(d, f)
            if p in skip_files or os.path.islink(p):
                continue
            try:
                st = os.stat(p)
                if st.st_size > 256 << 20 or (root == tmp and st.st_mtime < since):
                    continue
                data = open(p, "rb").read()
            except OSError:
                continue
            if any(n in data for n in needles):
                bad.append(p)
assert not bad, "private key bytes found in: %s" % bad[:10]
PY
echo "sign_verify: ok"
