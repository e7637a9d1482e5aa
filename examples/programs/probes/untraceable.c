/*
 * Moves its shared mapping of the device file with mremap, which the
 * recording does not follow: `pmemlab record` must refuse the run with one
 * line (exit 2) and write no trace. Used by native-runner/tests/record.rs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR);
    char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd < 0 || map == MAP_FAILED) return 2;
    map[0] = 'a';
    map = mremap(map, 4096, 8192, MREMAP_MAYMOVE);
    if (map == MAP_FAILED) return 2;
    map[1] = 'b';
    msync(map, 8192, MS_SYNC);
    return 0;
}
