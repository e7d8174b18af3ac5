/*
 * Optional native GEMM for the wasm backend: cblas_sgemm (OpenBLAS or any CBLAS) run directly on
 * the tfjs-wasm heap (a WebAssembly.Memory's ArrayBuffer), through Node-API so one binary works on
 * every Node version with Node-API 8.
 *
 * sgemm(heap, transA, transB, M, N, K, aByteOffset, lda, bByteOffset, ldb, cByteOffset, ldc, beta)
 * computes C = op(A) op(B) + beta C in row-major order, after checking that every matrix lies
 * inside the heap.
 */
#include <cblas.h>
#include <node_api.h>
#include <stdint.h>

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

static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 13) {
    napi_throw_type_error(env, NULL, "mmlm_blas.sgemm: expected 13 arguments");
    return NULL;
  }
  void *data = NULL;
  size_t len = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "mmlm_blas.sgemm: heap must be an ArrayBuffer");
    return NULL;
  }
  double v[12];
  for (int i = 0; i < 12; i++) CHECK(napi_get_value_double(env, argv[i + 1], &v[i]));
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
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 4, props) != napi_ok) return NULL;
  return exports;
}
