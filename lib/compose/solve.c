/* Resolution with libsolv (see solve.h). */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <solv/bitmap.h>
#include <solv/chksum.h>
#include <solv/evr.h>
#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/problems.h>
#include <solv/repo.h>
#include <solv/rules.h>
#include <solv/solver.h>

#include "base/buf.h"
#include "base/fs.h"
#include "compose/repo.h"
#include "compose/solve.h"

struct azl_solver {
	Pool *pool;
	struct azl_repo_md *mds;
	Repo **repos;
	size_t nrepos;
	struct azl_fetch_opts fo;
	char *scratch;          /* mkdtemp'd, removed by azl_solver_free */
	char *cache_dir;        /* parsed primaries, or NULL */
	int filelists_loaded;
};

static void clear_excludes(Pool *pool);

/* ---- setup ---- */

int azl_solver_new(const char *arch, const char *scratch_dir,
		   const struct azl_fetch_opts *fo, struct azl_solver **out,
		   struct azl_err *err)
{
	const char *tmp = scratch_dir ? scratch_dir : getenv("TMPDIR");
	struct azl_solver *s = azl_xcalloc(1, sizeof(*s));
	char *scratch = azl_xasprintf("%s/azl-solve.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int rc = 0;

	*out = NULL;
	if (fo)
		s->fo = *fo;
	else
		azl_fetch_opts_init(&s->fo);
	s->pool = pool_create();
	/* Debian builds libsolv for .deb semantics (noarch is "all", dpkg
	 * version order); rpm-md needs rpm's. */
	if (pool_setdisttype(s->pool, DISTTYPE_RPM) < 0) {
		rc = azl_errf(err, -ENOTSUP, "this libsolv cannot handle rpm "
			      "metadata (built without multi-semantics support)");
		goto out;
	}
	pool_setarch(s->pool, arch);
	if (!mkdtemp(scratch)) {
		rc = azl_errf(err, -errno, "cannot create a scratch directory %s: %s",
			      scratch, strerror(errno));
		goto out;
	}
	s->scratch = scratch;
	scratch = NULL;
	*out = s;
	s = NULL;
out:
	free(scratch);
	azl_solver_free(s);
	return rc;
}

void azl_solver_free(struct azl_solver *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nrepos; i++)
		azl_repo_md_release(&s->mds[i]);
	free(s->mds);
	free(s->repos);
	if (s->pool)
		clear_excludes(s->pool);
	pool_free(s->pool);
	if (s->scratch)
		rmdir(s->scratch);
	free(s->scratch);
	free(s->cache_dir);
	free(s);
}

void azl_solver_set_cache_dir(struct azl_solver *s, const char *dir)
{
	free(s->cache_dir);
	s->cache_dir = azl_xstrdup(dir);
}

static int load_primary(struct azl_solver *s, Repo *repo, const struct azl_repo_md *md,
			struct azl_err *err)
{
	int rc;

	if (s->cache_dir && azl_repo_solv_load(repo, s->cache_dir, md))
		return 0;
	if ((rc = azl_repo_load_primary(repo, md, &s->fo, s->scratch, err)))
		return rc;
	if (s->cache_dir)
		azl_repo_solv_save(repo, s->cache_dir, md);
	return 0;
}

int azl_solver_add_repo(struct azl_solver *s, const char *id, const char *baseurl,
			struct azl_err *err)
{
	struct azl_repo_md md = { 0 };
	Repo *repo;
	int rc;

	if ((rc = azl_repo_fetch_repomd(id, baseurl, &s->fo, &md, err)))
		goto out;
	repo = repo_create(s->pool, id);
	if ((rc = load_primary(s, repo, &md, err))) {
		repo_free(repo, 1);
		goto out;
	}
	s->mds = azl_xrealloc(s->mds, (s->nrepos + 1) * sizeof(*s->mds));
	s->repos = azl_xrealloc(s->repos, (s->nrepos + 1) * sizeof(*s->repos));
	s->mds[s->nrepos] = md; /* the solver owns it now */
	s->repos[s->nrepos++] = repo;
	memset(&md, 0, sizeof(md));
out:
	azl_repo_md_release(&md);
	return rc;
}

/* ---- file dependencies ---- */

static int unprovided_file_dep(Pool *pool)
{
	Id p;
	Solvable *s;

	FOR_POOL_SOLVABLES(p) {
		s = pool->solvables + p;
		if (!s->repo || !s->requires || !pool_installable(pool, s))
			continue;
		for (Id *dp = s->repo->idarraydata + s->requires; *dp; dp++) {
			if (ISRELDEP(*dp) || *dp == SOLVABLE_PREREQMARKER)
				continue;
			if (*pool_id2str(pool, *dp) == '/' &&
			    !pool->whatprovidesdata[pool_whatprovides(pool, *dp)])
				return 1;
		}
	}
	return 0;
}

/* primary lists only /etc and *bin* files, which is what almost every file
 * dependency names; filelists (often ten times larger) is loaded only when
 * some file dependency has no provider without it. */
static int prepare_provides(struct azl_solver *s, struct azl_err *err)
{
	int rc;

	pool_addfileprovides(s->pool);
	pool_createwhatprovides(s->pool);
	if (s->filelists_loaded || !unprovided_file_dep(s->pool))
		return 0;
	s->filelists_loaded = 1;
	for (size_t i = 0; i < s->nrepos; i++)
		if ((rc = azl_repo_load_filelists(s->repos[i], &s->mds[i], &s->fo,
						  s->scratch, err)))
			return rc;
	pool_addfileprovides(s->pool);
	pool_createwhatprovides(s->pool);
	return 0;
}

/* ---- excludes ---- */

static int excluded(Pool *pool, Solvable *s, const struct azl_solve_request *req)
{
	const char *name = pool_id2str(pool, s->name);
	char *na = NULL, *nevra = NULL;
	int hit = 0;

	for (size_t i = 0; i < req->nexclude && !hit; i++) {
		const char *g = req->exclude[i];
		if (!fnmatch(g, name, 0)) {
			hit = 1;
			break;
		}
		if (!na) {
			na = azl_xasprintf("%s.%s", name, pool_id2str(pool, s->arch));
			nevra = azl_xstrdup(pool_solvable2str(pool, s));
		}
		hit = !fnmatch(g, na, 0) || !fnmatch(g, nevra, 0);
	}
	free(na);
	free(nevra);
	return hit;
}

/* pool_free leaves pool->considered to whoever set it. */
static void clear_excludes(Pool *pool)
{
	if (pool->considered) {
		map_free(pool->considered);
		pool->considered = solv_free(pool->considered);
	}
}

static void apply_excludes(Pool *pool, const struct azl_solve_request *req)
{
	Id p;

	clear_excludes(pool);
	if (!req->nexclude)
		return;
	pool->considered = solv_calloc(1, sizeof(Map));
	map_init(pool->considered, pool->nsolvables);
	map_setall(pool->considered);
	FOR_POOL_SOLVABLES(p)
		if (excluded(pool, pool->solvables + p, req))
			MAPCLR(pool->considered, p);
}

/* Right arch, not src, not excluded (pool_installable reads considered). */
static int usable(Pool *pool, Id p)
{
	return pool_installable(pool, pool->solvables + p);
}

/* ---- requests ---- */

/* Usable packages matching dep (a name or NAME OP EVR): those whose name
 * it is first; failing that, everything providing it (as dnf does for
 * `install NAME`). */
static void dep_candidates(Pool *pool, Id name, Id dep, Queue *q)
{
	Id p, pp;

	FOR_PROVIDES(p, pp, dep)
		if (pool->solvables[p].name == name && usable(pool, p))
			queue_push(q, p);
	if (q->count)
		return;
	FOR_PROVIDES(p, pp, dep)
		if (usable(pool, p))
			queue_push(q, p);
}

/* dnf's other spellings: name.arch, name-version, name-version-release,
 * name-version-release.arch (epoch only when non-zero). */
static void nevra_candidates(Pool *pool, const char *spec, Queue *q)
{
	Id p;

	FOR_POOL_SOLVABLES(p) {
		Solvable *s = pool->solvables + p;
		const char *n = pool_id2str(pool, s->name), *evr = pool_id2str(pool, s->evr);
		const char *arch = pool_id2str(pool, s->arch), *rest;
		size_t vlen = strcspn(evr, "-"), alen = strlen(arch);

		if (strncmp(spec, n, strlen(n)) || !usable(pool, p))
			continue;
		rest = spec + strlen(n);
		if (*rest == '-' && !strncmp(rest + 1, evr, strlen(evr)))
			rest += 1 + strlen(evr);         /* -version-release */
		else if (*rest == '-' && !strncmp(rest + 1, evr, vlen) &&
			 (!rest[1 + vlen] || rest[1 + vlen] == '.'))
			rest += 1 + vlen;                /* -version */
		if (*rest == '.' && !strncmp(rest + 1, arch, alen) && !rest[1 + alen])
			rest += 1 + alen;
		if (!*rest && rest != spec + strlen(n))
			queue_push(q, p);
	}
}

/* "NAME OP EVR" as the manifest stores it, else 0. */
static Id versioned_dep(Pool *pool, const char *spec, Id *name)
{
	static const struct { const char *op; int flags; } ops[] = {
		{ "<=", REL_LT | REL_EQ }, { ">=", REL_GT | REL_EQ },
		{ "=", REL_EQ }, { "<", REL_LT }, { ">", REL_GT },
	};
	const char *sp = strchr(spec, ' ');
	Id dep = 0;

	if (!sp)
		return 0;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !dep; i++) {
		size_t ol = strlen(ops[i].op);
		if (strncmp(sp + 1, ops[i].op, ol) || sp[1 + ol] != ' ')
			continue;
		*name = pool_strn2id(pool, spec, (unsigned)(sp - spec), 1);
		dep = pool_rel2id(pool, *name, pool_str2id(pool, sp + 2 + ol, 1),
				  ops[i].flags, 1);
	}
	return dep;
}

/* Candidates for one manifest item; 1 when it was a plain name. */
static int spec_candidates(Pool *pool, const char *spec, Queue *q)
{
	Id name = 0, dep = versioned_dep(pool, spec, &name);

	if (dep) {
		dep_candidates(pool, name, dep, q);
		return 0;
	}
	if ((name = pool_str2id(pool, spec, 0)))
		dep_candidates(pool, name, name, q);
	if (q->count)
		return 1;
	nevra_candidates(pool, spec, q);
	return 0;
}

static int obsoletes_any(Pool *pool, Solvable *s, const Queue *q, int n)
{
	for (Id *op = s->repo->idarraydata + s->obsoletes; *op; op++)
		for (int i = 0; i < n; i++)
			if (pool_match_nevr(pool, pool->solvables + q->elements[i], *op))
				return 1;
	return 0;
}

/* A requested package that another available package obsoletes is
 * replaced by it: add the obsoleters and let libsolv's policy (which
 * prunes obsoleted candidates) choose, as dnf does. */
static void add_obsoleters(Pool *pool, Queue *q)
{
	int n = q->count;
	Id p;

	FOR_POOL_SOLVABLES(p) {
		Solvable *s = pool->solvables + p;
		if (s->obsoletes && usable(pool, p) && obsoletes_any(pool, s, q, n))
			queue_pushunique(q, p);
	}
}

static int request_job(Pool *pool, const char *name, Queue *job, struct azl_err *err)
{
	Queue q;
	int rc = 0, plain;

	queue_init(&q);
	plain = spec_candidates(pool, name, &q);
	if (!q.count) {
		rc = azl_errf(err, -ENOENT, "package %s: no package of that name (or "
			      "providing it) in the repositories%s", name,
			      pool->considered ? ", after excludes" : "");
		goto out;
	}
	if (plain)
		add_obsoleters(pool, &q);
	queue_push2(job, SOLVER_INSTALL | SOLVER_SOLVABLE_ONE_OF,
		    pool_queuetowhatprovides(pool, &q));
out:
	queue_free(&q);
	return rc;
}

/* ---- pins ---- */

static int is_freed(const struct azl_solve_request *req, const char *name)
{
	if (req->update_all)
		return 1;
	for (size_t i = 0; i < req->nupdate; i++)
		if (!strcmp(req->update[i], name))
			return 1;
	return 0;
}

/* The pinned solvable, or 0; *other_sum: the checksum of a package with the
 * same NEVRA and repo but other bytes (a rebuild), if there is one. */
static Id find_pinned(Pool *pool, const struct azl_lock_pkg *lp, const char **other_sum)
{
	Id name = pool_str2id(pool, lp->name, 0), arch = pool_str2id(pool, lp->arch, 0);
	char *evrs = lp->epoch ? azl_xasprintf("%" PRIu32 ":%s-%s", lp->epoch,
					       lp->version, lp->release)
			       : azl_xasprintf("%s-%s", lp->version, lp->release);
	Id evr = pool_str2id(pool, evrs, 0), p, pp, found = 0;

	free(evrs);
	*other_sum = NULL;
	if (!name || !arch || !evr)
		return 0;
	FOR_PROVIDES(p, pp, name) {
		Solvable *s = pool->solvables + p;
		Id type = 0;
		const char *sum;
		if (s->name != name || s->evr != evr || s->arch != arch ||
		    strcmp(s->repo->name, lp->repo))
			continue;
		sum = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &type);
		if (type == REPOKEY_TYPE_SHA256 && sum && !strcmp(sum, lp->sha256))
			found = p;
		else if (sum)
			*other_sum = sum;
	}
	return found;
}

static int pin_missing(const struct azl_lock_pkg *lp, const char *other,
		       struct azl_err *err)
{
	char *nevra = azl_lock_pkg_nevra(lp);
	int rc;

	if (other)
		rc = azl_errf(err, -ENOENT, "pinned package %s changed in repo %s: "
			      "locked sha256:%s, the repository now has sha256:%s; "
			      "run 'azl-compose lock MANIFEST --update %s' to accept it",
			      nevra, lp->repo, lp->sha256, other, lp->name);
	else
		rc = azl_errf(err, -ENOENT, "pinned package %s (repo %s, sha256:%s) "
			      "is no longer in the repository; run 'azl-compose lock "
			      "MANIFEST --update %s' to move it", nevra, lp->repo,
			      lp->sha256, lp->name);
	free(nevra);
	return rc;
}

static int pin_jobs(Pool *pool, const struct azl_solve_request *req, Queue *job,
		    struct azl_err *err)
{
	const struct azl_lock *lock = req->pins;
	const char *other;
	Id p;

	for (size_t i = 0; lock && i < lock->npkgs; i++) {
		const struct azl_lock_pkg *lp = &lock->pkgs[i];
		if (is_freed(req, lp->name))
			continue;
		if (!(p = find_pinned(pool, lp, &other)))
			return pin_missing(lp, other, err);
		if (usable(pool, p))
			queue_push2(job, SOLVER_FAVOR | SOLVER_SOLVABLE, p);
	}
	return 0;
}

/* ---- problems and results ---- */

static int problems_error(Solver *solv, int nprob, struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	Queue rules;
	int rc;

	queue_init(&rules);
	azl_buf_adds(&b, "cannot resolve the request:");
	for (Id pr = 1; pr <= nprob; pr++) {
		azl_buf_addf(&b, "\n  problem %d: %s", pr, solver_problem2str(solv, pr));
		solver_findallproblemrules(solv, pr, &rules);
		for (int i = 0; i < rules.count; i++) {
			Id from, to, dep;
			SolverRuleinfo t = solver_ruleinfo(solv, rules.elements[i], &from, &to, &dep);
			const char *line;
			/* Job rules only restate the request. */
			if ((t & SOLVER_RULE_TYPEMASK) == SOLVER_RULE_JOB)
				continue;
			line = solver_problemruleinfo2str(solv, t, from, to, dep);
			if (!strstr(b.data, line))
				azl_buf_addf(&b, "\n    - %s", line);
		}
	}
	if (solv->pool->considered && strstr(b.data, " is disabled"))
		azl_buf_adds(&b, "\n  (libsolv calls packages matched by the manifest's "
			     "'exclude' disabled)");
	rc = azl_errf(err, -ENOPKG, "%s", azl_buf_str(&b));
	queue_free(&rules);
	azl_buf_release(&b);
	return rc;
}

/* "E:V-R" -> epoch, version, release. */
static void split_evr(const char *evr, struct azl_lock_pkg *lp)
{
	const char *colon = strchr(evr, ':'), *dash;
	const char *v = evr;

	lp->epoch = 0;
	if (colon) {
		lp->epoch = (uint32_t)strtoul(evr, NULL, 10);
		v = colon + 1;
	}
	dash = strrchr(v, '-');
	lp->version = dash ? azl_xasprintf("%.*s", (int)(dash - v), v) : azl_xstrdup(v);
	lp->release = azl_xstrdup(dash ? dash + 1 : "");
}

static int to_lock_pkg(Pool *pool, Id p, struct azl_lock_pkg *lp, struct azl_err *err)
{
	Solvable *s = pool->solvables + p;
	Id type = 0;
	const char *sum = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &type);
	const char *loc = solvable_lookup_location(s, NULL);

	if (!sum || type != REPOKEY_TYPE_SHA256)
		return azl_errf(err, -ENOTSUP, "repo %s: package %s has a %s checksum; "
				"azl-compose pins sha256 (createrepo_c --checksum sha256)",
				s->repo->name, pool_solvable2str(pool, s),
				sum ? solv_chksum_type2str(type) : "missing");
	if (solvable_lookup_str(s, SOLVABLE_MEDIABASE))
		return azl_errf(err, -ENOTSUP, "repo %s: package %s has an xml:base "
				"location, which is not supported", s->repo->name,
				pool_solvable2str(pool, s));
	lp->name = azl_xstrdup(pool_id2str(pool, s->name));
	split_evr(pool_id2str(pool, s->evr), lp);
	lp->arch = azl_xstrdup(pool_id2str(pool, s->arch));
	lp->repo = azl_xstrdup(s->repo->name);
	lp->location = azl_xstrdup(loc ? loc : "");
	memcpy(lp->sha256, sum, 65);
	lp->size = solvable_lookup_num(s, SOLVABLE_DOWNLOADSIZE, 0);
	return 0;
}

static int result_lock(struct azl_solver *s, Solver *solv, struct azl_lock **out,
		       struct azl_err *err)
{
	struct azl_lock *lock = azl_xcalloc(1, sizeof(*lock));
	Queue q;
	int rc = 0;

	queue_init(&q);
	solver_get_decisionqueue(solv, &q);
	lock->pkgs = azl_xcalloc((size_t)q.count + 1, sizeof(*lock->pkgs));
	for (int i = 0; i < q.count && !rc; i++) {
		Id p = q.elements[i];
		if (p <= SYSTEMSOLVABLE || !s->pool->solvables[p].repo)
			continue;
		rc = to_lock_pkg(s->pool, p, &lock->pkgs[lock->npkgs++], err);
	}
	lock->repos = azl_xcalloc(s->nrepos + 1, sizeof(*lock->repos));
	for (size_t i = 0; i < s->nrepos; i++, lock->nrepos++) {
		lock->repos[i].id = azl_xstrdup(s->mds[i].id);
		lock->repos[i].baseurl = azl_xstrdup(s->mds[i].baseurl);
		memcpy(lock->repos[i].repomd_sha256, s->mds[i].repomd_sha256, 65);
	}
	queue_free(&q);
	if (rc) {
		azl_lock_free(lock);
		return rc;
	}
	azl_lock_sort(lock);
	*out = lock;
	return 0;
}

/* ---- solving ---- */

static int build_jobs(Pool *pool, const struct azl_solve_request *req, Queue *job,
		      struct azl_err *err)
{
	int rc;

	if ((rc = pin_jobs(pool, req, job, err)))
		return rc;
	for (size_t i = 0; i < req->npackages; i++)
		if ((rc = request_job(pool, req->packages[i], job, err)))
			return rc;
	return 0;
}

int azl_solver_solve(struct azl_solver *s, const struct azl_solve_request *req,
		     struct azl_lock **out, struct azl_err *err)
{
	Solver *solv = NULL;
	Queue job;
	int rc, nprob;

	*out = NULL;
	queue_init(&job);
	if ((rc = prepare_provides(s, err)))
		goto out;
	apply_excludes(s->pool, req);
	if ((rc = build_jobs(s->pool, req, &job, err)))
		goto out;
	solv = solver_create(s->pool);
	solver_set_flag(solv, SOLVER_FLAG_IGNORE_RECOMMENDED, !req->install_weak_deps);
	solver_set_flag(solv, SOLVER_FLAG_BEST_OBEY_POLICY, 1);
	nprob = solver_solve(solv, &job);
	if (nprob) {
		rc = problems_error(solv, nprob, err);
		goto out;
	}
	rc = result_lock(s, solv, out, err);
out:
	if (solv)
		solver_free(solv);
	queue_free(&job);
	return rc;
}

/* ---- the manifest route ---- */

int azl_solve_manifest(const struct azl_manifest *m, const struct azl_lock *old,
		       bool update_all, char *const *update, size_t nupdate,
		       const char *cache_dir, struct azl_lock **out,
		       struct azl_err *err)
{
	struct azl_solve_request req = {
		.packages = m->packages, .npackages = m->npackages,
		.exclude = m->exclude, .nexclude = m->nexclude,
		.install_weak_deps = m->install_weak_deps, .pins = old,
		.update_all = update_all, .update = update, .nupdate = nupdate,
	};
	struct azl_solver *s = NULL;
	int rc;

	*out = NULL;
	if ((rc = azl_solver_new(m->arch ? m->arch : "x86_64", NULL, NULL, &s, err)))
		return rc;
	if (cache_dir)
		azl_solver_set_cache_dir(s, cache_dir);
	for (size_t i = 0; i < m->nrepos && !rc; i++)
		rc = azl_solver_add_repo(s, m->repos[i].id, m->repos[i].baseurl, err);
	if (!rc)
		rc = azl_solver_solve(s, &req, out, err);
	azl_solver_free(s);
	return rc;
}
