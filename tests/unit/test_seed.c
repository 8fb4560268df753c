/* Seed derivation and the time source. */
#include "reproducible/sde.h"
#include "reproducible/seed.h"
#include "base/hash.h"
#include "t.h"

static void test_seed(void)
{
	struct azl_seed a, b, c;
	unsigned char x[32], y[32], u[16];
	char uuid[37], hex[65];

	azl_seed_from_inputs(&a, "aa", "bb");
	azl_seed_from_inputs(&b, "aa", "bb");
	azl_seed_from_inputs(&c, "aab", "b");
	CHECK(memcmp(a.bytes, b.bytes, 32) == 0);
	CHECK(memcmp(a.bytes, c.bytes, 32) != 0); /* separators matter */

	azl_seed_derive(&a, "gpt-disk-guid", x, 32);
	azl_seed_derive(&a, "gpt-disk-guid", y, 32);
	CHECK(memcmp(x, y, 32) == 0);
	azl_seed_derive(&a, "ext4-uuid", y, 32);
	CHECK(memcmp(x, y, 32) != 0);

	/* HMAC-SHA256(key=SHA256("k"), "p") computed independently with
	 * openssl dgst -sha256 -mac HMAC -macopt hexkey:... */
	azl_seed_from_string(&a, "k");
	azl_seed_hex(&a, hex);
	CHECK_STR(hex, "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a");
	azl_seed_derive(&a, "p", x, 32);
	char xh[65];
	azl_hex(x, 32, xh);
	CHECK_STR(xh, "fc4c53cca3e4df3543cb4a4ae3fb0fcfb7c17853f0f1c4d5d9fe5efc58fc1c5e");

	azl_seed_uuid(&a, "p", u);
	azl_uuid_format(u, uuid);
	CHECK(strlen(uuid) == 36);
	CHECK(uuid[14] == '4');
	CHECK(strchr("89ab", uuid[19]) != NULL);
}

static void test_sde(void)
{
	struct azl_err err = { 0 };
	enum azl_sde_origin o;
	int64_t t;
	char s[64];

	CHECK(azl_sde_resolve(true, 1700000000, "5", 7, &t, &o, &err) == 0);
	CHECK(t == 1700000000 && o == AZL_SDE_MANIFEST);
	CHECK(azl_sde_resolve(false, 0, "1234", 7, &t, &o, &err) == 0);
	CHECK(t == 1234 && o == AZL_SDE_ENV);
	CHECK(azl_sde_resolve(false, 0, NULL, 77, &t, &o, &err) == 0);
	CHECK(t == 77 && o == AZL_SDE_PACKAGES);
	CHECK(azl_sde_resolve(false, 0, "12x", 77, &t, &o, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "SOURCE_DATE_EPOCH");
	CHECK(azl_sde_resolve(false, 0, "-5", 77, &t, &o, &err) < 0);

	azl_sde_rfc3339(1700000000, s);
	CHECK_STR(s, "2023-11-14T22:13:20Z");
	azl_sde_rfc3339(0, s);
	CHECK_STR(s, "1970-01-01T00:00:00Z");
}

int main(void)
{
	test_seed();
	test_sde();
	return t_done();
}
