#include "reproducible/size.h"

#include <errno.h>
#include <string.h>

static const struct {
	const char *suffix;
	unsigned shift;
} units[] = {
	{ "", 0 },     { "B", 0 },     { "K", 10 },    { "KiB", 10 },
	{ "M", 20 },   { "MiB", 20 },  { "G", 30 },    { "GiB", 30 },
	{ "T", 40 },   { "TiB", 40 },
};

int azl_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix))
			continue;
		if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
			return -ERANGE;
		*out = v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int azl_parse_size_key(const char *key, const char *s, uint64_t *out,
		       struct azl_err *err)
{
	int r = azl_parse_size(s, out);

	if (r == -ERANGE)
		return azl_err_input(err, "%s: size \"%s\" is too large", key,
				     s ? s : "");
	if (r < 0)
		return azl_err_input(err,
				     "%s: bad size \"%s\" (expected an integer "
				     "with an optional binary unit: K, KiB, M, "
				     "MiB, G, GiB, T, TiB; e.g. 4GiB)",
				     key, s ? s : "");
	return 0;
}
