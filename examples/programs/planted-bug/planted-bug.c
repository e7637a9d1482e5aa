/*
 * The planted bug: a record updated in place through a shared mapping of a
 * virtio-pmem backing file, with its commit word.
 *
 *   planted-bug FILE            the bug: the commit word "COMMIT n" (page 0)
 *                               is stored before the payload "DATA n"
 *                               (page 1), and one msync covers both, so a
 *                               crash can leave a commit without its data
 *   planted-bug FILE --correct  the payload is stored and msynced first,
 *                               then the commit word, then msync again
 *   planted-bug FILE --map-sync asks for MAP_SYNC (virtio-pmem refuses it
 *                               with EOPNOTSUPP) and exits 1
 *
 * Three updates, n = 1, 2, 3. check.sh accepts an image whose commit word
 * names no update newer than the payload's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

static int flush(char *map) {
    if (msync(map, 8192, MS_SYNC) != 0) {
        perror("msync");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: planted-bug FILE [--correct | --map-sync]\n");
        return 2;
    }
    int correct = argc > 2 && strcmp(argv[2], "--correct") == 0;
    int map_sync = argc > 2 && strcmp(argv[2], "--map-sync") == 0;
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    int flags = map_sync ? (MAP_SHARED_VALIDATE | MAP_SYNC) : MAP_SHARED;
    char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "mmap: %s\n", strerror(errno));
        return 1;
    }
    for (int n = 1; n <= 3; n++) {
        if (correct) {
            snprintf(map + 4096, 64, "DATA %d", n);
            if (flush(map)) return 1;
            snprintf(map, 64, "COMMIT %d", n);
            if (flush(map)) return 1;
        } else {
            snprintf(map, 64, "COMMIT %d", n); /* the bug: commit first */
            snprintf(map + 4096, 64, "DATA %d", n);
            if (flush(map)) return 1;
        }
    }
    printf("planted-bug: 3 updates%s\n", correct ? " (correct order)" : "");
    munmap(map, 8192);
    close(fd);
    return 0;
}
