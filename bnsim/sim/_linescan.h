/* Find a tag among the tags of one cache set: the inner loop of line fidelity.
 *
 * Used by bnsim/sim/_memory.pyx. A set's tags are padded to a multiple of four with the empty
 * tag (0xFFFFFFFF, never a real tag), so SSE2 (part of every x86-64 CPU) compares four at a time;
 * other targets scan one by one.
 */
#ifndef BNSIM_LINESCAN_H
#define BNSIM_LINESCAN_H

#include <stdint.h>

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>

static inline int bnsim_find_tag(const uint32_t *tags, int padded_ways, uint32_t tag)
{
    const __m128i key = _mm_set1_epi32((int)tag);
    for (int way = 0; way < padded_ways; way += 4) {
        __m128i four = _mm_loadu_si128((const __m128i *)(tags + way));
        int mask = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(four, key)));
        if (mask)
            return way + __builtin_ctz((unsigned)mask);
    }
    return -1;
}

#else

static inline int bnsim_find_tag(const uint32_t *tags, int padded_ways, uint32_t tag)
{
    for (int way = 0; way < padded_ways; ++way)
        if (tags[way] == tag)
            return way;
    return -1;
}

#endif

#endif
