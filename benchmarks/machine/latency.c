/* Idle load-to-use latency: a chase through one pointer per 64-byte line of a buffer, the lines in
 * a random cyclic order (seeded), so that neither the prefetchers nor out-of-order execution can
 * overlap the loads. The buffer sits on 2 MiB pages where the kernel grants them (madvise), so that
 * beyond the L2 the TLB adds as little as it can.
 *
 * usage: latency BUFFER_BYTES LOADS SEED
 * prints "latency BUFFER_BYTES ns_per_load"
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define LINE 64

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv) {
    if (argc != 4 || atol(argv[1]) < 2 * LINE || atol(argv[2]) <= 0) {
        fprintf(stderr, "usage: latency BUFFER_BYTES(>=128) LOADS SEED\n");
        return 2;
    }
    long bytes = atol(argv[1]), loads = atol(argv[2]);
    uint64_t seed = strtoull(argv[3], NULL, 10);
    long lines = bytes / LINE;
    size_t size = (lines * LINE + (2 << 20) - 1) / (2 << 20) * (2 << 20);
    char *buffer = aligned_alloc(2 << 20, size);
    long *order = malloc(sizeof(long) * lines);
    if (!buffer || !order) {
        fprintf(stderr, "latency: out of memory\n");
        return 1;
    }
    madvise(buffer, size, MADV_HUGEPAGE);
    for (long i = 0; i < lines; i++) order[i] = i;
    for (long i = lines - 1; i > 0; i--) { /* Fisher-Yates: one random cycle through all lines */
        long j = (long)(next_random(&seed) % (uint64_t)(i + 1));
        long t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (long i = 0; i < lines; i++)
        *(char **)(buffer + order[i] * LINE) = buffer + order[(i + 1) % lines] * LINE;
    char **p = (char **)(buffer + order[0] * LINE);
    for (long i = 0; i < lines; i++) p = (char **)*p; /* warm: caches and TLB as steady state */
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < loads; i++) p = (char **)*p;
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (end.tv_sec - start.tv_sec) + 1e-9 * (end.tv_nsec - start.tv_nsec);
    printf("latency %ld %.3f\n", bytes, seconds / loads * 1e9);
    fprintf(stderr, "end %p\n", (void *)p);
    free(order);
    free(buffer);
    return 0;
}
