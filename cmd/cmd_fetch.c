/* Placeholder until lib/compose/fetch lands. */
#include "cmd.h"
static int run(int argc, char **argv, const struct azl_global *g)
{
	fputs("azl-compose fetch: not built yet\n", stderr);
	return 1;
}
const struct azl_cmd azl_cmd_fetch = { "fetch", "download the locked packages into the cache", "Usage: azl-compose fetch MANIFEST\n", run };
