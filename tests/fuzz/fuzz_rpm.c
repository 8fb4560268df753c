/* One .rpm through rpmread.h: the header (NEVRA, files, hardlink sets,
 * %caps texts, scriptlets, triggers) and the payload stream; and through
 * rpmsig.h's streamed payload digest, whole and in pieces, which must
 * agree (payload offset and digest).  Checked: file
 * and hardlink indexes stay in range, and a payload that ends cleanly had
 * every entry at the size its header gives.  (A truncated entry reads as
 * a short one, azl_payload_read returning 0; the error comes from the next
 * azl_payload_next, and install.c compares size and digest per entry.) */
#include "base/hash.h"
#include "compose/rpmread.h"
#include "fuzz.h"
#include "sign/rpmsig.h"

/* Bytes read from one input's payload at most: a small input can expand
 * to gigabytes, and that is the decompressor's business, not ours. */
#define RPM_FUZZ_PAYLOAD_MAX (64u << 20)

static void rpm_files(struct azl_rpm *r)
{
	size_t n = azl_rpm_nfiles(r);

	for (size_t fx = 0; fx < n; fx++) {
		struct azl_rpm_file f;
		const int *fxs = NULL;
		size_t nl = azl_rpm_hardlinks(r, fx, &fxs);
		unsigned char caps[20];
		struct azl_err err = { 0 };

		azl_rpm_file(r, fx, &f);
		if (!f.path || !f.link)
			azl_fuzz_fail("rpm file without path or link text", azl_rpm_nevra(r));
		for (size_t i = 0; nl > 1 && i < nl; i++)
			if (fxs[i] < 0 || (size_t)fxs[i] >= n)
				azl_fuzz_fail("hardlink index out of range", f.path);
		if (f.caps)
			azl_fuzz_check_err(azl_caps_to_xattr(f.caps, caps, &err), &err,
					   "azl_caps_to_xattr");
	}
}

static void rpm_info(struct azl_rpm *r)
{
	struct azl_rpm_info info;
	struct azl_err err = { 0 };
	int rc = azl_rpm_info(r, &info, &err);

	azl_fuzz_check_err(rc, &err, "azl_rpm_info");
	if (rc == 0 && (!info.name || !info.nevra))
		azl_fuzz_fail("rpm info without name or nevra", azl_rpm_nevra(r));
	azl_rpm_info_release(&info);
}

/* Read one entry to its end; the bytes read. */
static uint64_t rpm_entry(struct azl_payload *p, uint64_t budget, int *failed,
			  struct azl_err *err)
{
	static char buf[65536];
	uint64_t got = 0;
	ssize_t n = 0;

	while (got < budget && (n = azl_payload_read(p, buf, sizeof(buf), err)) > 0)
		got += (uint64_t)n;
	*failed = got < budget && n < 0;
	return got;
}

static void rpm_payload(struct azl_rpm *r)
{
	struct azl_payload *p = NULL;
	struct azl_err err = { 0 };
	uint64_t total = 0, size;
	size_t fx;
	bool short_entry = false;
	int rc = azl_payload_open(r, &p, &err);

	azl_fuzz_check_err(rc, &err, "azl_payload_open");
	while (rc == 0 && total < RPM_FUZZ_PAYLOAD_MAX &&
	       (rc = azl_payload_next(p, &fx, &size, &err)) == 1) {
		int failed = 0;
		uint64_t got = rpm_entry(p, RPM_FUZZ_PAYLOAD_MAX - total, &failed, &err);
		if (fx >= azl_rpm_nfiles(r))
			azl_fuzz_fail("payload entry index out of range", azl_rpm_nevra(r));
		if (failed)
			break;
		if (got > size)
			azl_fuzz_fail("payload entry longer than its header size",
				      azl_rpm_nevra(r));
		short_entry |= got < RPM_FUZZ_PAYLOAD_MAX - total && got < size;
		total += got;
		rc = 0;
	}
	if (rc < 0)
		azl_fuzz_check_err(rc, &err, "azl_payload_next");
	if (rc == 0 && short_entry && total < RPM_FUZZ_PAYLOAD_MAX)
		azl_fuzz_fail("payload ended cleanly after a short entry", azl_rpm_nevra(r));
	azl_payload_close(p);
}

/* The streamed payload digest does not depend on how the bytes were cut. */
static void payload_tap(const uint8_t *data, size_t size)
{
	struct azl_rpm_payload whole = { 0 }, cut = { 0 };
	size_t step = 1 + (size ? data[size - 1] % 251 : 0);
	char a[65], b[65];

	azl_rpm_payload_feed(&whole, 0, data, size);
	for (size_t off = 0; off < size || off == 0; off += step) {
		size_t n = size - off < step ? size - off : step;
		azl_rpm_payload_feed(&cut, off, data + off, n);
		if (!size)
			break;
	}
	if (whole.stage != cut.stage || whole.payload_off != cut.payload_off ||
	    (whole.stage >= 0 && (whole.next != size || cut.next != size)))
		azl_fuzz_fail("streamed payload digest", "depends on the cuts");
	if (whole.stage == 2) {
		azl_sha256_final(whole.h, a);
		azl_sha256_final(cut.h, b);
		whole.h = cut.h = NULL;
		if (strcmp(a, b))
			azl_fuzz_fail("streamed payload digest", "differs between cuts");
	}
	azl_rpm_payload_release(&whole);
	azl_rpm_payload_release(&cut);
}

int azl_fuzz_rpm(const uint8_t *data, size_t size)
{
	const char *path = azl_fuzz_file("pkg.rpm", data, size);
	struct azl_rpm *r = NULL;
	struct azl_err err = { 0 };
	int rc = azl_rpm_open(path, &r, &err);

	azl_fuzz_check_err(rc, &err, "azl_rpm_open");
	if (rc == 0) {
		if (!azl_rpm_nevra(r) || !azl_rpm_header(r))
			azl_fuzz_fail("rpm open", "no NEVRA or header");
		rpm_files(r);
		rpm_info(r);
		rpm_payload(r);
	}
	azl_rpm_close(r);
	payload_tap(data, size);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_rpm)
