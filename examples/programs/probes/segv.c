/*
 * Installs its own SIGSEGV handler, stores through a shared mapping of the
 * device file (the recording's write faults must not reach the handler),
 * flushes, then faults on purpose: its handler must run (the recording
 * chains to it) and the exit status 3 must pass through `pmemlab record`.
 * Also writes with pwrite and writev, and truncates, between flushes.
 * Used by native-runner/tests/record.rs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    (void)sig; (void)info; (void)ctx;
    static const char msg[] = "segv: caught my own fault\n";
    write(1, msg, sizeof msg - 1);
    _exit(3);
}

int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    int fd = open(argv[1], O_RDWR);
    char *map = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd < 0 || map == MAP_FAILED) return 2;
    memcpy(map + 100, "mapped", 6);
    memcpy(map + 8192, "page two", 8);
    pwrite(fd, "written", 7, 4096);
    struct iovec v[2] = { { "vec", 3 }, { "tor", 3 } };
    lseek(fd, 12288, SEEK_SET);
    writev(fd, v, 2);
    fdatasync(fd);
    map[101] = 'A';
    msync(map, 16384, MS_SYNC);
    volatile char *bad = (char *)16;
    *bad = 1;
    return 0;
}
