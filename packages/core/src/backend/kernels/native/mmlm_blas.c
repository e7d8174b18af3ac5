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

/* Fill rows [p0, p0 + n) of the im2col matrix col [n, K] (K = kh kw Cin) from x. */
static void im2col_rows(const float *x, float *col, int64_t p0, int n, int H, int W, int Cin, int OH, int OW, int kh, int kw, int sh,
                        int sw, int dh, int dw, int top, int left) {
  const int64_t K = (int64_t)kh * kw * Cin;
  for (int i = 0; i < n; i++) {
    const int64_t p = p0 + i;
    const int64_t b = p / ((int64_t)OH * OW);
    const int oh = (int)((p / OW) % OH), ow = (int)(p % OW);
    float *dst = col + (int64_t)i * K;
    for (int r = 0; r < kh; r++) {
      const int64_t ih = (int64_t)oh * sh + (int64_t)r * dh - top; /* 64-bit: no overflow on any sizes */
      float *d = dst + (int64_t)r * kw * Cin;
      if (ih < 0 || ih >= H) {
        memset(d, 0, sizeof(float) * (size_t)kw * Cin);
        continue;
      }
      const float *row = x + ((b * H + ih) * W) * (int64_t)Cin;
      const int64_t iw0 = (int64_t)ow * sw - left;
      if (dw == 1 && iw0 >= 0 && iw0 + kw <= W) {
        memcpy(d, row + (int64_t)iw0 * Cin, sizeof(float) * (size_t)kw * Cin);
        continue;
      }
      for (int c = 0; c < kw; c++) {
        const int64_t iw = iw0 + (int64_t)c * dw;
        if (iw < 0 || iw >= W)
          memset(d + (int64_t)c * Cin, 0, sizeof(float) * (size_t)Cin);
        else
          memcpy(d + (int64_t)c * Cin, row + (int64_t)iw * Cin, sizeof(float) * (size_t)Cin);
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
        float *d = row + (int64_t)iw * Cin;
        const float *s = src + ((int64_t)r * kw + c) * Cin;
        for (int k = 0; k < Cin; k++) d[k] += s[k];
      }
    }
  }
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
  if (mode == 1 && Pi == 0) memset(w, 0, sizeof(float) * (size_t)(Ki * Cout));
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
  float *col = (float *)malloc(sizeof(float) * (size_t)(rows * Ki));
  if (!col) {
    napi_throw_error(env, NULL, "mmlm_blas.conv2d: out of memory for the column buffer");
    return NULL;
  }
  for (int64_t p0 = 0; p0 < Pi; p0 += rows) {
    const int n = (int)(Pi - p0 < rows ? Pi - p0 : rows);
    if (mode == 2) {
      /* dcol [n, K] = dy [n, Cout] w^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)Ki, Cout, 1.0f, y + p0 * Cout, Cout, w, Cout, 0.0f, col, (int)Ki);
      col2im_rows(col, x, p0, n, H, W, Cin, OH, OW, kh, kw, sh, sw, dh, dw, top, left);
      continue;
    }
    im2col_rows(x, col, p0, n, H, W, Cin, OH, OW, kh, kw, sh, sw, dh, dw, top, left);
    if (mode == 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, Cout, (int)Ki, 1.0f, col, (int)Ki, w, Cout, 0.0f, y + p0 * Cout, Cout);
    else
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Ki, Cout, n, 1.0f, col, (int)Ki, y + p0 * Cout, Cout, p0 > 0 ? 1.0f : 0.0f,
                  w, Cout);
  }
  free(col);
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
      {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 5, props) != napi_ok) return NULL;
  return exports;
}
