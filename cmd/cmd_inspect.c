/* azl-compose inspect: what a built disk holds, read by Linux itself
 * (libguestfs, read-only): partitions, filesystems, packages. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "compose/inspect.h"

extern const struct azl_cmd azl_cmd_inspect;

static void print_inspect(const char *path, const struct azl_inspect *in)
{
	printf("disk: %s\n", path);
	printf("format: %s\n", in->format);
	printf("size: %llu bytes (%llu MiB)\n", (unsigned long long)in->disk_size,
	       (unsigned long long)(in->disk_size >> 20));
	printf("partition table: %s%s%s\n", in->table, *in->disk_guid ? ", disk guid " : "",
	       in->disk_guid);
	printf("partitions: %zu\n", in->nparts);
	for (size_t i = 0; i < in->nparts; i++) {
		const struct azl_inspect_part *p = &in->parts[i];
		printf("  %d: start %llu size %llu (%llu MiB) name \"%s\" type %s guid %s\n",
		       p->num, (unsigned long long)p->start, (unsigned long long)p->size,
		       (unsigned long long)(p->size >> 20), p->name,
		       *p->type_guid ? p->type_guid : "-", *p->guid ? p->guid : "-");
		printf("     filesystem %s uuid %s label \"%s\"%s\n", *p->fstype ? p->fstype : "none",
		       *p->fs_uuid ? p->fs_uuid : "-", p->fs_label,
		       in->root == (int)i ? " (root: holds the rpm database)" : "");
	}
	if (in->root < 0) {
		printf("packages: none (no filesystem holds /var/lib/rpm/rpmdb.sqlite)\n");
		return;
	}
	printf("packages: %zu\n", in->npkgs);
	for (size_t i = 0; i < in->npkgs; i++)
		printf("  %s\n", in->pkgs[i]);
}

static int run(int argc, char **argv, const struct azl_global *g)
{
	struct azl_inspect in;
	struct azl_err err = { 0 };
	const char *path = NULL;

	if (azl_cmd_wants_help(&azl_cmd_inspect, argc, argv))
		return 0;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			return azl_cmd_usage_error(&azl_cmd_inspect, "unknown option '%s'", argv[i]);
		if (path)
			return azl_cmd_usage_error(&azl_cmd_inspect, "unexpected argument '%s'", argv[i]);
		path = argv[i];
	}
	if (!path)
		return azl_cmd_usage_error(&azl_cmd_inspect, "missing DISK");
	azl_cmd_log(g, 1, "starting the libguestfs appliance (15-60 s without KVM)\n");
	if (azl_inspect_disk(path, &in, &err) < 0)
		return azl_cmd_fail(&err);
	print_inspect(path, &in);
	azl_inspect_release(&in);
	return 0;
}

const struct azl_cmd azl_cmd_inspect = {
	"inspect",
	"list a built disk's partitions, filesystems and packages",
	"Usage: azl-compose inspect DISK\n"
	"\n"
	"Reads DISK (NAME.vhd, a fixed VHD, or NAME.img, a raw disk; told apart\n"
	"by the VHD footer) read-only through libguestfs, which runs a small\n"
	"appliance VM: the disk is read by Linux's own GPT, vfat and ext4 code.\n"
	"Prints the partition table (disk GUID; per partition: number, start,\n"
	"size, GPT name, type and GUID), each filesystem's type, UUID and label,\n"
	"and the packages (NEVRA, sorted) of the rpm database found on the root\n"
	"filesystem (/var/lib/rpm/rpmdb.sqlite).\n"
	"\n"
	"The appliance starts in 15-60 s without KVM.  libguestfs' environment\n"
	"applies: LIBGUESTFS_BACKEND=direct avoids libvirt,\n"
	"LIBGUESTFS_BACKEND_SETTINGS=force_tcg avoids a broken /dev/kvm.\n"
	"\n"
	"Exit status: 0 printed, 1 the appliance failed, 2 bad usage or DISK is\n"
	"not a readable disk image.\n",
	run,
};
