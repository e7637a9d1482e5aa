/*
 * Stores through a shared mapping of the device file, forks, and msyncs
 * after the child has exited. The child exits at once (`fork.c FILE`) —
 * the recording must keep the parent's stores as they are — or stores
 * through the inherited mapping first (`fork.c FILE child-stores`), which
 * the recording cannot order against the parent's: one line, exit 2.
 * Used by native-runner/tests/record.rs.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR);
    char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd < 0 || map == MAP_FAILED) return 2;
    memcpy(map, "parent", 6);
    pid_t pid = fork();
    if (pid == 0) {
        if (argc > 2) memcpy(map + 4096, "child", 5);
        exit(0);
    }
    waitpid(pid, NULL, 0);
    msync(map, 8192, MS_SYNC);
    return 0;
}
