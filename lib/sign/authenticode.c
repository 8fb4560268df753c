/* Authenticode signing of PE images: image hash, SpcIndirectDataContent,
 * PKCS#7 SignedData, WIN_CERTIFICATE.  See authenticode.h. */
#include "sign/authenticode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "base/buf.h"
#include "base/fs.h"

#define SEC_HDR 40
#define PROBE 4096u
#define MAX_HEADERS (1u << 20)   /* SizeOfHeaders beyond this: not a real image */
#define CHUNK (1u << 16)
#define WIN_CERT_REVISION 0x0200
#define WIN_CERT_TYPE_PKCS_SIGNED_DATA 0x0002

#define OID_SPC_INDIRECT_DATA "1.3.6.1.4.1.311.2.1.4"
#define OID_SPC_SP_OPUS_INFO "1.3.6.1.4.1.311.2.1.12"
#define OID_SPC_STATEMENT_TYPE "1.3.6.1.4.1.311.2.1.11"

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t align8(uint64_t v) { return (v + 7) & ~(uint64_t)7; }

/* OpenSSL's last error as text (queue cleared), for messages. */
static const char *ssl_why(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, n);
	else
		snprintf(buf, n, "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

/* ---- signer ---- */

void azl_pkcs7_signer_release(struct azl_pkcs7_signer *s)
{
	EVP_PKEY_free(s->key);
	X509_free(s->cert);
	memset(s, 0, sizeof(*s));
}

static int cert_load(const char *path, X509 **out, struct azl_err *err)
{
	char why[256];
	BIO *bio = BIO_new_file(path, "r");

	*out = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!*out)
		return azl_err_input(err, "%s: cannot read a PEM X.509 certificate: %s",
				     path, ssl_why(why, sizeof(why)));
	return 0;
}

int azl_pkcs7_signer_load(const char *key_path, const char *cert_path,
			  const char *passphrase, struct azl_pkcs7_signer *s,
			  struct azl_err *err)
{
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = azl_key_load_private(key_path, passphrase, &s->key, &s->type, err)) < 0)
		goto out;
	if (s->type == AZL_KEY_ED25519) {
		r = azl_err_input(err, "%s: an Ed25519 key cannot make PKCS#7 signatures (Secure Boot, dm-verity); use RSA (2048 bits for Secure Boot) or ECDSA P-256",
				  key_path);
		goto out;
	}
	if ((r = cert_load(cert_path, &s->cert, err)) < 0)
		goto out;
	if (X509_check_private_key(s->cert, s->key) != 1) {
		ERR_clear_error();
		r = azl_err_input(err, "%s: the certificate does not belong to the key %s",
				  cert_path, key_path);
	}
out:
	if (r < 0)
		azl_pkcs7_signer_release(s);
	return r;
}

/* ---- PE layout ---- */

struct sect {
	uint32_t off, size;
};

struct pe_img {
	int fd;
	const char *path;
	unsigned char *hdr;    /* the first hdr_size bytes of the file */
	uint32_t hdr_size;     /* SizeOfHeaders */
	size_t csum_off;       /* CheckSum field */
	size_t dir_off;        /* Certificate Table data directory entry */
	size_t sect_off;
	uint16_t nsect_all;
	struct sect *sect;     /* sections with raw data, by file offset */
	size_t nsect;
	uint64_t data_end;     /* file size, or where an old certificate table starts */
	uint64_t padded_end;   /* data_end aligned to 8: where the new table goes */
};

/* Fixed header fields, every offset checked against len (a probe of the
 * file's start). */
static int pe_parse_fixed(struct pe_img *pe, const unsigned char *p, size_t len,
			  struct azl_err *err)
{
	size_t coff, opt, dirs, nrva_off;
	uint16_t magic, opt_size;

	if (len < 0x40 || p[0] != 'M' || p[1] != 'Z')
		return azl_err_input(err, "%s: not a PE image (no MZ header)", pe->path);
	coff = (size_t)rd32(p + 0x3c) + 4;
	if (coff + 20 + 2 > len || memcmp(p + coff - 4, "PE\0\0", 4))
		return azl_err_input(err, "%s: not a PE image (no PE signature)", pe->path);
	pe->nsect_all = rd16(p + coff + 2);
	opt_size = rd16(p + coff + 16);
	opt = coff + 20;
	magic = rd16(p + opt);
	if (magic != 0x20b && magic != 0x10b)
		return azl_err_input(err, "%s: unknown optional header magic 0x%x", pe->path, magic);
	nrva_off = opt + (magic == 0x20b ? 108 : 92);
	dirs = nrva_off + 4;
	pe->csum_off = opt + 64;
	pe->dir_off = dirs + 4 * 8;
	pe->sect_off = opt + opt_size;
	if (pe->dir_off + 8 > pe->sect_off || pe->sect_off > len || rd32(p + nrva_off) <= 4)
		return azl_err_input(err, "%s: PE optional header without a Certificate Table entry",
				     pe->path);
	pe->hdr_size = rd32(p + opt + 60);
	return 0;
}

static int sect_cmp(const void *a, const void *b)
{
	const struct sect *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Sections with raw data in file order; each must lie within the data. */
static int pe_sections(struct pe_img *pe, struct azl_err *err)
{
	pe->sect = azl_xcalloc(pe->nsect_all ? pe->nsect_all : 1, sizeof(*pe->sect));
	for (uint16_t i = 0; i < pe->nsect_all; i++) {
		const unsigned char *s = pe->hdr + pe->sect_off + (size_t)i * SEC_HDR;
		struct sect x = { rd32(s + 20), rd32(s + 16) };
		if (!x.size)
			continue;
		if ((uint64_t)x.off + x.size > pe->data_end)
			return azl_err_input(err, "%s: section %.8s extends beyond the image data",
					     pe->path, (const char *)s);
		pe->sect[pe->nsect++] = x;
	}
	qsort(pe->sect, pe->nsect, sizeof(*pe->sect), sect_cmp);
	return 0;
}

/* An existing signature table must be the file's tail: it is dropped. */
static int pe_data_end(struct pe_img *pe, uint64_t fsize, struct azl_err *err)
{
	uint32_t addr = rd32(pe->hdr + pe->dir_off), size = rd32(pe->hdr + pe->dir_off + 4);

	pe->data_end = fsize;
	if (size) {
		if (addr < pe->hdr_size || (uint64_t)addr + size != fsize)
			return azl_err_input(err, "%s: the certificate table (offset %u, %u bytes) is not at the end of the file",
					     pe->path, addr, size);
		pe->data_end = addr;
	}
	pe->padded_end = align8(pe->data_end);
	return 0;
}

static void pe_close(struct pe_img *pe)
{
	if (pe->fd >= 0)
		close(pe->fd);
	free(pe->hdr);
	free(pe->sect);
	pe->fd = -1;
	pe->hdr = NULL;
	pe->sect = NULL;
}

static int pe_open(struct pe_img *pe, const char *path, struct azl_err *err)
{
	unsigned char probe[PROBE];
	struct stat st;
	size_t n;
	int r;

	memset(pe, 0, sizeof(*pe));
	pe->path = path;
	if ((pe->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(pe->fd, &st) < 0)
		return azl_errf(err, -errno, "%s: %s", path, strerror(errno));
	n = (uint64_t)st.st_size < PROBE ? (size_t)st.st_size : PROBE;
	if ((r = azl_pread_all(pe->fd, probe, n, 0)) < 0)
		return azl_errf(err, r, "%s: %s", path, strerror(-r));
	if ((r = pe_parse_fixed(pe, probe, n, err)) < 0)
		return r;
	if (pe->sect_off + (size_t)pe->nsect_all * SEC_HDR > pe->hdr_size ||
	    pe->hdr_size > (uint64_t)st.st_size || pe->hdr_size > MAX_HEADERS)
		return azl_err_input(err, "%s: damaged PE headers (SizeOfHeaders %u)", path, pe->hdr_size);
	pe->hdr = azl_xmalloc(pe->hdr_size);
	if ((r = azl_pread_all(pe->fd, pe->hdr, pe->hdr_size, 0)) < 0)
		return azl_errf(err, r, "%s: %s", path, strerror(-r));
	if ((r = pe_data_end(pe, (uint64_t)st.st_size, err)) < 0)
		return r;
	return pe_sections(pe, err);
}

/* ---- image hash ---- */

/* Hash [from, to): file bytes below data_end, the zero padding above. */
static int hash_range(struct pe_img *pe, EVP_MD_CTX *md, uint64_t from, uint64_t to)
{
	static const unsigned char zero[8];
	unsigned char *buf = azl_xmalloc(CHUNK);
	int r = 0;

	while (r == 0 && from < to && from < pe->data_end) {
		uint64_t end = to < pe->data_end ? to : pe->data_end;
		size_t k = end - from < CHUNK ? (size_t)(end - from) : CHUNK;
		if ((r = azl_pread_all(pe->fd, buf, k, from)) == 0 && !EVP_DigestUpdate(md, buf, k))
			r = -EIO;
		from += k;
	}
	for (; r == 0 && from < to; from += 8)
		if (!EVP_DigestUpdate(md, zero, to - from < 8 ? (size_t)(to - from) : 8))
			r = -EIO;
	free(buf);
	return r;
}

static int pe_digest(struct pe_img *pe, unsigned char out[AZL_AUTHENTICODE_DIGEST_LEN],
		     struct azl_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const unsigned char *h = pe->hdr;
	uint64_t hashed = pe->hdr_size;
	int r = -EIO;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, h, pe->csum_off) ||
	    !EVP_DigestUpdate(md, h + pe->csum_off + 4, pe->dir_off - pe->csum_off - 4) ||
	    !EVP_DigestUpdate(md, h + pe->dir_off + 8, pe->hdr_size - pe->dir_off - 8))
		goto out;
	r = 0;
	for (size_t i = 0; i < pe->nsect && r == 0; i++) {
		r = hash_range(pe, md, pe->sect[i].off, (uint64_t)pe->sect[i].off + pe->sect[i].size);
		hashed += pe->sect[i].size;
	}
	/* EDK2 and the spec: what follows is counted from the bytes hashed so
	 * far, not from the last section's end (the same for gapless images). */
	if (r == 0 && hashed < pe->padded_end)
		r = hash_range(pe, md, hashed, pe->padded_end);
	if (r == 0 && !EVP_DigestFinal_ex(md, out, NULL))
		r = -EIO;
out:
	EVP_MD_CTX_free(md);
	if (r < 0)
		return azl_errf(err, r, "%s: hashing the image: %s", pe->path, strerror(-r));
	return 0;
}

int azl_authenticode_digest(const char *pe_path,
			    unsigned char digest[AZL_AUTHENTICODE_DIGEST_LEN],
			    struct azl_err *err)
{
	struct pe_img pe;
	int r = pe_open(&pe, pe_path, err);

	if (r == 0)
		r = pe_digest(&pe, digest, err);
	pe_close(&pe);
	return r;
}

/* ---- SpcIndirectDataContent ---- */

static void der_tlv(struct azl_buf *out, unsigned char tag, const void *p, size_t n)
{
	unsigned char h[10];
	size_t k = 0, nb = 0;

	h[k++] = tag;
	if (n < 0x80) {
		h[k++] = (unsigned char)n;
	} else {
		for (size_t v = n; v; v >>= 8)
			nb++;
		h[k++] = (unsigned char)(0x80 | nb);
		while (nb--)
			h[k++] = (unsigned char)(n >> (8 * nb));
	}
	azl_buf_add(out, h, k);
	azl_buf_add(out, p, n);
}

/* The content octets (without the outer SEQUENCE header) of
 *   SpcIndirectDataContent ::= SEQUENCE {
 *     data SEQUENCE { type spcPEImageData, value SpcPeImageData },
 *     messageDigest DigestInfo (sha256, the image hash) }
 *   SpcPeImageData ::= SEQUENCE { flags BIT STRING (empty),
 *     file [0] EXPLICIT SpcLink: [2] EXPLICIT SpcString:
 *       [0] IMPLICIT BMPString "<<<Obsolete>>>" }
 * encoded by hand: the shape is fixed, so DER is a few TLVs. */
static void idc_content(const unsigned char digest[AZL_AUTHENTICODE_DIGEST_LEN],
			struct azl_buf *out)
{
	static const unsigned char pe_image_data_oid[] = { /* 1.3.6.1.4.1.311.2.1.15 */
		0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0f };
	static const unsigned char sha256_alg[] = { /* SEQUENCE { sha256, NULL } */
		0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
		0x05, 0x00 };
	static const unsigned char empty_flags[] = { 0x03, 0x01, 0x00 };
	static const char obsolete[] = "<<<Obsolete>>>";
	unsigned char bmp[2 * (sizeof(obsolete) - 1)];
	struct azl_buf a = AZL_BUF_INIT, b = AZL_BUF_INIT;

	for (size_t i = 0; i + 1 < sizeof(obsolete); i++) {
		bmp[2 * i] = 0;
		bmp[2 * i + 1] = (unsigned char)obsolete[i];
	}
	der_tlv(&a, 0x80, bmp, sizeof(bmp));           /* SpcString.unicode */
	der_tlv(&b, 0xa2, a.data, a.len);              /* SpcLink.file */
	azl_buf_reset(&a);
	azl_buf_add(&a, empty_flags, sizeof(empty_flags));
	der_tlv(&a, 0xa0, b.data, b.len);              /* SpcPeImageData.file */
	azl_buf_reset(&b);
	azl_buf_add(&b, pe_image_data_oid, sizeof(pe_image_data_oid));
	der_tlv(&b, 0x30, a.data, a.len);              /* SpcPeImageData */
	der_tlv(out, 0x30, b.data, b.len);             /* SpcAttributeTypeAndOptionalValue */
	azl_buf_reset(&a);
	azl_buf_add(&a, sha256_alg, sizeof(sha256_alg));
	der_tlv(&a, 0x04, digest, AZL_AUTHENTICODE_DIGEST_LEN);
	der_tlv(out, 0x30, a.data, a.len);             /* DigestInfo */
	azl_buf_release(&a);
	azl_buf_release(&b);
}

/* ---- PKCS#7 SignedData ---- */

static int attr_der_cmp(const void *pa, const void *pb)
{
	X509_ATTRIBUTE *const *a = pa, *const *b = pb;
	unsigned char *da = NULL, *db = NULL;
	int la = i2d_X509_ATTRIBUTE(*a, &da), lb = i2d_X509_ATTRIBUTE(*b, &db);
	int c = memcmp(da, db, (size_t)(la < lb ? la : lb));

	OPENSSL_free(da);
	OPENSSL_free(db);
	return c ? c : la - lb;
}

static X509_ATTRIBUTE *attr_seq(const char *oid, const unsigned char *der, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	X509_ATTRIBUTE *a = o ? X509_ATTRIBUTE_create_by_OBJ(NULL, o, V_ASN1_SEQUENCE, der, len) : NULL;
	ASN1_OBJECT_free(o);
	return a;
}

/* contentType, messageDigest, SpcSpOpusInfo {} and SpcStatementType
 * {individualCodeSigning}, stored in DER SET OF order: OpenSSL keeps the
 * stored order when encoding but signs the sorted set, so the two must
 * agree for a verifier to re-encode what was signed. */
static int add_auth_attrs(PKCS7_SIGNER_INFO *si, const unsigned char *md, int mdlen)
{
	static const unsigned char opus_info[] = { 0x30, 0x00 };
	static const unsigned char statement[] = { /* SEQUENCE { 1.3.6.1.4.1.311.2.1.21 } */
		0x30, 0x0c, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x15 };
	ASN1_OBJECT *idc = OBJ_txt2obj(OID_SPC_INDIRECT_DATA, 1);
	X509_ATTRIBUTE *at[4] = {
		idc ? X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_contentType, V_ASN1_OBJECT, idc, -1) : NULL,
		X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, md, mdlen),
		attr_seq(OID_SPC_SP_OPUS_INFO, opus_info, sizeof(opus_info)),
		attr_seq(OID_SPC_STATEMENT_TYPE, statement, sizeof(statement)),
	};
	int ok = at[0] && at[1] && at[2] && at[3];

	if (ok)
		qsort(at, 4, sizeof(at[0]), attr_der_cmp);
	for (int i = 0; i < 4; i++) {
		if (ok && !X509at_add1_attr(&si->auth_attr, at[i]))
			ok = 0;
		X509_ATTRIBUTE_free(at[i]);
	}
	ASN1_OBJECT_free(idc);
	return ok ? 0 : -1;
}

/* The SignedData's content: type SPC_INDIRECT_DATA, value the IDC. */
static PKCS7 *idc_p7_content(const struct azl_buf *idc)
{
	PKCS7 *c = PKCS7_new();
	ASN1_STRING *s = ASN1_STRING_new();
	ASN1_TYPE *t = ASN1_TYPE_new();

	if (!c || !s || !t || !ASN1_STRING_set(s, idc->data, (int)idc->len) ||
	    !(c->type = OBJ_txt2obj(OID_SPC_INDIRECT_DATA, 1))) {
		PKCS7_free(c);
		ASN1_STRING_free(s);
		ASN1_TYPE_free(t);
		return NULL;
	}
	ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
	c->d.other = t;
	return c;
}

static int p7_sign(const struct azl_pkcs7_signer *s,
		   const unsigned char digest[AZL_AUTHENTICODE_DIGEST_LEN],
		   struct azl_buf *der, struct azl_err *err)
{
	struct azl_buf content = AZL_BUF_INIT, idc = AZL_BUF_INIT;
	unsigned char md[32], *out = NULL;
	PKCS7 *p7 = PKCS7_new(), *inner = NULL;
	PKCS7_SIGNER_INFO *si = NULL;
	char why[256];
	int n = -1, r = -EINVAL;

	idc_content(digest, &content);
	der_tlv(&idc, 0x30, content.data, content.len);
	/* messageDigest covers the content octets only, not the SEQUENCE header */
	if (!EVP_Digest(content.data, content.len, md, NULL, EVP_sha256(), NULL) ||
	    !p7 || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !(si = PKCS7_add_signature(p7, s->cert, s->key, EVP_sha256())) ||
	    !PKCS7_add_certificate(p7, s->cert) ||
	    add_auth_attrs(si, md, sizeof(md)) < 0 ||
	    !(inner = idc_p7_content(&idc)) || !PKCS7_set_content(p7, inner))
		goto out;
	inner = NULL; /* p7 owns it */
	if (PKCS7_SIGNER_INFO_sign(si) <= 0 || (n = i2d_PKCS7(p7, &out)) <= 0)
		goto out;
	azl_buf_add(der, out, (size_t)n);
	r = 0;
out:
	if (r < 0)
		azl_errf(err, r, "Authenticode: building the PKCS#7 signature: %s",
			 ssl_why(why, sizeof(why)));
	OPENSSL_free(out);
	PKCS7_free(inner);
	PKCS7_free(p7);
	azl_buf_release(&content);
	azl_buf_release(&idc);
	return r;
}

/* ---- output ---- */

/* The output stream with the PE checksum (16-bit one's-complement sum of
 * the little-endian words, CheckSum field as 0) folded in as it goes. */
struct emit {
	struct azl_out *o;
	uint32_t sum;
	uint64_t pos;
};

static uint32_t fold(uint32_t s) { return (s & 0xffff) + (s >> 16); }

static int emit(struct emit *e, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0;

	if (n && (e->pos & 1)) {
		e->sum = fold(e->sum + ((uint32_t)p[0] << 8));
		i = 1;
	}
	for (; i + 1 < n; i += 2)
		e->sum = fold(e->sum + rd16(p + i));
	if (i < n)
		e->sum = fold(e->sum + p[i]);
	e->pos += n;
	return azl_out_write(e->o, data, n);
}

static int emit_zeros(struct emit *e, uint64_t n)
{
	static const unsigned char zero[8];
	int r = 0;

	for (; r == 0 && n; n -= n < 8 ? n : 8)
		r = emit(e, zero, n < 8 ? (size_t)n : 8);
	return r;
}

static int emit_file(struct emit *e, struct pe_img *pe, uint64_t from, uint64_t to)
{
	unsigned char *buf = azl_xmalloc(CHUNK);
	int r = 0;

	while (r == 0 && from < to) {
		size_t k = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
		if ((r = azl_pread_all(pe->fd, buf, k, from)) == 0)
			r = emit(e, buf, k);
		from += k;
	}
	free(buf);
	return r;
}

/* Headers (Certificate Table entry set, CheckSum 0), the image data, its
 * padding, the WIN_CERTIFICATE; then the CheckSum patched in. */
static int pe_write_signed(struct pe_img *pe, const struct azl_buf *sig,
			   const char *out_path, struct azl_err *err)
{
	struct azl_out o = { .fd = -1 };
	struct emit e = { &o, 0, 0 };
	uint64_t cert_len = 8 + (uint64_t)sig->len, table = align8(cert_len);
	unsigned char wc[8], csum[4];
	int r;

	if (pe->padded_end + table > UINT32_MAX)
		return azl_err_input(err, "%s: too large for a PE certificate table", pe->path);
	wr32(pe->hdr + pe->dir_off, (uint32_t)pe->padded_end);
	wr32(pe->hdr + pe->dir_off + 4, (uint32_t)table);
	wr32(pe->hdr + pe->csum_off, 0);
	wr32(wc, (uint32_t)cert_len);
	wc[4] = WIN_CERT_REVISION & 0xff;
	wc[5] = WIN_CERT_REVISION >> 8;
	wc[6] = WIN_CERT_TYPE_PKCS_SIGNED_DATA;
	wc[7] = 0;
	if ((r = azl_out_open(&o, out_path, 0644, err)) < 0)
		return r;
	r = emit(&e, pe->hdr, pe->hdr_size);
	if (r == 0)
		r = emit_file(&e, pe, pe->hdr_size, pe->data_end);
	if (r == 0)
		r = emit_zeros(&e, pe->padded_end - pe->data_end);
	if (r == 0 && (r = emit(&e, wc, sizeof(wc))) == 0 && (r = emit(&e, sig->data, sig->len)) == 0)
		r = emit_zeros(&e, table - cert_len);
	wr32(csum, (uint32_t)((e.sum & 0xffff) + e.pos));
	if (r == 0 && pwrite(o.fd, csum, 4, (off_t)pe->csum_off) != 4)
		r = -(errno ? errno : EIO);
	if (r < 0) {
		azl_out_abort(&o);
		return azl_errf(err, r, "%s: %s", out_path, strerror(-r));
	}
	return azl_out_commit(&o, err);
}

int azl_authenticode_sign_file(const char *pe_path, const char *out_path,
			       const struct azl_pkcs7_signer *s,
			       struct azl_err *err)
{
	unsigned char digest[AZL_AUTHENTICODE_DIGEST_LEN];
	struct azl_buf sig = AZL_BUF_INIT;
	struct pe_img pe;
	int r;

	if (!s || !s->key || !s->cert)
		return azl_err_input(err, "%s: Authenticode signing needs a key and a certificate", pe_path);
	if ((r = pe_open(&pe, pe_path, err)) < 0)
		goto out;
	if ((r = pe_digest(&pe, digest, err)) < 0)
		goto out;
	if ((r = p7_sign(s, digest, &sig, err)) < 0) {
		azl_err_prefix(err, "%s", pe_path);
		goto out;
	}
	r = pe_write_signed(&pe, &sig, out_path, err);
out:
	pe_close(&pe);
	azl_buf_release(&sig);
	return r;
}
