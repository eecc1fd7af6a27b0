/* Fused CPU kernel of the channelwise ("uvu", mul2 = 1) tensor product with per-sample weights.
 *
 * Compiled on first use by equidyn/o3/_native.py, once per real type (-DREAL=float or double);
 * the maths and the plan layout are documented there. Every sample z is independent, so the
 * samples are split into contiguous ranges, one per thread, and each thread keeps its small
 * scratch buffers in L1: nothing of size Z is allocated besides the outputs.
 *
 * Per sample and group (one x1 block a: U channels of dimension d1):
 *   M[k, i]  = sum_j x2[j] C_a[j, k, i]          (sparse CG entries, K x d1)
 *   XT[i, u] = x1[a][u, i]                       (the block in ir_mul order)
 *   Y[k, u]  = sum_i M[k, i] XT[i, u]            (u contiguous: vectorised)
 *   out[run slab][q, u, kk] (+)= w[q, u] Y[k0 + q d3 + kk, u]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef REAL
#define REAL float
#endif

typedef int64_t i64;

/* groups [G x 8]: x1_off, U, d1, K, nz_begin, nz_end, run_begin, run_end
 * runs   [R x 6]: k0, Q, d3, out_off, w_off, first                         */
typedef struct {
    i64 Z, dim1, dim2, dim_out, numel, n_groups, covered;
    const i64 *groups, *runs, *nz_j, *nz_ki;
    const REAL *nz_c;
    const REAL *x1, *x2, *w, *gout;
    REAL *out, *gx1, *gx2, *gw;
    i64 max_kd1, max_d1u, max_ku;
} Args;

typedef struct {
    const Args *a;
    i64 z0, z1;
    int backward, status;
} Job;

static void build_m(const Args *a, const i64 *g, const REAL *x2, REAL *M) {
    memset(M, 0, (size_t)(g[3] * g[2]) * sizeof(REAL));
    for (i64 n = g[4]; n < g[5]; ++n) M[a->nz_ki[n]] += a->nz_c[n] * x2[a->nz_j[n]];
}

/* Runs the statement with the compile-time constant D = d for d = 2 l + 1 = 1, 3, 5, 7, so
 * that the always_inline loops it calls are instantiated for those sizes and unroll, and with
 * D = d (generic loops) otherwise. */
#define WITH_DIM(d, ...)                          \
    switch (d) {                                  \
        case 1: {                                 \
            enum { D = 1 };                       \
            __VA_ARGS__;                          \
        } break;                                  \
        case 3: {                                 \
            enum { D = 3 };                       \
            __VA_ARGS__;                          \
        } break;                                  \
        case 5: {                                 \
            enum { D = 5 };                       \
            __VA_ARGS__;                          \
        } break;                                  \
        case 7: {                                 \
            enum { D = 7 };                       \
            __VA_ARGS__;                          \
        } break;                                  \
        default: {                                \
            const i64 D = (d);                    \
            __VA_ARGS__;                          \
        }                                         \
    }

/* Transposes between a block x[u, i] (mul_ir) and XT[i, u] (ir_mul); to_xt picks the
 * direction. Instantiated for the usual d1 = 2 l1 + 1 <= 7 so that the i loop unrolls. */
static inline __attribute__((always_inline)) void transpose_n(REAL *restrict x,
                                                             REAL *restrict XT, i64 U,
                                                             const i64 d1, const int to_xt) {
    for (i64 u = 0; u < U; ++u)
        for (i64 i = 0; i < d1; ++i) {
            if (to_xt)
                XT[i * U + u] = x[u * d1 + i];
            else
                x[u * d1 + i] = XT[i * U + u];
        }
}

static void transpose(REAL *x, REAL *XT, i64 U, i64 d1, int to_xt) {
    WITH_DIM(d1, if (to_xt) transpose_n(x, XT, U, D, 1); else transpose_n(x, XT, U, D, 0))
}

static void load_xt(const REAL *x, i64 U, i64 d1, REAL *XT) {
    transpose((REAL *)x, XT, U, d1, 1); /* reads x only */
}

/* C[r, u] = sum_c A[r sr + c sc] B[c, u] (r < R, c < NC, u < U; B and C have rows of U),
 * with u in register blocks of VB. */
#define VB 16
static void small_mm(const REAL *A, i64 sr, i64 sc, const REAL *B, i64 R, i64 NC, i64 U,
                     REAL *C) {
    for (i64 r = 0; r < R; ++r) {
        REAL *cr = C + r * U;
        const REAL *ar = A + r * sr;
        i64 u0 = 0;
        for (; u0 + VB <= U; u0 += VB) {
            REAL acc[VB];
            for (int t = 0; t < VB; ++t) acc[t] = 0;
            for (i64 c = 0; c < NC; ++c) {
                const REAL m = ar[c * sc];
                const REAL *bc = B + c * U + u0;
                for (int t = 0; t < VB; ++t) acc[t] += m * bc[t];
            }
            for (int t = 0; t < VB; ++t) cr[u0 + t] = acc[t];
        }
        for (i64 u = u0; u < U; ++u) {
            REAL acc = 0;
            for (i64 c = 0; c < NC; ++c) acc += ar[c * sc] * B[c * U + u];
            cr[u] = acc;
        }
    }
}

/* GM[k, i] = sum_u GW[k, u] XT[i, u]: the d1 dot products of one k share the loads of GW
 * and keep VB-wide partial sums (instantiated for d1 <= 7, where they fit in registers). */
#define DB 8
static inline __attribute__((always_inline)) void dots_n(const REAL *restrict GW,
                                                        const REAL *restrict XT, i64 K,
                                                        const i64 d1, i64 U, REAL *restrict GM) {
    for (i64 k = 0; k < K; ++k) {
        const REAL *gk = GW + k * U;
        REAL acc[d1][DB];
        for (i64 i = 0; i < d1; ++i)
            for (int t = 0; t < DB; ++t) acc[i][t] = 0;
        i64 u0 = 0;
        for (; u0 + DB <= U; u0 += DB)
            for (i64 i = 0; i < d1; ++i)
                for (int t = 0; t < DB; ++t) acc[i][t] += gk[u0 + t] * XT[i * U + u0 + t];
        for (i64 i = 0; i < d1; ++i) {
            REAL s = 0;
            for (int t = 0; t < DB; ++t) s += acc[i][t];
            for (i64 u = u0; u < U; ++u) s += gk[u] * XT[i * U + u];
            GM[k * d1 + i] = s;
        }
    }
}

static void dots(const REAL *GW, const REAL *XT, i64 K, i64 d1, i64 U, REAL *GM) {
    WITH_DIM(d1, dots_n(GW, XT, K, D, U, GM))
}

/* Y[k, u] = sum_i M[k, i] XT[i, u] */
static void mat_y(const REAL *M, const REAL *XT, i64 K, i64 d1, i64 U, REAL *Y) {
    small_mm(M, d1, 1, XT, K, d1, U, Y);
}

/* One path's output block o[u, kk] (= or +=) w[u] Y[kk, u]. The loops are instantiated for
 * the usual d3 = 2 l3 + 1 <= 7 with a constant d3, so that they unroll and vectorise. */
static inline __attribute__((always_inline)) void write_out_n(REAL *restrict o,
                                                             const REAL *restrict Y,
                                                             const REAL *restrict wq, i64 U,
                                                             const i64 d3, const int first) {
    for (i64 u = 0; u < U; ++u) {
        const REAL wu = wq[u];
        for (i64 kk = 0; kk < d3; ++kk) {
            const REAL v = wu * Y[kk * U + u];
            if (first)
                o[u * d3 + kk] = v;
            else
                o[u * d3 + kk] += v;
        }
    }
}

static void write_out(REAL *o, const REAL *Y, const REAL *wq, i64 U, i64 d3, i64 first) {
    WITH_DIM(d3, if (first) write_out_n(o, Y, wq, U, D, 1); else write_out_n(o, Y, wq, U, D, 0))
}

/* One path's part of the backward: GW[kk, u] = w[u] G[u, kk] and, when Y is given,
 * dw[u] = sum_kk G[u, kk] Y[kk, u]. */
static inline __attribute__((always_inline)) void read_grad_n(REAL *restrict GW,
                                                             const REAL *restrict G,
                                                             const REAL *restrict wq,
                                                             const REAL *restrict Y,
                                                             REAL *restrict dw, i64 U,
                                                             const i64 d3) {
    for (i64 u = 0; u < U; ++u) {
        const REAL wu = wq[u];
        REAL s = 0;
        for (i64 kk = 0; kk < d3; ++kk) {
            const REAL gk = G[u * d3 + kk];
            GW[kk * U + u] = wu * gk;
            if (Y) s += gk * Y[kk * U + u];
        }
        if (dw) dw[u] = s;
    }
}

static void read_grad(REAL *GW, const REAL *G, const REAL *wq, const REAL *Y, REAL *dw, i64 U,
                      i64 d3) {
    WITH_DIM(d3, if (Y) read_grad_n(GW, G, wq, Y, dw, U, D);
             else read_grad_n(GW, G, wq, NULL, NULL, U, D))
}

static void forward_range(const Args *a, i64 z0, i64 z1, REAL *M, REAL *XT, REAL *Y) {
    for (i64 z = z0; z < z1; ++z) {
        const REAL *x1 = a->x1 + z * a->dim1, *x2 = a->x2 + z * a->dim2;
        const REAL *w = a->w + z * a->numel;
        REAL *out = a->out + z * a->dim_out;
        if (!a->covered) memset(out, 0, (size_t)a->dim_out * sizeof(REAL));
        for (i64 gi = 0; gi < a->n_groups; ++gi) {
            const i64 *g = a->groups + 8 * gi;
            const i64 U = g[1], d1 = g[2], K = g[3];
            build_m(a, g, x2, M);
            load_xt(x1 + g[0], U, d1, XT);
            mat_y(M, XT, K, d1, U, Y);
            for (i64 ri = g[6]; ri < g[7]; ++ri) {
                const i64 *r = a->runs + 6 * ri;
                const i64 k0 = r[0], Q = r[1], d3 = r[2], first = r[5];
                for (i64 q = 0; q < Q; ++q)
                    write_out(out + r[3] + q * U * d3, Y + (k0 + q * d3) * U, w + r[4] + q * U, U,
                              d3, first);
            }
        }
    }
}

static void backward_range(const Args *a, i64 z0, i64 z1, REAL *M, REAL *XT, REAL *Y, REAL *GW,
                           REAL *GXT, REAL *GM) {
    for (i64 z = z0; z < z1; ++z) {
        const REAL *x1 = a->x1 + z * a->dim1, *x2 = a->x2 + z * a->dim2;
        const REAL *w = a->w + z * a->numel, *go = a->gout + z * a->dim_out;
        REAL *gx2 = a->gx2 ? a->gx2 + z * a->dim2 : NULL;
        REAL *gw = a->gw ? a->gw + z * a->numel : NULL;
        if (gx2) memset(gx2, 0, (size_t)a->dim2 * sizeof(REAL));
        for (i64 gi = 0; gi < a->n_groups; ++gi) {
            const i64 *g = a->groups + 8 * gi;
            const i64 U = g[1], d1 = g[2], K = g[3];
            build_m(a, g, x2, M);
            load_xt(x1 + g[0], U, d1, XT);
            if (gw) mat_y(M, XT, K, d1, U, Y);
            /* GW[k, u] = w[q, u] G[q, u, kk]; dL/dw[q, u] = sum_kk G[q, u, kk] Y[k, u] */
            for (i64 ri = g[6]; ri < g[7]; ++ri) {
                const i64 *r = a->runs + 6 * ri;
                const i64 k0 = r[0], Q = r[1], d3 = r[2];
                for (i64 q = 0; q < Q; ++q) {
                    const REAL *wq = w + r[4] + q * U;
                    const REAL *gq = go + r[3] + q * U * d3;
                    const i64 k = k0 + q * d3;
                    read_grad(GW + k * U, gq, wq, gw ? Y + k * U : NULL, gw ? gw + r[4] + q * U : NULL,
                              U, d3);
                }
            }
            if (a->gx1) { /* dL/dXT[i, u] = sum_k M[k, i] GW[k, u] */
                small_mm(M, 1, d1, GW, d1, K, U, GXT);
                transpose(a->gx1 + z * a->dim1 + g[0], GXT, U, d1, 0);
            }
            if (gx2) { /* dL/dM[k, i] = sum_u GW[k, u] XT[i, u]; dL/dx2[j] = sum C dL/dM */
                dots(GW, XT, K, d1, U, GM);
                for (i64 n = g[4]; n < g[5]; ++n) gx2[a->nz_j[n]] += a->nz_c[n] * GM[a->nz_ki[n]];
            }
        }
    }
}

static void *run_job(void *arg) {
    Job *job = (Job *)arg;
    const Args *a = job->a;
    REAL *buf = (REAL *)malloc((size_t)(2 * a->max_kd1 + 2 * a->max_d1u + 2 * a->max_ku + 16) *
                               sizeof(REAL));
    if (!buf) {
        job->status = 1;
        return NULL;
    }
    REAL *M = buf, *GM = M + a->max_kd1, *XT = GM + a->max_kd1, *GXT = XT + a->max_d1u;
    REAL *Y = GXT + a->max_d1u, *GW = Y + a->max_ku;
    if (job->backward)
        backward_range(a, job->z0, job->z1, M, XT, Y, GW, GXT, GM);
    else
        forward_range(a, job->z0, job->z1, M, XT, Y);
    free(buf);
    job->status = 0;
    return NULL;
}

static void sizes(Args *a) {
    a->max_kd1 = a->max_d1u = a->max_ku = 1;
    for (i64 gi = 0; gi < a->n_groups; ++gi) {
        const i64 *g = a->groups + 8 * gi;
        if (g[3] * g[2] > a->max_kd1) a->max_kd1 = g[3] * g[2];
        if (g[2] * g[1] > a->max_d1u) a->max_d1u = g[2] * g[1];
        if (g[3] * g[1] > a->max_ku) a->max_ku = g[3] * g[1];
    }
}

/* Split [0, Z) over n_threads threads (the caller's thread takes the first range). */
static int launch(Args *a, int backward, int n_threads) {
    sizes(a);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    if (a->Z < 64 * n_threads) n_threads = a->Z < 64 ? 1 : (int)(a->Z / 64);
    Job jobs[256];
    pthread_t tids[256];
    int started[256] = {0};
    for (int t = 0; t < n_threads; ++t) {
        jobs[t].a = a;
        jobs[t].z0 = a->Z * t / n_threads;
        jobs[t].z1 = a->Z * (t + 1) / n_threads;
        jobs[t].backward = backward;
        jobs[t].status = 1;
    }
    for (int t = 1; t < n_threads; ++t)
        started[t] = pthread_create(&tids[t], NULL, run_job, &jobs[t]) == 0;
    run_job(&jobs[0]);
    int status = jobs[0].status;
    for (int t = 1; t < n_threads; ++t) {
        if (started[t]) {
            pthread_join(tids[t], NULL);
        } else { /* no thread: do its range here */
            run_job(&jobs[t]);
        }
        status |= jobs[t].status;
    }
    return status;
}

int conv_forward(i64 Z, i64 dim1, i64 dim2, i64 dim_out, i64 numel, i64 n_groups, i64 covered,
                 const i64 *groups, const i64 *runs, const i64 *nz_j, const i64 *nz_ki,
                 const REAL *nz_c, const REAL *x1, const REAL *x2, const REAL *w, REAL *out,
                 int n_threads) {
    Args a = {Z,     dim1,  dim2,  dim_out, numel, n_groups, covered, groups, runs, nz_j,
              nz_ki, nz_c,  x1,    x2,      w,     NULL,     out,     NULL,   NULL, NULL,
              0,     0,     0};
    return launch(&a, 0, n_threads);
}

int conv_backward(i64 Z, i64 dim1, i64 dim2, i64 dim_out, i64 numel, i64 n_groups,
                  const i64 *groups, const i64 *runs, const i64 *nz_j, const i64 *nz_ki,
                  const REAL *nz_c, const REAL *x1, const REAL *x2, const REAL *w,
                  const REAL *gout, REAL *gx1, REAL *gx2, REAL *gw, int n_threads) {
    Args a = {Z,     dim1, dim2, dim_out, numel, n_groups, 1,   groups, runs, nz_j,
              nz_ki, nz_c, x1,   x2,      w,     gout,     NULL, gx1,   gx2,  gw,
              0,     0,    0};
    return launch(&a, 1, n_threads);
}
