/* Placeholder until lib/compose/solve lands. */
#include "cmd.h"
static int run(int argc, char **argv, const struct azl_global *g)
{
	fputs("azl-compose lock: not built yet\n", stderr);
	return 1;
}
const struct azl_cmd azl_cmd_lock = { "lock", "resolve the manifest into NAME.lock.json", "Usage: azl-compose lock MANIFEST\n", run };
