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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void openblas_set_num_threads(int num_threads) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

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
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                (const float *)(base + (int64_t)aOff), (int)lda, (const float *)(base + (int64_t)bOff), (int)ldb, beta,
                (float *)(base + (int64_t)cOff), (int)ldc);
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
static pthread_mutex_t dispatch_mu = PTHREAD_MUTEX_INITIALIZER; /* one threaded convolution at a time */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER, pool_done = PTHREAD_COND_INITIALIZER;
static conv_job *pool_jobs = NULL;
static int pool_next = 0, pool_total = 0, pool_left = 0, pool_workers = 0;

/* Take the next share under pool_mu; NULL when none is left. */
static conv_job *pool_take(void) { return pool_next < pool_total ? &pool_jobs[pool_next++] : NULL; }

static void *pool_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&pool_mu);
  for (;;) {
    conv_job *j;
    while (!(j = pool_take())) pthread_cond_wait(&pool_work, &pool_mu);
    pthread_mutex_unlock(&pool_mu);
    conv_work(j);
    pthread_mutex_lock(&pool_mu);
    if (--pool_left == 0) pthread_cond_signal(&pool_done);
  }
  return NULL;
}

/* Run the T shares on the calling thread and up to T - 1 pool workers (started on first need); the
   caller takes shares too, so the call completes even if no worker could be started. */
static void pool_run(conv_job *jobs, int T) {
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
  pool_jobs = jobs;
  pool_next = 0;
  pool_total = T;
  pool_left = T;
  pthread_cond_broadcast(&pool_work);
  for (;;) {
    conv_job *j = pool_take();
    if (!j) break;
    pthread_mutex_unlock(&pool_mu);
    conv_work(j);
    pthread_mutex_lock(&pool_mu);
    pool_left--;
  }
  while (pool_left > 0) pthread_cond_wait(&pool_done, &pool_mu);
  pool_total = 0;
  pool_jobs = NULL;
  pthread_mutex_unlock(&pool_mu);
}

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
  int64_t T = conv_threads > 0 ? conv_threads : (openblas_get_num_threads ? openblas_get_num_threads() : 1);
  if (T > 64) T = 64;
  if ((double)Pi * (double)Ki * (double)Cout < conv_thread_min) T = 1;
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
    pool_run(jobs, (int)T);
    if (prev > 1) openblas_set_num_threads(prev);
    pthread_mutex_unlock(&dispatch_mu);
  } else {
    /* one thread, or another thread of the process holds the pool: run the shares here, in order */
    for (int64_t t = 0; t < T; t++) conv_work(&jobs[t]);
  }
  for (int64_t t = 0; t < T; t++)
    if (jobs[t].failed) {
      napi_throw_error(env, NULL, "mmlm_blas.conv2d: out of memory for the column buffer");
      return NULL;
    }
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
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"setConvThreads", NULL, SetConvThreads, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 6, props) != napi_ok) return NULL;
  return exports;
}
