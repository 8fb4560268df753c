/* base/par: azl_par_for runs fn once for every index, whatever the number
 * of threads asked for (none, one, more than there are jobs), and spreads
 * the work over more than one thread when it can. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/par.h"
#include "t.h"

struct count {
	atomic_int *runs;
	pthread_t *who;
	int slow;
};

static void count_fn(void *ctx, size_t i)
{
	struct count *c = ctx;

	atomic_fetch_add(&c->runs[i], 1);
	c->who[i] = pthread_self();
	if (c->slow)
		usleep(2000);
}

static void run(size_t n, int jobs, int slow, int *threads)
{
	atomic_int *runs = azl_xcalloc(n + 1, sizeof(*runs));
	pthread_t *who = azl_xcalloc(n + 1, sizeof(*who));
	struct count c = { runs, who, slow };
	int once = 1;

	azl_par_for(n, jobs, count_fn, &c);
	for (size_t i = 0; i < n; i++)
		once &= atomic_load(&runs[i]) == 1;
	CHECK(once);
	*threads = 0;
	for (size_t i = 0; i < n; i++) {
		int seen = 0;
		for (size_t j = 0; j < i; j++)
			seen |= pthread_equal(who[i], who[j]);
		*threads += !seen;
	}
	free(runs);
	free(who);
}

int main(void)
{
	int threads;

	run(0, 4, 0, &threads);
	CHECK(threads == 0);
	run(1, 8, 0, &threads);
	CHECK(threads == 1);
	run(1000, 1, 0, &threads);
	CHECK(threads == 1);
	run(1000, 0, 0, &threads);
	run(100, 200, 0, &threads);
	/* Slow jobs on three threads: each thread gets some. */
	run(100, 3, 1, &threads);
	CHECK(threads == 3);
	return t_done();
}
