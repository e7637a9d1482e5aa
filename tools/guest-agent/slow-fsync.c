/*
 * A slow host disk for the oracle: an LD_PRELOAD shim for QEMU whose
 * fsync() and fdatasync() wait PMEMLAB_FSYNC_DELAY_US microseconds before
 * they do the real call (the result is the real one). QEMU's virtio-pmem
 * worker syncs the backing file with them; a slow sync lets flush requests
 * pile up in the queue, as a slow disk does.
 * Built with `gcc -shared -fPIC -O2 -o slow-fsync.so slow-fsync.c -ldl`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

static void slow_disk(void)
{
	const char *s = getenv("PMEMLAB_FSYNC_DELAY_US");
	long us = s ? atol(s) : 0;
	struct timespec t = { us / 1000000, (us % 1000000) * 1000 };
	while (us > 0 && nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	slow_disk();
	return real(fd);
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	slow_disk();
	return real(fd);
}
