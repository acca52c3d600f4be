/* Single-query attention over a static KV cache, for the CPU decode step of the T2S GPT.
 *
 * The cache holds one (max_len, dim) block of keys and one of values per head (the layout of
 * myna.models.t2s.KVCache with batch 1). One call writes this step's key and value at `slot`, then
 * for every head reads its first slot + 1 keys and values once, front to back: scores, softmax and
 * the weighted sum of values, in fp32, heads shared among OpenMP threads. Built with
 * -fassociative-math so the dot products and sums vectorize (they are summed in another order than
 * torch's kernels, and end as close to float64 as torch's fp32 attention: see the tests).
 * `myna_attend_head` is shared with the quantized decode step (quant_decode.c).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_DIM 128

/* e^x for x <= 0 (scores minus their maximum), in a form the compiler vectorizes: Cephes' expf
 * range reduction (ln 2 in two parts, kept apart by fused multiply-adds, which -fassociative-math
 * cannot fold into one constant) and polynomial, within 1e-7 relative. Below -87, and for NaN, it
 * gives e^-87 (1.6e-38), nothing next to the maximum's weight of 1. */
static inline float exp_nonpositive(float x) {
    x = x >= -87.f ? x : -87.f;
    const float n = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = fmaf(n, 2.12194440e-4f, fmaf(n, -0.693359375f, x));  /* fused: no reassociation of ln 2's parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.f;
    union { int i; float f; } two_n = {.i = ((int)n + 127) << 23};
    return y * two_n.f;
}

/* scores[0, len) -> e^(score - max), in place; returns their sum. */
static float softmax_unnormalized(float *scores, int len) {
    float top = scores[0];
#pragma omp simd reduction(max : top)
    for (int t = 0; t < len; t++) top = scores[t] > top ? scores[t] : top;
    float total = 0.f;
#pragma omp simd reduction(+ : total)
    for (int t = 0; t < len; t++) {
        scores[t] = exp_nonpositive(scores[t] - top);
        total += scores[t];
    }
    return total;
}

void myna_attend_head(const float *q, const float *keys, const float *values, float *out, int len, int dim,
                        float scale, float *scores) {
    float query[MAX_DIM], sum[MAX_DIM];
    for (int d = 0; d < dim; d++) {
        query[d] = q[d] * scale;
        sum[d] = 0.f;
    }
    for (int t = 0; t < len; t++) {
        const float *key = keys + (size_t)t * dim;
        float dot = 0.f;
#pragma omp simd reduction(+ : dot)
        for (int d = 0; d < dim; d++) dot += query[d] * key[d];
        scores[t] = dot;
    }
    const float total = softmax_unnormalized(scores, len);
    for (int t = 0; t < len; t++) {
        const float *value = values + (size_t)t * dim;
        const float weight = scores[t];
#pragma omp simd
        for (int d = 0; d < dim; d++) sum[d] += weight * value[d];
    }
    const float norm = 1.f / total;
    for (int d = 0; d < dim; d++) out[d] = sum[d] * norm;
}

/* Keys and values stored as IEEE half floats (a cache of half the bytes: attention over a long context
 * reads it once per step, so it runs at memory speed). Products and sums are in fp32, as above. Values
 * are written rounded to nearest even, as torch's float16 conversion. Needs a compiler with _Float16 (GCC
 * 12, clang 15); myna_half_cache says whether this build has it. */
#if defined(__FLT16_MANT_DIG__)
#define MYNA_HALF_CACHE 1
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

void myna_store_half(uint16_t *dst, const float *src, int n) {
    int d = 0;
#if defined(__AVX512F__)
    for (; d + 16 <= n; d += 16)
        _mm256_storeu_si256((__m256i *)(dst + d),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; d < n; d++) {
        const _Float16 h = (_Float16)src[d];
        memcpy(dst + d, &h, sizeof h);
    }
}

static inline float half_at(const uint16_t *p) {
    _Float16 h;
    memcpy(&h, p, sizeof h);
    return (float)h;
}

void myna_attend_head_half(const float *q, const uint16_t *keys, const uint16_t *values, float *out, int len,
                           int dim, float scale, float *scores) {
    float query[MAX_DIM], sum[MAX_DIM];
    for (int d = 0; d < dim; d++) {
        query[d] = q[d] * scale;
        sum[d] = 0.f;
    }
#if defined(__AVX512F__)
    if (dim % 16 == 0) { /* every full-size head (64 bytes of a key per 16 lanes) */
        const int lanes = dim / 16;
        for (int t = 0; t < len; t++) {
            const uint16_t *key = keys + (size_t)t * dim;
            __m512 dot = _mm512_setzero_ps();
            for (int c = 0; c < lanes; c++)
                dot = _mm512_fmadd_ps(_mm512_loadu_ps(query + 16 * c),
                                      _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(key + 16 * c))), dot);
            scores[t] = _mm512_reduce_add_ps(dot);
        }
        const float total = softmax_unnormalized(scores, len);
        __m512 acc[MAX_DIM / 16];
        for (int c = 0; c < lanes; c++) acc[c] = _mm512_setzero_ps();
        for (int t = 0; t < len; t++) {
            const uint16_t *value = values + (size_t)t * dim;
            const __m512 weight = _mm512_set1_ps(scores[t]);
            for (int c = 0; c < lanes; c++)
                acc[c] = _mm512_fmadd_ps(weight, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(value + 16 * c))),
                                         acc[c]);
        }
        const __m512 norm = _mm512_set1_ps(1.f / total);
        for (int c = 0; c < lanes; c++) _mm512_storeu_ps(out + 16 * c, _mm512_mul_ps(acc[c], norm));
        return;
    }
#endif
    for (int t = 0; t < len; t++) {
        const uint16_t *key = keys + (size_t)t * dim;
        float dot = 0.f;
        for (int d = 0; d < dim; d++) dot += query[d] * half_at(key + d);
        scores[t] = dot;
    }
    const float total = softmax_unnormalized(scores, len);
    for (int t = 0; t < len; t++) {
        const uint16_t *value = values + (size_t)t * dim;
        for (int d = 0; d < dim; d++) sum[d] += scores[t] * half_at(value + d);
    }
    const float norm = 1.f / total;
    for (int d = 0; d < dim; d++) out[d] = sum[d] * norm;
}
#endif

/* 1 where this build stores and reads half-float caches (myna_attend_head_half), else 0. */
int myna_half_cache(void) {
#ifdef MYNA_HALF_CACHE
    return 1;
#else
    return 0;
#endif
}

/* qkv: (3, heads, dim) this step's query, key and value; k_cache, v_cache: (heads, max_len, dim);
 * out: (heads, dim); scratch: heads * max_len floats. Attends over slots [0, slot]; dim <= MAX_DIM. */
void myna_decode_attention(const float *qkv, float *k_cache, float *v_cache, float *out, float *scratch, int heads,
                           int max_len, int dim, int slot, float scale, int threads) {
    const size_t step = (size_t)heads * dim, block = (size_t)max_len * dim;
    for (int h = 0; h < heads; h++) {
        memcpy(k_cache + h * block + (size_t)slot * dim, qkv + step + (size_t)h * dim, dim * sizeof(float));
        memcpy(v_cache + h * block + (size_t)slot * dim, qkv + 2 * step + (size_t)h * dim, dim * sizeof(float));
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int h = 0; h < heads; h++)
        myna_attend_head(qkv + (size_t)h * dim, k_cache + h * block, v_cache + h * block, out + (size_t)h * dim, slot + 1,
                    dim, scale, scratch + (size_t)h * max_len);
}
