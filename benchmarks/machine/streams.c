/* Read bandwidth with K sequential streams per thread at once: every thread sums K arrays of its
 * own, 64 bytes of each in turn, so that a core's prefetchers see K streams; and the copy between
 * NCHW and 16-channel blocks (nChw16c) that oneDNN makes around convolutions, which reads (or
 * writes) 16 channel planes at once.
 *
 * usage: streams MIB_PER_THREAD REPEATS
 * prints, per K in 1..64: "streams K GB/s", then "reorder to_blocked GB/s" and
 * "reorder to_plain GB/s" (bytes read plus bytes written, as STREAM counts).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_FLOATS 16 /* 64-byte lines */

static double read_streams(float **arrays, int k, long floats_each, int repeats) {
    double best = 1e30, checksum = 0.0;
    for (int r = 0; r < repeats; r++) {
        double start = omp_get_wtime();
        float sums[LINE_FLOATS] = {0}; /* one per lane: a vector add per line, no long chain */
        for (long i = 0; i < floats_each; i += LINE_FLOATS)
            for (int s = 0; s < k; s++) {
                const float *line = arrays[s] + i;
                for (int j = 0; j < LINE_FLOATS; j++) sums[j] += line[j];
            }
        double seconds = omp_get_wtime() - start;
        for (int j = 0; j < LINE_FLOATS; j++) checksum += sums[j];
        if (seconds < best) best = seconds;
    }
    if (checksum == 12345.0) printf("#\n"); /* keep the sums */
    return best;
}

int main(int argc, char **argv) {
    if (argc != 3 || atol(argv[1]) <= 0 || atoi(argv[2]) <= 0) {
        fprintf(stderr, "usage: streams MIB_PER_THREAD REPEATS\n");
        return 2;
    }
    long floats = atol(argv[1]) * (1L << 20) / (long)sizeof(float);
    int repeats = atoi(argv[2]);
    int threads = omp_get_max_threads();
    float *memory = aligned_alloc(4096, (size_t)floats * sizeof(float) * (size_t)threads);
    float *copy = aligned_alloc(4096, (size_t)floats * sizeof(float) * (size_t)threads);
    if (memory == NULL || copy == NULL) return 1;
#pragma omp parallel
    {
        long mine = floats * omp_get_thread_num();
        for (long i = 0; i < floats; i++) memory[mine + i] = 1.0f, copy[mine + i] = 0.0f;
    }
    for (int k = 1; k <= 64; k *= 2) {
        long each = floats / k / LINE_FLOATS * LINE_FLOATS;
        double slowest = 0.0;
#pragma omp parallel reduction(max : slowest)
        {
            float *arrays[64];
            for (int s = 0; s < k; s++) arrays[s] = memory + floats * omp_get_thread_num() + s * each;
#pragma omp barrier
            slowest = read_streams(arrays, k, each, repeats);
        }
        printf("streams %d %.1f\n", k, (double)each * k * sizeof(float) * threads / slowest / 1e9);
    }
    /* nChw16c: per image and 16-channel block, the 16 planes' pixels interleaved */
    long planes = floats / (16 * 3136) * 16, pixels = 3136; /* 56 × 56 planes */
    for (int direction = 0; direction < 2; direction++) {
        double best = 1e30;
        for (int r = 0; r < repeats; r++) {
            double start = omp_get_wtime();
#pragma omp parallel
            {
                float *plain = memory + floats * omp_get_thread_num();
                float *blocked = copy + floats * omp_get_thread_num();
                for (long block = 0; block < planes / 16; block++) {
                    float *p = plain + block * 16 * pixels, *b = blocked + block * 16 * pixels;
                    for (long x = 0; x < pixels; x++)
                        for (int c = 0; c < 16; c++) {
                            if (direction == 0) b[x * 16 + c] = p[c * pixels + x];
                            else p[c * pixels + x] = b[x * 16 + c];
                        }
                }
            }
            double seconds = omp_get_wtime() - start;
            if (seconds < best) best = seconds;
        }
        printf("reorder %s %.1f\n", direction == 0 ? "to_blocked" : "to_plain",
               2.0 * (double)planes * pixels * sizeof(float) * threads / best / 1e9);
    }
    free(memory);
    free(copy);
    return 0;
}
