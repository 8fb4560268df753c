#include "base/par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAX_THREADS 64

struct par {
	void (*fn)(void *ctx, size_t i);
	void *ctx;
	size_t n;
	atomic_size_t next;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
		p->fn(p->ctx, i);
	return NULL;
}

void azl_par_for(size_t n, int jobs, void (*fn)(void *ctx, size_t i), void *ctx)
{
	struct par p = { .fn = fn, .ctx = ctx, .n = n };
	pthread_t tid[MAX_THREADS];
	int nt = 0;

	atomic_init(&p.next, 0);
	if (jobs <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		jobs = c > 0 ? (int)c : 1;
	}
	if (jobs > MAX_THREADS)
		jobs = MAX_THREADS;
	if ((size_t)jobs > n)
		jobs = (int)n;
	/* A thread that cannot start leaves its share to the others. */
	for (; nt < jobs - 1; nt++)
		if (pthread_create(&tid[nt], NULL, par_main, &p) != 0)
			break;
	par_main(&p);
	for (int i = 0; i < nt; i++)
		pthread_join(tid[i], NULL);
}
