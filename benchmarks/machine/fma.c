/* Sustained fused multiply-add throughput of each thread: independent chains of FP32 FMAs on
 * vector registers, enough of them to cover the FMA latency, no memory traffic.
 *
 * usage: fma WIDTH(256|512) ITERATIONS
 * prints "fma WIDTH GFLOP/s_per_thread threads seconds" (OpenMP threads run the loop at once);
 * exits 3 when asked for 512-bit vectors the processor does not have.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 12 /* FMA latency (4 cycles) × 2 pipes, and some to spare */

#ifdef __AVX512F__
static float run512(long iterations) {
    __m512 acc[CHAINS];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
    float total = 0.0f;
    for (int c = 0; c < CHAINS; c++) total += _mm512_reduce_add_ps(acc[c]);
    return total;
}
#else
static float run512(long iterations) { return (float)iterations * 0.0f; }
#endif

static float run256(long iterations) {
    __m256 acc[CHAINS];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
    float lanes[8], total = 0.0f;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_ps(lanes, acc[c]);
        for (int l = 0; l < 8; l++) total += lanes[l];
    }
    return total;
}

int main(int argc, char **argv) {
    if (argc != 3 || (atoi(argv[1]) != 256 && atoi(argv[1]) != 512) || atol(argv[2]) <= 0) {
        fprintf(stderr, "usage: fma WIDTH(256|512) ITERATIONS\n");
        return 2;
    }
    int width = atoi(argv[1]);
    long iterations = atol(argv[2]);
#ifndef __AVX512F__
    if (width == 512) {
        fprintf(stderr, "fma: this processor has no 512-bit vectors\n");
        return 3;
    }
#endif
    double seconds = 0.0, checksum = 0.0;
    int threads = 1;
#pragma omp parallel reduction(+ : checksum) reduction(max : seconds)
    {
#pragma omp single
        threads = omp_get_num_threads();
#pragma omp barrier
        double start = omp_get_wtime();
        checksum += width == 512 ? run512(iterations) : run256(iterations);
        seconds = omp_get_wtime() - start;
    }
    double flops = 2.0 * (width / 32) * CHAINS * (double)iterations;
    printf("fma %d %.3f %d %.6e\n", width, flops / seconds / 1e9, threads, seconds);
    fprintf(stderr, "checksum %g\n", checksum);
    return 0;
}
