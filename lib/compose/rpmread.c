/* Reading .rpm headers and payloads through librpm; see rpmread.h. */
#include "compose/rpmread.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpm/header.h>
#include <rpm/rpmarchive.h>
#include <rpm/rpmds.h>
#include <rpm/rpmfiles.h>
#include <rpm/rpmio.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmtag.h>
#include <rpm/rpmtd.h>
#include <rpm/rpmts.h>

#include "base/buf.h"

struct azl_rpm {
	char *path;
	char *nevra;
	FD_t fd;          /* positioned at the payload; NULL once consumed */
	Header h;
	rpmfiles files;
	char **paths;     /* per file index, from rpmfilesFN, filled lazily
			   * (the array, not the handle, is mutable) */
	size_t nfiles;
};

struct azl_payload {
	struct azl_rpm *r;
	FD_t gz;
	rpmfi fi;
	uint64_t entries;     /* archive entries read so far */
	long last_fx;         /* index of the last one, -1 before any */
};

static atomic_uint_least64_t payload_opens;
static pthread_once_t rpm_once = PTHREAD_ONCE_INIT;
static int rpm_config_rc;

/* rpmio needs its crypto and macro state once per process; the host's rpm
 * configuration never reaches an output (we only read). */
static void rpm_init(void)
{
	rpm_config_rc = rpmReadConfigFiles(NULL, NULL);
}

int azl_rpm_config_init(void)
{
	pthread_once(&rpm_once, rpm_init);
	return rpm_config_rc;
}

static char *make_nevra(Header h)
{
	const char *n = headerGetString(h, RPMTAG_NAME);
	const char *v = headerGetString(h, RPMTAG_VERSION);
	const char *rel = headerGetString(h, RPMTAG_RELEASE);
	const char *a = headerGetString(h, RPMTAG_ARCH);
	uint64_t e = headerGetNumber(h, RPMTAG_EPOCH);

	if (headerIsSource(h))
		a = "src"; /* ARCH holds the build host's arch there */
	else if (!a)
		a = "noarch";
	if (e)
		return azl_xasprintf("%s-%llu:%s-%s.%s", n ? n : "?",
				     (unsigned long long)e, v ? v : "?",
				     rel ? rel : "?", a);
	return azl_xasprintf("%s-%s-%s.%s", n ? n : "?", v ? v : "?",
			     rel ? rel : "?", a);
}

/* librpm says why only through its log; its last message is used when it
 * names this file (another thread may have logged since). */
static int header_error(const char *path, struct azl_err *err)
{
	const char *why = rpmlogMessage();

	if (why && strstr(why, path))
		return azl_errf(err, -EIO, "cannot read the rpm header: %.*s",
				(int)strcspn(why, "\n"), why);
	return azl_errf(err, -EIO, "%s: cannot read the rpm header", path);
}

static int read_header(const char *path, FD_t fd, Header *h,
		       struct azl_err *err)
{
	rpmts ts = rpmtsCreate();
	rpmRC rc;

	/* fetch verified the file's sha256; rpm's checks would only repeat
	 * that (and want a keyring we do not have). */
	rpmtsSetVSFlags(ts, RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
	rc = rpmReadPackageFile(ts, fd, path, h);
	rpmtsFree(ts);
	switch (rc) {
	case RPMRC_OK:
	case RPMRC_NOTTRUSTED:
	case RPMRC_NOKEY:
		return 0;
	case RPMRC_NOTFOUND:
		return azl_err_input(err, "%s: not an rpm package", path);
	default:
		return header_error(path, err);
	}
}

/* ---- header sanity, before librpm sees the file ----
 *
 * librpm refuses absurd headers too, but prints its reason on stderr and
 * returns a bare failure.  These are its own limits (rpm 4.18,
 * lib/header.c: signature header 32 tags and 64 MiB, main header 0xffff
 * tags and 256 MiB, rpmread.h; 0xfffff values per array), checked here so
 * the error names the package and the field, and nothing is allocated for
 * a count a hostile file merely declares. */
#define ARRAY_MAX 0xfffffu
#define TYPE_MAX 9u /* RPM_I18NSTRING_TYPE */

struct hdr_scan {
	int fd;
	const char *path;
	char who[160];   /* "path (lead name N)" for messages */
	uint64_t fsize;
	uint64_t at;     /* offset of the header being checked */
};

static int read_at(struct hdr_scan *s, void *buf, size_t n, uint64_t at)
{
	ssize_t got = pread(s->fd, buf, n, (off_t)at);
	return got == (ssize_t)n ? 0 : -1;
}

/* The lead's name (the package's own claim, printable bytes only): the
 * header may be unreadable, and a message should still say which package. */
static void lead_name(struct hdr_scan *s, const unsigned char *lead)
{
	char name[67];
	size_t n = 0;

	for (size_t i = 10; i < 76 && lead[i] && isprint(lead[i]); i++)
		name[n++] = (char)lead[i];
	name[n] = '\0';
	snprintf(s->who, sizeof(s->who), "%s%s%s%s", s->path,
		 n ? " (package " : "", name, n ? ")" : "");
}

static const char *tag_name(uint32_t tag)
{
	const char *n = rpmTagGetName((rpmTagVal)tag);
	return n && strcmp(n, "(unknown)") ? n : "unknown";
}

/* Per-file arrays: one value per file, as rpmbuild writes them.  librpm
 * refuses a mismatch in most of them (printing why) and then has no file
 * list at all; a package must not pass for one without files. */
static const uint32_t file_tags[] = {
	RPMTAG_FILESIZES, RPMTAG_FILEMODES, RPMTAG_FILERDEVS,
	RPMTAG_FILEMTIMES, RPMTAG_FILEDIGESTS, RPMTAG_FILELINKTOS,
	RPMTAG_FILEFLAGS, RPMTAG_FILEUSERNAME, RPMTAG_FILEGROUPNAME,
	RPMTAG_FILEINODES, RPMTAG_DIRINDEXES, RPMTAG_FILECAPS,
	RPMTAG_LONGFILESIZES,
};

static bool is_file_tag(uint32_t tag)
{
	for (size_t i = 0; i < sizeof(file_tags) / sizeof(file_tags[0]); i++)
		if (file_tags[i] == tag)
			return true;
	return false;
}

/* The file count (Basenames' count, 0 without), refused over rpm's limit
 * before anything else: it is what a reader allocates for. */
static int file_count(struct hdr_scan *s, const char *what,
		      const unsigned char *idx, uint32_t il, uint32_t *fc,
		      struct azl_err *err)
{
	*fc = 0;
	for (uint32_t i = 0; i < il; i++)
		if (azl_rpm_be32(idx + (size_t)i * 16) == RPMTAG_BASENAMES)
			*fc = azl_rpm_be32(idx + (size_t)i * 16 + 12);
	if (*fc > ARRAY_MAX)
		return azl_err_input(err, "%s: %s declares %u files (tag Basenames), more than the %u rpm accepts",
				     s->who, what, *fc, ARRAY_MAX);
	return 0;
}

/* librpm's file list (rpmfilesNew) uses the data of these tags as the
 * type it expects without looking: a Classdict stored as a plain string
 * made rpmfilesFree free header memory (found by fuzzing).  So each must
 * have rpm's type for it.  (Not every tag: rpmbuild itself writes some,
 * such as Postinprog, as a string or a string array.) */
static bool type_fits(uint32_t tag, uint32_t type)
{
	static const uint32_t typed[] = {
		RPMTAG_BASENAMES, RPMTAG_DIRNAMES, RPMTAG_CLASSDICT,
		RPMTAG_DEPENDSDICT, RPMTAG_FILECLASS, RPMTAG_FILEDEPENDSX,
		RPMTAG_FILEDEPENDSN, RPMTAG_FILEVERIFYFLAGS, RPMTAG_FILEDEVICES,
		RPMTAG_FILELANGS, RPMTAG_FILECOLORS, RPMTAG_FILEDIGESTALGO,
		RPMTAG_FILESIGNATURES, RPMTAG_FILESIGNATURELENGTH,
	};
	bool check = is_file_tag(tag);

	for (size_t i = 0; !check && i < sizeof(typed) / sizeof(typed[0]); i++)
		check = typed[i] == tag;
	return !check || type == ((uint32_t)rpmTagGetTagType((rpmTagVal)tag) & RPM_MASK_TYPE);
}

/* One index entry: a known type, data inside the store, an array size
 * librpm would accept, and one value per file for the per-file tags. */
static int check_entry(struct hdr_scan *s, const char *what,
		       const unsigned char *e, uint32_t dl, uint32_t fc,
		       struct azl_err *err)
{
	uint32_t tag = azl_rpm_be32(e), type = azl_rpm_be32(e + 4);
	uint32_t off = azl_rpm_be32(e + 8), count = azl_rpm_be32(e + 12);

	if (type > TYPE_MAX || off >= dl || count == 0)
		return azl_err_input(err, "%s: %s tag %s (%u): bad entry (type %u, offset %u, count %u, data %u bytes)",
				     s->who, what, tag_name(tag), tag, type, off,
				     count, dl);
	if (!strcmp(what, "header") && !type_fits(tag, type))
		return azl_err_input(err, "%s: %s tag %s (%u) has type %u, rpm's is %u",
				     s->who, what, tag_name(tag), tag, type,
				     (uint32_t)rpmTagGetTagType((rpmTagVal)tag) & RPM_MASK_TYPE);
	if (type != 7 && count > ARRAY_MAX) /* 7: RPM_BIN_TYPE */
		return azl_err_input(err, "%s: %s tag %s (%u) has %u values, more than the %u rpm accepts",
				     s->who, what, tag_name(tag), tag, count,
				     ARRAY_MAX);
	if (fc && is_file_tag(tag) && count != fc)
		return azl_err_input(err, "%s: %s tag %s (%u) has %u values for %u files",
				     s->who, what, tag_name(tag), tag, count, fc);
	return 0;
}

/* The index is at most 0xffff * 16 bytes. */
static int check_index(struct hdr_scan *s, const char *what, uint32_t il,
		       uint32_t dl, struct azl_err *err)
{
	unsigned char *idx = azl_xmalloc((size_t)il * 16);
	uint32_t fc = 0;
	int rc = 0;

	if (read_at(s, idx, (size_t)il * 16, s->at + 16) < 0)
		rc = azl_err_input(err, "%s: %s index is truncated", s->who, what);
	if (rc == 0)
		rc = file_count(s, what, idx, il, &fc, err);
	for (uint32_t i = 0; i < il && rc == 0; i++)
		rc = check_entry(s, what, idx + (size_t)i * 16, dl, fc, err);
	free(idx);
	return rc;
}

/* One header at s->at: magic, tag count and data size within limits and
 * within the file.  Moves s->at past it. */
static int check_header(struct hdr_scan *s, const char *what, uint32_t tmax,
			uint32_t dmax, struct azl_err *err)
{
	static const unsigned char magic[4] = { 0x8e, 0xad, 0xe8, 0x01 };
	unsigned char intro[16];
	uint32_t il, dl;
	uint64_t end;
	int rc;

	if (read_at(s, intro, sizeof(intro), s->at) < 0 || memcmp(intro, magic, 4))
		return azl_err_input(err, "%s: no %s at offset %llu (bad magic or truncated)",
				     s->who, what, (unsigned long long)s->at);
	il = azl_rpm_be32(intro + 8);
	dl = azl_rpm_be32(intro + 12);
	if (il == 0 || il > tmax)
		return azl_err_input(err, "%s: %s declares %u tags (the limit is %u)",
				     s->who, what, il, tmax);
	if (dl > dmax)
		return azl_err_input(err, "%s: %s declares %u bytes of data (the limit is %u)",
				     s->who, what, dl, dmax);
	end = azl_rpm_header_end(s->at, il, dl);
	if (end > s->fsize)
		return azl_err_input(err, "%s: %s declares %u tags and %u bytes of data, but the file ends %llu bytes short",
				     s->who, what, il, dl,
				     (unsigned long long)(end - s->fsize));
	rc = check_index(s, what, il, dl, err);
	s->at = end;
	return rc;
}

/* Lead, signature header (8-byte aligned end), main header. */
static int check_headers(const char *path, struct azl_err *err)
{
	static const unsigned char lmagic[4] = { 0xed, 0xab, 0xee, 0xdb };
	struct hdr_scan s = { .path = path, .at = AZL_RPM_LEAD_SIZE };
	unsigned char lead[AZL_RPM_LEAD_SIZE];
	struct stat st;
	int rc = 0;

	snprintf(s.who, sizeof(s.who), "%s", path);
	s.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s.fd < 0)
		return azl_errf(err, -errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(s.fd, &st) < 0 || read_at(&s, lead, sizeof(lead), 0) < 0 ||
	    memcmp(lead, lmagic, 4)) {
		rc = azl_err_input(err, "%s: not an rpm package", path);
		goto out;
	}
	s.fsize = (uint64_t)st.st_size;
	lead_name(&s, lead);
	rc = check_header(&s, "signature header", AZL_RPM_SIG_TAGS_MAX,
			  AZL_RPM_SIG_DATA_MAX, err);
	s.at += (8 - s.at % 8) % 8;
	if (rc == 0)
		rc = check_header(&s, "header", AZL_RPM_HDR_TAGS_MAX,
				  AZL_RPM_HDR_DATA_MAX, err);
out:
	close(s.fd);
	return rc;
}

int azl_rpm_open(const char *path, struct azl_rpm **out, struct azl_err *err)
{
	struct azl_rpm *r = azl_xcalloc(1, sizeof(*r));
	int rc = 0;

	azl_rpm_config_init();
	r->path = azl_xstrdup(path);
	rc = check_headers(path, err);
	if (rc < 0)
		goto out;
	r->fd = Fopen(path, "r.ufdio");
	if (!r->fd || Ferror(r->fd)) {
		rc = azl_errf(err, -ENOENT, "%s: cannot open: %s", path,
			      r->fd ? Fstrerror(r->fd) : "unknown error");
		goto out;
	}
	rc = read_header(path, r->fd, &r->h, err);
	if (rc < 0)
		goto out;
	r->nevra = make_nevra(r->h);
	r->files = rpmfilesNew(NULL, r->h, RPMTAG_BASENAMES, RPMFI_KEEPHEADER);
	r->nfiles = r->files ? rpmfilesFC(r->files) : 0;
	if (!r->files && headerIsEntry(r->h, RPMTAG_BASENAMES)) {
		rc = azl_err_input(err, "%s (%s): librpm cannot make a file list of the header (directory indexes or per-file tags do not fit together)",
				   path, r->nevra);
		goto out;
	}
	/* Paths are joined on first use: readers that want only the name
	 * (install ordering) skip one allocation per file. */
	r->paths = azl_xcalloc(r->nfiles + 1, sizeof(*r->paths));
out:
	if (rc < 0) {
		azl_rpm_close(r);
		r = NULL;
	}
	*out = r;
	return rc;
}

void azl_rpm_close(struct azl_rpm *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->paths && i < r->nfiles; i++)
		free(r->paths[i]);
	free(r->paths);
	rpmfilesFree(r->files);
	headerFree(r->h);
	if (r->fd)
		Fclose(r->fd);
	free(r->nevra);
	free(r->path);
	free(r);
}

const char *azl_rpm_path(const struct azl_rpm *r)
{
	return r->path;
}

const char *azl_rpm_nevra(const struct azl_rpm *r)
{
	return r->nevra;
}

void *azl_rpm_header(const struct azl_rpm *r)
{
	return r->h;
}

size_t azl_rpm_nfiles(const struct azl_rpm *r)
{
	return r->nfiles;
}

void azl_rpm_file(const struct azl_rpm *r, size_t fx, struct azl_rpm_file *f)
{
	rpmfiles fs = r->files;
	int i = (int)fx;
	const char *link = rpmfilesFLink(fs, i);
	const char *caps = rpmfilesFCaps(fs, i);

	memset(f, 0, sizeof(*f));
	if (!r->paths[fx])
		r->paths[fx] = rpmfilesFN(fs, i);
	f->path = r->paths[fx];
	f->mode = rpmfilesFMode(fs, i);
	f->user = rpmfilesFUser(fs, i);
	f->group = rpmfilesFGroup(fs, i);
	f->mtime = rpmfilesFMtime(fs, i);
	f->size = rpmfilesFSize(fs, i);
	f->link = link ? link : "";
	f->rdev = rpmfilesFRdev(fs, i);
	f->flags = rpmfilesFFlags(fs, i);
	f->caps = caps && *caps ? caps : NULL;
	f->digest = rpmfilesFDigest(fs, i, &f->digest_algo, &f->digest_len);
	if (!f->digest)
		f->digest_algo = 0;
}

size_t azl_rpm_hardlinks(const struct azl_rpm *r, size_t fx, const int **fxs)
{
	uint32_t n = rpmfilesFLinks(r->files, (int)fx, fxs);
	return n ? n : 1;
}

/* ---- package info ---- */

/* A tag's values as a NULL-terminated string vector (s or s[] tags). */
static char **tag_strv(Header h, rpmTagVal tag)
{
	struct rpmtd_s td;
	char **v = NULL;
	size_t n = 0;
	const char *s;

	if (!headerGet(h, tag, &td, HEADERGET_MINMEM))
		return NULL;
	v = azl_xcalloc(rpmtdCount(&td) + 1, sizeof(*v));
	while ((s = rpmtdNextString(&td)))
		v[n++] = azl_xstrdup(s);
	rpmtdFreeData(&td);
	return v;
}

static void get_script(Header h, rpmTagVal body, rpmTagVal prog,
		       struct azl_script *s)
{
	const char *b = headerGetString(h, body);

	s->argv = tag_strv(h, prog);
	if (s->argv && !s->argv[0]) {
		free(s->argv);
		s->argv = NULL;
	}
	/* A body without a PROG tag is a plain /bin/sh scriptlet. */
	if (!s->argv && b) {
		s->argv = azl_xcalloc(2, sizeof(*s->argv));
		s->argv[0] = azl_xstrdup("/bin/sh");
	}
	s->body = s->argv && b ? azl_xstrdup(b) : NULL;
}

struct trig_tags {
	enum azl_trigger_kind kind;
	rpmTagVal scripts, progs, names, index, flags, prios;
};

static const struct trig_tags trig_sets[] = {
	{ AZL_TRIG_PACKAGE, RPMTAG_TRIGGERSCRIPTS, RPMTAG_TRIGGERSCRIPTPROG,
	  RPMTAG_TRIGGERNAME, RPMTAG_TRIGGERINDEX, RPMTAG_TRIGGERFLAGS, 0 },
	{ AZL_TRIG_FILE, RPMTAG_FILETRIGGERSCRIPTS, RPMTAG_FILETRIGGERSCRIPTPROG,
	  RPMTAG_FILETRIGGERNAME, RPMTAG_FILETRIGGERINDEX,
	  RPMTAG_FILETRIGGERFLAGS, RPMTAG_FILETRIGGERPRIORITIES },
	{ AZL_TRIG_TRANSFILE, RPMTAG_TRANSFILETRIGGERSCRIPTS,
	  RPMTAG_TRANSFILETRIGGERSCRIPTPROG, RPMTAG_TRANSFILETRIGGERNAME,
	  RPMTAG_TRANSFILETRIGGERINDEX, RPMTAG_TRANSFILETRIGGERFLAGS,
	  RPMTAG_TRANSFILETRIGGERPRIORITIES },
};

static uint32_t *tag_u32(Header h, rpmTagVal tag, size_t *n)
{
	struct rpmtd_s td;
	uint32_t *v, *p;
	size_t k = 0;

	*n = 0;
	if (!tag || !headerGet(h, tag, &td, HEADERGET_MINMEM))
		return NULL;
	v = azl_xcalloc(rpmtdCount(&td) + 1, sizeof(*v));
	while ((p = rpmtdNextUint32(&td)))
		v[k++] = *p;
	rpmtdFreeData(&td);
	*n = k;
	return v;
}

static size_t strv_len(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* One trigger per script; its conditions are the names whose index
 * points at the script, in header order. */
static void get_triggers(Header h, const struct trig_tags *t,
			 struct azl_rpm_info *info)
{
	char **scripts = tag_strv(h, t->scripts), **progs = tag_strv(h, t->progs);
	char **names = tag_strv(h, t->names);
	size_t nidx, nflags, nprio, nscripts = strv_len(scripts);
	uint32_t *idx = tag_u32(h, t->index, &nidx);
	uint32_t *flags = tag_u32(h, t->flags, &nflags);
	uint32_t *prio = tag_u32(h, t->prios, &nprio);

	for (size_t s = 0; s < nscripts; s++) {
		struct azl_trigger *tr;
		size_t nc = 0;

		info->triggers = azl_xrealloc(info->triggers,
			(info->ntriggers + 1) * sizeof(*info->triggers));
		tr = &info->triggers[info->ntriggers++];
		memset(tr, 0, sizeof(*tr));
		tr->kind = t->kind;
		tr->priority = s < nprio ? prio[s] : 0;
		tr->conds = azl_xcalloc(nidx + 1, sizeof(*tr->conds));
		for (size_t i = 0; i < nidx && names && i < strv_len(names); i++) {
			if (idx[i] != s)
				continue;
			tr->conds[nc++] = azl_xstrdup(names[i]);
			if (i < nflags)
				tr->sense = flags[i] & RPMSENSE_TRIGGER;
		}
		tr->script.argv = azl_xcalloc(2, sizeof(char *));
		tr->script.argv[0] = azl_xstrdup(progs && s < strv_len(progs) ?
						 progs[s] : "/bin/sh");
		tr->script.body = azl_xstrdup(scripts[s]);
	}
	azl_strv_free0(scripts);
	azl_strv_free0(progs);
	azl_strv_free0(names);
	free(idx);
	free(flags);
	free(prio);
}

int azl_rpm_info(const struct azl_rpm *r, struct azl_rpm_info *info,
		 struct azl_err *err)
{
	Header h = r->h;
	const char *a = headerGetString(h, RPMTAG_ARCH);

	memset(info, 0, sizeof(*info));
	info->name = azl_xstrdup(headerGetString(h, RPMTAG_NAME));
	info->version = azl_xstrdup(headerGetString(h, RPMTAG_VERSION));
	info->release = azl_xstrdup(headerGetString(h, RPMTAG_RELEASE));
	info->arch = azl_xstrdup(a ? a : "noarch");
	info->has_epoch = headerIsEntry(h, RPMTAG_EPOCH);
	info->epoch = (uint32_t)headerGetNumber(h, RPMTAG_EPOCH);
	info->nevra = azl_xstrdup(r->nevra);
	if (!info->name || !info->version || !info->release) {
		azl_rpm_info_release(info);
		return azl_err_input(err, "%s: header lacks name, version or release",
				     r->path);
	}
	get_script(h, RPMTAG_PRETRANS, RPMTAG_PRETRANSPROG, &info->pretrans);
	get_script(h, RPMTAG_PREIN, RPMTAG_PREINPROG, &info->prein);
	get_script(h, RPMTAG_POSTIN, RPMTAG_POSTINPROG, &info->postin);
	get_script(h, RPMTAG_POSTTRANS, RPMTAG_POSTTRANSPROG, &info->posttrans);
	for (size_t i = 0; i < sizeof(trig_sets) / sizeof(trig_sets[0]); i++)
		get_triggers(h, &trig_sets[i], info);
	return 0;
}

void azl_script_release(struct azl_script *s)
{
	azl_strv_free0(s->argv);
	free(s->body);
	s->argv = NULL;
	s->body = NULL;
}

void azl_rpm_info_release(struct azl_rpm_info *info)
{
	free(info->name);
	free(info->version);
	free(info->release);
	free(info->arch);
	free(info->nevra);
	azl_script_release(&info->pretrans);
	azl_script_release(&info->prein);
	azl_script_release(&info->postin);
	azl_script_release(&info->posttrans);
	for (size_t i = 0; i < info->ntriggers; i++) {
		azl_strv_free0(info->triggers[i].conds);
		azl_script_release(&info->triggers[i].script);
	}
	free(info->triggers);
	memset(info, 0, sizeof(*info));
}

/* ---- payload ---- */

static const char *file_path(struct azl_rpm *r, size_t fx)
{
	if (!r->paths[fx])
		r->paths[fx] = rpmfilesFN(r->files, (int)fx);
	return r->paths[fx];
}

/* A symlink's payload entry is its target, as long as the header says:
 * rpm would decompress (and skip) whatever size the header gives, so a
 * symlink "of 4 GiB" is refused before the payload is touched. */
static int check_link_sizes(struct azl_rpm *r, struct azl_err *err)
{
	for (size_t fx = 0; fx < r->nfiles; fx++) {
		const char *link;
		uint64_t size;
		if (!S_ISLNK(rpmfilesFMode(r->files, (int)fx)))
			continue;
		link = rpmfilesFLink(r->files, (int)fx);
		size = (uint64_t)rpmfilesFSize(r->files, (int)fx);
		if (size != strlen(link ? link : ""))
			return azl_err_input(err, "%s (%s): %s: the header gives this symlink %llu bytes, its target has %zu",
					     r->path, r->nevra, file_path(r, fx),
					     (unsigned long long)size,
					     strlen(link ? link : ""));
	}
	return 0;
}

int azl_payload_open(struct azl_rpm *r, struct azl_payload **out,
		     struct azl_err *err)
{
	const char *compr = headerGetString(r->h, RPMTAG_PAYLOADCOMPRESSOR);
	char *mode = azl_xasprintf("r.%s", compr ? compr : "gzip");
	struct azl_payload *p = NULL;
	int rc = 0;

	*out = NULL;
	if (!r->fd) {
		rc = azl_errf(err, -EINVAL, "%s: payload already read", r->path);
		goto out;
	}
	rc = check_link_sizes(r, err);
	if (rc < 0)
		goto out;
	p = azl_xcalloc(1, sizeof(*p));
	p->r = r;
	p->last_fx = -1;
	/* Fdopen pushes the decompressor onto the same FD_t. */
	p->gz = Fdopen(r->fd, mode);
	r->fd = NULL;
	if (!p->gz || Ferror(p->gz)) {
		rc = azl_errf(err, -EIO, "%s: cannot decompress the %s payload",
			      r->path, compr ? compr : "gzip");
		goto out;
	}
	p->fi = rpmfiNewArchiveReader(p->gz, r->files, RPMFI_ITER_READ_ARCHIVE);
	if (!p->fi) {
		rc = azl_errf(err, -EIO, "%s: cannot read the payload archive",
			      r->path);
		goto out;
	}
	atomic_fetch_add(&payload_opens, 1);
out:
	free(mode);
	if (rc < 0) {
		azl_payload_close(p);
		p = NULL;
	}
	*out = p;
	return rc;
}

/* Where a payload error happened, for messages: " after /last/entry". */
static void where(struct azl_payload *p, char *out, size_t n)
{
	if (p->last_fx < 0)
		snprintf(out, n, " at its first entry");
	else
		snprintf(out, n, " after %s", file_path(p->r, (size_t)p->last_fx));
}

/* One newc cpio header and name; *at advances past them. */
static int cpio_head(FD_t gz, char **name, uint64_t *fsize, uint64_t *at)
{
	char hdr[110], num[9] = { 0 };
	unsigned long nsz;
	size_t npad;

	*name = NULL;
	if (Fread(hdr, 1, sizeof(hdr), gz) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, "07070", 5) || hdr[5] == 'X')
		return -1; /* "07070X": rpm's stripped cpio has no names */
	memcpy(num, hdr + 54, 8);
	*fsize = strtoull(num, NULL, 16);
	memcpy(num, hdr + 94, 8);
	nsz = strtoul(num, NULL, 16);
	if (nsz == 0 || nsz > PATH_MAX)
		return -1;
	npad = (4 - (sizeof(hdr) + nsz) % 4) % 4; /* header + name: 4-aligned */
	*name = azl_xcalloc(1, nsz + npad + 1);
	if (Fread(*name, 1, nsz + npad, gz) != (ssize_t)(nsz + npad)) {
		free(*name);
		*name = NULL;
		return -1;
	}
	(*name)[nsz - 1] = '\0';
	*at += sizeof(hdr) + nsz + npad;
	return 0;
}

/* Read and drop n bytes; 0 when all were there. */
static int cpio_skip(FD_t gz, uint64_t n, uint64_t *at)
{
	char buf[8192];

	while (n) {
		ssize_t got = Fread(buf, 1, n > sizeof(buf) ? sizeof(buf) : (size_t)n, gz);
		if (got <= 0)
			return -1;
		n -= (uint64_t)got;
		*at += (uint64_t)got;
	}
	return 0;
}

/* The name of cpio entry number k (0-based), read again from the start:
 * librpm reports an entry it cannot map to the header without its name.
 * The walk skips entries by their cpio sizes and gives up past `limit`
 * decompressed bytes (about where librpm stopped), so it costs no more
 * than the read that failed.  NULL when it cannot tell. */
static char *cpio_name_at(const struct azl_rpm *r, uint64_t k, uint64_t limit)
{
	const char *compr = headerGetString(r->h, RPMTAG_PAYLOADCOMPRESSOR);
	char *mode = azl_xasprintf("r.%s", compr ? compr : "gzip");
	FD_t fd = Fopen(r->path, "r.ufdio"), gz = NULL;
	Header h = NULL;
	char *name = NULL;
	uint64_t at = 0, fsize = 0;

	if (!fd || read_header(r->path, fd, &h, NULL) < 0 ||
	    !(gz = Fdopen(fd, mode)))
		goto out;
	fd = NULL; /* gz owns it now */
	for (uint64_t i = 0; at <= limit + 4096; i++) {
		if (cpio_head(gz, &name, &fsize, &at) < 0 || i == k)
			break;
		free(name);
		name = NULL;
		if (cpio_skip(gz, fsize + (4 - fsize % 4) % 4, &at) < 0)
			break;
	}
out:
	headerFree(h);
	if (gz)
		Fclose(gz);
	if (fd)
		Fclose(fd);
	free(mode);
	return name;
}

static const char *bad_magic_hint(const struct azl_payload *p, int rc)
{
	if (rc != RPMERR_BAD_MAGIC)
		return "";
	if (p->last_fx >= 0)
		return " (that entry holds more data than the header's size for it, or the archive is damaged)";
	/* rpm's decoders stop at their memory limit (xz: 100 MiB of
	 * dictionary) or on damage, and the archive reader sees garbage */
	return " (the payload does not decompress: damaged, or it needs more memory than rpm's decoder allows)";
}

static int payload_error(struct azl_payload *p, int rc, struct azl_err *err)
{
	char *why = rpmfileStrerror(rc);
	char *name = NULL;
	char at[PATH_MAX + 16];

	where(p, at, sizeof(at));
	if (rc == RPMERR_UNMAPPED_FILE)
		name = cpio_name_at(p->r, p->entries,
				    (uint64_t)rpmfiArchiveTell(p->fi));
	if (name && !*name) {
		free(name);
		name = NULL;
	}
	if (name)
		azl_errf(err, -EIO, "%s (%s): payload entry \"%s\" is not a file of the header",
			 p->r->path, p->r->nevra, name);
	else
		azl_errf(err, -EIO, "%s (%s): payload: %s%s%s", p->r->path,
			 p->r->nevra, why, at, bad_magic_hint(p, rc));
	free(why);
	free(name);
	return -EIO;
}

/* After the trailer: rpm writes nothing (cpio tools pad to 512 bytes).
 * Anything more is data no header entry accounts for; read at most a
 * block of it to know. */
static int check_after_trailer(struct azl_payload *p, struct azl_err *err)
{
	unsigned char buf[513];
	size_t got = Fread(buf, 1, sizeof(buf), p->gz);

	for (size_t i = 0; i < got; i++)
		if (buf[i] || got == sizeof(buf))
			return azl_errf(err, -EIO, "%s (%s): payload: %s bytes after the archive's end (TRAILER!!!) that no header entry accounts for",
					p->r->path, p->r->nevra,
					got == sizeof(buf) ? "more than 512" : "non-zero");
	return 0;
}

int azl_payload_next(struct azl_payload *p, size_t *fx, uint64_t *size,
		     struct azl_err *err)
{
	for (;;) {
		int rc = rpmfiNext(p->fi);
		if (rc == RPMERR_ITER_END)
			return check_after_trailer(p, err);
		if (rc < 0)
			return payload_error(p, rc, err);
		p->entries++;
		p->last_fx = rc;
		if (!rpmfiArchiveHasContent(p->fi))
			continue;
		*fx = (size_t)rc;
		*size = (uint64_t)rpmfiFSize(p->fi);
		return 1;
	}
}

ssize_t azl_payload_read(struct azl_payload *p, void *buf, size_t len,
			 struct azl_err *err)
{
	ssize_t n = rpmfiArchiveRead(p->fi, buf, len);
	if (n < 0)
		return azl_errf(err, -EIO, "%s (%s): payload: read error in %s",
				p->r->path, p->r->nevra, rpmfiFN(p->fi));
	return n;
}

void azl_payload_close(struct azl_payload *p)
{
	if (!p)
		return;
	if (p->fi) {
		rpmfiArchiveClose(p->fi);
		rpmfiFree(p->fi);
	}
	if (p->gz)
		Fclose(p->gz);
	free(p);
}

uint64_t azl_payload_open_count(void)
{
	return atomic_load(&payload_opens);
}

/* ---- capabilities ---- */

static const char *const cap_names[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid",
	"kill", "setgid", "setuid", "setpcap", "linux_immutable",
	"net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot",
	"sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
	"sys_resource", "sys_time", "sys_tty_config", "mknod", "lease",
	"audit_write", "audit_control", "setfcap", "mac_override",
	"mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read",
	"perfmon", "bpf", "checkpoint_restore",
};
#define NCAPS (sizeof(cap_names) / sizeof(cap_names[0]))
#define ALL_CAPS ((UINT64_C(1) << NCAPS) - 1)

/* Bits for a comma-separated name list ("" or "all": every capability). */
static int cap_list(const char *s, size_t n, uint64_t *bits)
{
	*bits = 0;
	if (n == 0 || (n == 3 && !strncasecmp(s, "all", 3))) {
		*bits = ALL_CAPS;
		return 0;
	}
	while (n) {
		size_t k = 0, i;
		while (k < n && s[k] != ',')
			k++;
		for (i = 0; i < NCAPS; i++)
			if (k == strlen(cap_names[i]) + 4 &&
			    !strncasecmp(s, "cap_", 4) &&
			    !strncasecmp(s + 4, cap_names[i], k - 4))
				break;
		if (i == NCAPS)
			return -EINVAL;
		*bits |= UINT64_C(1) << i;
		s += k;
		n -= k;
		if (n) {
			s++;
			n--;
		}
	}
	return 0;
}

/* Apply one clause "names(op flags)+" to the e/i/p sets. */
static int cap_clause(const char *s, size_t n, uint64_t set[3])
{
	size_t k = strcspn(s, "=+-");
	uint64_t bits;

	if (k >= n || cap_list(s, k, &bits) < 0)
		return -EINVAL;
	s += k;
	n -= k;
	while (n) {
		char op = *s++;
		n--;
		if (op != '=' && op != '+' && op != '-')
			return -EINVAL;
		if (op == '=')
			for (int j = 0; j < 3; j++)
				set[j] &= ~bits;
		while (n && strchr("eipEIP", *s)) {
			int j = (*s | 0x20) == 'e' ? 0 : (*s | 0x20) == 'i' ? 1 : 2;
			if (op == '-')
				set[j] &= ~bits;
			else
				set[j] |= bits;
			s++;
			n--;
		}
	}
	return 0;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

int azl_caps_to_xattr(const char *text, unsigned char out[20],
		      struct azl_err *err)
{
	uint64_t set[3] = { 0, 0, 0 }; /* effective, inheritable, permitted */
	const char *s = text;

	while (*s) {
		size_t n;
		s += strspn(s, " \t\n");
		n = strcspn(s, " \t\n");
		if (n && cap_clause(s, n, set) < 0)
			return azl_err_input(err, "capabilities \"%s\": cannot parse \"%.*s\"",
					     text, (int)n, s);
		s += n;
	}
	/* File capabilities carry one effective bit (libcap's rule). */
	put_le32(out, 0x02000000u | (set[0] ? 1u : 0u));
	put_le32(out + 4, (uint32_t)set[2]);
	put_le32(out + 8, (uint32_t)set[1]);
	put_le32(out + 12, (uint32_t)(set[2] >> 32));
	put_le32(out + 16, (uint32_t)(set[1] >> 32));
	return 0;
}
