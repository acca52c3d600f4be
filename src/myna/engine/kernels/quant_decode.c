/* The int8 GPT's CPU decode step as one call (myna.engine.quant_step): projections, attention,
 * residuals, layer norms and logits for one sequence or a batch of rows.
 *
 * Weights: signed int8 with one scale per output row (the values and scales of the model's Int8Linear
 * layers), in blocks of 16 output rows; per block and 4 inputs, 64 bytes: byte 4 * lane + j =
 * w[lane][4k + j]. With AVX-512 VNNI one vpdpbusd multiplies 4 activation bytes (broadcast) by a
 * block's 64 weight bytes and adds the four products of each row into that row's 32-bit lane: each
 * lane accumulates one output row, with no horizontal sums.
 * Activations: quantized per row to unsigned bytes with a zero point (range [min(x, 0), max(x, 0)] in
 * 255 steps, as fbgemm's dynamic quantization), so rows never affect each other: a row of a batch
 * computes exactly what it computes alone. The zero point times the row's weight sum (`rowsums`) is
 * taken out of the exact integer sum, which becomes a float once, scaled and added to the bias with
 * one fused multiply-add: the vector and the portable paths give the same floats bit for bit.
 *
 * Threads: one OpenMP team per step, each thread taking a fixed share of every product, meeting at a
 * barrier of their own (spin, then yield). OpenMP's barriers spin only while the process's OpenMP
 * threads do not outnumber the cores; a step run from any thread but the main one (a server's worker,
 * the batch decoder) meets that limit as soon as the main thread has a team too, and then its ~150
 * barriers a step each went through the kernel: 9.1 ms a step against 3.4 ms from the main thread on
 * 2 cores. Which thread computes which output never changes a value.
 */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define MYNA_QUANT_AVX512 1
#endif

#define LANES 16      /* output rows per block */
#define ROW_BLOCKS 2  /* blocks in flight per pass: independent accumulator chains */
#define ACT_ROWS 4    /* activation rows per pass over a block's weights */

void myna_attend_head(const float *q, const float *keys, const float *values, float *out, int len, int dim,
                      float scale, float *scores);
void myna_store_half(uint16_t *dst, const float *src, int n);
void myna_attend_head_half(const float *q, const uint16_t *keys, const uint16_t *values, float *out, int len,
                           int dim, float scale, float *scores);

typedef struct {
    const uint8_t *weight;  /* (blocks, in / 4, 64) int8 */
    const float *scales;    /* (blocks * 16,) */
    const float *bias;      /* (blocks * 16,) or NULL */
    const int32_t *rowsums; /* (blocks * 16,): each row's sum of weights */
    int in, out;
} myna_qproj;

typedef struct {
    myna_qproj qkv, out, ffn_in, ffn_out;
    const float *norm1_weight, *norm1_bias, *norm2_weight, *norm2_bias;
    void *k_cache, *v_cache; /* (cache rows, heads, max_len, head_dim) floats, or half floats where the model's
                                 kv_half is set: row r of a step uses cache row r */
} myna_qlayer;

typedef struct {
    int layers, dim, heads, head_dim, ffn, max_len, max_rows;
    int kv_half; /* the caches hold IEEE half floats (only where myna_half_cache() is 1) */
    float eps;
    const myna_qlayer *layer;
    myna_qproj logits;
    /* shared scratch for max_rows rows: wide (5 dim: this layer's q, k, v, then its attention output projection,
     * then its FFN output, apart so that no thread overwrites what another still reads); att (dim); hidden (ffn);
     * scores (heads * max_len). Each thread keeps its own residual stream and quantized input, allocated by
     * myna_quant_step. */
    float *wide, *att, *hidden, *scores;
} myna_qmodel;

static int force_portable = 0;

/* 512 where the AVX-512 VNNI path is compiled in (and not switched off), else 0 (portable C). */
int myna_quant_simd(void) {
#ifdef MYNA_QUANT_AVX512
    return force_portable ? 0 : 512;
#else
    return 0;
#endif
}

/* Tests only: run the portable path even where the vector one is compiled in. */
void myna_quant_force_portable(int on) { force_portable = on; }

/* Rows of x (rows, in) to bytes with a scale and a zero point per row. The vector path gives the same bytes: the
 * same product rounded half to even (the default rounding mode, as lrintf), the same clamp. */
static void quantize(const float *x, int rows, int in, uint8_t *xq, float *xs, int32_t *zero) {
    for (int m = 0; m < rows; m++) {
        const float *row = x + (size_t)m * in;
        uint8_t *out = xq + (size_t)m * in;
        float lo = 0.f, hi = 0.f;
        int k = 0;
#ifdef MYNA_QUANT_AVX512
        if (!force_portable) {
            __m512 low = _mm512_setzero_ps(), high = _mm512_setzero_ps();
            for (; k + 16 <= in; k += 16) {
                const __m512 v = _mm512_loadu_ps(row + k);
                low = _mm512_min_ps(low, v);
                high = _mm512_max_ps(high, v);
            }
            lo = _mm512_reduce_min_ps(low);
            hi = _mm512_reduce_max_ps(high);
        }
#endif
        for (; k < in; k++) {
            lo = row[k] < lo ? row[k] : lo;
            hi = row[k] > hi ? row[k] : hi;
        }
        const float scale = hi > lo ? (hi - lo) / 255.f : 1.f, inverse = 1.f / scale;
        const int z = (int)lrintf(-lo * inverse);
        const int point = z < 0 ? 0 : z > 255 ? 255 : z;
        xs[m] = scale;
        zero[m] = point;
        k = 0;
#ifdef MYNA_QUANT_AVX512
        if (!force_portable) {
            const __m512 inv = _mm512_set1_ps(inverse);
            const __m512i shift = _mm512_set1_epi32(point), floor = _mm512_setzero_si512(),
                          ceiling = _mm512_set1_epi32(255);
            for (; k + 16 <= in; k += 16) {
                __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + k), inv)), shift);
                v = _mm512_min_epi32(_mm512_max_epi32(v, floor), ceiling);
                _mm_storeu_si128((__m128i *)(out + k), _mm512_cvtepi32_epi8(v));
            }
        }
#endif
        for (; k < in; k++) {
            const int v = (int)lrintf(row[k] * inverse) + point; /* half to even, as torch.round */
            out[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* Output blocks [b0, b1) for M (<= ACT_ROWS) activation rows, portable C. */
static void blocks_portable(const myna_qproj *p, const uint8_t *xq, const float *xs, const int32_t *zero, float *y,
                            int M, int b0, int b1, int relu) {
    const int in = p->in;
    for (int b = b0; b < b1; b++) {
        const int8_t *w = (const int8_t *)p->weight + (size_t)b * in * LANES;
        for (int m = 0; m < M; m++) {
            const uint8_t *x = xq + (size_t)m * in;
            for (int l = 0; l < LANES && b * LANES + l < p->out; l++) {
                int32_t sum = 0;
                for (int k4 = 0; k4 < in / 4; k4++)
                    for (int j = 0; j < 4; j++) sum += (int)x[4 * k4 + j] * w[(size_t)k4 * 64 + 4 * l + j];
                const int o = b * LANES + l;
                const float value = fmaf((float)(sum - zero[m] * p->rowsums[o]), p->scales[o] * xs[m],
                                         p->bias ? p->bias[o] : 0.f);
                y[(size_t)m * p->out + o] = relu && !(value > 0.f) ? 0.f : value;
            }
        }
    }
}

#ifdef MYNA_QUANT_AVX512
static inline void blocks_avx512(const myna_qproj *p, const uint8_t *xq, const float *xs, const int32_t *zero, float *y,
                                 const int M, int b0, int nb, int relu) {
    const int in = p->in;
    __m512i acc[ROW_BLOCKS][ACT_ROWS];
    for (int i = 0; i < nb; i++)
        for (int m = 0; m < M; m++) acc[i][m] = _mm512_setzero_si512();
    for (int k4 = 0; k4 < in / 4; k4++) {
        __m512i x[ACT_ROWS];
        for (int m = 0; m < M; m++) {
            int32_t four;
            memcpy(&four, xq + (size_t)m * in + 4 * k4, 4);
            x[m] = _mm512_set1_epi32(four);
        }
        for (int i = 0; i < nb; i++) {
            const __m512i w = _mm512_loadu_si512(p->weight + ((size_t)(b0 + i) * in + (size_t)k4 * 4) * LANES);
            for (int m = 0; m < M; m++) acc[i][m] = _mm512_dpbusd_epi32(acc[i][m], x[m], w);
        }
    }
    for (int i = 0; i < nb; i++) {
        const int o = (b0 + i) * LANES, n = p->out - o < LANES ? p->out - o : LANES;
        const __mmask16 keep = (__mmask16)((1u << n) - 1);
        const __m512i rowsums = _mm512_loadu_si512(p->rowsums + o);
        const __m512 scales = _mm512_loadu_ps(p->scales + o);
        const __m512 bias = p->bias ? _mm512_loadu_ps(p->bias + o) : _mm512_setzero_ps();
        for (int m = 0; m < M; m++) {
            const __m512i sum = _mm512_sub_epi32(acc[i][m], _mm512_mullo_epi32(_mm512_set1_epi32(zero[m]), rowsums));
            __m512 value = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(scales, _mm512_set1_ps(xs[m])), bias);
            if (relu) value = _mm512_max_ps(value, _mm512_setzero_ps());
            _mm512_mask_storeu_ps(y + (size_t)m * p->out + o, keep, value);
        }
    }
}
#endif

/* Output blocks [b0, b1) for all `rows` activation rows, ACT_ROWS at a time. */
static void blocks(const myna_qproj *p, const uint8_t *xq, const float *xs, const int32_t *zero, float *y, int rows,
                   int b0, int b1, int relu) {
    for (int m0 = 0; m0 < rows; m0 += ACT_ROWS) {
        const int M = rows - m0 < ACT_ROWS ? rows - m0 : ACT_ROWS;
        const uint8_t *x = xq + (size_t)m0 * p->in;
        float *out = y + (size_t)m0 * p->out;
#ifdef MYNA_QUANT_AVX512
        if (!force_portable) {
            switch (M) { /* constant M: the compiler keeps every accumulator in a register */
                case 1: blocks_avx512(p, x, xs + m0, zero + m0, out, 1, b0, b1 - b0, relu); break;
                case 2: blocks_avx512(p, x, xs + m0, zero + m0, out, 2, b0, b1 - b0, relu); break;
                case 3: blocks_avx512(p, x, xs + m0, zero + m0, out, 3, b0, b1 - b0, relu); break;
                default: blocks_avx512(p, x, xs + m0, zero + m0, out, 4, b0, b1 - b0, relu); break;
            }
            continue;
        }
#endif
        blocks_portable(p, x, xs + m0, zero + m0, out, M, b0, b1, relu);
    }
}

/* The team of the current parallel region: this thread's number and the team's size (0 and 1 without OpenMP). */
typedef struct {
    int id, size, sense;
    atomic_int *arrived, *released;
} team;

static team team_here(atomic_int *arrived, atomic_int *released) {
#ifdef _OPENMP
    team t = {omp_get_thread_num(), omp_get_num_threads(), 0, arrived, released};
#else
    team t = {0, 1, 0, arrived, released};
#endif
    return t;
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Every thread of the team waits here until all have arrived; what each wrote before is then seen by all
 * (a sense-reversing barrier: the last to arrive resets the count and flips `released`). */
static void team_barrier(team *t) {
    if (t->size == 1) return;
    t->sense = !t->sense;
    if (atomic_fetch_add_explicit(t->arrived, 1, memory_order_acq_rel) == t->size - 1) {
        atomic_store_explicit(t->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(t->released, t->sense, memory_order_release);
        return;
    }
    for (int spins = 0; atomic_load_explicit(t->released, memory_order_acquire) != t->sense; spins++) {
        if (spins < 20000) relax();
        else sched_yield(); /* more threads than cores: let the one we wait for run */
    }
}

/* The product for `rows` rows: this thread's contiguous share of the output blocks (no barrier). */
static void product_part(const myna_qproj *p, const uint8_t *xq, const float *xs, const int32_t *zero, float *y,
                         int rows, int relu, const team *t) {
    const int count = (p->out + LANES - 1) / LANES, units = (count + ROW_BLOCKS - 1) / ROW_BLOCKS;
    const int first = (int)((long long)units * t->id / t->size), last = (int)((long long)units * (t->id + 1) / t->size);
    for (int u = first; u < last; u++) {
        const int b = u * ROW_BLOCKS;
        blocks(p, xq, xs, zero, y, rows, b, b + ROW_BLOCKS < count ? b + ROW_BLOCKS : count, relu);
    }
}

/* y (rows, out) = x (rows, in) W^T + bias (ReLU after it if `relu`). Scratch: xq rows x in bytes, xs and zero
 * one each per row. */
void myna_quant_linear(const myna_qproj *p, const float *x, float *y, int rows, int relu, uint8_t *xq, float *xs,
                       int32_t *zero, int threads) {
    quantize(x, rows, p->in, xq, xs, zero);
    atomic_int arrived = 0, released = 0;
#pragma omp parallel num_threads(threads)
    {
        team t = team_here(&arrived, &released);
        product_part(p, xq, xs, zero, y, rows, relu, &t);
    }
}

static void add_norm(float *x, const float *residual, const float *weight, const float *bias, int dim, float eps) {
    double sum = 0.0;
    for (int d = 0; d < dim; d++) {
        x[d] += residual[d];
        sum += x[d];
    }
    const float mean = (float)(sum / dim);
    double spread = 0.0;
    for (int d = 0; d < dim; d++) spread += (double)(x[d] - mean) * (x[d] - mean);
    const float inverse = (float)(1.0 / sqrt(spread / dim + eps));
    for (int d = 0; d < dim; d++) x[d] = (x[d] - mean) * inverse * weight[d] + bias[d];
}

/* One decode step for `rows` sequences: x_in (rows, dim) embedded tokens; row r writes its key and value at
 * slots[r] of cache row r and attends over slots [0, slots[r]]; logits (rows, vocab). Returns 0, or -1 when a
 * thread's scratch could not be allocated (the logits are then not written).
 *
 * Every thread runs the residual stream, the layer norms and the quantization of each product's input itself,
 * on its own copy (the same floats in every thread: they are computed the same way from the same inputs), so
 * the team meets only where a product or the attention is complete: five barriers a layer. */
int myna_quant_step(const myna_qmodel *m, const float *x_in, const int *slots, int rows, float *logits, int threads) {
    const int dim = m->dim, heads = m->heads, hd = m->head_dim;
    const size_t block = (size_t)m->max_len * hd, cache_row = (size_t)heads * block;
    const int widest = 3 * dim > m->ffn ? 3 * dim : m->ffn;
    const float scale = 1.f / sqrtf((float)hd);
    float *qkv_all = m->wide, *projected = m->wide + (size_t)rows * 3 * dim, *ffn_out = projected + (size_t)rows * dim;
    atomic_int arrived = 0, released = 0, failed = 0;
#pragma omp parallel num_threads(threads)
    {
        team t = team_here(&arrived, &released);
        /* this thread's residual stream x (rows, dim), quantized input xq (rows, widest), scales xs and zeros */
        const size_t floats = (size_t)rows * dim + rows, bytes = (size_t)rows * widest;
        float *x = malloc(sizeof(float) * floats + sizeof(int32_t) * rows + bytes);
        if (x == NULL) atomic_store(&failed, 1);
        team_barrier(&t);
        if (!atomic_load(&failed)) {
            float *xs = x + (size_t)rows * dim;
            int32_t *zero = (int32_t *)(xs + rows);
            uint8_t *xq = (uint8_t *)(zero + rows);
            memcpy(x, x_in, sizeof(float) * rows * dim);
            for (int i = 0; i < m->layers; i++) {
                const myna_qlayer *layer = m->layer + i;
                quantize(x, rows, dim, xq, xs, zero);
                product_part(&layer->qkv, xq, xs, zero, qkv_all, rows, 0, &t);
                team_barrier(&t);
                const int pairs = rows * heads;
                for (int rh = pairs * t.id / t.size; rh < pairs * (t.id + 1) / t.size; rh++) {
                    const int r = rh / heads, h = rh % heads;
                    const float *qkv = qkv_all + (size_t)r * 3 * dim;
                    const size_t head = r * cache_row + h * block, slot = head + (size_t)slots[r] * hd;
                    float *out = m->att + (size_t)r * dim + h * hd, *scores = m->scores + (size_t)rh * m->max_len;
#if defined(__FLT16_MANT_DIG__) /* the half-float kernels are built (myna_half_cache) */
                    if (m->kv_half) {
                        uint16_t *keys = (uint16_t *)layer->k_cache, *values = (uint16_t *)layer->v_cache;
                        myna_store_half(keys + slot, qkv + dim + h * hd, hd);
                        myna_store_half(values + slot, qkv + 2 * dim + h * hd, hd);
                        myna_attend_head_half(qkv + h * hd, keys + head, values + head, out, slots[r] + 1, hd, scale,
                                              scores);
                        continue;
                    }
#endif
                    {
                        float *keys = (float *)layer->k_cache, *values = (float *)layer->v_cache;
                        memcpy(keys + slot, qkv + dim + h * hd, sizeof(float) * hd);
                        memcpy(values + slot, qkv + 2 * dim + h * hd, sizeof(float) * hd);
                        myna_attend_head(qkv + h * hd, keys + head, values + head, out, slots[r] + 1, hd, scale,
                                         scores);
                    }
                }
                team_barrier(&t);
                quantize(m->att, rows, dim, xq, xs, zero);
                product_part(&layer->out, xq, xs, zero, projected, rows, 0, &t);
                team_barrier(&t);
                for (int r = 0; r < rows; r++)
                    add_norm(x + (size_t)r * dim, projected + (size_t)r * dim, layer->norm1_weight, layer->norm1_bias,
                             dim, m->eps);
                quantize(x, rows, dim, xq, xs, zero);
                product_part(&layer->ffn_in, xq, xs, zero, m->hidden, rows, 1, &t);
                team_barrier(&t);
                quantize(m->hidden, rows, m->ffn, xq, xs, zero);
                product_part(&layer->ffn_out, xq, xs, zero, ffn_out, rows, 0, &t);
                team_barrier(&t);
                for (int r = 0; r < rows; r++)
                    add_norm(x + (size_t)r * dim, ffn_out + (size_t)r * dim, layer->norm2_weight, layer->norm2_bias, dim,
                             m->eps);
                /* the next layer's products write q, k, v and the hidden layer, which no thread reads any more */
            }
            quantize(x, rows, dim, xq, xs, zero);
            product_part(&m->logits, xq, xs, zero, logits, rows, 0, &t);
        }
        free(x);
    }
    return atomic_load(&failed) ? -1 : 0;
}
