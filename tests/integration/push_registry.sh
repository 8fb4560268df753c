#!/bin/bash
# azl-compose push against a real registry and a real client: Debian's
# docker-registry (distribution 2.8) started on 127.0.0.1 by this test,
# read back with skopeo.
#   - plain http (--insecure), chunked (PATCH) and monolithic uploads, the
#     digest skopeo inspect reports = the oci.tar's manifest digest;
#   - the cosign signature: skopeo with use-sigstore-attachments finds the
#     sha256-<digest>.sig attachment and copies it; its payload passes
#     containers/image's parsing rules and names the digest and the pushed
#     reference; its signature verifies with stock openssl under the
#     signing key and fails under another key (skopeo's own sigstoreSigned
#     policy check where the installed skopeo has it: Debian 12 builds it
#     out, see docs/signing.md);
#   - re-push uploads nothing (the registry's log has no new upload);
#     a second tag adds a second signature;
#   - https with --ca-file + htpasswd basic auth: right password pushes,
#     wrong or missing password and a missing CA fail clearly; the password
#     is in no output;
#   - errors: a corrupt blob (DIGEST_INVALID named), bad usage (exit 2);
#   - one 503 for each kind of request (through tests/lib/faultproxy.py):
#     each is sent again and the push completes; a registry that keeps
#     answering 503 fails the push after the retry budget.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

for tool in docker-registry skopeo htpasswd openssl curl; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done

# Debian's python3 (starts fast; a pyenv shim in PATH may not).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
py() { "$PY" "$@"; }

t=$(azl_tmpdir)
cd "$t"

free_port() {
	py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME PORT [YAML...]: docker-registry on 127.0.0.1:PORT with
# its own storage; extra YAML (tls, auth) appended under the top level.
start_registry() {
	local name=$1 port=$2 pid i scheme=http
	shift 2
	{
		printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$t/$name-store"
		printf '  delete:\n    enabled: true\n'
		printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
		printf '%s\n' "$@"
	} >"$t/$name.yml"
	case "$*" in *tls:*) scheme=https ;; esac
	docker-registry serve "$t/$name.yml" >"$t/$name.log" 2>&1 &
	pid=$!
	azl_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	for ((i = 0; i < 100; i++)); do
		curl -sk -o /dev/null "$scheme://127.0.0.1:$port/v2/" && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$t/$name.log" >&2; fail "docker-registry $name exited"; }
		sleep 0.2
	done
	fail "docker-registry $name did not answer on port $port"
}

uploads() { # LOG: blob upload sessions started so far
	grep -c '"POST /v2/[^ ]*/blobs/uploads/ ' "$1" || true
}

# ---- the image and the keys ----
azl_fixture_manifest "$t/img.yaml" base azl-app azl-shared-a
printf 'outputs:\n  oci:\n    compression: gzip\n' >>"$t/img.yaml"
assert_exit 0 "$AZL" build img.yaml -o out --cache-dir "$t/cache"
digest=$(py -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
	<(tar -xOf out/img.oci.tar index.json))
[[ $digest == sha256:* ]] || fail "no manifest digest in out/img.oci.tar"
layer_size=$(tar -xOf out/img.oci.tar "blobs/sha256/${digest#sha256:}" |
	py -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["size"])')
[ "$layer_size" -gt 200000 ] || fail "fixture layer too small ($layer_size) to cover chunked uploads"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
chmod 600 key.pem
openssl pkey -in key.pem -pubout -out pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-key.pem 2>/dev/null
openssl pkey -in other-key.pem -pubout -out other.pem

# ---- plain http, chunked, signed ----
pa=$(free_port)
start_registry plain "$pa"
ref=127.0.0.1:$pa/azl/img:v1
assert_exit 0 "$AZL" push out/img.oci.tar "$ref" --insecure --sign-key key.pem --chunk-size 65536
assert_eq "$(cat "$OUT")" "127.0.0.1:$pa/azl/img@$digest" "push prints the pushed digest"
assert_contains "$ERR" "4 blobs uploaded"
patches=$(grep -c '"PATCH /v2/azl/img/blobs/uploads/' "$t/plain.log" || true)
want=$(( (layer_size + 65535) / 65536 ))
assert_eq "$patches" "$want" "PATCH requests for a $layer_size-byte layer in 64 KiB chunks"
assert_contains "$ERR" "in $want chunks"

# The payload and signature are kept beside the archive, in the
# cosign-blob form stock openssl checks.
assert_file out/img.oci.payload.json
assert_file out/img.oci.payload.json.sig
openssl dgst -sha256 -verify pub.pem -signature <(base64 -d out/img.oci.payload.json.sig) \
	out/img.oci.payload.json >/dev/null || fail "kept signature does not verify under the key"
if openssl dgst -sha256 -verify other.pem -signature <(base64 -d out/img.oci.payload.json.sig) \
	out/img.oci.payload.json >/dev/null 2>&1; then
	fail "kept signature verifies under another key"
fi
# The private key reaches no output and no log.
keyline=$(sed -n 2p key.pem)
grep -rqF -- "$keyline" out "$ERR" "$OUT" "$t/plain.log" && fail "private key bytes in an output or log"

# skopeo: the digest, and the image itself.
skopeo inspect --tls-verify=false "docker://$ref" >inspect.json
py - inspect.json "$digest" <<'PY'
import json, sys
i = json.load(open(sys.argv[1]))
assert i["Digest"] == sys.argv[2], (i["Digest"], sys.argv[2])
assert i["Architecture"] == "amd64" and len(i["Layers"]) == 1, i
PY
skopeo inspect --raw --tls-verify=false "docker://$ref" >raw.json
assert_eq "sha256:$(sha256sum <raw.json | cut -d' ' -f1)" "$digest" "raw manifest digest"
cmp raw.json <(tar -xOf out/img.oci.tar "blobs/sha256/${digest#sha256:}") || fail "registry manifest differs from the archive's"

# skopeo with use-sigstore-attachments finds and copies the signature.
mkdir regd
printf 'docker:\n  127.0.0.1:%s:\n    use-sigstore-attachments: true\n' "$pa" >regd/azl.yaml
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >accept.json
skopeo --policy accept.json --registries.d regd copy -q --src-tls-verify=false \
	"docker://$ref" "dir:$t/copy1" || fail "skopeo copy of the signed image failed"
ls copy1/signature-* >/dev/null 2>&1 || fail "skopeo found no sigstore signature"
assert_no_file copy1/signature-2

# containers/image's rules for a sigstore signature (internal/signature +
# signature/internal/sigstore_payload.go): the MIME type, the payload's
# exact fields, its digest and reference; then the signature itself with
# stock openssl, under our key and under another.
check_sigs() { # DIR REF...: every signature-N of DIR, payload and signature files out
	py - "$@" <<'PY'
import base64, glob, hashlib, json, sys
d, refs = sys.argv[1], sys.argv[2:]
man = open(d + "/manifest.json", "rb").read()
digest = "sha256:" + hashlib.sha256(man).hexdigest()
seen = []
for f in sorted(glob.glob(d + "/signature-*")):
    blob = open(f, "rb").read()
    assert blob.startswith(b"\x00sigstore-json\n"), blob[:20]
    s = json.loads(blob[len(b"\x00sigstore-json\n"):])
    assert s["mimeType"] == "application/vnd.dev.cosign.simplesigning.v1+json", s["mimeType"]
    payload = base64.b64decode(s["payload"])
    p = json.loads(payload)
    assert set(p) == {"critical", "optional"}, p
    assert set(p["critical"]) == {"type", "image", "identity"}, p
    assert p["critical"]["type"] == "cosign container image signature"
    assert set(p["critical"]["image"]) == {"docker-manifest-digest"}
    assert p["critical"]["image"]["docker-manifest-digest"] == digest, (p, digest)
    assert set(p["critical"]["identity"]) == {"docker-reference"}
    seen.append(p["critical"]["identity"]["docker-reference"])
    open(f + ".payload", "wb").write(payload)
    open(f + ".sig", "wb").write(base64.b64decode(s["annotations"]["dev.cosignproject.cosign/signature"]))
assert sorted(seen) == sorted(refs), (seen, refs)
PY
}
verify_sigs() { # DIR PUB: 0 if every signature verifies
	local f
	for f in "$1"/signature-*.payload; do
		openssl dgst -sha256 -verify "$2" -signature "${f%.payload}.sig" "$f" >/dev/null 2>&1 || return 1
	done
}
check_sigs copy1 "$ref" || fail "the signature skopeo copied breaks containers/image's payload rules"
verify_sigs copy1 pub.pem || fail "the signature skopeo copied does not verify under the signing key"
verify_sigs copy1 other.pem && fail "the signature skopeo copied verifies under another key"

# skopeo's own sigstoreSigned check, where this skopeo implements it.
policy() { # PUB
	printf '{"default":[{"type":"reject"}],"transports":{"docker":{"127.0.0.1:%s/azl/img":[{"type":"sigstoreSigned","keyPath":"%s"}]}}}\n' "$pa" "$1"
}
policy "$t/pub.pem" >policy-ok.json
policy "$t/other.pem" >policy-other.json
rc=0
skopeo --policy policy-ok.json --registries.d regd copy -q --src-tls-verify=false \
	"docker://$ref" "dir:$t/copy-ok" 2>sk.err || rc=$?
if grep -q "sigstore disabled" sk.err; then
	echo "note: this skopeo is built without sigstore verification ($(head -c 200 sk.err)); the openssl checks above stand in for it"
else
	[ "$rc" -eq 0 ] || { cat sk.err >&2; fail "skopeo sigstoreSigned policy rejected the signed image"; }
	if skopeo --policy policy-other.json --registries.d regd copy -q --src-tls-verify=false \
		"docker://$ref" "dir:$t/copy-other" 2>sk.err; then
		fail "skopeo accepted the image under another key"
	fi
fi

# Re-push: nothing uploaded, same digest, still one signature.
before=$(uploads "$t/plain.log")
assert_exit 0 "$AZL" push out/img.oci.tar "$ref" --insecure --sign-key key.pem
assert_eq "$(cat "$OUT")" "127.0.0.1:$pa/azl/img@$digest"
assert_contains "$ERR" "0 blobs uploaded"
assert_contains "$ERR" "4 already present"
assert_eq "$(uploads "$t/plain.log")" "$before" "upload sessions after a re-push"
# A second tag: its own payload joins the signature manifest.
ref2=127.0.0.1:$pa/azl/img:v2
assert_exit 0 "$AZL" push out/img.oci.tar "$ref2" --insecure --sign-key key.pem
assert_contains "$ERR" "2 signatures"
skopeo --policy accept.json --registries.d regd copy -q --src-tls-verify=false \
	"docker://$ref2" "dir:$t/copy2" || fail "skopeo copy of the second tag failed"
check_sigs copy2 "$ref" "$ref2" || fail "second-tag signatures wrong"
verify_sigs copy2 pub.pem || fail "a signature of the second tag does not verify"

# An unsigned push leaves no payload behind and pushes no signature tag.
cp out/img.oci.tar plain.oci.tar
assert_exit 0 "$AZL" push plain.oci.tar "127.0.0.1:$pa/other/img:v1" --insecure
assert_no_file plain.oci.payload.json
assert_not_contains "$ERR" "signature"

# ---- errors ----
assert_exit 1 "$AZL" push out/img.oci.tar "$ref"
assert_contains "$ERR" "https://127.0.0.1:$pa/v2/"
assert_contains "$ERR" "--insecure"
assert_exit 2 "$AZL" push out/img.oci.tar "127.0.0.1:$pa/Bad/Name:v1" --insecure
assert_contains "$ERR" "Bad/Name"
assert_exit 2 "$AZL" push missing.oci.tar "$ref" --insecure
assert_contains "$ERR" "missing.oci.tar"
assert_exit 2 "$AZL" push out/img.oci.tar "$ref" --insecure --password secret
assert_exit 2 "$AZL" push out/img.oci.tar "$ref" --insecure --user alice
assert_exit 2 "$AZL" push out/img.oci.tar "$ref" --insecure --chunk-size 0
# A blob whose bytes do not match its digest: the registry refuses it and
# the error names the upload and the registry's code; the tag is not moved.
py - out/img.oci.tar bad.oci.tar "$digest" <<'PY'
import json, shutil, sys, tarfile
src, dst, digest = sys.argv[1:]
shutil.copy(src, dst)
with tarfile.open(src) as t:
    m = json.load(t.extractfile("blobs/sha256/" + digest[7:]))
    off = t.getmember("blobs/sha256/" + m["layers"][0]["digest"][7:]).offset_data
with open(dst, "r+b") as f:
    f.seek(off + 5000)
    b = f.read(1)
    f.seek(off + 5000)
    f.write(bytes([b[0] ^ 0xff]))
PY
assert_exit 1 "$AZL" push bad.oci.tar "127.0.0.1:$pa/azl/bad:v1" --insecure
assert_contains "$ERR" "DIGEST_INVALID"
assert_contains "$ERR" "http://127.0.0.1:$pa/v2/azl/bad/blobs/uploads/"
curl -s "http://127.0.0.1:$pa/v2/azl/bad/manifests/v1" | grep -q MANIFEST_UNKNOWN ||
	fail "a failed push left a tag"

# ---- server errors and cut connections, through a fault proxy ----
# start_proxy NAME RULE...: tests/lib/faultproxy.py in front of the plain
# registry; sets $proxy to its port.
start_proxy() {
	local name=$1 ppid i args=()
	shift
	for r in "$@"; do args+=(--fail "$r"); done
	# Not through py(): $! must be the proxy itself for the exit trap's
	# kill (through the function it was a subshell, and the proxy outlived
	# the test).
	"$PY" "$AZL_TOP/tests/lib/faultproxy.py" --upstream "http://127.0.0.1:$pa" \
		--port-file "$t/$name.port" --log "$t/$name.log" "${args[@]}" &
	ppid=$!
	azl_on_exit "kill $ppid 2>/dev/null; wait $ppid 2>/dev/null"
	for ((i = 0; i < 100; i++)); do [ -s "$t/$name.port" ] && break; sleep 0.05; done
	proxy=$(cat "$t/$name.port") || fail "fault proxy $name did not start"
}
# One 503 for each kind of request push makes: each is sent again, the push
# completes and the registry holds the image.
start_proxy flaky 'GET ^/v2/$ 1' 'HEAD /blobs/sha256: 1' 'POST /blobs/uploads/$ 1' \
	'PUT /manifests/v1$ 1'
AZL_FETCH_BACKOFF_MS=20 assert_exit 0 "$AZL" push out/img.oci.tar "127.0.0.1:$proxy/azl/flaky:v1" --insecure
assert_contains "$ERR" "4 requests sent again"
assert_eq "$(grep -c ' 503$' "$t/flaky.log")" 4 "503 answers the proxy gave"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://127.0.0.1:$pa/v2/azl/flaky/manifests/$digest")" 200 "image pushed through the faults"
# A registry that keeps failing: the push gives up after the retry budget
# (1 + AZL_FETCH_RETRIES requests) and names the URL and the status.
start_proxy down 'GET ^/v2/$ -1'
AZL_FETCH_BACKOFF_MS=20 AZL_FETCH_RETRIES=2 assert_exit 1 "$AZL" push out/img.oci.tar \
	"127.0.0.1:$proxy/azl/down:v1" --insecure
assert_contains "$ERR" "http://127.0.0.1:$proxy/v2/"
assert_contains "$ERR" "HTTP 503"
assert_eq "$(grep -c '^GET /v2/ 503$' "$t/down.log")" 3 "requests to a failing registry"

# ---- https with a CA file + htpasswd basic auth ----
mkdir tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls/ca.key \
	-out tls/ca.pem -days 2 -subj "/CN=azl test CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls/srv.key \
	-out tls/srv.csr -subj "/CN=127.0.0.1" 2>/dev/null
openssl x509 -req -in tls/srv.csr -CA tls/ca.pem -CAkey tls/ca.key -CAcreateserial \
	-out tls/srv.pem -days 2 -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') 2>/dev/null
password="pw-$(openssl rand -hex 8)"
printf '%s\n' "$password" | htpasswd -B -i -c tls/htpasswd alice 2>/dev/null
printf '%s\n' "$password" >pw
printf 'wrong-password\n' >badpw
pb=$(free_port)
start_registry tls "$pb" \
	"  tls:" "    certificate: $t/tls/srv.pem" "    key: $t/tls/srv.key" \
	"auth:" "  htpasswd:" "    realm: azl-test" "    path: $t/tls/htpasswd"
refb=127.0.0.1:$pb/azl/img:v1
assert_exit 1 "$AZL" push out/img.oci.tar "$refb" --user alice --password-file pw
assert_contains "$ERR" "certificate"
assert_contains "$ERR" "--ca-file"
assert_exit 1 "$AZL" push out/img.oci.tar "$refb" --ca-file tls/ca.pem
assert_contains "$ERR" "HTTP 401"
assert_contains "$ERR" "authentication required"
assert_exit 1 "$AZL" push out/img.oci.tar "$refb" --ca-file tls/ca.pem --user alice --password-file badpw
assert_contains "$ERR" "authentication failed"
assert_contains "$ERR" "https://127.0.0.1:$pb/v2/"
assert_exit 0 "$AZL" push out/img.oci.tar "$refb" --ca-file tls/ca.pem --user alice \
	--password-file pw --sign-key key.pem --chunk-size 300000
assert_eq "$(cat "$OUT")" "127.0.0.1:$pb/azl/img@$digest"
assert_contains "$t/tls.log" '"PATCH /v2/azl/img/blobs/uploads/'
assert_not_contains "$ERR" "$password"
assert_not_contains "$t/tls.log" "$password"
mkdir certs && cp tls/ca.pem certs/ca.crt
skopeo inspect --cert-dir certs --creds "alice:$password" "docker://$refb" >inspect-b.json
py -c 'import json,sys; d=json.load(open(sys.argv[1]))["Digest"]; assert d == sys.argv[2], d' \
	inspect-b.json "$digest"
printf 'docker:\n  127.0.0.1:%s:\n    use-sigstore-attachments: true\n' "$pb" >regd/azl.yaml
skopeo --policy accept.json --registries.d regd copy -q --src-cert-dir certs \
	--src-creds "alice:$password" "docker://$refb" "dir:$t/copy-b" || fail "skopeo copy over https failed"
check_sigs copy-b "$refb" || fail "https signature wrong"
verify_sigs copy-b pub.pem || fail "https signature does not verify"

# ---- Bearer token auth ----
# docker-registry's token auth: a token server (below: JWTs signed RS256
# by openssl, the signing certificate in x5c, trusted by rootcertbundle)
# that wants alice's Basic credentials and grants pull,push on the scope
# asked for.
openssl req -x509 -newkey rsa:2048 -nodes -keyout tls/token.key -out tls/token.pem -days 2 \
	-subj "/CN=azl test token issuer" 2>/dev/null
cat >token.py <<'PY'
import base64, hashlib, http.server, json, os, subprocess, sys, time, urllib.parse
port, user, password, key, cert, log = sys.argv[1:]
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        with open(log, "a") as f:
            f.write("token %s scope=%s service=%s\n" % ("ok" if auth == want else "denied", q.get("scope"), q.get("service")))
        if auth != want:
            self.send_response(401); self.end_headers(); return
        _, name, actions = q["scope"][0].split(":")
        now = int(time.time())
        claims = {"iss": "azl-test-issuer", "sub": user, "aud": q["service"][0], "exp": now + 600,
                  "nbf": now - 60, "iat": now, "jti": os.urandom(8).hex(),
                  "access": [{"type": "repository", "name": name, "actions": actions.split(",")}]}
        head = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        msg = b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=msg.encode(),
                             capture_output=True, check=True).stdout
        body = json.dumps({"token": msg + "." + b64(sig)}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(port)), H).serve_forever()
PY
pt=$(free_port)
# Not through py(): $! must be the server itself for the exit trap's kill.
"$PY" token.py "$pt" alice "$password" tls/token.key tls/token.pem "$t/tokensrv.log" 2>"$t/tokensrv.err" &
tpid=$!
azl_on_exit "kill $tpid 2>/dev/null; wait $tpid 2>/dev/null"
pc=$(free_port)
start_registry bearer "$pc" \
	"auth:" "  token:" "    realm: http://127.0.0.1:$pt/token" "    service: azl-test-registry" \
	"    issuer: azl-test-issuer" "    rootcertbundle: $t/tls/token.pem"
curl -s -D - -o /dev/null "http://127.0.0.1:$pc/v2/" | grep -qi '^www-authenticate: Bearer' ||
	fail "the token registry does not ask for a Bearer token"
refc=127.0.0.1:$pc/team/img:v1
assert_exit 1 "$AZL" push out/img.oci.tar "$refc" --insecure --user alice --password-file badpw
assert_contains "$ERR" "http://127.0.0.1:$pt/token"
assert_contains "$ERR" "authentication failed"
assert_exit 0 "$AZL" push out/img.oci.tar "$refc" --insecure --user alice --password-file pw \
	--sign-key key.pem --chunk-size 300000
assert_eq "$(cat "$OUT")" "127.0.0.1:$pc/team/img@$digest"
assert_contains "$t/tokensrv.log" "token ok scope=['repository:team/img:pull,push'] service=['azl-test-registry']"
assert_not_contains "$ERR" "$password"
assert_contains "$t/bearer.log" '"PATCH /v2/team/img/blobs/uploads/'
skopeo inspect --tls-verify=false --creds "alice:$password" "docker://$refc" >inspect-c.json
py -c 'import json,sys; d=json.load(open(sys.argv[1]))["Digest"]; assert d == sys.argv[2], d' \
	inspect-c.json "$digest"

echo "push_registry: all checks passed"
