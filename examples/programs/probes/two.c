/*
 * Two devices: stores "B" to the second and msyncs it, then stores "A" to
 * the first and msyncs it. Whatever the crash, when a.img holds "A", b.img
 * holds "B": the checker of native-runner/tests/record.rs checks it on the
 * crash images of the first device, with the second device's durable
 * content next to it.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int a = open(argv[1], O_RDWR), b = open(argv[2], O_RDWR);
    char *ma = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
    char *mb = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
    if (a < 0 || b < 0 || ma == MAP_FAILED || mb == MAP_FAILED) return 2;
    mb[0] = 'B';
    msync(mb, 4096, MS_SYNC);
    ma[0] = 'A';
    msync(ma, 4096, MS_SYNC);
    return 0;
}
