/* avg_pool_test.c: avg_pool.h instances (windows cut by the padding with fewer taps, channels not a
   multiple of 4, unrolled full windows, batches) against a plain loop with TFLite's rounding. */
#include "kernel_test.h"
#include "tvmc_dsp.h"

static void ref_pool(const int8_t* x, int n, int ih, int iw, int ch, int oh, int ow, int fh, int fw, int sh,
                     int sw, int pt, int pl, int32_t lo, int32_t hi, int8_t* out) {
  int b, oy, ox, c, y, xx;
  for (b = 0; b < n; ++b)
    for (oy = 0; oy < oh; ++oy)
      for (ox = 0; ox < ow; ++ox)
        for (c = 0; c < ch; ++c) {
          int32_t sum = 0, cnt = 0, v;
          for (y = oy * sh - pt; y < oy * sh - pt + fh; ++y)
            for (xx = ox * sw - pl; xx < ox * sw - pl + fw; ++xx)
              if (y >= 0 && y < ih && xx >= 0 && xx < iw) sum += x[((b * ih + y) * iw + xx) * ch + c], ++cnt;
          v = sum > 0 ? (sum + cnt / 2) / cnt : (sum - cnt / 2) / cnt;
          out[((b * oh + oy) * ow + ox) * ch + c] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        }
}

/* A: 3x3 windows, stride 2, SAME padding over 5x6x6 (edge windows have fewer taps), clamp [-50, 60]. */
#define TVMC_NAME pool_a
#define TVMC_PARAMS int8_t* data, int8_t* out
#define TVMC_POOL_N 1
#define TVMC_IH 5
#define TVMC_IW 6
#define TVMC_CH 6
#define TVMC_OH 3
#define TVMC_OW 3
#define TVMC_POOL_FH 3
#define TVMC_POOL_FW 3
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_PT 1
#define TVMC_PL 0
#define TVMC_ACT_MIN (-50)
#define TVMC_ACT_MAX (60)
#define TVMC_POOL_FULL_WINDOWS 0
#define TVMC_POOL_UNROLL 0
#include "avg_pool.h"

/* B: 2x2 windows, stride 2, inside the image (constant divisor, unrolled), 2 batches of 4x4x8. */
#define TVMC_NAME pool_b
#define TVMC_PARAMS int8_t* data, int8_t* out
#define TVMC_POOL_N 2
#define TVMC_IH 4
#define TVMC_IW 4
#define TVMC_CH 8
#define TVMC_OH 2
#define TVMC_OW 2
#define TVMC_POOL_FH 2
#define TVMC_POOL_FW 2
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_PT 0
#define TVMC_PL 0
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#define TVMC_POOL_FULL_WINDOWS 1
#define TVMC_POOL_UNROLL 1
#include "avg_pool.h"

int main(void) {
  static int8_t x[1024], got[256], want[256];
  int rep;
  for (rep = 0; rep < 8; ++rep) {
    kt_fill8(x, 5 * 6 * 6, -128, 127);
    ref_pool(x, 1, 5, 6, 6, 3, 3, 3, 3, 2, 2, 1, 0, -50, 60, want);
    pool_a(x, got);
    kt_compare("pool_a 3x3 SAME, channel tail, clamp", got, want, 3 * 3 * 6);
    kt_fill8(x, 2 * 4 * 4 * 8, -128, 127);
    ref_pool(x, 2, 4, 4, 8, 2, 2, 2, 2, 2, 2, 0, 0, -128, 127, want);
    pool_b(x, got);
    kt_compare("pool_b 2x2 full windows, 2 batches", got, want, 2 * 2 * 2 * 8);
  }
  return kt_report();
}
