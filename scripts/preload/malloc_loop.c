/* A malloc-heavy loop for scripts/preload-overhead.sh: ITERATIONS allocations of 16-1040
 * bytes, each replacing one of 1024 live blocks (so every allocation is paired with a free).
 * `bare` writes two bytes of each block (nothing but malloc and free: the worst case for an
 * interposer); `touch` fills each block, as a program using what it allocates does. Prints
 * its own time (main to exit) on stderr. Usage: malloc_loop [ITERATIONS] [bare|touch] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 20000000;
    int touch = argc > 2 && strcmp(argv[2], "touch") == 0;
    double t0 = now();
    void *live[1024] = {0};
    uint64_t x = 88172645463325252ULL, sum = 0;
    for (long i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t size = 16 + (x % 1025);
        size_t slot = (x >> 20) % 1024;
        free(live[slot]);
        char *p = malloc(size);
        if (touch)
            memset(p, (int)i, size);
        p[0] = (char)i;
        p[size - 1] = (char)x;
        sum += (unsigned char)p[0];
        live[slot] = p;
    }
    for (int i = 0; i < 1024; i++)
        free(live[i]);
    fprintf(stderr, "loop %.4f s (%lu)\n", now() - t0, (unsigned long)(sum & 1));
    return 0;
}
