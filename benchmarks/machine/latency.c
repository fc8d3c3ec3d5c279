/* Idle load-to-use latency: a chase through one pointer per 64-byte line of a buffer, the lines in
 * a random cyclic order (seeded), so that neither the prefetchers nor out-of-order execution can
 * overlap the loads. The buffer sits on 2 MiB pages where the kernel grants them (madvise), so that
 * beyond the L2 the TLB adds as little as it can. With CHAINS > 1, that many independent chases
 * (each through its own share of the lines) run interleaved: the core overlaps their misses, up to
 * the number of misses it can keep in flight, so the time per load falls until that number.
 *
 * usage: latency BUFFER_BYTES LOADS SEED [CHAINS]
 * prints "latency BUFFER_BYTES ns_per_load CHAINS" (ns per load of all chains together)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define LINE 64
#define MAX_CHAINS 64

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv) {
    int chains = argc == 5 ? atoi(argv[4]) : 1;
    if ((argc != 4 && argc != 5) || atol(argv[2]) <= 0 || chains < 1 || chains > MAX_CHAINS ||
        atol(argv[1]) < 2L * LINE * chains) {
        fprintf(stderr, "usage: latency BUFFER_BYTES(>=128 per chain) LOADS SEED [CHAINS(1-64)]\n");
        return 2;
    }
    long bytes = atol(argv[1]), loads = atol(argv[2]) / chains * chains;
    uint64_t seed = strtoull(argv[3], NULL, 10);
    long lines = bytes / LINE / chains * chains, share = lines / chains;
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
    /* chain c: a cycle through the c-th share of the shuffled lines */
    char **p[MAX_CHAINS];
    for (int c = 0; c < chains; c++) {
        long *cycle = order + c * share;
        for (long i = 0; i < share; i++)
            *(char **)(buffer + cycle[i] * LINE) = buffer + cycle[(i + 1) % share] * LINE;
        p[c] = (char **)(buffer + cycle[0] * LINE);
    }
    for (long i = 0; i < share; i++) /* warm: caches and TLB as steady state */
        for (int c = 0; c < chains; c++) p[c] = (char **)*p[c];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < loads / chains; i++)
        for (int c = 0; c < chains; c++) p[c] = (char **)*p[c];
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (end.tv_sec - start.tv_sec) + 1e-9 * (end.tv_nsec - start.tv_nsec);
    printf("latency %ld %.3f %d\n", bytes, seconds / loads * 1e9, chains);
    uintptr_t checksum = 0;
    for (int c = 0; c < chains; c++) checksum ^= (uintptr_t)p[c];
    fprintf(stderr, "end %lx\n", (unsigned long)checksum);
    free(order);
    free(buffer);
    return 0;
}
