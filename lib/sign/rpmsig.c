/* Package signature checks through librpm's own verifier.
 *
 * rpmVerifySignatures() is what `rpm -K` runs: it checks every digest and
 * signature in the header and over the payload.  We give it a transaction
 * whose keyring holds only the repository's keys (never the host's rpmdb),
 * require a signature (vfylevel), and read its verbose per-item report
 * through a log callback to say precisely what failed.
 *
 * The payload digest of a package whose signed header carries a SHA-256
 * one is compared here instead of by rpm: rpm hashes through libgcrypt,
 * which took twice OpenSSL's time for the same bytes on the build machine
 * (the largest cost of fetching with gpgcheck on).  rpm still checks the
 * header's signature and digest, which is what makes the stated payload
 * digest trustworthy; older packages get rpm's full check. */
#include "sign/rpmsig.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rpm/rpmcli.h>
#include <rpm/rpmkeyring.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmts.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/rpmread.h"

struct azl_keyring {
	rpmKeyring kr;
};

/* Guards the log state below. */
static pthread_mutex_t rpm_lock = PTHREAD_MUTEX_INITIALIZER;

/* Add one armoured key block (and its subkeys) to the keyring. */
static int add_armored(rpmKeyring kr, const char *armor, const char *path,
		       struct azl_err *err)
{
	uint8_t *pkt = NULL;
	size_t len = 0;
	rpmPubkey key = NULL;
	rpmPubkey *subs = NULL;
	int nsubs = 0, r = 0;

	if (pgpParsePkts(armor, &pkt, &len) != PGPARMOR_PUBKEY ||
	    !(key = rpmPubkeyNew(pkt, len))) {
		r = azl_err_input(err, "%s: not an OpenPGP public key", path);
		goto out;
	}
	if (rpmKeyringAddKey(kr, key) < 0) {
		r = azl_errf(err, -EINVAL, "%s: cannot add key", path);
		goto out;
	}
	subs = rpmGetSubkeys(key, &nsubs);
	for (int i = 0; i < nsubs; i++) {
		rpmKeyringAddKey(kr, subs[i]);
		rpmPubkeyFree(subs[i]);
	}
out:
	free(subs);
	rpmPubkeyFree(key);
	free(pkt);
	return r;
}

/* A file may hold several "BEGIN PGP PUBLIC KEY BLOCK" sections. */
static int add_key_file(rpmKeyring kr, const char *path, struct azl_err *err)
{
	static const char begin[] = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
	char *text = NULL, *p;
	int r, found = 0;

	/* The manifest named this file: a missing one is bad input. */
	r = azl_read_file(path, 1 << 20, &text, NULL, err);
	if (r < 0)
		return azl_err_input(err, "gpgkey %s: %s", path, strerror(-r));
	for (p = strstr(text, begin); r == 0 && p; found++) {
		char *next = strstr(p + 1, begin);
		char saved = next ? *next : '\0';
		if (next)
			*next = '\0';
		r = add_armored(kr, p, path, err);
		if (next)
			*next = saved;
		p = next;
	}
	if (r == 0 && !found)
		r = azl_err_input(err, "%s: no PGP PUBLIC KEY BLOCK in file", path);
	free(text);
	return r;
}

int azl_keyring_load(const char *const *key_paths, size_t n,
		     struct azl_keyring **out, struct azl_err *err)
{
	struct azl_keyring *k;
	int r = 0;

	if (azl_rpm_config_init() != 0)
		return azl_errf(err, -EIO, "cannot initialise librpm");
	k = azl_xcalloc(1, sizeof(*k));
	k->kr = rpmKeyringNew();
	for (size_t i = 0; r == 0 && i < n; i++)
		r = add_key_file(k->kr, key_paths[i], err);
	if (r < 0) {
		azl_keyring_free(k);
		return r;
	}
	*out = k;
	return 0;
}

void azl_keyring_free(struct azl_keyring *k)
{
	if (!k)
		return;
	rpmKeyringFree(k->kr);
	free(k);
}

/* rpm's log mask and callback are process-wide, but its verifier only
 * reports per item when the mask is verbose.  While any verification runs
 * the mask is raised and one callback is installed; it files each message
 * under the verifying thread's report and applies the caller's original
 * mask to everyone else's messages. */
static __thread struct azl_buf *tl_report;
static int saved_mask, active;
static rpmlogCallback saved_cb;

static int log_collect(rpmlogRec rec, rpmlogCallbackData data)
{
	if (tl_report) {
		azl_buf_adds(tl_report, rpmlogRecMessage(rec));
		return 0; /* handled: nothing reaches stderr */
	}
	if (!(RPMLOG_MASK(rpmlogRecPriority(rec)) & saved_mask))
		return 0;
	return saved_cb ? saved_cb(rec, data) : RPMLOG_DEFAULT;
}

static void log_enter(struct azl_buf *report)
{
	pthread_mutex_lock(&rpm_lock);
	if (active++ == 0) {
		saved_mask = rpmlogSetMask(0);
		rpmlogSetMask(RPMLOG_UPTO(RPMLOG_INFO));
		saved_cb = rpmlogSetCallback(log_collect, NULL);
	}
	pthread_mutex_unlock(&rpm_lock);
	tl_report = report;
}

static void log_leave(void)
{
	tl_report = NULL;
	pthread_mutex_lock(&rpm_lock);
	if (--active == 0) {
		rpmlogSetCallback(saved_cb, NULL);
		rpmlogSetMask(saved_mask);
	}
	pthread_mutex_unlock(&rpm_lock);
}

/* Run rpm's verifier, capturing its report.  Returns its status. */
static int rpm_verify(struct azl_keyring *k, const char *rpm_path,
		      rpmVSFlags flags, struct azl_buf *report)
{
	struct rpmQVKArguments_s qva = { 0 };
	rpmts ts = rpmtsCreate();
	FD_t fd;
	int rc = 1;

	rpmtsSetRootDir(ts, "/");
	rpmtsSetKeyring(ts, k->kr);
	rpmtsSetVfyFlags(ts, flags);
	rpmtsSetVfyLevel(ts, RPMSIG_SIGNATURE_TYPE | RPMSIG_DIGEST_TYPE);
	fd = Fopen(rpm_path, "r.ufdio");
	if (!fd || Ferror(fd)) {
		azl_buf_addf(report, "cannot open: %s\n", fd ? Fstrerror(fd) : "");
		goto out;
	}
	log_enter(report);
	rc = rpmVerifySignatures(&qva, ts, fd, rpm_path);
	log_leave();
out:
	if (fd)
		Fclose(fd);
	rpmtsFree(ts);
	return rc;
}

/* The payload's SHA-256 as the header states it (lower-case hex) and the
 * offset where the payload starts.  Returns 1 when found, 0 when the
 * header has no SHA-256 payload digest, <0 when the file does not read as
 * a package.  No check here: the caller verified the header first. */
static int stated_payload_digest(const char *rpm_path, char hex[65],
				 uint64_t *payload_off)
{
	rpmts ts = rpmtsCreate();
	FD_t fd = Fopen(rpm_path, "r.ufdio");
	Header h = NULL;
	struct rpmtd_s td;
	const char *s;
	off_t off;
	int r = -EBADMSG;

	rpmtsSetVSFlags(ts, RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
	if (!fd || Ferror(fd) ||
	    rpmReadPackageFile(ts, fd, rpm_path, &h) != RPMRC_OK)
		goto out;
	/* rpm2cpio reads the payload from here on, too. */
	off = Ftell(fd);
	if (off < 0)
		goto out;
	*payload_off = (uint64_t)off;
	r = 0;
	if (headerGetNumber(h, RPMTAG_PAYLOADDIGESTALGO) != PGPHASHALGO_SHA256 ||
	    !headerGet(h, RPMTAG_PAYLOADDIGEST, &td, HEADERGET_MINMEM))
		goto out;
	s = rpmtdNextString(&td);
	if (s && strlen(s) == 64) {
		for (int i = 0; i < 64; i++)
			hex[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] + 32 : s[i]);
		hex[64] = '\0';
		r = 1;
	}
	rpmtdFreeData(&td);
out:
	headerFree(h);
	if (fd)
		Fclose(fd);
	rpmtsFree(ts);
	return r;
}

/* The header-only report passes: a good header signature and SHA256
 * digest, and no item that failed (NOTFOUND marks the items left out). */
static int header_verified(const char *report)
{
	char *copy = azl_xstrdup(report), *save = NULL;
	int sig = 0, digest = 0, bad = 0;

	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		while (*l == ' ')
			l++;
		if (!strncmp(l, "Header ", 7) && strstr(l, " Signature, key ID ") &&
		    strstr(l, ": OK"))
			sig = 1;
		else if (!strcmp(l, "Header SHA256 digest: OK"))
			digest = 1;
		else if (strstr(l, ": ") && !strstr(l, ": OK") && !strstr(l, ": NOTFOUND"))
			bad = 1;
	}
	free(copy);
	return sig && digest && !bad;
}

void azl_rpm_payload_release(struct azl_rpm_payload *d)
{
	char dummy[65];

	if (d->h)
		azl_sha256_final(d->h, dummy);
	memset(d, 0, sizeof(*d));
}

/* A header intro's sizes are in (the file's layout: compose/rpmread.h):
 * where the next part starts.  d->field is 8 bytes into the header. */
static void intro_done(struct azl_rpm_payload *d)
{
	uint32_t il = azl_rpm_be32(d->intro), dl = azl_rpm_be32(d->intro + 4);
	uint64_t end = azl_rpm_header_end(d->field - 8, il, dl);
	int sig = d->stage == 0;

	d->have = 0;
	if (il > (sig ? AZL_RPM_SIG_TAGS_MAX : AZL_RPM_HDR_TAGS_MAX) ||
	    dl > (sig ? AZL_RPM_SIG_DATA_MAX : AZL_RPM_HDR_DATA_MAX)) {
		d->stage = -1;
	} else if (d->stage == 0) {
		d->field = ((end + 7) & ~(uint64_t)7) + 8;
		d->stage = 1;
	} else {
		d->payload_off = end;
		d->h = azl_sha256_new();
		d->stage = 2;
	}
}

struct azl_sha256 *azl_rpm_payload_tap(void *ctx, uint64_t off, const void *data,
				       size_t len, size_t *from)
{
	struct azl_rpm_payload *d = ctx;
	const unsigned char *p = data;

	if (off == 0) {
		azl_rpm_payload_release(d);
		d->field = AZL_RPM_LEAD_SIZE + 8;
	}
	if (d->stage < 0 || off != d->next) {
		d->stage = -1; /* a gap: only a read of the file can tell */
		return NULL;
	}
	d->next = off + len;
	/* Pick the intro fields out as they pass. */
	while (len && (d->stage == 0 || d->stage == 1)) {
		uint64_t want = d->field + d->have;
		if (off < want) {
			size_t skip = want - off < len ? (size_t)(want - off) : len;
			off += skip;
			p += skip;
			len -= skip;
			continue;
		}
		d->intro[d->have++] = *p++;
		off++;
		len--;
		if (d->have == sizeof(d->intro))
			intro_done(d);
	}
	if (d->stage != 2 || !len)
		return NULL;
	if (off < d->payload_off) {
		size_t skip = d->payload_off - off < len ? (size_t)(d->payload_off - off) : len;
		p += skip;
		len -= skip;
	}
	if (!len)
		return NULL;
	*from = (size_t)(p - (const unsigned char *)data);
	return d->h;
}

void azl_rpm_payload_feed(struct azl_rpm_payload *d, uint64_t off,
			  const void *data, size_t len)
{
	azl_sha256_update_tapped(NULL, azl_rpm_payload_tap, d, off, data, len);
}

/* The streamed digest of the payload from off on, if it covered exactly
 * that and the whole file: 0 with hex set, else -1. */
static int streamed_digest(struct azl_rpm_payload *pre, const char *rpm_path,
			   uint64_t off, char hex[65])
{
	struct stat st;

	if (!pre || pre->stage != 2 || pre->payload_off != off ||
	    stat(rpm_path, &st) < 0 || (uint64_t)st.st_size != pre->next)
		return -1;
	azl_sha256_final(pre->h, hex);
	pre->h = NULL;
	return 0;
}

/* Compare the payload with the digest its (verified) header states, and
 * add rpm's own report line for the result.  Returns 1 when the header
 * states none (rpm must check the package its full way), 0 on a match,
 * -1 on a mismatch. */
static int check_payload(const char *rpm_path, struct azl_rpm_payload *pre,
			 struct azl_buf *report)
{
	char want[65], got[65];
	uint64_t off = 0;
	int r = stated_payload_digest(rpm_path, want, &off);

	if (r <= 0)
		return 1;
	r = streamed_digest(pre, rpm_path, off, got) == 0 ? 0 :
		azl_sha256_file_from(rpm_path, off, got, NULL, NULL);
	if (r < 0) {
		azl_buf_addf(report, "    Payload SHA256 digest: BAD (read: %s)\n",
			     strerror(-r));
		return -1;
	}
	if (strcmp(want, got)) {
		azl_buf_addf(report, "    Payload SHA256 digest: BAD (Expected %s != %s)\n",
			     want, got);
		return -1;
	}
	azl_buf_adds(report, "    Payload SHA256 digest: OK\n");
	return 0;
}

/* The key id on a report line "... Signature, key ID 34bf3f9f: NOKEY". */
static void key_id(const char *line, char *out, size_t len)
{
	const char *p = strstr(line, "key ID ");
	size_t n = 0;

	if (p)
		for (p += 7; p[n] && p[n] != ':' && n + 1 < len; n++)
			out[n] = p[n];
	out[n] = '\0';
}

/* Name the most telling failure in rpm's verbose report, one item a line:
 * "    Header V4 RSA/SHA512 Signature, key ID 34bf3f9f: OK",
 * "    Payload SHA256 digest: BAD (Expected ... != ...)". */
static void explain(const char *report, char *why, size_t len)
{
	char *copy = azl_xstrdup(report), *save = NULL, kid[32];
	int signed_ok = 0, hdr_sig_ok = 0, nokey = 0, badsig = 0, badpayload = 0,
	    badheader = 0;
	const char *other = NULL;

	kid[0] = '\0';
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		int is_sig = strstr(l, "ignature") != NULL;
		if (is_sig && strstr(l, ": OK")) {
			signed_ok = 1;
			hdr_sig_ok |= strstr(l, "Header") != NULL;
		}
		else if (is_sig && strstr(l, ": NOKEY") && ++nokey)
			key_id(l, kid, sizeof(kid));
		else if (is_sig && (strstr(l, ": BAD") || strstr(l, ": NOTTRUSTED")) && ++badsig)
			key_id(l, kid, sizeof(kid));
		else if (strstr(l, ": BAD") && strstr(l, "Header"))
			badheader = 1;
		else if (strstr(l, ": BAD"))
			badpayload = 1;
		else if (!other && (strstr(l, "rror") || !strncmp(l, "cannot open", 11)))
			other = l;
	}
	/* Old packages also sign header+payload: with the header signature
	 * good, a bad one there means the payload changed. */
	if (nokey)
		snprintf(why, len, "signed by unknown key %s", kid);
	else if (badpayload && hdr_sig_ok)
		snprintf(why, len, "digest mismatch (corrupted payload)");
	else if (badsig)
		snprintf(why, len, "bad signature (key ID %s)", kid);
	else if (badheader)
		snprintf(why, len, "digest mismatch (corrupted header)");
	else if (badpayload)
		snprintf(why, len, "digest mismatch (corrupted payload)");
	else if (!strstr(report, "digest:"))
		snprintf(why, len, "not a readable RPM package%s%s",
			 other ? ": " : "", other ? other : "");
	else if (!signed_ok && !other)
		snprintf(why, len, "not signed");
	else
		snprintf(why, len, "rpm verification failed: %s",
			 other ? other : "unknown reason");
	free(copy);
}

int azl_rpmsig_verify(struct azl_keyring *k, const char *rpm_path,
		      const char *label, struct azl_err *err)
{
	return azl_rpmsig_verify_streamed(k, rpm_path, label, NULL, err);
}

int azl_rpmsig_verify_streamed(struct azl_keyring *k, const char *rpm_path,
			       const char *label, struct azl_rpm_payload *pre,
			       struct azl_err *err)
{
	struct azl_buf report = AZL_BUF_INIT;
	char why[512];
	int rc, p, r = 0;

	/* rpm checks the header (signature, SHA256 digest); the payload
	 * against the header's SHA256 payload digest is ours (see the top of
	 * the file), and the legacy MD5 and header SHA1 add nothing then.
	 * NEEDPAYLOAD leaves out every item spanning the payload, so rpm
	 * does not read it (as rpmReadPackageFile, which dnf's check runs,
	 * does not); a package signed only over header and payload (V3)
	 * shows no header signature and takes the full check below.
	 * rpm's status counts the items left out as missing, so the header's
	 * verdict is read from its per-item report.  Anything else (a failed
	 * or older header, no SHA256 payload digest) gets rpm's full check,
	 * whose report also says what failed. */
	rpm_verify(k, rpm_path, RPMVSF_NEEDPAYLOAD | RPMVSF_NOMD5 |
		   RPMVSF_NOSHA1HEADER | RPMVSF_NOPAYLOAD, &report);
	p = header_verified(azl_buf_str(&report)) ? check_payload(rpm_path, pre, &report) : 1;
	rc = p < 0;
	if (p > 0) {
		azl_buf_reset(&report);
		rc = rpm_verify(k, rpm_path, RPMVSF_DEFAULT, &report);
	}

	/* Belt and braces: a pass must also show a good signature line. */
	if (rc == 0 && !strstr(azl_buf_str(&report), "Signature, key ID"))
		rc = 1;
	if (rc) {
		explain(azl_buf_str(&report), why, sizeof(why));
		r = azl_errf(err, -EBADMSG, "%s: %s: %s", label ? label : rpm_path,
			     rpm_path, why);
	}
	azl_buf_release(&report);
	if (pre)
		azl_rpm_payload_release(pre);
	return r;
}
