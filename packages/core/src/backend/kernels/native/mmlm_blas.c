/*
 * Optional native GEMM for the wasm backend: cblas_sgemm (OpenBLAS or any CBLAS) run directly on
 * the tfjs-wasm heap (a WebAssembly.Memory's ArrayBuffer), through Node-API so one binary works on
 * every Node version with Node-API 8.
 *
 * sgemm(heap, transA, transB, M, N, K, aByteOffset, lda, bByteOffset, ldb, cByteOffset, ldc, beta)
 * computes C = op(A) op(B) + beta C in row-major order, after checking that every matrix lies
 * inside the heap.
 *
 * conv2d(heap, mode, B, H, W, Cin, OH, OW, Cout, kh, kw, sh, sw, dh, dw, top, left, xOff, wOff, yOff)
 * runs one NHWC float32 convolution x [B, H, W, Cin] * w [kh, kw, Cin, Cout] -> y [B, OH, OW, Cout]
 * (input pixel of tap (r, c) at output pixel (i, j): (i sh + r dh - top, j sw + c dw - left), zero
 * outside) as im2col + cblas_sgemm over chunks of output pixels, so the column buffer stays in cache
 * and no padded copy of x is made:
 *   mode 0, forward:      y[p, :]  = col[p, :] w                  (col [P, kh kw Cin], w [kh kw Cin, Cout])
 *   mode 1, filter grad:  w        = sum over chunks of col^T y   (y holds dy; w is written)
 *   mode 2, input grad:   x        = col2im(y w^T)                (y holds dy; x is zeroed, then written)
 * Written by hand because no library on the npm registry or in Debian runs a convolution on a
 * WebAssembly heap from Node (XNNPACK inside tfjs-wasm has no gradients and runs at 128-bit SIMD).
 */
#include <cblas.h>
#include <node_api.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void openblas_set_num_threads(int num_threads) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

/* multiply-adds below which a GEMM runs on one OpenBLAS thread (environment MMLM_GEMM_THREAD_MIN
   through setGemmThreadMin; measured in bench/records/elementwise-threads-2026-12-06) */
#ifndef GEMM_THREAD_MIN_DEFAULT
#define GEMM_THREAD_MIN_DEFAULT 4e6
#endif

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "mmlm_blas: Node-API call failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static int fits(double off, double rows, double cols, double ld, double len) {
  if (rows <= 0 || cols <= 0) return 1;
  if (off < 0 || ld < cols) return 0;
  return off + 4.0 * ((rows - 1) * ld + cols) <= len;
}

/*
 * The arguments every entry point takes: (heap, n numbers). Reads the heap's data and byte length and
 * the numbers into v; 0 after throwing a TypeError naming `name` (wrong count, not an ArrayBuffer).
 */
static int heap_args(napi_env env, napi_callback_info info, const char *name, size_t n, void **data, size_t *len, double *v) {
  size_t argc = 24;
  napi_value argv[24];
  char msg[96];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != n + 1 || n + 1 > 24) {
    snprintf(msg, sizeof msg, "mmlm_blas.%s: expected %d arguments", name, (int)(n + 1));
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  if (napi_get_arraybuffer_info(env, argv[0], data, len) != napi_ok) {
    snprintf(msg, sizeof msg, "mmlm_blas.%s: heap must be an ArrayBuffer", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    if (napi_get_value_double(env, argv[i + 1], &v[i]) != napi_ok) {
      snprintf(msg, sizeof msg, "mmlm_blas.%s: argument %d must be a number", name, (int)(i + 1));
      napi_throw_type_error(env, NULL, msg);
      return 0;
    }
  return 1;
}

static double gemm_thread_min = GEMM_THREAD_MIN_DEFAULT;

static napi_value Sgemm(napi_env env, napi_callback_info info) {
  void *data = NULL;
  size_t len = 0;
  double v[12];
  if (!heap_args(env, info, "sgemm", 12, &data, &len, v)) return NULL;
  const int ta = v[0] != 0, tb = v[1] != 0;
  const double M = v[2], N = v[3], K = v[4], aOff = v[5], lda = v[6], bOff = v[7], ldb = v[8], cOff = v[9], ldc = v[10];
  const float beta = (float)v[11];
  const double L = (double)len;
  if (!(ta ? fits(aOff, K, M, lda, L) : fits(aOff, M, K, lda, L)) || !(tb ? fits(bOff, N, K, ldb, L) : fits(bOff, K, N, ldb, L)) ||
      !fits(cOff, M, N, ldc, L) || ((int64_t)aOff | (int64_t)bOff | (int64_t)cOff) % 4 != 0) {
    napi_throw_range_error(env, NULL, "mmlm_blas.sgemm: a matrix lies outside the heap or is misaligned");
    return NULL;
  }
  if (M > 0 && N > 0) {
    char *base = (char *)data;
    /* a small GEMM on one thread: waking OpenBLAS' sleeping threads costs more than they save */
    int prev = 0;
    if (M * N * K < gemm_thread_min && openblas_set_num_threads && openblas_get_num_threads) {
      prev = openblas_get_num_threads();
      if (prev != 1) openblas_set_num_threads(1);
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                (const float *)(base + (int64_t)aOff), (int)lda, (const float *)(base + (int64_t)bOff), (int)ldb, beta,
                (float *)(base + (int64_t)cOff), (int)ldc);
    if (prev > 1) openblas_set_num_threads(prev);
  }
  return NULL;
}

/*
 * Fill rows [p0, p0 + n) of the im2col matrix col [n, Kt] for the taps [t0, t1) (tap t = r kw + c;
 * Kt = (t1 - t0) Cin; all taps: col [n, kh kw Cin]) from x.
 */
static void im2col_rows(const float *x, float *col, int64_t p0, int n, int H, int W, int Cin, int OH, int OW, int kh, int kw, int sh,
                        int sw, int dh, int dw, int top, int left, int t0, int t1) {
  const int64_t Kt = (int64_t)(t1 - t0) * Cin;
  (void)kh; /* the taps' range bounds the rows */
  for (int i = 0; i < n; i++) {
    const int64_t p = p0 + i;
    const int64_t b = p / ((int64_t)OH * OW);
    const int oh = (int)((p / OW) % OH), ow = (int)(p % OW);
    float *dst = col + (int64_t)i * Kt;
    for (int r = t0 / kw; r <= (t1 - 1) / kw; r++) {
      const int cs = r == t0 / kw ? t0 % kw : 0, ce = r == (t1 - 1) / kw ? (t1 - 1) % kw + 1 : kw; /* taps [cs, ce) of row r */
      const int64_t ih = (int64_t)oh * sh + (int64_t)r * dh - top; /* 64-bit: no overflow on any sizes */
      float *d = dst + ((int64_t)r * kw + cs - t0) * Cin;
      if (ih < 0 || ih >= H) {
        memset(d, 0, sizeof(float) * (size_t)(ce - cs) * Cin);
        continue;
      }
      const float *row = x + ((b * H + ih) * W) * (int64_t)Cin;
      const int64_t iw0 = (int64_t)ow * sw - left;
      if (dw == 1 && iw0 + cs >= 0 && iw0 + ce <= W) {
        memcpy(d, row + (iw0 + cs) * Cin, sizeof(float) * (size_t)(ce - cs) * Cin);
        continue;
      }
      for (int c = cs; c < ce; c++) {
        const int64_t iw = iw0 + (int64_t)c * dw;
        if (iw < 0 || iw >= W)
          memset(d + (int64_t)(c - cs) * Cin, 0, sizeof(float) * (size_t)Cin);
        else
          memcpy(d + (int64_t)(c - cs) * Cin, row + iw * Cin, sizeof(float) * (size_t)Cin);
      }
    }
  }
}

/* Add rows [p0, p0 + n) of dcol [n, K] back into dx at the input pixels they were read from. */
static void col2im_rows(const float *col, float *x, int64_t p0, int n, int H, int W, int Cin, int OH, int OW, int kh, int kw, int sh,
                        int sw, int dh, int dw, int top, int left) {
  const int64_t K = (int64_t)kh * kw * Cin;
  for (int i = 0; i < n; i++) {
    const int64_t p = p0 + i;
    const int64_t b = p / ((int64_t)OH * OW);
    const int oh = (int)((p / OW) % OH), ow = (int)(p % OW);
    const float *src = col + (int64_t)i * K;
    for (int r = 0; r < kh; r++) {
      const int64_t ih = (int64_t)oh * sh + (int64_t)r * dh - top;
      if (ih < 0 || ih >= H) continue;
      float *row = x + ((b * H + ih) * W) * (int64_t)Cin;
      for (int c = 0; c < kw; c++) {
        const int64_t iw = (int64_t)ow * sw + (int64_t)c * dw - left;
        if (iw < 0 || iw >= W) continue;
        float *d = row + iw * Cin;
        const float *s = src + ((int64_t)r * kw + c) * Cin;
        for (int k = 0; k < Cin; k++) d[k] += s[k];
      }
    }
  }
}

/*
 * Threads for the convolution: a call splits over `conv_threads` threads (0: OpenBLAS' own thread
 * count; the calling thread and pool workers, below) once it has at least `conv_thread_min`
 * multiply-adds, with OpenBLAS held to one thread meanwhile (its level-3 threading takes a global
 * lock, so concurrent calls would serialise). The work is split where no two threads write the same
 * element, and each element is summed in the same order whatever the thread count (the same bits on
 * 1, 2 or 3 threads, tested; this relies, as OpenBLAS' own threading does, on a GEMM's row of C not
 * depending on which rows it is computed with):
 *   forward:      output pixels, at the single thread's chunk boundaries;
 *   input grad:   whole images (col2im adds into the input pixels an image's chunks share);
 *   filter grad:  filter taps (each thread im2cols only its taps, for the rows of w it owns).
 * Measured (bench/records/conv-threads-2026-12-06): one 3x3 convolution of 16 x 32 x 32 x 32 1.6-1.8x
 * faster on two threads, 16 x 16 1.4x, 16 x 8 x 8 (9.4M multiply-adds) even.
 */
static int conv_threads = 0;
static double conv_thread_min = 1.6e7; /* 16 x 8 x 8 x 32 -> 32 (9.4M) runs even on two threads */

typedef struct {
  int mode, H, W, Cin, OH, OW, Cout, kh, kw, sh, sw, dh, dw, top, left;
  float *x, *w, *y;
  int64_t Ki, rows, OHW;
  int64_t p0, p1; /* pixels [p0, p1): forward and input gradient; all pixels for the filter gradient */
  int t0, t1;     /* taps [t0, t1): the filter gradient; all taps otherwise */
  int failed;
} conv_job;

static void *conv_work(void *arg) {
  conv_job *j = (conv_job *)arg;
  const int64_t Kt = (int64_t)(j->t1 - j->t0) * j->Cin, Ki = j->Ki, rows = j->rows;
  float *col = (float *)malloc(sizeof(float) * (size_t)(rows * (j->mode == 2 ? Ki : Kt)));
  if (!col) {
    j->failed = 1;
    return NULL;
  }
  for (int64_t p = j->p0; p < j->p1;) {
    /* chunk: `rows` pixels, and in the input gradient never across an image boundary (so a thread's
       images start a chunk whatever the thread count) */
    int64_t end = p + rows < j->p1 ? p + rows : j->p1;
    if (j->mode == 2) {
      const int64_t img_end = (p / j->OHW + 1) * j->OHW;
      if (j->OHW >= rows && end > img_end) end = img_end;
    }
    const int n = (int)(end - p);
    if (j->mode == 2) {
      /* dcol [n, K] = dy [n, Cout] w^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)Ki, j->Cout, 1.0f, j->y + p * j->Cout, j->Cout, j->w, j->Cout, 0.0f, col,
                  (int)Ki);
      col2im_rows(col, j->x, p, n, j->H, j->W, j->Cin, j->OH, j->OW, j->kh, j->kw, j->sh, j->sw, j->dh, j->dw, j->top, j->left);
    } else {
      im2col_rows(j->x, col, p, n, j->H, j->W, j->Cin, j->OH, j->OW, j->kh, j->kw, j->sh, j->sw, j->dh, j->dw, j->top, j->left, j->t0,
                  j->t1);
      if (j->mode == 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, j->Cout, (int)Ki, 1.0f, col, (int)Ki, j->w, j->Cout, 0.0f,
                    j->y + p * j->Cout, j->Cout);
      else /* w[t0 Cin .. t1 Cin, :] (+)= col^T dy */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Kt, j->Cout, n, 1.0f, col, (int)Kt, j->y + p * j->Cout, j->Cout,
                    p > 0 ? 1.0f : 0.0f, j->w + (int64_t)j->t0 * j->Cin * j->Cout, j->Cout);
    }
    p = end;
  }
  free(col);
  return NULL;
}

/*
 * A pool of persistent worker threads for the convolution's shares. Persistent, not created per call:
 * OpenBLAS gives each new thread fresh packing buffers, which made a thread created per call cost
 * about 0.25 ms (measured), more than an 8 x 8 convolution takes. Idle workers block on a condition
 * variable (they never spin, so they leave the core to the rest of the step).
 */
static pthread_mutex_t dispatch_mu = PTHREAD_MUTEX_INITIALIZER; /* one threaded call at a time */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER, pool_done = PTHREAD_COND_INITIALIZER;
typedef void (*pool_fn)(void *job);
static char *pool_jobs = NULL; /* pool_total jobs of pool_stride bytes, each run by pool_fn_cur */
static size_t pool_stride = 0;
static pool_fn pool_fn_cur = NULL;
static int pool_next = 0, pool_total = 0, pool_left = 0, pool_workers = 0;

/* Take the next share under pool_mu; NULL when none is left. */
static void *pool_take(void) { return pool_next < pool_total ? pool_jobs + (size_t)pool_next++ * pool_stride : NULL; }

static void *pool_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&pool_mu);
  for (;;) {
    void *j;
    while (!(j = pool_take())) pthread_cond_wait(&pool_work, &pool_mu);
    const pool_fn fn = pool_fn_cur;
    pthread_mutex_unlock(&pool_mu);
    fn(j);
    pthread_mutex_lock(&pool_mu);
    if (--pool_left == 0) pthread_cond_signal(&pool_done);
  }
  return NULL;
}

/* Run the T shares (jobs of `stride` bytes, each by fn) on the calling thread and up to T - 1 pool
   workers (started on first need); the caller takes shares too, so the call completes even if no
   worker could be started. */
static void pool_run(void *jobs, size_t stride, int T, pool_fn fn) {
  while (pool_workers < T - 1) {
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int ok = pthread_create(&tid, &attr, pool_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) break;
    pool_workers++;
  }
  pthread_mutex_lock(&pool_mu);
  pool_jobs = (char *)jobs;
  pool_stride = stride;
  pool_fn_cur = fn;
  pool_next = 0;
  pool_total = T;
  pool_left = T;
  pthread_cond_broadcast(&pool_work);
  for (;;) {
    void *j = pool_take();
    if (!j) break;
    pthread_mutex_unlock(&pool_mu);
    fn(j);
    pthread_mutex_lock(&pool_mu);
    pool_left--;
  }
  while (pool_left > 0) pthread_cond_wait(&pool_done, &pool_mu);
  pool_total = 0;
  pool_jobs = NULL;
  pthread_mutex_unlock(&pool_mu);
}

/* The threads a call may use: setConvThreads' count, else OpenBLAS' (at most 64). */
static int64_t addon_threads(void) {
  int64_t T = conv_threads > 0 ? conv_threads : (openblas_get_num_threads ? openblas_get_num_threads() : 1);
  return T > 64 ? 64 : T < 1 ? 1 : T;
}

/* Run T shares over the pool (when T > 1 and no other thread of the process holds it) or in order here. */
static void run_shares(void *jobs, size_t stride, int64_t T, pool_fn fn) {
  if (T > 1 && pthread_mutex_trylock(&dispatch_mu) == 0) {
    pool_run(jobs, stride, (int)T, fn);
    pthread_mutex_unlock(&dispatch_mu);
  } else
    for (int64_t t = 0; t < T; t++) fn((char *)jobs + (size_t)t * stride);
}

static void conv_work_fn(void *job) { conv_work((conv_job *)job); }

static napi_value Conv2d(napi_env env, napi_callback_info info) {
  void *data = NULL;
  size_t len = 0;
  double v[19];
  if (!heap_args(env, info, "conv2d", 19, &data, &len, v)) return NULL;
  const int mode = (int)v[0], B = (int)v[1], H = (int)v[2], W = (int)v[3], Cin = (int)v[4], OH = (int)v[5], OW = (int)v[6],
            Cout = (int)v[7], kh = (int)v[8], kw = (int)v[9], sh = (int)v[10], sw = (int)v[11], dh = (int)v[12], dw = (int)v[13],
            top = (int)v[14], left = (int)v[15];
  const double xOff = v[16], wOff = v[17], yOff = v[18];
  for (int i = 1; i < 16; i++)
    if (!(v[i] >= 0 && v[i] <= 2147483647.0) || v[i] != (double)(int64_t)v[i]) {
      napi_throw_range_error(env, NULL, "mmlm_blas.conv2d: a size is not a non-negative 32-bit integer");
      return NULL;
    }
  if (mode < 0 || mode > 2 || sh < 1 || sw < 1 || dh < 1 || dw < 1) {
    napi_throw_range_error(env, NULL, "mmlm_blas.conv2d: mode must be 0, 1 or 2 and strides and dilations >= 1");
    return NULL;
  }
  const double L = (double)len;
  const double K = (double)kh * kw * Cin, P = (double)B * OH * OW;
  if (!fits(xOff, (double)B * H * W, Cin, Cin, L) || !fits(wOff, K, Cout, Cout, L) || !fits(yOff, P, Cout, Cout, L) ||
      ((int64_t)xOff | (int64_t)wOff | (int64_t)yOff) % 4 != 0) {
    napi_throw_range_error(env, NULL, "mmlm_blas.conv2d: a tensor lies outside the heap or is misaligned");
    return NULL;
  }
  char *base = (char *)data;
  float *x = (float *)(base + (int64_t)xOff), *w = (float *)(base + (int64_t)wOff), *y = (float *)(base + (int64_t)yOff);
  const int64_t Ki = (int64_t)kh * kw * Cin, Pi = (int64_t)B * OH * OW;
  if (mode == 2) memset(x, 0, sizeof(float) * (size_t)((int64_t)B * H * W * Cin));
  if (Ki == 0 || Pi == 0 || Cout == 0) {
    if (mode == 0) memset(y, 0, sizeof(float) * (size_t)(Pi * Cout));
    if (mode == 1) memset(w, 0, sizeof(float) * (size_t)(Ki * Cout));
    return NULL;
  }
  /* rows per chunk: a column buffer of about 64 KB (measured: 64 rows of K = 288 beat 256 and 1024 for
     the forward and filter gradient); the input gradient's GEMM has K = Cout, so it takes 4x the rows */
  int64_t rows = (mode == 2 ? 65536 : 16384) / Ki;
  if (rows < 32) rows = 32;
  if (rows > 1024) rows = 1024;
  const int64_t OHW = (int64_t)OH * OW, taps = (int64_t)kh * kw;
  /* threads: by the work there is to split (chunks, images or taps) */
  int64_t T = addon_threads();
  const int small = (double)Pi * (double)Ki * (double)Cout < conv_thread_min;
  if (small) T = 1;
  const int64_t units = mode == 0 ? (Pi + rows - 1) / rows : mode == 2 ? B : taps;
  if (T > units) T = units;
  if (T < 1) T = 1;
  conv_job jobs[64];
  for (int64_t t = 0; t < T; t++) {
    const int64_t u0 = units * t / T, u1 = units * (t + 1) / T;
    conv_job j = {mode, H, W, Cin, OH, OW, Cout, kh, kw, sh, sw, dh, dw, top, left, x, w, y, Ki, rows, OHW, 0, Pi, 0, (int)taps, 0};
    if (mode == 0) {
      j.p0 = u0 * rows;
      j.p1 = u1 * rows < Pi ? u1 * rows : Pi;
    } else if (mode == 2) {
      j.p0 = u0 * OHW;
      j.p1 = u1 * OHW;
    } else {
      j.t0 = (int)u0;
      j.t1 = (int)u1;
    }
    jobs[t] = j;
  }
  if (T > 1 && pthread_mutex_trylock(&dispatch_mu) == 0) {
    int prev = 0;
    if (openblas_set_num_threads && openblas_get_num_threads) {
      prev = openblas_get_num_threads();
      if (prev != 1) openblas_set_num_threads(1);
    }
    pool_run(jobs, sizeof(conv_job), (int)T, conv_work_fn);
    if (prev > 1) openblas_set_num_threads(prev);
    pthread_mutex_unlock(&dispatch_mu);
  } else {
    /* one thread, or another thread of the process holds the pool: run the shares here, in order. A
       convolution below the threshold also keeps OpenBLAS to one thread: its GEMMs are too small to
       pay for waking OpenBLAS' sleeping threads (measured: the 16 px tokenizer's stride-2 input
       gradients took 0.6-1.2 ms a call on OpenBLAS' 2 threads, 0.07-0.16 ms on 1) */
    int prev = 0;
    if (small && openblas_set_num_threads && openblas_get_num_threads) {
      prev = openblas_get_num_threads();
      if (prev != 1) openblas_set_num_threads(1);
    }
    for (int64_t t = 0; t < T; t++) conv_work(&jobs[t]);
    if (prev > 1) openblas_set_num_threads(prev);
  }
  for (int64_t t = 0; t < T; t++)
    if (jobs[t].failed) {
      napi_throw_error(env, NULL, "mmlm_blas.conv2d: out of memory for the column buffer");
      return NULL;
    }
  return NULL;
}

/*
 * SiLU and GroupNorm forward and backward, split over the same pool: the same arithmetic in the same
 * order as core's WebAssembly SIMD kernels (simd_ops.ts siluVec / siluGradVec with its expVec,
 * simd_norm.ts GroupNormSimd with the per-group scalars of its JavaScript), so every element has the
 * same bits as there, on any thread count (tested exactly). Each float operation is one IEEE
 * operation of the same precision (the build passes -ffp-contract=off: no fused multiply-adds);
 * wasm's pmin / pmax are the ternaries below. Written by hand for the reason the convolution is: no
 * library runs these on a WebAssembly heap, and they must match the wasm kernels bit for bit.
 */
#define ELEM_THREAD_MIN 65536 /* floats a SiLU or GroupNorm call needs before it is split (measured, bench/) */

/* float lanes (GCC / Clang vector extensions): wasm's f32x4 does the same operation on each lane, so
   sixteen at a time give the same bits as four; the compiler lowers them to what the CPU has (SSE or
   NEON 4 lanes, AVX2 8, AVX-512 16; on x86-64 Linux one clone per level, chosen when the addon loads) */
typedef float v4f __attribute__((vector_size(64)));
typedef int32_t v4i __attribute__((vector_size(64)));
typedef uint32_t v4u __attribute__((vector_size(64)));
#define LANES 16
#define V4(x) ((v4f){(x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x)})
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(MMLM_NO_CPU_CLONES)
#define CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CPU_CLONES
#endif
static inline v4f v4_select(v4i mask, v4f a, v4f b) { return (v4f)(((v4i)a & mask) | ((v4i)b & ~mask)); } /* mask ? a : b */
static inline v4f wasm_pmin(v4f a, v4f b) { return v4_select(b < a, b, a); }
static inline v4f wasm_pmax(v4f a, v4f b) { return v4_select(a < b, b, a); }

/* simd_ops.ts expVec: e^x as the float adder's round-to-nearest of x log2 e, a degree-7 Taylor
   polynomial of the remainder by Estrin's scheme, and 2^n from the exponent bits (split by 2^64
   where n leaves the normal range). */
static inline __attribute__((always_inline)) v4f wasm_exp(v4f x) {
  const float MAGIC = 12582912.0f;
  const v4f y = wasm_pmax(wasm_pmin(x, V4(89.0f)), V4(-104.0f));
  const v4f t = y * V4((float)1.4426950408889634) + V4(MAGIC);
  const v4f n = t - V4(MAGIC);
  const v4f r = (y - n * V4(0.693359375f)) - n * V4((float)-2.1219444e-4);
  const v4i hi = n > V4(63.0f), lo = n < V4(-63.0f);
  const v4f t0 = V4(1.0f) + r * V4(1.0f), t1 = V4((float)(1.0 / 2)) + r * V4((float)(1.0 / 6)),
            t2 = V4((float)(1.0 / 24)) + r * V4((float)(1.0 / 120)), t3 = V4((float)(1.0 / 720)) + r * V4((float)(1.0 / 5040));
  const v4f z2 = r * r;
  const v4f u0 = t0 + z2 * t1, u1 = t2 + z2 * t3;
  const v4f z4 = z2 * z2;
  const v4f p = u0 + z4 * u1;
  const v4u tb = (v4u)t + ((v4u)lo & 64u) - ((v4u)hi & 64u);
  const v4f pw = (v4f)((tb + (uint32_t)(127 - 0x4b400000)) << 23);
  const v4f sc = v4_select(hi, V4(0x1p64f), v4_select(lo, V4(0x1p-64f), V4(1.0f)));
  return (p * pw) * sc;
}

typedef struct {
  int mode; /* 0: out = silu(x); 1: out = dy silu'(x) */
  const float *x, *dy;
  float *out;
  int64_t i0, i1;
} silu_job;

/* One block of four lanes (x, dy at p, q; q unused in mode 0). */
static inline __attribute__((always_inline)) v4f silu_lanes(int mode, v4f x, v4f dy) {
  const v4f s = V4(1.0f) / (V4(1.0f) + wasm_exp(-x));
  return mode == 0 ? x * s : dy * (s * (V4(1.0f) + x * (V4(1.0f) - s)));
}

/* LANES at a time (unaligned loads and stores); the last n mod LANES through zero-padded lanes, as the
   wasm kernel's tail. */
CPU_CLONES static void silu_work(void *job) {
  const silu_job *j = (const silu_job *)job;
  const int mode = j->mode;
  int64_t i = j->i0;
  v4f x, dy = V4(0.0f), out;
  if (mode == 0)
    for (; i + LANES <= j->i1; i += LANES) {
      memcpy(&x, j->x + i, sizeof x);
      out = silu_lanes(0, x, dy);
      memcpy(j->out + i, &out, sizeof out);
    }
  else
    for (; i + LANES <= j->i1; i += LANES) {
      memcpy(&x, j->x + i, sizeof x);
      memcpy(&dy, j->dy + i, sizeof dy);
      out = silu_lanes(1, x, dy);
      memcpy(j->out + i, &out, sizeof out);
    }
  if (i < j->i1) {
    const size_t k = (size_t)(j->i1 - i);
    x = V4(0.0f), dy = V4(0.0f);
    memcpy(&x, j->x + i, sizeof(float) * k);
    if (mode == 1) memcpy(&dy, j->dy + i, sizeof(float) * k);
    out = silu_lanes(mode, x, dy);
    memcpy(j->out + i, &out, sizeof(float) * k);
  }
}

/* silu(heap, mode, n, xOffset, dyOffset, outOffset): mode 0 out = x sigmoid(x), mode 1 out = dy d/dx
   silu(x) over n floats (dyOffset unused in mode 0). */
static napi_value Silu(napi_env env, napi_callback_info info) {
  void *data = NULL;
  size_t len = 0;
  double v[5];
  if (!heap_args(env, info, "silu", 5, &data, &len, v)) return NULL;
  const int mode = (int)v[0];
  const double n = v[1];
  if ((mode != 0 && mode != 1) || !(n >= 0 && n <= 4294967296.0) || n != (double)(int64_t)n) {
    napi_throw_range_error(env, NULL, "mmlm_blas.silu: mode must be 0 or 1 and n a non-negative integer");
    return NULL;
  }
  const double L = (double)len;
  if (!fits(v[2], 1, n, n, L) || !fits(v[4], 1, n, n, L) || (mode == 1 && !fits(v[3], 1, n, n, L)) ||
      ((int64_t)v[2] | (int64_t)v[4] | (mode == 1 ? (int64_t)v[3] : 0)) % 4 != 0) {
    napi_throw_range_error(env, NULL, "mmlm_blas.silu: a tensor lies outside the heap or is misaligned");
    return NULL;
  }
  char *base = (char *)data;
  const int64_t N = (int64_t)n;
  int64_t T = N >= ELEM_THREAD_MIN ? addon_threads() : 1;
  silu_job jobs[64];
  for (int64_t t = 0; t < T; t++) {
    /* shares of whole 16-float blocks (a cache line each) */
    const int64_t blocks = (N + 15) / 16, b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
    jobs[t] = (silu_job){mode, (const float *)(base + (int64_t)v[2]), mode == 1 ? (const float *)(base + (int64_t)v[3]) : NULL,
                         (float *)(base + (int64_t)v[4]), b0 * 16, b1 * 16 < N ? b1 * 16 : N};
  }
  run_shares(jobs, sizeof(silu_job), T, silu_work);
  return NULL;
}

typedef struct {
  int mode; /* 0 forward, 1 backward */
  int64_t HW;
  int C, G;
  double eps;
  const float *x, *w, *b, *dy, *mean_in, *rstd_in;
  float *y, *mean, *rstd, *dx;
  double *sdy_all, *sdx_all; /* backward: per sample sum dy and sum dy xhat, [B, C] */
  int s0, s1;                /* samples [s0, s1) */
  int failed;
} gn_job;

CPU_CLONES static void gn_work(void *job) {
  gn_job *j = (gn_job *)job;
  const int C = j->C, G = j->G, Cg = C / G;
  const int64_t HW = j->HW;
  const double N = (double)HW * Cg;
  double *s = (double *)malloc(sizeof(double) * (size_t)C * 6);
  if (!s) {
    j->failed = 1;
    return;
  }
  double *acc = s, *meanC = s + C, *M = s + 2 * C, *A = s + 3 * C, *bias = s + 4 * C, *K = s + 4 * C, *Lc = s + 5 * C, *R = acc;
  for (int smp = j->s0; smp < j->s1; smp++) {
    const float *xs = j->x + (int64_t)smp * HW * C;
    if (j->mode == 0) {
      for (int c = 0; c < C; c++) acc[c] = 0;
      for (int64_t r = 0; r < HW; r++)
        for (int c = 0; c < C; c++) acc[c] += (double)xs[r * C + c];
      for (int g = 0; g < G; g++) {
        double m = 0;
        for (int c = g * Cg; c < (g + 1) * Cg; c++) m += acc[c];
        m /= N;
        for (int c = g * Cg; c < (g + 1) * Cg; c++) meanC[c] = m;
        j->mean[(int64_t)smp * G + g] = (float)m;
      }
      for (int c = 0; c < C; c++) acc[c] = 0;
      for (int64_t r = 0; r < HW; r++)
        for (int c = 0; c < C; c++) {
          const double d = (double)xs[r * C + c] - meanC[c];
          acc[c] += d * d;
        }
      for (int g = 0; g < G; g++) {
        double v = 0;
        for (int c = g * Cg; c < (g + 1) * Cg; c++) v += acc[c];
        const double rs = 1 / sqrt(v / N + j->eps);
        j->rstd[(int64_t)smp * G + g] = (float)rs;
        for (int c = g * Cg; c < (g + 1) * Cg; c++) {
          A[c] = (double)(float)(rs * (double)j->w[c]);
          M[c] = (double)(float)meanC[c];
        }
      }
      for (int c = 0; c < C; c++) bias[c] = (double)j->b[c];
      float *ys = j->y + (int64_t)smp * HW * C;
      for (int64_t r = 0; r < HW; r++)
        for (int c = 0; c < C; c++) ys[r * C + c] = (float)((((double)xs[r * C + c] - M[c]) * A[c]) + bias[c]);
    } else {
      const float *dys = j->dy + (int64_t)smp * HW * C;
      double *sdy = j->sdy_all + (int64_t)smp * C, *sdx = j->sdx_all + (int64_t)smp * C;
      for (int g = 0; g < G; g++)
        for (int c = g * Cg; c < (g + 1) * Cg; c++) {
          meanC[c] = (double)j->mean_in[(int64_t)smp * G + g];
          R[c] = (double)j->rstd_in[(int64_t)smp * G + g];
        }
      for (int c = 0; c < C; c++) sdy[c] = sdx[c] = 0;
      for (int64_t r = 0; r < HW; r++)
        for (int c = 0; c < C; c++) {
          const double d = (double)dys[r * C + c];
          sdy[c] += d;
          sdx[c] += d * (((double)xs[r * C + c] - meanC[c]) * R[c]);
        }
      for (int g = 0; g < G; g++) {
        double s1 = 0, s2 = 0;
        for (int c = g * Cg; c < (g + 1) * Cg; c++) {
          s1 += (double)j->w[c] * sdy[c];
          s2 += (double)j->w[c] * sdx[c];
        }
        const double rs = R[g * Cg];
        for (int c = g * Cg; c < (g + 1) * Cg; c++) {
          A[c] = (double)(float)(rs * (double)j->w[c]);
          K[c] = (double)(float)((-rs * rs * s2) / N);
          Lc[c] = (double)(float)((-rs * s1) / N);
          M[c] = (double)(float)meanC[c];
        }
      }
      float *dxs = j->dx + (int64_t)smp * HW * C;
      for (int64_t r = 0; r < HW; r++)
        for (int c = 0; c < C; c++)
          dxs[r * C + c] = (float)((((double)dys[r * C + c] * A[c]) + ((double)xs[r * C + c] - M[c]) * K[c]) + Lc[c]);
    }
  }
  free(s);
}

/*
 * groupNorm(heap, mode, B, HW, C, G, eps, o0 .. o7), NHWC x [B, HW, C], G groups of C / G channels:
 *   mode 0 (forward):  o0 x, o1 weight [C], o2 bias [C], o3 y, o4 mean [B, G], o5 rstd [B, G] (o6, o7 unused)
 *   mode 1 (backward): o0 dy, o1 x, o2 weight, o3 mean, o4 rstd, o5 dx, o6 dweight [C], o7 dbias [C]
 * Split by samples; the backward's per-sample channel sums are added over samples in order afterwards.
 */
static napi_value GroupNormNative(napi_env env, napi_callback_info info) {
  void *data = NULL;
  size_t len = 0;
  double v[14];
  if (!heap_args(env, info, "groupNorm", 14, &data, &len, v)) return NULL;
  const int mode = (int)v[0];
  for (int i = 1; i <= 4; i++)
    if (!(v[i] >= 0 && v[i] <= 2147483647.0) || v[i] != (double)(int64_t)v[i]) {
      napi_throw_range_error(env, NULL, "mmlm_blas.groupNorm: a size is not a non-negative 32-bit integer");
      return NULL;
    }
  const int B = (int)v[1], C = (int)v[3], G = (int)v[4];
  const int64_t HW = (int64_t)v[2];
  if ((mode != 0 && mode != 1) || G < 1 || C % G != 0 || !(v[5] >= 0)) {
    napi_throw_range_error(env, NULL, "mmlm_blas.groupNorm: mode must be 0 or 1, G >= 1 must divide C, eps >= 0");
    return NULL;
  }
  const double L = (double)len, big = (double)B * (double)HW, BG = (double)B * G;
  /* the rows and columns of o0 .. o7 in each mode */
  const double rows[2][8] = {{big, 1, 1, big, 1, 1, 0, 0}, {big, big, 1, 1, 1, big, 1, 1}};
  const double cols[2][8] = {{C, C, C, C, BG, BG, 0, 0}, {C, C, C, BG, BG, C, C, C}};
  int64_t align = 0;
  for (int i = 0; i < 8; i++) {
    if (rows[mode][i] == 0) continue;
    if (!fits(v[6 + i], rows[mode][i], cols[mode][i], cols[mode][i], L)) {
      napi_throw_range_error(env, NULL, "mmlm_blas.groupNorm: a tensor lies outside the heap");
      return NULL;
    }
    align |= (int64_t)v[6 + i];
  }
  if (align % 4 != 0) {
    napi_throw_range_error(env, NULL, "mmlm_blas.groupNorm: a tensor is misaligned");
    return NULL;
  }
  char *base = (char *)data;
#define GN_PTR(i) ((float *)(base + (int64_t)v[6 + (i)]))
  if (B == 0 || C == 0) {
    if (mode == 1 && C > 0) {
      memset(GN_PTR(6), 0, sizeof(float) * (size_t)C);
      memset(GN_PTR(7), 0, sizeof(float) * (size_t)C);
    }
    return NULL;
  }
  double *sums = NULL;
  if (mode == 1) {
    sums = (double *)malloc(sizeof(double) * 2 * (size_t)B * (size_t)C);
    if (!sums) {
      napi_throw_error(env, NULL, "mmlm_blas.groupNorm: out of memory");
      return NULL;
    }
  }
  int64_t T = big * C >= ELEM_THREAD_MIN ? addon_threads() : 1;
  if (T > B) T = B;
  gn_job jobs[64];
  for (int64_t t = 0; t < T; t++) {
    gn_job j;
    memset(&j, 0, sizeof j);
    j.mode = mode, j.HW = HW, j.C = C, j.G = G, j.eps = v[5];
    if (mode == 0) {
      j.x = GN_PTR(0), j.w = GN_PTR(1), j.b = GN_PTR(2), j.y = GN_PTR(3), j.mean = GN_PTR(4), j.rstd = GN_PTR(5);
    } else {
      j.dy = GN_PTR(0), j.x = GN_PTR(1), j.w = GN_PTR(2), j.mean_in = GN_PTR(3), j.rstd_in = GN_PTR(4), j.dx = GN_PTR(5);
      j.sdy_all = sums, j.sdx_all = sums + (int64_t)B * C;
    }
    j.s0 = (int)(B * t / T), j.s1 = (int)(B * (t + 1) / T);
    jobs[t] = j;
  }
  run_shares(jobs, sizeof(gn_job), T, gn_work);
  int failed = 0;
  for (int64_t t = 0; t < T; t++) failed |= jobs[t].failed;
  if (mode == 1 && !failed) {
    float *dw = GN_PTR(6), *db = GN_PTR(7);
    for (int c = 0; c < C; c++) {
      double a = 0, b = 0;
      for (int smp = 0; smp < B; smp++) {
        a += sums[(int64_t)B * C + (int64_t)smp * C + c];
        b += sums[(int64_t)smp * C + c];
      }
      dw[c] = (float)a;
      db[c] = (float)b;
    }
  }
#undef GN_PTR
  free(sums);
  if (failed) {
    napi_throw_error(env, NULL, "mmlm_blas.groupNorm: out of memory for its scratch");
    return NULL;
  }
  return NULL;
}

typedef struct {
  const float *a, *b;
  float *out;
  int64_t i0, i1, blen; /* out[i] = a[i] + b[i mod blen] for i in [i0, i1), i0 a multiple of blen */
  int same;             /* blen is all of a: b has a's shape */
} add_job;

CPU_CLONES static void add_work(void *job) {
  const add_job *j = (const add_job *)job;
  const float *a = j->a, *b = j->b;
  float *out = j->out;
  if (j->same)
    for (int64_t i = j->i0; i < j->i1; i++) out[i] = a[i] + b[i];
  else
    for (int64_t r = j->i0; r < j->i1; r += j->blen)
      for (int64_t c = 0; c < j->blen; c++) out[r + c] = a[r + c] + b[c];
}

/* add(heap, n, blen, aOffset, bOffset, outOffset): out [n] = a [n] + b, b [blen] repeated (blen divides
   n; blen = n: the same shape). One IEEE addition per element, as any add kernel: the same bits. */
static napi_value Add(napi_env env, napi_callback_info info) {
  void *data = NULL;
  size_t len = 0;
  double v[5];
  if (!heap_args(env, info, "add", 5, &data, &len, v)) return NULL;
  const double n = v[0], blen = v[1];
  if (!(n >= 0 && n <= 4294967296.0) || n != (double)(int64_t)n || !(blen >= 1 && blen <= n) || blen != (double)(int64_t)blen ||
      (int64_t)n % (int64_t)blen != 0) {
    if (n == 0 && blen >= 0) return NULL;
    napi_throw_range_error(env, NULL, "mmlm_blas.add: n must be a non-negative integer and blen >= 1 a divisor of it");
    return NULL;
  }
  const double L = (double)len;
  if (!fits(v[2], 1, n, n, L) || !fits(v[3], 1, blen, blen, L) || !fits(v[4], 1, n, n, L) ||
      ((int64_t)v[2] | (int64_t)v[3] | (int64_t)v[4]) % 4 != 0) {
    napi_throw_range_error(env, NULL, "mmlm_blas.add: a tensor lies outside the heap or is misaligned");
    return NULL;
  }
  char *base = (char *)data;
  const int64_t N = (int64_t)n, B = (int64_t)blen;
  /* split by whole rows of b (or 16-float blocks when the shapes are equal) */
  const int64_t unit = B == N ? 16 : B, units = (N + unit - 1) / unit;
  int64_t T = N >= ELEM_THREAD_MIN ? addon_threads() : 1;
  if (T > units) T = units;
  add_job jobs[64];
  for (int64_t t = 0; t < T; t++) {
    const int64_t u0 = units * t / T, u1 = units * (t + 1) / T;
    jobs[t] = (add_job){(const float *)(base + (int64_t)v[2]), (const float *)(base + (int64_t)v[3]), (float *)(base + (int64_t)v[4]),
                        u0 * unit, u1 * unit < N ? u1 * unit : N, B, B == N};
  }
  run_shares(jobs, sizeof(add_job), T, add_work);
  return NULL;
}

/* setConvThreads(threads, minMultiplyAdds): the convolution's own threading (threads 0: OpenBLAS'
   count; tests lower the minimum to split small convolutions) */
static napi_value SetConvThreads(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t n = 0;
  double m = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2 || napi_get_value_int32(env, argv[0], &n) != napi_ok || napi_get_value_double(env, argv[1], &m) != napi_ok || n < 0 ||
      n > 64 || !(m >= 0)) {
    napi_throw_range_error(env, NULL, "mmlm_blas.setConvThreads: expected (threads 0..64, minMultiplyAdds >= 0)");
    return NULL;
  }
  conv_threads = n;
  conv_thread_min = m;
  return NULL;
}

/* setGemmThreadMin(minMultiplyAdds): GEMMs below it run on one OpenBLAS thread (0: OpenBLAS decides) */
static napi_value SetGemmThreadMin(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double m = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || napi_get_value_double(env, argv[0], &m) != napi_ok || !(m >= 0)) {
    napi_throw_range_error(env, NULL, "mmlm_blas.setGemmThreadMin: expected (minMultiplyAdds >= 0)");
    return NULL;
  }
  gemm_thread_min = m;
  return NULL;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &n));
  if (openblas_set_num_threads && n > 0) openblas_set_num_threads(n);
  return NULL;
}

static napi_value Threads(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(napi_create_int32(env, openblas_get_num_threads ? openblas_get_num_threads() : 1, &out));
  return out;
}

static napi_value Config(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  const char *c = openblas_get_config ? openblas_get_config() : "cblas";
  CHECK(napi_create_string_utf8(env, c, NAPI_AUTO_LENGTH, &out));
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"conv2d", NULL, Conv2d, NULL, NULL, NULL, napi_default, NULL},
      {"silu", NULL, Silu, NULL, NULL, NULL, napi_default, NULL},
      {"groupNorm", NULL, GroupNormNative, NULL, NULL, NULL, napi_default, NULL},
      {"add", NULL, Add, NULL, NULL, NULL, napi_default, NULL},
      {"setGemmThreadMin", NULL, SetGemmThreadMin, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"setConvThreads", NULL, SetConvThreads, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 10, props) != napi_ok) return NULL;
  return exports;
}
