/*
 * pmemlab guest agent: /init of the oracle's initramfs (built with
 * `gcc -static -O2`).
 *
 * It mounts /proc, /sys and /dev, loads the virtio-pmem stack from
 * /lib/modules (the order is /modules.order), waits for the /dev/pmemN of
 * every device, then runs the steps of /steps, one line each:
 *
 *   I nop                      host-side step: only the handshake
 *   I write DEV OFF HEX        store HEX at byte OFF of /dev/pmemDEV
 *   I read DEV OFF LEN         load LEN bytes
 *   I fsync DEV | I fdatasync DEV
 *   I waitdev DEV              wait for a hot-plugged /dev/pmemDEV
 *   I crash                    guest kernel crash (sysrq c)
 *   I flushers DEV N COUNT S STRIDE
 *                              N processes, each COUNT x (64 KiB pwrite at
 *                              p*STRIDE + fsync); those not done after S
 *                              seconds count as hung
 *   I mmap DEV SYNC            mmap(MAP_SHARED, or MAP_SHARED_VALIDATE |
 *                              MAP_SYNC when SYNC is 1) of a file on the DAX
 *                              scratch file system; data=01 when the file
 *                              is DAX (statx), 00 when not
 *
 * With pmemlab.dax=1 on the kernel command line, the device after the
 * pmemlab.ndev scenario devices (/dev/pmemNDEV) is a DAX scratch device: an
 * ext4 file system the host made, holding the file /map, which the agent
 * mounts on /dax with -o dax before BOOT (so the superblock write of the
 * mount happens before any step), noatime, and on which mmap steps are
 * probed. A file system on a scenario device would change its bytes; MAP_SYNC
 * is a property of the virtio-pmem region (every virtio-pmem device is
 * asynchronous in Linux), so the scratch device answers for each of them.
 *
 * Stores and loads use O_DIRECT on the block device, so they reach the pmem
 * region (the host's file mapping) at once, as a DAX store does; unaligned
 * ranges are read-modify-written in whole 4 KiB blocks.
 *
 * Protocol on the console (ttyS0), one line each, all starting "PMEMLAB ":
 *   BOOT start=K                      once the devices are there
 *   DEV I size=BYTES resource=ADDR    per device
 *   WAIT I                            then the agent reads one line from the
 *                                     host before it runs step I
 *   STEP I rc=R errno=E status=S [hung=K after=E] data=HEX
 *   WAIT N                            after the last step (N = steps), then
 *   END                               it powers off
 *   FATAL why                         setup failed; it powers off
 * Steps before K (the kernel command line's pmemlab.start=K) are skipped: the
 * host restarts QEMU after a crash step with the next one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAX_LINE (1 << 20)

static void say(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "PMEMLAB ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	/* One write per line, so kernel messages do not split it. */
	if (write(1, buf, n) < 0)
		_exit(1);
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	_exit(0);
}

static void fatal(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	say("FATAL %s", buf);
	power_off();
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static long cmdline_value(const char *key, long dflt)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		return dflt;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return dflt;
	buf[n] = 0;
	char *p = strstr(buf, key);
	if (!p)
		return dflt;
	return strtol(p + strlen(key), NULL, 10);
}

static void load_modules(void)
{
	FILE *f = fopen("/modules.order", "r");
	char name[512];
	if (!f)
		fatal("no /modules.order in the initramfs");
	while (fgets(name, sizeof name, f)) {
		name[strcspn(name, "\n")] = 0;
		if (!name[0])
			continue;
		int fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fatal("cannot open module %s: %s", name, strerror(errno));
		if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
			fatal("finit_module %s: %s", name, strerror(errno));
		close(fd);
	}
	fclose(f);
}

static void read_text(const char *path, char *out, size_t len);

/* Waits until /dev/pmemDEV exists and has its capacity set. */
static int wait_for_device(int dev, long timeout_ms)
{
	char path[64], size_path[64], size[32];
	snprintf(path, sizeof path, "/dev/pmem%d", dev);
	snprintf(size_path, sizeof size_path, "/sys/block/pmem%d/size", dev);
	for (long waited = 0; waited <= timeout_ms; waited += 10) {
		read_text(size_path, size, sizeof size);
		if (access(path, F_OK) == 0 && atoll(size) > 0)
			return 0;
		sleep_ms(10);
	}
	return -1;
}

static void read_text(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY);
	out[0] = 0;
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, len - 1);
	close(fd);
	out[n > 0 ? n : 0] = 0;
	out[strcspn(out, "\n")] = 0;
}

static void describe_device(int dev)
{
	char path[128], size[64], res[64];
	snprintf(path, sizeof path, "/sys/block/pmem%d/size", dev);
	read_text(path, size, sizeof size);
	snprintf(path, sizeof path, "/sys/block/pmem%d/device/resource", dev);
	read_text(path, res, sizeof res);
	say("DEV %d size=%lld resource=%s", dev, atoll(size) * 512, res[0] ? res : "?");
}

/* Status registers of the virtio-pmem devices (device id 0x001b), in
 * virtio index order, comma separated. */
static void pmem_status(char *out, size_t len)
{
	size_t used = 0;
	out[0] = 0;
	for (int i = 0; i < 64; i++) {
		char path[128], id[32], st[32];
		snprintf(path, sizeof path, "/sys/bus/virtio/devices/virtio%d/device", i);
		read_text(path, id, sizeof id);
		if (strcmp(id, "0x001b") != 0)
			continue;
		snprintf(path, sizeof path, "/sys/bus/virtio/devices/virtio%d/status", i);
		read_text(path, st, sizeof st);
		used += snprintf(out + used, len - used, "%s%s", used ? "," : "", st[0] ? st : "?");
		if (used >= len)
			break;
	}
	if (!out[0])
		snprintf(out, len, "none");
}

static int open_dev(int dev)
{
	char path[64];
	snprintf(path, sizeof path, "/dev/pmem%d", dev);
	return open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
}

/* Aligned block range [*start, *end) covering [off, off+len). */
static char *block_buffer(long long off, long long len, long long *start, long long *end)
{
	void *buf;
	*start = off & ~(long long)(BLOCK - 1);
	*end = (off + len + BLOCK - 1) & ~(long long)(BLOCK - 1);
	if (*end == *start)
		*end = *start + BLOCK;
	if (posix_memalign(&buf, BLOCK, *end - *start) != 0)
		return NULL;
	return buf;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

struct result {
	int rc, err;
	unsigned char *data;
	long long data_len;
	int hung;  /* flushers: processes still stuck */
	int after; /* flushers: errno of one fsync after them (0: ok; -1: none) */
};

static void do_write(int dev, long long off, const char *hex, struct result *r)
{
	long long len = strlen(hex) / 2, start, end;
	int fd = open_dev(dev);
	char *buf = block_buffer(off, len, &start, &end);
	if (fd < 0 || !buf) {
		r->rc = -1, r->err = errno;
		goto out;
	}
	if (pread(fd, buf, end - start, start) != end - start) {
		r->rc = -1, r->err = errno ? errno : EIO;
		goto out;
	}
	for (long long i = 0; i < len; i++)
		buf[off - start + i] = (char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
	if (pwrite(fd, buf, end - start, start) != end - start)
		r->rc = -1, r->err = errno ? errno : EIO;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
}

static void do_read(int dev, long long off, long long len, struct result *r)
{
	long long start, end;
	int fd = open_dev(dev);
	char *buf = block_buffer(off, len, &start, &end);
	if (fd < 0 || !buf) {
		r->rc = -1, r->err = errno;
		goto out;
	}
	if (pread(fd, buf, end - start, start) != end - start) {
		r->rc = -1, r->err = errno ? errno : EIO;
		goto out;
	}
	r->data = malloc(len ? len : 1);
	memcpy(r->data, buf + (off - start), len);
	r->data_len = len;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
}

static void do_sync(int dev, int data_only, struct result *r)
{
	int fd = open_dev(dev);
	if (fd < 0) {
		r->rc = -1, r->err = errno;
		return;
	}
	if ((data_only ? fdatasync(fd) : fsync(fd)) != 0)
		r->rc = -1, r->err = errno;
	close(fd);
}

/* N processes, each COUNT times: a 64 KiB pwrite at p * STRIDE, then
 * fsync. rc is the number of processes with a failed fsync (errno: the last
 * failure). Processes still running after WAIT_S seconds are counted as
 * hung (a flush the device never completes leaves them in D state); then
 * one more fsync shows whether the device still answers. */
static void do_flushers(int dev, int n, int count, long wait_s, long long stride, struct result *r)
{
	int failed = 0, last = 0, running = 0;
	for (int p = 0; p < n; p++) {
		pid_t pid = fork();
		if (pid == 0) {
			int fd = open_dev(dev), bad = 0;
			void *buf;
			if (fd < 0 || posix_memalign(&buf, BLOCK, 65536) != 0)
				_exit(255);
			memset(buf, 'a' + p % 26, 65536);
			for (int i = 0; i < count; i++) {
				if (pwrite(fd, buf, 65536, (long long)p * stride) != 65536 || fsync(fd) != 0)
					bad++, last = errno;
			}
			_exit(bad ? (last & 0x7f) | 0x80 : 0);
		}
		if (pid < 0)
			failed++, last = errno;
		else
			running++;
	}
	for (long waited = 0; running > 0 && waited < wait_s * 100; ) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			running--;
			if (WIFEXITED(status) && WEXITSTATUS(status))
				failed++, last = WEXITSTATUS(status) & 0x7f;
		} else {
			sleep_ms(10);
			waited++;
		}
	}
	r->rc = failed, r->err = failed ? last : 0;
	r->hung = running;
	struct result after = { 0, 0, NULL, 0, 0, -1 };
	do_sync(dev, 0, &after);
	r->after = after.rc == 0 ? 0 : after.err;
}

/* errno of mounting the DAX scratch file system; -1 when there is none. */
static int dax_error = -1;

static void mount_dax(int dev)
{
	char path[64];
	snprintf(path, sizeof path, "/dev/pmem%d", dev);
	mkdir("/dax", 0755);
	dax_error = mount(path, "/dax", "ext4", MS_NOATIME, "dax") == 0 ? 0 : errno;
}

static void do_mmap(int sync, struct result *r)
{
	if (dax_error != 0) {
		r->rc = -1, r->err = dax_error < 0 ? ENODEV : dax_error;
		return;
	}
	int fd = open("/dax/map", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r->rc = -1, r->err = errno;
		return;
	}
	int flags = sync ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED;
	void *p = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED) {
		r->rc = -1, r->err = errno;
	} else {
		struct statx st;
		r->data = malloc(1);
		r->data_len = 1;
		r->data[0] = statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &st) == 0 &&
			     (st.stx_attributes & STATX_ATTR_DAX) != 0;
		munmap(p, BLOCK);
	}
	close(fd);
}

static void report(int index, const struct result *r)
{
	char status[256];
	static char line[2 * MAX_LINE + 256];
	pmem_status(status, sizeof status);
	int n = snprintf(line, sizeof line, "STEP %d rc=%d errno=%d status=%s", index, r->rc, r->err, status);
	if (r->after >= 0)
		n += snprintf(line + n, sizeof line - n, " hung=%d after=%d", r->hung, r->after);
	n += snprintf(line + n, sizeof line - n, " data=");
	for (long long i = 0; i < r->data_len && n < (int)sizeof line - 3; i++)
		n += snprintf(line + n, sizeof line - n, "%02x", r->data[i]);
	say("%s", line);
}

static void wait_for_host(int index)
{
	char c;
	say("WAIT %d", index);
	for (;;) {
		ssize_t n = read(0, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fatal("the console closed while waiting for the host");
		if (c == '\n' || c == '\r')
			return;
	}
}

static void run_step(char *line)
{
	char op[32];
	int index, dev = 0, n = 0, consumed = 0;
	long long a = 0, b = 0, c = 0;
	struct result r = { 0, 0, NULL, 0, 0, -1 };
	if (sscanf(line, "%d %31s %n", &index, op, &consumed) < 2)
		fatal("bad step line: %.80s", line);
	char *args = line + consumed;
	wait_for_host(index);
	if (!strcmp(op, "nop")) {
	} else if (!strcmp(op, "write")) {
		char *hex = malloc(strlen(args) + 1);
		if (sscanf(args, "%d %lld %s", &dev, &a, hex) != 3)
			fatal("bad write step %d", index);
		do_write(dev, a, hex, &r);
		free(hex);
	} else if (!strcmp(op, "read") && sscanf(args, "%d %lld %lld", &dev, &a, &b) == 3) {
		do_read(dev, a, b, &r);
	} else if ((!strcmp(op, "fsync") || !strcmp(op, "fdatasync")) && sscanf(args, "%d", &dev) == 1) {
		do_sync(dev, op[1] == 'd', &r);
	} else if (!strcmp(op, "waitdev") && sscanf(args, "%d", &dev) == 1) {
		if (wait_for_device(dev, 20000) != 0)
			r.rc = -1, r.err = ENODEV;
		else
			describe_device(dev);
	} else if (!strcmp(op, "crash")) {
		int fd = open("/proc/sysrq-trigger", O_WRONLY);
		if (fd < 0 || write(fd, "c", 1) != 1)
			r.rc = -1, r.err = errno;
	} else if (!strcmp(op, "flushers") && sscanf(args, "%d %d %lld %lld %lld", &dev, &n, &a, &b, &c) == 5) {
		do_flushers(dev, n, (int)a, (long)b, c, &r);
	} else if (!strcmp(op, "mmap") && sscanf(args, "%d %d", &dev, &n) == 2) {
		do_mmap(n, &r);
	} else {
		fatal("step %d: unknown op %s", index, op);
	}
	report(index, &r);
	free(r.data);
}

static void quiet_console(void)
{
	struct termios t;
	if (tcgetattr(0, &t) == 0) {
		t.c_lflag &= ~(ECHO | ECHONL);
		tcsetattr(0, TCSANOW, &t);
	}
}

int main(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	quiet_console();
	/* Hung flushers show up as hung-task warnings on the console. */
	int ht = open("/proc/sys/kernel/hung_task_timeout_secs", O_WRONLY);
	if (ht >= 0) {
		if (write(ht, "10", 2) < 0) {
		}
		close(ht);
	}
	long start = cmdline_value("pmemlab.start=", 0);
	long ndev = cmdline_value("pmemlab.ndev=", 1);
	load_modules();
	for (int d = 0; d < ndev; d++) {
		if (wait_for_device(d, 20000) != 0)
			fatal("/dev/pmem%d did not appear within 20 s", d);
	}
	if (cmdline_value("pmemlab.dax=", 0)) {
		if (wait_for_device((int)ndev, 20000) != 0)
			fatal("the DAX scratch device /dev/pmem%ld did not appear within 20 s", ndev);
		mount_dax((int)ndev);
	}
	say("BOOT start=%ld", start);
	for (int d = 0; d < ndev; d++)
		describe_device(d);
	FILE *f = fopen("/steps", "r");
	if (!f)
		fatal("no /steps in the initramfs");
	char *line = malloc(MAX_LINE);
	long next = start;
	while (fgets(line, MAX_LINE, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!line[0] || atol(line) < start)
			continue;
		run_step(line);
		next = atol(line) + 1;
	}
	/* The host takes its last probes before the poweroff flush comes. */
	wait_for_host((int)next);
	say("END");
	power_off();
	return 0;
}
