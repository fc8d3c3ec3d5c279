/* Sustained memory bandwidth in the manner of McCalpin's STREAM: copy, scale, add, triad and a
 * read-only sum over arrays of doubles, the loop split over OpenMP threads in equal contiguous
 * shares (static schedule), each kernel run `repeat` times and the best time kept. Rates count
 * STREAM's bytes (each element read or written once); with ordinary stores the hardware also
 * reads each stored line first, which STREAM does not count.
 *
 * usage: stream ARRAY_BYTES REPEAT NONTEMPORAL(0|1)
 * prints one line per kernel: "kernel GB/s seconds"
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double best_of(double *times, int count) {
    double best = times[0];
    for (int i = 1; i < count; i++)
        if (times[i] < best) best = times[i];
    return best;
}

/* The widest vectors the compiler targets: AVX-512 where the processor has it, else AVX. */
#ifdef __AVX512F__
#define LANES 8
typedef __m512d vector;
#define LOAD _mm512_load_pd
#define STORE _mm512_store_pd
#define STREAM _mm512_stream_pd
#define SPLAT _mm512_set1_pd
#define MUL _mm512_mul_pd
#define ADD _mm512_add_pd
static double horizontal_sum(vector x) { return _mm512_reduce_add_pd(x); }
#else
#define LANES 4
typedef __m256d vector;
#define LOAD _mm256_load_pd
#define STORE _mm256_store_pd
#define STREAM _mm256_stream_pd
#define SPLAT _mm256_set1_pd
#define MUL _mm256_mul_pd
#define ADD _mm256_add_pd
static double horizontal_sum(vector x) {
    double lanes[4];
    _mm256_storeu_pd(lanes, x);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

/* One kernel over [0, n): out = in0 * s + in1 (a NULL in1 drops the addend, s == 1 the
 * multiply); out NULL: sum of in0 into *sum. */
static void kernel(double *restrict out, const double *restrict in0, const double *restrict in1,
                   double s, long n, int nontemporal, double *sum) {
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (long block = 0; block < n / LANES; block++) {
        long i = block * LANES;
        vector x = LOAD(in0 + i);
        if (!out) {
            total += horizontal_sum(x);
            continue;
        }
        if (s != 1.0) x = MUL(x, SPLAT(s));
        if (in1) x = ADD(x, LOAD(in1 + i));
        if (nontemporal)
            STREAM(out + i, x);
        else
            STORE(out + i, x);
    }
    _mm_sfence();
    if (sum) *sum += total;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: stream ARRAY_BYTES REPEAT NONTEMPORAL(0|1)\n");
        return 2;
    }
    long bytes = atol(argv[1]);
    int repeat = atoi(argv[2]);
    int nontemporal = atoi(argv[3]);
    long n = bytes / 8 / 64 * 64;
    if (n <= 0 || repeat <= 0) {
        fprintf(stderr, "stream: ARRAY_BYTES must be at least 512 and REPEAT at least 1\n");
        return 2;
    }
    double *a = aligned_alloc(2 << 20, (n * 8 + (2 << 20) - 1) / (2 << 20) * (2 << 20));
    double *b = aligned_alloc(2 << 20, (n * 8 + (2 << 20) - 1) / (2 << 20) * (2 << 20));
    double *c = aligned_alloc(2 << 20, (n * 8 + (2 << 20) - 1) / (2 << 20) * (2 << 20));
    if (!a || !b || !c) {
        fprintf(stderr, "stream: out of memory\n");
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) { /* first touch by the thread that will use the page */
        a[i] = 1.0;
        b[i] = 2.0;
        c[i] = 0.0;
    }
    const char *names[] = {"copy", "scale", "add", "triad", "read"};
    const int arrays[] = {2, 2, 3, 3, 1};
    double *times = malloc(sizeof(double) * repeat);
    double sum = 0.0;
    for (int k = 0; k < 5; k++) {
        for (int r = 0; r < repeat; r++) {
            double start = omp_get_wtime();
            switch (k) {
            case 0: kernel(c, a, NULL, 1.0, n, nontemporal, NULL); break;
            case 1: kernel(b, c, NULL, 3.0, n, nontemporal, NULL); break;
            case 2: kernel(c, a, b, 1.0, n, nontemporal, NULL); break;
            case 3: kernel(a, c, b, 3.0, n, nontemporal, NULL); break;
            default: kernel(NULL, a, NULL, 1.0, n, nontemporal, &sum); break;
            }
            times[r] = omp_get_wtime() - start;
        }
        double best = best_of(times, repeat);
        printf("%s %.3f %.6e\n", names[k], arrays[k] * 8.0 * n / best / 1e9, best);
    }
    fprintf(stderr, "checksum %g\n", sum);
    free(times);
    free(a);
    free(b);
    free(c);
    return 0;
}
