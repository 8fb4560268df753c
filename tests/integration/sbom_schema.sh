#!/bin/bash
# NAME.spdx.json against the official SPDX 2.3 JSON schema
# (spdx/spdx-spec schemas/spdx-schema.json at tag v2.3, draft-07), checked
# with python3-jsonschema.  The schema is an input we do not vendor: give
# its path in AZL_SPDX_SCHEMA (a copy from a package that ships it).  A
# negative control (an unknown property, a wrong enum) must be rejected,
# so a validator that accepts everything cannot pass.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

schema=${AZL_SPDX_SCHEMA:-}
if [ -z "$schema" ]; then
	for c in /usr/share/spdx/schemas/spdx-schema.json \
		/usr/share/nodejs/*/schemas/spdx-schema.json \
		/usr/lib/node_modules/*/schemas/spdx-schema.json; do
		[ -f "$c" ] && schema=$c && break
	done
fi
python3 -c 'import jsonschema' 2>/dev/null || skip "python3 jsonschema is not installed"
[ -n "$schema" ] && [ -f "$schema" ] || skip "no copy of the official SPDX 2.3 JSON schema on this machine (set AZL_SPDX_SCHEMA)"

t=$(azl_tmpdir)
azl_fixture_manifest "$t/img.yaml" base azl-app azl-foo-tools azl-shared-a azl-shared-b
printf 'outputs:\n  oci:\n    compression: gzip\n' >>"$t/img.yaml"
cd "$t"
assert_exit 0 "$AZL" build img.yaml -o out --cache-dir "$t/cache"
assert_file out/img.spdx.json

python3 - "$schema" out/img.spdx.json <<'PY'
import copy, json, sys
from jsonschema import Draft7Validator
schema = json.load(open(sys.argv[1]))
assert schema.get("$id") == "http://spdx.org/rdf/terms/2.3", schema.get("$id")
Draft7Validator.check_schema(schema)
v = Draft7Validator(schema)
doc = json.load(open(sys.argv[2]))
errs = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
assert not errs, "\n".join("%s: %s" % (list(e.path), e.message) for e in errs[:10])
# Negative controls: the same validator rejects small breakages.
bad = copy.deepcopy(doc); bad["packages"][1]["notAnSpdxField"] = 1
assert list(v.iter_errors(bad)), "unknown package property accepted"
bad = copy.deepcopy(doc); bad["packages"][1]["checksums"][0]["algorithm"] = "SHA-256"
assert list(v.iter_errors(bad)), "bad checksum algorithm accepted"
bad = copy.deepcopy(doc); del bad["creationInfo"]["created"]
assert list(v.iter_errors(bad)), "missing created accepted"
print("schema ok: %d packages" % len(doc["packages"]))
PY
echo "sbom_schema: ok"
