/* The manifest loader: libyaml events -> a small node tree -> a table-driven
 * schema that fills struct azl_manifest.
 *
 * To add a key: one row in a schema table below plus the field it names.
 * Conversion, defaults, duplicate/unknown/missing-key errors and freeing all
 * follow from the row.  Anchors, aliases and explicit tags are refused: a
 * manifest is plain data, and refusing them bounds the work per byte. */
#include "compose/manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "reproducible/size.h"

#define MAX_FILE_SIZE (1u << 20) /* far above any real manifest; bounds
				   the node tree to some 50 MB */
#define MAX_DEPTH 32             /* the schema needs 4 levels */
#define MAX_NAME 128             /* name and repo id */

/* ---- the node tree ------------------------------------------------------ */

enum ykind { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
	enum ykind kind;
	int line, col;        /* 1-based */
	char *str;            /* Y_SCALAR: NUL-terminated value */
	size_t len;
	bool plain;           /* unquoted scalar: may be null/bool/int */
	struct ynode **kids;  /* Y_SEQ: items; Y_MAP: key, value, key, ... */
	size_t nkids;
};

struct ctx {
	const char *file;     /* for messages */
	const char *dir;      /* absolute folder of the manifest */
	const char *data;     /* the bytes, to place reader errors */
	size_t len;
	struct azl_err *err;
	yaml_parser_t parser;
};

static void node_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

/* A copy of s safe to print inside quotes: clipped, control bytes as '?'. */
static void clip(char *dst, size_t size, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 4 < size; i++)
		dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i]) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
}

/* "FILE:LINE:COL: key 'KEY': message"; key NULL or "" leaves out the key. */
AZL_PRINTF(5, 6)
static int fail(struct ctx *c, int line, int col, const char *key,
		const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key && *key)
		return azl_err_input(c->err, "%s:%d:%d: key '%s': %s", c->file,
				     line, col, key, msg);
	return azl_err_input(c->err, "%s:%d:%d: %s", c->file, line, col, msg);
}

#define FAIL_AT(c, n, key, ...) fail(c, (n)->line, (n)->col, key, __VA_ARGS__)

/* libyaml's own problem and mark.  Reader errors (bad UTF-8, control
 * characters) carry only a byte offset, so count lines up to it. */
static int yaml_fail(struct ctx *c)
{
	yaml_parser_t *p = &c->parser;
	const char *problem = p->problem ? p->problem : "malformed YAML";
	int line = (int)p->problem_mark.line + 1;
	int col = (int)p->problem_mark.column + 1;

	if (p->error == YAML_MEMORY_ERROR)
		return azl_errf(c->err, -ENOMEM, "%s: out of memory parsing YAML",
				c->file);
	if (p->error == YAML_READER_ERROR) {
		size_t end = p->problem_offset < c->len ? p->problem_offset : c->len;
		line = col = 1;
		for (size_t i = 0; i < end; i++) {
			if (c->data[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)c->data[i] & 0xc0) != 0x80) {
				col++; /* characters, as libyaml's marks count */
			}
		}
	}
	if (p->context)
		return fail(c, line, col, NULL, "invalid YAML: %s (%s at line %d:%d)",
			    problem, p->context, (int)p->context_mark.line + 1,
			    (int)p->context_mark.column + 1);
	return fail(c, line, col, NULL, "invalid YAML: %s", problem);
}

static int next_event(struct ctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev))
		return yaml_fail(c);
	return 0;
}

static int load_node(struct ctx *c, const yaml_event_t *ev, int depth,
		     struct ynode **out);

/* Children until the matching end event. */
static int load_kids(struct ctx *c, struct ynode *n, yaml_event_type_t end,
		     int depth)
{
	size_t cap = 0;
	int r;

	for (;;) {
		yaml_event_t ev;
		struct ynode *kid = NULL;

		r = next_event(c, &ev);
		if (r < 0)
			return r;
		if (ev.type != end)
			r = load_node(c, &ev, depth + 1, &kid);
		yaml_event_delete(&ev);
		if (r < 0 || !kid)
			return r;
		if (n->nkids == cap) {
			cap = cap ? 2 * cap : 8;
			n->kids = azl_xrealloc(n->kids, cap * sizeof(*n->kids));
		}
		n->kids[n->nkids++] = kid;
	}
}

/* Refuse what a plain-data manifest never needs (see the file comment). */
static int check_plain_event(struct ctx *c, const struct ynode *n,
			     const yaml_char_t *anchor, const yaml_char_t *tag,
			     int depth)
{
	if (anchor)
		return FAIL_AT(c, n, NULL, "YAML anchors and aliases are not supported");
	if (tag)
		return FAIL_AT(c, n, NULL, "explicit YAML tags are not supported; "
			       "quote a value to make it a string");
	if (depth > MAX_DEPTH)
		return FAIL_AT(c, n, NULL, "nested more than %d levels deep", MAX_DEPTH);
	return 0;
}

static int load_node(struct ctx *c, const yaml_event_t *ev, int depth,
		     struct ynode **out)
{
	struct ynode *n = azl_xcalloc(1, sizeof(*n));
	int r;

	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n->kind = Y_SCALAR;
		r = check_plain_event(c, n, ev->data.scalar.anchor,
				      ev->data.scalar.tag, depth);
		if (r < 0)
			goto out;
		n->len = ev->data.scalar.length;
		n->str = azl_xmalloc(n->len + 1);
		memcpy(n->str, ev->data.scalar.value, n->len);
		n->str[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		break;
	case YAML_SEQUENCE_START_EVENT:
		n->kind = Y_SEQ;
		r = check_plain_event(c, n, ev->data.sequence_start.anchor,
				      ev->data.sequence_start.tag, depth);
		if (r == 0)
			r = load_kids(c, n, YAML_SEQUENCE_END_EVENT, depth);
		break;
	case YAML_MAPPING_START_EVENT:
		n->kind = Y_MAP;
		r = check_plain_event(c, n, ev->data.mapping_start.anchor,
				      ev->data.mapping_start.tag, depth);
		if (r == 0)
			r = load_kids(c, n, YAML_MAPPING_END_EVENT, depth);
		break;
	case YAML_ALIAS_EVENT:
		r = FAIL_AT(c, n, NULL, "YAML anchors and aliases are not supported");
		break;
	default:
		r = FAIL_AT(c, n, NULL, "invalid YAML: unexpected event %d", ev->type);
		break;
	}
out:
	if (r < 0) {
		node_free(n);
		n = NULL;
	}
	*out = n;
	return r;
}

/* Expect an event of type want; anything else is an internal surprise. */
static int expect_event(struct ctx *c, yaml_event_type_t want, yaml_event_t *ev)
{
	int r = next_event(c, ev);
	if (r < 0)
		return r;
	if (ev->type == want)
		return 0;
	r = fail(c, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
		 NULL, want == YAML_STREAM_END_EVENT
		 ? "more than one YAML document; a manifest is one document"
		 : "invalid YAML: unexpected event %d", ev->type);
	yaml_event_delete(ev);
	return r;
}

/* The one document of the stream; *root stays NULL for an empty stream. */
static int load_tree(struct ctx *c, struct ynode **root)
{
	yaml_event_t ev;
	int r;

	*root = NULL;
	r = expect_event(c, YAML_STREAM_START_EVENT, &ev);
	if (r < 0)
		return r;
	yaml_event_delete(&ev);
	r = next_event(c, &ev);
	if (r < 0)
		return r;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return 0;
	}
	yaml_event_delete(&ev); /* DOCUMENT_START */
	r = next_event(c, &ev);
	if (r < 0)
		return r;
	r = load_node(c, &ev, 1, root);
	yaml_event_delete(&ev);
	if (r == 0)
		r = expect_event(c, YAML_DOCUMENT_END_EVENT, &ev);
	if (r == 0) {
		yaml_event_delete(&ev);
		r = expect_event(c, YAML_STREAM_END_EVENT, &ev);
	}
	if (r == 0)
		yaml_event_delete(&ev);
	if (r < 0) {
		node_free(*root);
		*root = NULL;
	}
	return r;
}

/* ---- scalar conversion -------------------------------------------------- */

static bool is_null(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	if (n->kind != Y_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(n->str, nulls[i]))
			return true;
	return false;
}

static bool is_plain(const struct ynode *n, const char *word)
{
	return n->kind == Y_SCALAR && n->plain && !strcmp(n->str, word);
}

static bool is_decimal(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

static const char *describe(const struct ynode *n)
{
	if (n->kind == Y_SEQ)
		return "a list";
	if (n->kind == Y_MAP)
		return "a mapping";
	if (is_null(n))
		return "no value (null)";
	if (is_plain(n, "true") || is_plain(n, "false"))
		return "a boolean";
	if (n->plain && is_decimal(n->str + (n->str[0] == '-')))
		return "an integer";
	return n->plain ? "a string" : "a quoted string";
}

static int to_str_empty(struct ctx *c, const struct ynode *n, const char *key,
			char **out, bool empty_ok);

static int to_str(struct ctx *c, const struct ynode *n, const char *key,
		  char **out)
{
	return to_str_empty(c, n, key, out, false);
}

static int to_str_empty(struct ctx *c, const struct ynode *n, const char *key,
			char **out, bool empty_ok)
{
	if (n->kind != Y_SCALAR || is_null(n) || is_plain(n, "true") ||
	    is_plain(n, "false"))
		return FAIL_AT(c, n, key, "expected a string, got %s%s", describe(n),
			       n->kind == Y_SCALAR && !is_null(n)
			       ? " (quote it to make it a string)" : "");
	if (strlen(n->str) != n->len)
		return FAIL_AT(c, n, key, "contains a NUL character");
	if (n->len == 0 && !empty_ok)
		return FAIL_AT(c, n, key, "must not be empty");
	free(*out);
	*out = azl_xstrdup(n->str);
	return 0;
}

/* YAML 1.1 read "yes", "on", "y" as booleans, YAML 1.2 does not: accept only
 * the spellings both agree on. */
static int to_bool(struct ctx *c, const struct ynode *n, const char *key,
		   bool *out)
{
	if (is_plain(n, "true") || is_plain(n, "false")) {
		*out = n->str[0] == 't';
		return 0;
	}
	if (n->kind != Y_SCALAR || is_null(n))
		return FAIL_AT(c, n, key, "expected true or false, got %s",
			       describe(n));
	char v[80];
	clip(v, sizeof(v), n->str);
	return FAIL_AT(c, n, key, "expected true or false, got %s'%s' (only "
		       "lowercase unquoted true/false are booleans here; YAML 1.1 "
		       "spellings like yes/no/on/off are not accepted)",
		       n->plain ? "" : "the string ", v);
}

/* Decimal only: YAML 1.1 reads 017 as octal and 1_000 as 1000, so refuse
 * anything a reader could take two ways. */
static int to_int(struct ctx *c, const struct ynode *n, const char *key,
		  int64_t *out)
{
	const char *s = n->str;
	int64_t v = 0;

	if (n->kind != Y_SCALAR || !n->plain || is_null(n))
		return FAIL_AT(c, n, key, "expected an integer, got %s", describe(n));
	if (*s == '-' && s[1] >= '0' && s[1] <= '9')
		return FAIL_AT(c, n, key, "must be >= 0, got %s", s);
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9' || (p == s && *p == '0' && p[1]))
			goto bad;
	if (!*s)
		goto bad;
	for (; *s; s++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return FAIL_AT(c, n, key, "integer out of range");
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
bad:;
	char shown[80];
	clip(shown, sizeof(shown), n->str);
	return FAIL_AT(c, n, key, "expected a decimal integer without sign or "
		       "leading zeros, got '%s'", shown);
}

/* ---- the schema --------------------------------------------------------- */

enum mtype {
	MT_STR,      /* char * */
	MT_INT,      /* int64_t, >= 0 */
	MT_BOOL,     /* bool */
	MT_STRLIST,  /* char **, count at aux */
	MT_LIST,     /* array of sub->size entries, count at aux */
	MT_OBJ,      /* a mapping filling the embedded struct at off (sub) */
	MT_PTR,      /* a mapping filling an allocated struct (sub); null or
			{} allocates one with every default */
	MT_KV,       /* free-form mapping of strings: struct azl_cust_kv *,
			count at aux; check sees each key */
	MT_CUSTOM,   /* a scalar converted by check itself (enums, octal
			modes, ranged integers); owns no memory */
};

enum {
	MK_REQUIRED = 1,
	MK_NONEMPTY = 2, /* lists */
	MK_HAS = 4,      /* aux is a bool set when the key is present */
	MK_EMPTY_OK = 8, /* MT_STR: "" is a value (file content) */
	MK_SORTED = 16,  /* MT_KV: stored sorted by key */
	MK_ONE_LINE = 32,/* MT_KV: values without control characters */
};

/* A validator/normaliser, called after conversion with the field (or, for
 * MT_STRLIST, the item; for MT_KV, the key): char ** for strings,
 * int64_t *, bool *.  For MT_CUSTOM it is the converter and gets the raw
 * node. */
typedef int (*check_fn)(struct ctx *c, const struct ynode *n, const char *key,
			void *field);

struct mschema;

struct mkey {
	const char *name;
	enum mtype type;
	unsigned flags;
	const char *def;   /* default, converted as if written; NULL: none */
	size_t off;        /* the field */
	size_t aux;        /* lists: size_t count; MK_HAS: bool */
	check_fn check;
	const struct mschema *sub; /* MT_LIST: schema of one entry */
};

struct mschema {
	const struct mkey *keys;
	size_t nkeys;
	size_t size;       /* of one entry */
	/* Checks across keys of entry i of the array at base, after its keys. */
	int (*finish)(struct ctx *c, const struct ynode *map, const char *path,
		      void *base, size_t i);
};

static bool all_in(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGIT "0123456789"

static int check_name(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	const char *s = *(char **)field;
	char v[80];

	clip(v, sizeof(v), s);
	if (!all_in(s, LOWER DIGIT "._-"))
		return FAIL_AT(c, n, key, "invalid name '%s': use only a-z, 0-9, "
			       "'.', '_' and '-'", v);
	if (s[0] == '.' || s[0] == '-')
		return FAIL_AT(c, n, key, "invalid name '%s': must start with a "
			       "letter, digit or '_'", v);
	if (strlen(s) > MAX_NAME)
		return FAIL_AT(c, n, key, "name longer than %d characters", MAX_NAME);
	return 0;
}

static int check_arch(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	static const char *const arches[] = { "x86_64", "aarch64", "i686" };
	const char *s = *(char **)field;
	char v[80];

	for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
		if (!strcmp(s, arches[i]))
			return 0;
	if (!strcmp(s, "noarch"))
		return FAIL_AT(c, n, key, "noarch is not a machine architecture; "
			       "use x86_64, aarch64 or i686");
	clip(v, sizeof(v), s);
	return FAIL_AT(c, n, key, "unknown arch '%s' (expected x86_64, aarch64 "
		       "or i686)", v);
}

static int check_repo_id(struct ctx *c, const struct ynode *n, const char *key,
			 void *field)
{
	const char *s = *(char **)field;
	char v[80];

	clip(v, sizeof(v), s);
	if (!all_in(s, LOWER UPPER DIGIT "._-"))
		return FAIL_AT(c, n, key, "invalid repo id '%s': use only A-Z, "
			       "a-z, 0-9, '.', '_' and '-'", v);
	if (strlen(s) > MAX_NAME)
		return FAIL_AT(c, n, key, "repo id longer than %d characters",
			       MAX_NAME);
	return 0;
}

/* Length of a leading "scheme://" (lowercase or not), 0 if none. */
static size_t scheme_len(const char *s)
{
	size_t n = strspn(s, LOWER UPPER DIGIT "+.-");
	return n && !strncmp(s + n, "://", 3) ? n + 3 : 0;
}

/* file:///abs/path: an empty host, so the path is absolute. */
static bool is_file_url(const char *s)
{
	return !strncmp(s, "file:///", 8);
}

/* Control characters would break the line-based files customization
 * writes (/etc/passwd, os-release) and the messages quoting values. */
static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool has_space_or_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int check_baseurl(struct ctx *c, const struct ynode *n, const char *key,
			 void *field)
{
	char **s = field;
	size_t sl = scheme_len(*s);
	char v[120];

	clip(v, sizeof(v), *s);
	for (size_t i = 0; i + 3 < sl; i++)
		(*s)[i] = (char)((*s)[i] | 0x20); /* schemes are case-insensitive */
	if (!(sl == 7 && !strncmp(*s, "http", 4)) &&
	    !(sl == 8 && !strncmp(*s, "https", 5)) &&
	    !(sl == 7 && !strncmp(*s, "file", 4)))
		return FAIL_AT(c, n, key, "'%s' is not an http://, https:// or "
			       "file:// URL", v);
	if (!strncmp(*s, "file", 4) ? !is_file_url(*s)
	    : (*s)[sl] == '\0' || (*s)[sl] == '/')
		return FAIL_AT(c, n, key, "'%s' has no %s", v,
			       (*s)[0] == 'f' ? "absolute path (write file:///path)"
			       : "host");
	if (has_space_or_ctl(*s) || strpbrk(*s, "?#"))
		return FAIL_AT(c, n, key, "'%s' must not contain spaces, control "
			       "characters, '?' or '#'", v);
	if ((*s)[strlen(*s) - 1] != '/') {
		char *t = azl_xasprintf("%s/", *s);
		free(*s);
		*s = t;
	}
	return 0;
}

static int check_gpgkey(struct ctx *c, const struct ynode *n, const char *key,
			void *field)
{
	char **s = field;
	char v[120];

	clip(v, sizeof(v), *s);
	if (scheme_len(*s)) {
		if (!is_file_url(*s))
			return FAIL_AT(c, n, key, "'%s': only local keys are supported: "
				       "a path or a file:///absolute/path URL", v);
		return 0;
	}
	if (!strncmp(*s, "file:", 5))
		return FAIL_AT(c, n, key, "'%s': write file:///absolute/path", v);
	for (const char *p = *s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return FAIL_AT(c, n, key, "'%s': control characters are not "
				       "allowed in a path", v);
	if ((*s)[0] != '/') {
		const char *rel = *s;
		while (rel[0] == '.' && rel[1] == '/')
			rel += 2 + strspn(rel + 2, "/");
		char *abs = azl_path_join(c->dir, *rel ? rel : ".");
		free(*s);
		*s = abs;
	}
	return 0;
}

/* Package names as RPM allows them. */
#define PKGCHARS LOWER UPPER DIGIT "._+-"
/* Versions: [epoch:]version[-release], with rpm's ~ and ^; also what a
 * dnf-style name-[epoch:]version-release.arch item holds. */
#define EVRCHARS PKGCHARS "~^:"

/* "NAME" or "NAME OP EVR" (spaces optional around OP); stored normalised
 * with single spaces and "==" as "=" so later stages split on ' '. */
static int check_pkgspec(struct ctx *c, const struct ynode *n, const char *key,
			 void *field)
{
	static const char *const ops[] = { "==", ">=", "<=", "=", ">", "<" };
	char **s = field, v[120];
	const char *p = *s, *op = NULL;
	size_t nl = strspn(p, EVRCHARS), ol = 0;

	clip(v, sizeof(v), *s);
	if (!nl || p[0] == '.' || p[0] == '-')
		goto bad;
	p += nl;
	if (!*p)
		return 0;
	p += strspn(p, " ");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !op; i++)
		if (!strncmp(p, ops[i], strlen(ops[i])))
			op = ops[i];
	if (!op)
		goto bad;
	ol = strlen(op);
	p += ol;
	p += strspn(p, " ");
	if (!*p || strspn(p, EVRCHARS) != strlen(p))
		goto bad;
	char *t = azl_xasprintf("%.*s %s %s", (int)nl, *s,
				!strcmp(op, "==") ? "=" : op, p);
	free(*s);
	*s = t;
	return 0;
bad:
	return FAIL_AT(c, n, key, "invalid package spec '%s': expected NAME or "
		       "'NAME OP VERSION' (OP one of = == < <= > >=; NAME of "
		       "A-Z a-z 0-9 . _ + - ~ ^ :)", v);
}

static int check_glob(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	const char *s = *(char **)field;
	char v[120];

	if (all_in(s, PKGCHARS "*?[]!"))
		return 0;
	clip(v, sizeof(v), s);
	return FAIL_AT(c, n, key, "invalid pattern '%s': a package name with "
		       "fnmatch wildcards * ? [...]", v);
}

static const struct ynode *map_get(const struct ynode *map, const char *name)
{
	for (size_t i = 0; i + 1 < map->nkids; i += 2)
		if (map->kids[i]->kind == Y_SCALAR && !strcmp(map->kids[i]->str, name))
			return map->kids[i + 1];
	return NULL;
}

static int finish_repo(struct ctx *c, const struct ynode *map, const char *path,
		       void *base, size_t i)
{
	struct azl_repo_spec *r = (struct azl_repo_spec *)base + i;
	char key[600];

	r->line = map->line;
	if (!r->has_allow_setuid)
		r->allow_setuid = r->gpgcheck;
	if (r->gpgcheck && !r->gpgkey) {
		snprintf(key, sizeof(key), "%s.gpgkey", path);
		return FAIL_AT(c, map, key, "required when gpgcheck is true "
			       "(or write gpgcheck: false)");
	}
	return 0;
}

struct strpos {
	const char *s;
	size_t i;
};

static int cmp_strpos(const void *a, const void *b)
{
	const struct strpos *x = a, *y = b;
	int r = strcmp(x->s, y->s);
	return r ? r : (x->i > y->i) - (x->i < y->i);
}

/* The first item (in list order) equal to an earlier one: *later, and the
 * earliest item equal to it: *first.  Sorting keeps this O(n log n)
 * whatever the file holds.  Sorts v. */
static bool find_dup(struct strpos *v, size_t n, size_t *later, size_t *first)
{
	size_t group = 0;
	bool found = false;

	qsort(v, n, sizeof(*v), cmp_strpos);
	for (size_t k = 1; k < n; k++) {
		if (strcmp(v[k].s, v[k - 1].s)) {
			group = k;
			continue;
		}
		if (!found || v[k].i < *later) {
			*later = v[k].i;
			*first = v[group].i;
			found = true;
		}
	}
	return found;
}

static int unique_repo_ids(struct ctx *c, const struct azl_manifest *m,
			   const struct ynode *list)
{
	struct strpos *v = azl_xcalloc(m->nrepos + 1, sizeof(*v));
	size_t a = 0, b = 0;
	char key[64];
	int r = 0;

	for (size_t i = 0; i < m->nrepos; i++)
		v[i] = (struct strpos){ m->repos[i].id, i };
	if (find_dup(v, m->nrepos, &a, &b)) {
		snprintf(key, sizeof(key), "repos[%zu].id", a);
		r = FAIL_AT(c, map_get(list->kids[a], "id"), key, "repo id '%s' "
			    "is already used by repos[%zu] (line %d)",
			    m->repos[a].id, b, m->repos[b].line);
	}
	free(v);
	return r;
}

/* The same spec twice is almost always a merge mistake. */
static int unique_packages(struct ctx *c, const struct azl_manifest *m,
			   const struct ynode *list)
{
	struct strpos *v = azl_xcalloc(m->npackages + 1, sizeof(*v));
	size_t a = 0, b = 0;
	char key[64];
	int r = 0;

	for (size_t i = 0; i < m->npackages; i++)
		v[i] = (struct strpos){ m->packages[i], i };
	if (find_dup(v, m->npackages, &a, &b)) {
		snprintf(key, sizeof(key), "packages[%zu]", a);
		r = FAIL_AT(c, list->kids[a], key, "'%s' is already listed at "
			    "line %d", m->packages[a], list->kids[b]->line);
	}
	free(v);
	return r;
}

/* ---- build-stage keys (issue 3) ----------------------------------------- */

/* A path relative to the manifest's folder made absolute (a leading "./"
 * dropped); absolute paths are kept as written. */
static void resolve_rel(struct ctx *c, char **s)
{
	const char *rel = *s;
	char *abs;

	if (rel[0] == '/')
		return;
	while (rel[0] == '.' && rel[1] == '/')
		rel += 2 + strspn(rel + 2, "/");
	abs = azl_path_join(c->dir, *rel ? rel : ".");
	free(*s);
	*s = abs;
}

/* What is wrong with s as an absolute normalised path in the image, or NULL.
 * Normalised so that two spellings never name one file twice. */
static const char *path_problem(const char *s, bool root_ok)
{
	if (s[0] != '/')
		return "must be an absolute path (start with '/')";
	if (has_ctl(s))
		return "control characters are not allowed in a path";
	if (!s[1])
		return root_ok ? NULL : "must not be '/' itself";
	for (const char *p = s + 1;; ) {
		size_t l = strcspn(p, "/");
		if (!l || (l == 1 && p[0] == '.') || (l == 2 && !strncmp(p, "..", 2)))
			return "is not normalised (no '//', '.' or '..' "
			       "components, no trailing '/')";
		if (!p[l])
			return NULL;
		p += l + 1;
	}
}

static int check_path_as(struct ctx *c, const struct ynode *n, const char *key,
			 const char *s, bool root_ok, bool passwd_field)
{
	const char *why = path_problem(s, root_ok);
	char v[120];

	if (!why && passwd_field && strchr(s, ':'))
		why = "must not contain ':' (it separates /etc/passwd fields)";
	if (!why)
		return 0;
	clip(v, sizeof(v), s);
	return FAIL_AT(c, n, key, "'%s' %s", v, why);
}

/* files/directories/symlinks paths and a user's shell. */
static int check_path(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	return check_path_as(c, n, key, *(char **)field, false, false);
}

/* workdir; "/" is a fine working directory. */
static int check_dir_path(struct ctx *c, const struct ynode *n, const char *key,
			  void *field)
{
	return check_path_as(c, n, key, *(char **)field, true, false);
}

static int check_home(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	return check_path_as(c, n, key, *(char **)field, true, true);
}

static int check_shell(struct ctx *c, const struct ynode *n, const char *key,
		       void *field)
{
	return check_path_as(c, n, key, *(char **)field, false, true);
}

/* shadow-utils' default NAME_REGEX: what useradd/groupadd accept. */
static int check_account(struct ctx *c, const struct ynode *n, const char *key,
			 void *field)
{
	const char *s = *(char **)field;
	size_t l = strlen(s), body = l && s[l - 1] == '$' ? l - 1 : l;
	char v[80];

	clip(v, sizeof(v), s);
	if (!body || !strchr(LOWER "_", s[0]) || strspn(s, LOWER DIGIT "_-") != body)
		return FAIL_AT(c, n, key, "invalid user or group name '%s': use "
			       "a-z, 0-9, '_' and '-', starting with a letter or "
			       "'_' (a final '$' is allowed)", v);
	if (l > 32)
		return FAIL_AT(c, n, key, "name longer than 32 characters");
	return 0;
}

#define MAX_ID 4294967294u /* (uint32_t)-1 means "no id" to the kernel */

/* owner/group of files and directories: a name or a decimal id. */
static int check_owner(struct ctx *c, const struct ynode *n, const char *key,
		       void *field)
{
	const char *s = *(char **)field;
	char v[80];

	if (!is_decimal(s))
		return check_account(c, n, key, field);
	clip(v, sizeof(v), s);
	if ((s[0] == '0' && s[1]) || strlen(s) > 10 || strtoull(s, NULL, 10) > MAX_ID)
		return FAIL_AT(c, n, key, "invalid id '%s': a decimal number from 0 "
			       "to %u without leading zeros", v, MAX_ID);
	return 0;
}

static int check_id(struct ctx *c, const struct ynode *n, const char *key,
		    void *field)
{
	if (*(int64_t *)field > MAX_ID)
		return FAIL_AT(c, n, key, "id out of range (0 to %u)", MAX_ID);
	return 0;
}

/* The value is never quoted back: it may be a password typed by mistake. */
static int check_password(struct ctx *c, const struct ynode *n, const char *key,
			  void *field)
{
	const char *s = *(char **)field;

	if (!strcmp(s, "!") || !strcmp(s, "*"))
		return 0;
	if (s[0] != '$')
		return FAIL_AT(c, n, key, "not a crypt(3) hash: write a hash such "
			       "as '$6$...' or '$y$...' (from `openssl passwd -6` "
			       "or mkpasswd), or '!'/'*' for a locked account; a "
			       "plaintext password is never accepted");
	if (strchr(s, ':') || has_space_or_ctl(s))
		return FAIL_AT(c, n, key, "a crypt(3) hash has no ':', spaces or "
			       "control characters");
	return 0;
}

static int check_gecos(struct ctx *c, const struct ynode *n, const char *key,
		       void *field)
{
	const char *s = *(char **)field;

	if (strchr(s, ':') || has_ctl(s))
		return FAIL_AT(c, n, key, "must not contain ':' or control "
			       "characters (/etc/passwd fields)");
	return 0;
}

static int check_source(struct ctx *c, const struct ynode *n, const char *key,
			void *field)
{
	char **s = field, v[120];

	clip(v, sizeof(v), *s);
	if (has_ctl(*s))
		return FAIL_AT(c, n, key, "'%s': control characters are not allowed "
			       "in a path", v);
	resolve_rel(c, s);
	return 0;
}

static int check_no_ctl(struct ctx *c, const struct ynode *n, const char *key,
			void *field)
{
	if (has_ctl(*(char **)field))
		return FAIL_AT(c, n, key, "control characters are not allowed");
	return 0;
}

/* systemd unit names: name.type, with instance '@' and escapes '\'. */
static int check_unit(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	static const char *const types[] = {
		".service", ".socket", ".timer", ".target", ".path", ".mount",
		".automount", ".swap", ".slice",
	};
	const char *s = *(char **)field, *dot = strrchr(s, '.');
	char v[120];

	clip(v, sizeof(v), s);
	if (!all_in(s, LOWER UPPER DIGIT ":_.@-\\") || s[0] == '.' || strlen(s) > 255)
		return FAIL_AT(c, n, key, "invalid unit name '%s': use A-Z, a-z, "
			       "0-9, ':', '_', '.', '@', '-', '\\'", v);
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i]) && dot > s)
			return 0;
	return FAIL_AT(c, n, key, "'%s' has no unit type suffix (.service, "
		       ".socket, .timer, .target, .path, .mount, .automount, "
		       ".swap, .slice)", v);
}

/* RFC 1123: dot-separated labels of letters, digits and '-', 1-63 each,
 * not starting or ending with '-'; 64 in all, as /etc/hostname allows. */
static int check_hostname(struct ctx *c, const struct ynode *n, const char *key,
			  void *field)
{
	const char *s = *(char **)field;
	char v[80];

	clip(v, sizeof(v), s);
	if (strlen(s) > 64)
		return FAIL_AT(c, n, key, "hostname longer than 64 characters");
	for (const char *p = s;; ) {
		size_t l = strspn(p, LOWER UPPER DIGIT "-");
		if (!l || l > 63 || p[0] == '-' || p[l - 1] == '-' ||
		    (p[l] && p[l] != '.') || (p[l] == '.' && !p[l + 1]))
			return FAIL_AT(c, n, key, "invalid hostname '%s': labels "
				       "of 1-63 a-z, A-Z, 0-9 and '-' (not first "
				       "or last) separated by '.'", v);
		if (!p[l])
			return 0;
		p += l + 1;
	}
}

static int check_osr_key(struct ctx *c, const struct ynode *n, const char *key,
			 void *field)
{
	char v[80];

	if (all_in(*(char **)field, UPPER DIGIT "_"))
		return 0;
	clip(v, sizeof(v), *(char **)field);
	return FAIL_AT(c, n, key, "invalid os-release field '%s': use A-Z, 0-9 "
		       "and '_'", v);
}

static int check_env(struct ctx *c, const struct ynode *n, const char *key,
		     void *field)
{
	const char *s = *(char **)field, *eq = strchr(s, '=');
	char v[120];

	if (eq && eq > s)
		return 0;
	clip(v, sizeof(v), s);
	return FAIL_AT(c, n, key, "'%s' is not NAME=value", v);
}

/* "N", "N/tcp" or "N/udp", stored as "N/proto" (OCI's default is tcp). */
static int check_port(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	char **s = field, v[80];
	size_t l = strspn(*s, DIGIT);
	const char *proto = (*s)[l] ? *s + l : "/tcp";
	unsigned long port = strtoul(*s, NULL, 10);

	clip(v, sizeof(v), *s);
	if (!l || l > 5 || (*s)[0] == '0' || port > 65535 ||
	    (strcmp(proto, "/tcp") && strcmp(proto, "/udp")))
		return FAIL_AT(c, n, key, "invalid port '%s': expected N, N/tcp or "
			       "N/udp with N from 1 to 65535", v);
	if (!(*s)[l]) {
		char *t = azl_xasprintf("%s/tcp", *s);
		free(*s);
		*s = t;
	}
	return 0;
}

/* A scalar equal to one of words (quoted or not): its index in *idx. */
static int to_word(struct ctx *c, const struct ynode *n, const char *key,
		   const char *const *words, size_t nwords, size_t *idx)
{
	struct azl_buf list = AZL_BUF_INIT;
	char v[80];
	int r;

	for (size_t i = 0; n->kind == Y_SCALAR && i < nwords; i++)
		if (!strcmp(n->str, words[i])) {
			*idx = i;
			return 0;
		}
	for (size_t i = 0; i < nwords; i++)
		azl_buf_addf(&list, "%s%s", i ? " or " : "", words[i]);
	if (n->kind != Y_SCALAR || is_null(n)) {
		r = FAIL_AT(c, n, key, "expected %s, got %s", azl_buf_str(&list),
			    describe(n));
	} else {
		clip(v, sizeof(v), n->str);
		r = FAIL_AT(c, n, key, "expected %s, got '%s'", azl_buf_str(&list), v);
	}
	azl_buf_release(&list);
	return r;
}

static int conv_scriptlets(struct ctx *c, const struct ynode *n,
			   const char *key, void *field)
{
	static const char *const words[] = { "run", "skip" };
	size_t i = 0;
	int r = to_word(c, n, key, words, 2, &i);

	if (r == 0)
		*(bool *)field = i == 1;
	return r;
}

static int conv_compression(struct ctx *c, const struct ynode *n,
			    const char *key, void *field)
{
	static const char *const words[] = { "gzip", "zstd" };
	size_t i = 0;
	int r = to_word(c, n, key, words, 2, &i);

	if (r == 0 && azl_comp_parse(words[i], field) < 0)
		r = FAIL_AT(c, n, key, "compression '%s' is not built in", words[i]);
	return r;
}

static int to_ranged(struct ctx *c, const struct ynode *n, const char *key,
		     int64_t lo, int64_t hi, int64_t *out)
{
	int r = to_int(c, n, key, out);

	if (r == 0 && (*out < lo || *out > hi))
		r = FAIL_AT(c, n, key, "must be from %lld to %lld, got %lld",
			    (long long)lo, (long long)hi, (long long)*out);
	return r;
}

static int conv_timeout(struct ctx *c, const struct ynode *n, const char *key,
			void *field)
{
	int64_t v = 0;
	int r = to_ranged(c, n, key, 1, 86400, &v);

	if (r == 0)
		*(unsigned *)field = (unsigned)v;
	return r;
}

/* The range per compression is checked with the compression (finish_oci). */
static int conv_level(struct ctx *c, const struct ynode *n, const char *key,
		      void *field)
{
	int64_t v = 0;
	int r = to_ranged(c, n, key, 1, 19, &v);

	if (r == 0)
		*(int *)field = (int)v;
	return r;
}

/* An octal mode as text: YAML 1.1 reads an unquoted 0644 as octal and 1.2
 * as decimal 644, so the scalar's characters are read as octal digits
 * whatever its style. */
static int conv_mode(struct ctx *c, const struct ynode *n, const char *key,
		     void *field)
{
	char v[80];

	if (n->kind == Y_SCALAR && !is_null(n) && (n->len == 3 || n->len == 4) &&
	    strspn(n->str, "01234567") == n->len) {
		*(uint32_t *)field = (uint32_t)strtoul(n->str, NULL, 8);
		return 0;
	}
	if (n->kind != Y_SCALAR || is_null(n))
		return FAIL_AT(c, n, key, "expected an octal mode like \"0644\", "
			       "got %s", describe(n));
	clip(v, sizeof(v), n->str);
	return FAIL_AT(c, n, key, "invalid mode '%s': expected 3 or 4 octal "
		       "digits like \"0644\" or \"2775\"", v);
}

/* uid/gid left out: customize allocates (-1). */
static void absent_id(const struct ynode *map, const char *name, int64_t *id)
{
	if (!map_get(map, name))
		*id = -1;
}

static int finish_user(struct ctx *c, const struct ynode *map, const char *path,
		       void *base, size_t i)
{
	struct azl_cust_user *u = (struct azl_cust_user *)base + i;

	absent_id(map, "uid", &u->uid);
	if (!map_get(map, "create_home"))
		u->create_home = !u->system;
	u->create_home_set = true;
	return 0;
}

static int finish_group(struct ctx *c, const struct ynode *map, const char *path,
			void *base, size_t i)
{
	absent_id(map, "gid", &((struct azl_cust_group *)base)[i].gid);
	return 0;
}

static int finish_file(struct ctx *c, const struct ynode *map, const char *path,
		       void *base, size_t i)
{
	struct azl_cust_file *f = (struct azl_cust_file *)base + i;
	char key[700];

	if (f->content && f->source) {
		snprintf(key, sizeof(key), "%s.source", path);
		return FAIL_AT(c, map_get(map, "source"), key, "give either content "
			       "or source, not both");
	}
	if (!f->content && !f->source)
		return FAIL_AT(c, map, path, "missing content (the file's text) or "
			       "source (a file on the build host)");
	if (f->content)
		f->content_len = strlen(f->content);
	f->mode_set = true; /* given or defaulted, it is exact: 0000 is a mode */
	return 0;
}

static int finish_dir(struct ctx *c, const struct ynode *map, const char *path,
		      void *base, size_t i)
{
	((struct azl_cust_dir *)base)[i].mode_set = true;
	return 0;
}

static int finish_oci(struct ctx *c, const struct ynode *map, const char *path,
		      void *base, size_t i)
{
	struct azl_manifest_oci *o = (struct azl_manifest_oci *)base + i;
	int max = o->compression == AZL_COMP_GZIP ? 9 : 19;
	char key[700];

	if (o->level <= max)
		return 0;
	snprintf(key, sizeof(key), "%s.compression_level", path);
	return FAIL_AT(c, map_get(map, "compression_level"), key, "%s levels go "
		       "from 1 to %d, got %d", azl_comp_name(o->compression), max,
		       o->level);
}

static int finish_outputs(struct ctx *c, const struct ynode *map,
			  const char *path, void *base, size_t i)
{
	const struct azl_manifest *m = base;

	if (m->oci || m->vhd || m->flatcar)
		return 0;
	return FAIL_AT(c, map, path, "names no output (known outputs: oci, vhd, flatcar; "
		       "write outputs: {oci: {}} for an OCI image with defaults)");
}

/* Disk sizes: binary units (reproducible/size.h), whole MiB. */
static int conv_disk_size(struct ctx *c, const struct ynode *n, const char *key,
			  void *field)
{
	char v[80];
	uint64_t bytes = 0;

	if (n->kind != Y_SCALAR || is_null(n))
		return FAIL_AT(c, n, key, "expected a size like 4GiB, got %s",
			       describe(n));
	clip(v, sizeof(v), n->str);
	if (azl_parse_size(n->str, &bytes) < 0)
		return FAIL_AT(c, n, key, "bad size '%s': expected a whole number "
			       "with KiB, MiB, GiB or TiB (binary units), like 4GiB", v);
	if (bytes == 0 || bytes % (1024 * 1024))
		return FAIL_AT(c, n, key, "bad size '%s': must be a positive whole "
			       "number of MiB", v);
	*(uint64_t *)field = bytes;
	return 0;
}

static int conv_disk_format(struct ctx *c, const struct ynode *n,
			    const char *key, void *field)
{
	static const char *const words[] = { "vhd", "raw" };
	size_t i = 0;
	int r = to_word(c, n, key, words, 2, &i);

	if (r == 0)
		*(bool *)field = i == 1;
	return r;
}

static int conv_bootloader(struct ctx *c, const struct ynode *n,
			   const char *key, void *field)
{
	static const char *const words[] = { "uki", "systemd-boot" };
	size_t i = 0;
	int r = to_word(c, n, key, words, 2, &i);

	if (r == 0)
		*(bool *)field = i == 1;
	return r;
}

/* A cmdline is one line: the UKI's .cmdline section is read verbatim. */
static int check_cmdline(struct ctx *c, const struct ynode *n, const char *key,
			 void *field)
{
	const char *s = *(char **)field;

	if (has_ctl(s))
		return FAIL_AT(c, n, key, "control characters (newlines too) are "
			       "not allowed in a kernel command line");
	if (strstr(s, "root="))
		return FAIL_AT(c, n, key, "root= is added by the build "
			       "(root=PARTUUID=<root partition>); leave it out");
	return 0;
}

/* Entry a of list whose string at off repeats entry b's: an error naming
 * both.  field names the key inside an entry (NULL: items are strings). */
static int unique_strings(struct ctx *c, const struct ynode *list,
			  const char *lname, const char *field, const void *base,
			  size_t n, size_t size, size_t off)
{
	struct strpos *v = azl_xcalloc(n + 1, sizeof(*v));
	size_t a = 0, b = 0;
	char key[200];
	int r = 0;

	for (size_t i = 0; i < n; i++)
		v[i] = (struct strpos){ *(char *const *)((const char *)base +
							 i * size + off), i };
	if (find_dup(v, n, &a, &b)) {
		const struct ynode *na = field ? map_get(list->kids[a], field)
					       : list->kids[a];
		snprintf(key, sizeof(key), "%s[%zu]%s%s", lname, a, field ? "." : "",
			 field ? field : "");
		r = FAIL_AT(c, na, key, "'%s' is already given by %s[%zu] (line %d)",
			    na->str, lname, b, list->kids[b]->line);
	}
	free(v);
	return r;
}

#define UNIQUE(c, map, lname, field, arr, n, type, member)                     \
	unique_strings(c, map_get(map, lname), lname, field, arr, n,           \
		       sizeof(type), offsetof(type, member))

/* One path, one entry across directories, files and symlinks: a path in
 * two of them would leave the result to the order customize applies them
 * in.  Indexes run through the three lists in that order. */
static int unique_paths(struct ctx *c, const struct ynode *map,
			const struct azl_customize *cu)
{
	static const char *const lists[] = { "directories", "files", "symlinks" };
	const size_t counts[] = { cu->ndirs, cu->nfiles, cu->nsymlinks };
	size_t n = cu->ndirs + cu->nfiles + cu->nsymlinks, k = 0, a = 0, b = 0;
	size_t la = 0, lb = 0;
	struct strpos *v = azl_xcalloc(n + 1, sizeof(*v));
	char key[64];
	int r = 0;

	for (size_t j = 0; j < cu->ndirs; j++, k++)
		v[k] = (struct strpos){ cu->dirs[j].path, k };
	for (size_t j = 0; j < cu->nfiles; j++, k++)
		v[k] = (struct strpos){ cu->files[j].path, k };
	for (size_t j = 0; j < cu->nsymlinks; j++, k++)
		v[k] = (struct strpos){ cu->symlinks[j].path, k };
	if (find_dup(v, n, &a, &b)) {
		while (a >= counts[la])
			a -= counts[la++];
		while (b >= counts[lb])
			b -= counts[lb++];
		const struct ynode *na = map_get(map_get(map, lists[la])->kids[a], "path");
		snprintf(key, sizeof(key), "%s[%zu].path", lists[la], a);
		r = FAIL_AT(c, na, key, "'%s' is already given by %s[%zu] (line %d)",
			    na->str, lists[lb], b,
			    map_get(map, lists[lb])->kids[b]->line);
	}
	free(v);
	return r;
}

static int unique_custom(struct ctx *c, const struct ynode *map,
			 const struct azl_customize *cu)
{
	const struct ynode *svc = map_get(map, "services");
	int r = UNIQUE(c, map, "users", "name", cu->users, cu->nusers,
		       struct azl_cust_user, name);

	if (r == 0)
		r = UNIQUE(c, map, "groups", "name", cu->groups, cu->ngroups,
			   struct azl_cust_group, name);
	if (r == 0)
		r = unique_paths(c, map, cu);
	if (r == 0 && svc)
		r = unique_strings(c, map_get(svc, "enable"), "services.enable", NULL,
				   cu->enable, cu->nenable, sizeof(char *), 0);
	if (r == 0 && svc)
		r = unique_strings(c, map_get(svc, "disable"), "services.disable",
				   NULL, cu->disable, cu->ndisable, sizeof(char *), 0);
	return r;
}

/* A unit both enabled and disabled: which one wins would be an accident of
 * the order customize applies them in. */
static int services_overlap(struct ctx *c, const struct ynode *map,
			    const char *path, void *base, size_t i)
{
	const struct azl_customize *cu = base;
	char key[700];

	for (size_t d = 0; d < cu->ndisable; d++)
		for (size_t e = 0; e < cu->nenable; e++) {
			if (strcmp(cu->disable[d], cu->enable[e]))
				continue;
			snprintf(key, sizeof(key), "%s.disable[%zu]", path, d);
			return FAIL_AT(c, map_get(map, "disable")->kids[d], key,
				       "'%s' is also in %s.enable", cu->disable[d],
				       path);
		}
	return 0;
}

#define U(field) offsetof(struct azl_cust_user, field)
static const struct mkey user_keys[] = {
	{ "name", MT_STR, MK_REQUIRED, NULL, U(name), 0, check_account, NULL },
	{ "uid", MT_INT, 0, NULL, U(uid), 0, check_id, NULL },
	{ "group", MT_STR, 0, NULL, U(group), 0, check_account, NULL },
	{ "groups", MT_STRLIST, 0, NULL, U(groups), U(ngroups), check_account, NULL },
	{ "home", MT_STR, 0, NULL, U(home), 0, check_home, NULL },
	{ "shell", MT_STR, 0, NULL, U(shell), 0, check_shell, NULL },
	{ "password", MT_STR, 0, NULL, U(password), 0, check_password, NULL },
	{ "gecos", MT_STR, 0, NULL, U(gecos), 0, check_gecos, NULL },
	{ "system", MT_BOOL, 0, "false", U(system), 0, NULL, NULL },
	{ "create_home", MT_BOOL, 0, NULL, U(create_home), 0, NULL, NULL },
};
#undef U

static const struct mschema user_schema = {
	user_keys, sizeof(user_keys) / sizeof(user_keys[0]),
	sizeof(struct azl_cust_user), finish_user,
};

#define G(field) offsetof(struct azl_cust_group, field)
static const struct mkey group_keys[] = {
	{ "name", MT_STR, MK_REQUIRED, NULL, G(name), 0, check_account, NULL },
	{ "gid", MT_INT, 0, NULL, G(gid), 0, check_id, NULL },
	{ "members", MT_STRLIST, 0, NULL, G(members), G(nmembers), check_account,
	  NULL },
	{ "system", MT_BOOL, 0, "false", G(system), 0, NULL, NULL },
};
#undef G

static const struct mschema group_schema = {
	group_keys, sizeof(group_keys) / sizeof(group_keys[0]),
	sizeof(struct azl_cust_group), finish_group,
};

#define F(field) offsetof(struct azl_cust_file, field)
static const struct mkey file_keys[] = {
	{ "path", MT_STR, MK_REQUIRED, NULL, F(path), 0, check_path, NULL },
	{ "content", MT_STR, MK_EMPTY_OK, NULL, F(content), 0, NULL, NULL },
	{ "source", MT_STR, 0, NULL, F(source), 0, check_source, NULL },
	{ "mode", MT_CUSTOM, 0, "0644", F(mode), 0, conv_mode, NULL },
	{ "owner", MT_STR, 0, "root", F(owner), 0, check_owner, NULL },
	{ "group", MT_STR, 0, "root", F(group), 0, check_owner, NULL },
};
#undef F

static const struct mschema file_schema = {
	file_keys, sizeof(file_keys) / sizeof(file_keys[0]),
	sizeof(struct azl_cust_file), finish_file,
};

#define D(field) offsetof(struct azl_cust_dir, field)
static const struct mkey dir_keys[] = {
	{ "path", MT_STR, MK_REQUIRED, NULL, D(path), 0, check_path, NULL },
	{ "mode", MT_CUSTOM, 0, "0755", D(mode), 0, conv_mode, NULL },
	{ "owner", MT_STR, 0, "root", D(owner), 0, check_owner, NULL },
	{ "group", MT_STR, 0, "root", D(group), 0, check_owner, NULL },
};
#undef D

static const struct mschema dir_schema = {
	dir_keys, sizeof(dir_keys) / sizeof(dir_keys[0]),
	sizeof(struct azl_cust_dir), finish_dir,
};

#define S(field) offsetof(struct azl_cust_symlink, field)
static const struct mkey symlink_keys[] = {
	{ "path", MT_STR, MK_REQUIRED, NULL, S(path), 0, check_path, NULL },
	{ "target", MT_STR, MK_REQUIRED, NULL, S(target), 0, check_no_ctl, NULL },
};
#undef S

static const struct mschema symlink_schema = {
	symlink_keys, sizeof(symlink_keys) / sizeof(symlink_keys[0]),
	sizeof(struct azl_cust_symlink), NULL,
};

#define C(field) offsetof(struct azl_customize, field)
static const struct mkey services_keys[] = {
	{ "enable", MT_STRLIST, 0, NULL, C(enable), C(nenable), check_unit, NULL },
	{ "disable", MT_STRLIST, 0, NULL, C(disable), C(ndisable), check_unit, NULL },
};
#undef C

static const struct mschema services_schema = {
	services_keys, sizeof(services_keys) / sizeof(services_keys[0]),
	sizeof(struct azl_customize), services_overlap,
};

#define O(field) offsetof(struct azl_manifest_oci, field)
static const struct mkey oci_keys[] = {
	{ "compression", MT_CUSTOM, 0, "gzip", O(compression), 0, conv_compression,
	  NULL },
	{ "compression_level", MT_CUSTOM, 0, NULL, O(level), 0, conv_level, NULL },
	{ "entrypoint", MT_STRLIST, 0, NULL, O(entrypoint), O(nentrypoint), NULL,
	  NULL },
	{ "cmd", MT_STRLIST, 0, NULL, O(cmd), O(ncmd), NULL, NULL },
	{ "env", MT_STRLIST, 0, NULL, O(env), O(nenv), check_env, NULL },
	{ "workdir", MT_STR, 0, NULL, O(workdir), 0, check_dir_path, NULL },
	{ "user", MT_STR, 0, NULL, O(user), 0, check_no_ctl, NULL },
	{ "labels", MT_KV, MK_SORTED, NULL, O(labels), O(nlabels), NULL, NULL },
	{ "exposed_ports", MT_STRLIST, 0, NULL, O(exposed_ports),
	  O(nexposed_ports), check_port, NULL },
};
#undef O

static const struct mschema oci_schema = {
	oci_keys, sizeof(oci_keys) / sizeof(oci_keys[0]),
	sizeof(struct azl_manifest_oci), finish_oci,
};

#define V(field) offsetof(struct azl_manifest_vhd, field)
static const struct mkey vhd_keys[] = {
	{ "size", MT_CUSTOM, MK_REQUIRED, NULL, V(size), 0, conv_disk_size, NULL },
	{ "format", MT_CUSTOM, 0, "vhd", V(raw), 0, conv_disk_format, NULL },
	{ "bootloader", MT_CUSTOM, 0, "uki", V(systemd_boot), 0, conv_bootloader,
	  NULL },
	{ "esp_size", MT_CUSTOM, 0, "64MiB", V(esp_size), 0, conv_disk_size, NULL },
	{ "boot_size", MT_CUSTOM, 0, NULL, V(boot_size), 0, conv_disk_size, NULL },
};
#undef V

static const struct mschema vhd_schema = {
	vhd_keys, sizeof(vhd_keys) / sizeof(vhd_keys[0]),
	sizeof(struct azl_manifest_vhd), NULL,
};

#define F(field) offsetof(struct azl_manifest_flatcar, field)
static const struct mkey flatcar_keys[] = {
	{ "usr_size", MT_CUSTOM, 0, "1GiB", F(usr_size), 0, conv_disk_size, NULL },
	{ "root_size", MT_CUSTOM, 0, NULL, F(root_size), 0, conv_disk_size, NULL },
	{ "esp_size", MT_CUSTOM, 0, "128MiB", F(esp_size), 0, conv_disk_size, NULL },
	{ "oem_size", MT_CUSTOM, 0, "128MiB", F(oem_size), 0, conv_disk_size, NULL },
	{ "format", MT_CUSTOM, 0, "raw", F(raw), 0, conv_disk_format, NULL },
	{ "bios_boot", MT_BOOL, 0, NULL, F(bios_boot), 0, NULL, NULL },
	{ "bootloader", MT_CUSTOM, 0, "uki", F(systemd_boot), 0, conv_bootloader,
	  NULL },
};
#undef F

static const struct mschema flatcar_schema = {
	flatcar_keys, sizeof(flatcar_keys) / sizeof(flatcar_keys[0]),
	sizeof(struct azl_manifest_flatcar), NULL,
};

#define K(field) offsetof(struct azl_manifest_kernel, field)
static const struct mkey kernel_keys[] = {
	{ "cmdline", MT_STR, 0, NULL, K(cmdline), 0, check_cmdline, NULL },
	{ "initrd", MT_STR, 0, NULL, K(initrd), 0, check_source, NULL },
	{ "stub", MT_STR, 0, NULL, K(stub), 0, check_source, NULL },
};
#undef K

static const struct mschema kernel_schema = {
	kernel_keys, sizeof(kernel_keys) / sizeof(kernel_keys[0]),
	sizeof(struct azl_manifest_kernel), NULL,
};

/* outputs fills pointers of struct azl_manifest itself (offset 0). */
static const struct mkey outputs_keys[] = {
	{ "oci", MT_PTR, 0, NULL, offsetof(struct azl_manifest, oci), 0, NULL,
	  &oci_schema },
	{ "vhd", MT_PTR, 0, NULL, offsetof(struct azl_manifest, vhd), 0, NULL,
	  &vhd_schema },
	{ "flatcar", MT_PTR, 0, NULL, offsetof(struct azl_manifest, flatcar), 0,
	  NULL, &flatcar_schema },
};

static const struct mschema outputs_schema = {
	outputs_keys, sizeof(outputs_keys) / sizeof(outputs_keys[0]),
	sizeof(struct azl_manifest), finish_outputs,
};

/* Uniqueness needs whole lists, so it is checked after every key. */
static int finish_manifest(struct ctx *c, const struct ynode *map,
			   const char *path, void *base, size_t i)
{
	struct azl_manifest *m = base;
	int r = unique_repo_ids(c, m, map_get(map, "repos"));

	if (r == 0)
		r = unique_packages(c, m, map_get(map, "packages"));
	if (r == 0)
		r = unique_custom(c, map, &m->customize);
	return r;
}

#define R(field) offsetof(struct azl_repo_spec, field)
static const struct mkey repo_keys[] = {
	{ "id", MT_STR, MK_REQUIRED, NULL, R(id), 0, check_repo_id, NULL },
	{ "baseurl", MT_STR, MK_REQUIRED, NULL, R(baseurl), 0, check_baseurl, NULL },
	{ "gpgkey", MT_STR, 0, NULL, R(gpgkey), 0, check_gpgkey, NULL },
	{ "gpgcheck", MT_BOOL, 0, "true", R(gpgcheck), 0, NULL, NULL },
	{ "allow_setuid", MT_BOOL, MK_HAS, NULL, R(allow_setuid),
	  R(has_allow_setuid), NULL, NULL },
};
#undef R

static const struct mschema repo_schema = {
	repo_keys, sizeof(repo_keys) / sizeof(repo_keys[0]),
	sizeof(struct azl_repo_spec), finish_repo,
};

#define M(field) offsetof(struct azl_manifest, field)
static const struct mkey manifest_keys[] = {
	{ "name", MT_STR, MK_REQUIRED, NULL, M(name), 0, check_name, NULL },
	{ "source_date_epoch", MT_INT, MK_HAS, NULL, M(source_date_epoch),
	  M(has_source_date_epoch), NULL, NULL },
	{ "arch", MT_STR, 0, "x86_64", M(arch), 0, check_arch, NULL },
	{ "repos", MT_LIST, MK_REQUIRED | MK_NONEMPTY, NULL, M(repos), M(nrepos),
	  NULL, &repo_schema },
	{ "packages", MT_STRLIST, MK_REQUIRED | MK_NONEMPTY, NULL, M(packages),
	  M(npackages), check_pkgspec, NULL },
	{ "exclude", MT_STRLIST, 0, NULL, M(exclude), M(nexclude), check_glob, NULL },
	{ "install_weak_deps", MT_BOOL, 0, "false", M(install_weak_deps), 0, NULL,
	  NULL },
	{ "seed", MT_STR, 0, NULL, M(seed), 0, NULL, NULL },
	{ "scriptlets", MT_CUSTOM, 0, NULL, M(scriptlets_skip), 0, conv_scriptlets,
	  NULL },
	{ "scriptlet_timeout", MT_CUSTOM, 0, NULL, M(scriptlet_timeout), 0,
	  conv_timeout, NULL },
	{ "users", MT_LIST, 0, NULL, M(customize.users), M(customize.nusers), NULL,
	  &user_schema },
	{ "groups", MT_LIST, 0, NULL, M(customize.groups), M(customize.ngroups),
	  NULL, &group_schema },
	{ "files", MT_LIST, 0, NULL, M(customize.files), M(customize.nfiles), NULL,
	  &file_schema },
	{ "directories", MT_LIST, 0, NULL, M(customize.dirs), M(customize.ndirs),
	  NULL, &dir_schema },
	{ "symlinks", MT_LIST, 0, NULL, M(customize.symlinks),
	  M(customize.nsymlinks), NULL, &symlink_schema },
	{ "services", MT_OBJ, 0, NULL, M(customize), 0, NULL, &services_schema },
	{ "hostname", MT_STR, 0, NULL, M(customize.hostname), 0, check_hostname,
	  NULL },
	{ "os_release", MT_KV, MK_ONE_LINE, NULL, M(customize.os_release),
	  M(customize.nos_release), check_osr_key, NULL },
	{ "kernel", MT_PTR, 0, NULL, M(kernel), 0, NULL, &kernel_schema },
	{ "outputs", MT_OBJ, 0, NULL, 0, 0, NULL, &outputs_schema },
};
#undef M

static const struct mschema manifest_schema = {
	manifest_keys, sizeof(manifest_keys) / sizeof(manifest_keys[0]),
	sizeof(struct azl_manifest), finish_manifest,
};

/* ---- applying the schema ------------------------------------------------ */

static int apply(struct ctx *c, const struct mschema *s, const struct ynode *map,
		 const char *path, void *base, size_t i);

static void *at_off(void *obj, size_t off)
{
	return (char *)obj + off;
}

static int want_list(struct ctx *c, const struct mkey *k, const struct ynode *n,
		     const char *key)
{
	if (n->kind != Y_SEQ)
		return FAIL_AT(c, n, key, "expected a list, got %s%s", describe(n),
			       k->type == MT_STRLIST && n->kind == Y_SCALAR
			       ? " (write [item] for a single item)" : "");
	if ((k->flags & MK_NONEMPTY) && !n->nkids)
		return FAIL_AT(c, n, key, "must not be empty");
	return 0;
}

static int to_strlist(struct ctx *c, const struct mkey *k, const struct ynode *n,
		      const char *key, void *obj)
{
	char ***items = at_off(obj, k->off), ikey[600];
	size_t *count = at_off(obj, k->aux);
	int r = want_list(c, k, n, key);

	if (r < 0)
		return r;
	*items = azl_xcalloc(n->nkids ? n->nkids : 1, sizeof(**items));
	*count = n->nkids;
	for (size_t i = 0; i < n->nkids && r == 0; i++) {
		snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
		r = to_str(c, n->kids[i], ikey, &(*items)[i]);
		if (r == 0 && k->check)
			r = k->check(c, n->kids[i], ikey, &(*items)[i]);
	}
	return r;
}

static int to_list(struct ctx *c, const struct mkey *k, const struct ynode *n,
		   const char *key, void *obj)
{
	void **items = at_off(obj, k->off);
	size_t *count = at_off(obj, k->aux);
	char ikey[600];
	int r = want_list(c, k, n, key);

	if (r < 0)
		return r;
	*items = azl_xcalloc(n->nkids ? n->nkids : 1, k->sub->size);
	*count = n->nkids;
	for (size_t i = 0; i < n->nkids && r == 0; i++) {
		snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
		r = apply(c, k->sub, n->kids[i], ikey, *items, i);
	}
	return r;
}

static void key_path(char *out, size_t size, const char *path, const char *name)
{
	char v[80];
	clip(v, sizeof(v), name);
	snprintf(out, size, "%s%s%s", path, *path ? "." : "", v);
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct azl_cust_kv *)a)->key,
		      ((const struct azl_cust_kv *)b)->key);
}

/* A repeated key would silently lose one value, so it is an error here as
 * in the schema's own mappings. */
static int unique_kv_keys(struct ctx *c, const struct ynode *n, const char *key,
			  const struct azl_cust_kv *kv, size_t count)
{
	struct strpos *v = azl_xcalloc(count + 1, sizeof(*v));
	size_t a = 0, b = 0;
	char ikey[700];
	int r = 0;

	for (size_t i = 0; i < count; i++)
		v[i] = (struct strpos){ kv[i].key, i };
	if (find_dup(v, count, &a, &b)) {
		const struct ynode *kn = n->kids[2 * a], *first = n->kids[2 * b];
		key_path(ikey, sizeof(ikey), key, kv[a].key);
		r = FAIL_AT(c, kn, ikey, "duplicate key (first at line %d:%d)",
			    first->line, first->col);
	}
	free(v);
	return r;
}

static int to_kv_pair(struct ctx *c, const struct mkey *k, const struct ynode *kn,
		      const struct ynode *vn, const char *key,
		      struct azl_cust_kv *kv)
{
	char ikey[700];
	int r;

	key_path(ikey, sizeof(ikey), key, kn->kind == Y_SCALAR ? kn->str : "?");
	r = to_str(c, kn, ikey, &kv->key);
	if (r == 0 && k->check)
		r = k->check(c, kn, ikey, &kv->key);
	if (r == 0)
		r = to_str(c, vn, ikey, &kv->value);
	if (r == 0 && (k->flags & MK_ONE_LINE) && has_ctl(kv->value))
		r = FAIL_AT(c, vn, ikey, "control characters (newlines, tabs) "
			    "are not allowed in the value");
	return r;
}

static int to_kv(struct ctx *c, const struct mkey *k, const struct ynode *n,
		 const char *key, void *obj)
{
	struct azl_cust_kv **items = at_off(obj, k->off);
	size_t *count = at_off(obj, k->aux);
	int r = 0;

	if (n->kind != Y_MAP)
		return FAIL_AT(c, n, key, "expected a mapping of KEY: value, got %s",
			       describe(n));
	*count = n->nkids / 2;
	*items = azl_xcalloc(*count ? *count : 1, sizeof(**items));
	for (size_t i = 0; i < *count && r == 0; i++)
		r = to_kv_pair(c, k, n->kids[2 * i], n->kids[2 * i + 1], key,
			       &(*items)[i]);
	if (r == 0)
		r = unique_kv_keys(c, n, key, *items, *count);
	if (r == 0 && (k->flags & MK_SORTED))
		qsort(*items, *count, sizeof(**items), cmp_kv);
	return r;
}

static int to_ptr(struct ctx *c, const struct mkey *k, const struct ynode *n,
		  const char *key, void *obj)
{
	void **p = at_off(obj, k->off);
	struct ynode empty = { Y_MAP, n->line, n->col, NULL, 0, false, NULL, 0 };

	*p = azl_xcalloc(1, k->sub->size);
	return apply(c, k->sub, is_null(n) ? &empty : n, key, *p, 0);
}

static int convert(struct ctx *c, const struct mkey *k, const struct ynode *n,
		   const char *key, void *obj)
{
	void *field = at_off(obj, k->off);
	int r;

	switch (k->type) {
	case MT_STR:
		r = to_str_empty(c, n, key, field, k->flags & MK_EMPTY_OK);
		break;
	case MT_CUSTOM:
		r = k->check(c, n, key, field);
		if (r == 0 && (k->flags & MK_HAS))
			*(bool *)at_off(obj, k->aux) = true;
		return r;
	case MT_INT:
		r = to_int(c, n, key, field);
		break;
	case MT_BOOL:
		r = to_bool(c, n, key, field);
		break;
	case MT_STRLIST:
		return to_strlist(c, k, n, key, obj);
	case MT_LIST:
		return to_list(c, k, n, key, obj);
	case MT_OBJ:
		return apply(c, k->sub, n, key, field, 0);
	case MT_PTR:
		return to_ptr(c, k, n, key, obj);
	case MT_KV:
		return to_kv(c, k, n, key, obj);
	default:
		return azl_errf(c->err, -EINVAL, "%s: key '%s': bad schema row",
				c->file, key);
	}
	if (r == 0 && (k->flags & MK_HAS))
		*(bool *)at_off(obj, k->aux) = true;
	if (r == 0 && k->check)
		r = k->check(c, n, key, field);
	return r;
}

static const struct mkey *find_key(const struct mschema *s, const char *name)
{
	for (size_t i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i].name, name))
			return &s->keys[i];
	return NULL;
}

static int unknown_key(struct ctx *c, const struct mschema *s,
		       const struct ynode *kn, const char *key)
{
	struct azl_buf known = AZL_BUF_INIT;
	int r;

	for (size_t i = 0; i < s->nkeys; i++)
		azl_buf_addf(&known, "%s%s", i ? ", " : "", s->keys[i].name);
	r = FAIL_AT(c, kn, key, "unknown key (known keys here: %s)",
		    azl_buf_str(&known));
	azl_buf_release(&known);
	return r;
}

/* Keys in file order (so the first error is the first in the file), then
 * missing keys and defaults in table order. */
static int apply_pairs(struct ctx *c, const struct mschema *s,
		       const struct ynode *map, const char *path, void *obj,
		       const struct ynode **seen)
{
	char key[700];

	for (size_t p = 0; p + 1 < map->nkids; p += 2) {
		const struct ynode *kn = map->kids[p], *vn = map->kids[p + 1];
		const struct mkey *k;

		if (kn->kind != Y_SCALAR)
			return FAIL_AT(c, kn, path, "keys must be plain strings, "
				       "got %s", describe(kn));
		key_path(key, sizeof(key), path, kn->str);
		k = find_key(s, kn->str);
		if (!k || strlen(kn->str) != kn->len)
			return unknown_key(c, s, kn, key);
		if (seen[k - s->keys])
			return FAIL_AT(c, kn, key, "duplicate key (first at line %d:%d)",
				       seen[k - s->keys]->line,
				       seen[k - s->keys]->col);
		seen[k - s->keys] = kn;
		int r = convert(c, k, vn, key, obj);
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply_missing(struct ctx *c, const struct mschema *s,
			 const struct ynode *map, const char *path, void *obj,
			 const struct ynode **seen)
{
	char key[700];

	for (size_t i = 0; i < s->nkeys; i++) {
		const struct mkey *k = &s->keys[i];
		struct ynode def = { Y_SCALAR, map->line, map->col, NULL, 0, true,
				     NULL, 0 };
		int r = 0;

		if (seen[i])
			continue;
		key_path(key, sizeof(key), path, k->name);
		if (k->flags & MK_REQUIRED)
			return FAIL_AT(c, map, key, "missing required key");
		if (k->def) {
			def.str = (char *)k->def;
			def.len = strlen(k->def);
			r = convert(c, k, &def, key, obj);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply(struct ctx *c, const struct mschema *s, const struct ynode *map,
		 const char *path, void *base, size_t i)
{
	void *obj = (char *)base + i * s->size;
	const struct ynode **seen = NULL;
	int r;

	if (map->kind != Y_MAP) {
		r = *path ? FAIL_AT(c, map, path, "expected a mapping of keys, got %s",
				    describe(map))
			  : FAIL_AT(c, map, NULL, "the manifest must be a mapping of "
				    "keys, got %s", describe(map));
		goto out;
	}
	seen = azl_xcalloc(s->nkeys, sizeof(*seen));
	r = apply_pairs(c, s, map, path, obj, seen);
	if (r == 0)
		r = apply_missing(c, s, map, path, obj, seen);
	if (r == 0 && s->finish)
		r = s->finish(c, map, path, base, i);
out:
	free(seen);
	return r;
}

static void free_entry(const struct mschema *s, void *obj);

static void free_field(const struct mkey *k, void *obj)
{
	void *field = at_off(obj, k->off);
	size_t *count = at_off(obj, k->aux); /* read for the list types only */

	switch (k->type) {
	case MT_STR:
		free(*(char **)field);
		break;
	case MT_STRLIST:
		for (size_t j = 0; *(char ***)field && j < *count; j++)
			free((*(char ***)field)[j]);
		free(*(char ***)field);
		break;
	case MT_LIST:
		for (size_t j = 0; *(char **)field && j < *count; j++)
			free_entry(k->sub, *(char **)field + j * k->sub->size);
		free(*(void **)field);
		break;
	case MT_OBJ:
		free_entry(k->sub, field);
		break;
	case MT_PTR:
		if (*(void **)field)
			free_entry(k->sub, *(void **)field);
		free(*(void **)field);
		break;
	case MT_KV:
		for (size_t j = 0; *(struct azl_cust_kv **)field && j < *count; j++) {
			free((*(struct azl_cust_kv **)field)[j].key);
			free((*(struct azl_cust_kv **)field)[j].value);
		}
		free(*(void **)field);
		break;
	default: /* scalars */
		break;
	}
}

static void free_entry(const struct mschema *s, void *obj)
{
	for (size_t i = 0; i < s->nkeys; i++)
		free_field(&s->keys[i], obj);
}

/* ---- public ------------------------------------------------------------- */

void azl_manifest_free(struct azl_manifest *m)
{
	if (!m)
		return;
	free_entry(&manifest_schema, m);
	free(m->path);
	free(m->dir);
	free(m);
}

/* The manifest's folder made absolute, so gpgkey paths stay valid whatever
 * the later working directory. */
static char *abs_dir(const char *path)
{
	char *dn = azl_dirname(path), *rp = realpath(dn, NULL), *cwd;

	if (rp || dn[0] == '/') {
		if (rp)
			free(dn);
		return rp ? rp : dn;
	}
	cwd = getcwd(NULL, 0);
	rp = cwd ? azl_path_join(cwd, dn) : azl_xasprintf("/%s", dn);
	free(cwd);
	free(dn);
	return rp;
}

int azl_manifest_parse(const char *path, const char *data, size_t len,
		       struct azl_manifest **out, struct azl_err *err)
{
	struct azl_manifest *m = azl_xcalloc(1, sizeof(*m));
	struct ctx c = { path, NULL, data, len, err, { 0 } };
	struct ynode *root = NULL;
	int r;

	*out = NULL;
	m->path = azl_xstrdup(path);
	m->dir = abs_dir(path);
	c.dir = m->dir;
	azl_sha256_hex(data, len, m->sha256);
	if (!yaml_parser_initialize(&c.parser)) {
		r = azl_errf(err, -ENOMEM, "%s: cannot start the YAML parser", path);
		goto out;
	}
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)data, len);
	r = load_tree(&c, &root);
	yaml_parser_delete(&c.parser);
	if (r == 0 && (!root || is_null(root)))
		r = fail(&c, 1, 1, NULL, "the manifest is empty");
	if (r == 0)
		r = apply(&c, &manifest_schema, root, "", m, 0);
out:
	node_free(root);
	if (r < 0)
		azl_manifest_free(m);
	else
		*out = m;
	return r;
}

int azl_manifest_load(const char *path, struct azl_manifest **out,
		      struct azl_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = azl_read_file(path, MAX_FILE_SIZE, &data, &len, err);
	if (r == -EFBIG && err)
		err->kind = AZL_ERR_INPUT; /* the file says too much */
	if (r == 0)
		r = azl_manifest_parse(path, data, len, out, err);
	free(data);
	return r;
}

const struct azl_repo_spec *azl_manifest_repo(const struct azl_manifest *m,
					      const char *id)
{
	for (size_t i = 0; id && i < m->nrepos; i++)
		if (!strcmp(m->repos[i].id, id))
			return &m->repos[i];
	return NULL;
}

char *azl_manifest_lock_path(const struct azl_manifest *m)
{
	static const char *const exts[] = { ".yaml", ".yml" };
	size_t n = strlen(m->path);

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t e = strlen(exts[i]);
		if (n > e && !strcmp(m->path + n - e, exts[i]) &&
		    m->path[n - e - 1] != '/')
			return azl_xasprintf("%.*s.lock.json", (int)(n - e), m->path);
	}
	return azl_xasprintf("%s.lock.json", m->path);
}
