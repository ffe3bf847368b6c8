/* avg_pool.h: int8 AVERAGE_POOL_2D (NHWC). A template: #define the parameters below, then #include it (one
   kernel, TVMC_NAME; the parameters are #undef'd at the end).

   Per output pixel the in-image window is resolved once, then 4 channels per word are summed in two pairs
   of 16-bit lanes with SXTAB16 (3 instructions per 4 taps, no widening pass; windows of at most 255 taps,
   so no lane overflows), and each sum is divided by the tap count rounding half away from zero, as TFLite
   does.

   Parameters (integer constants): TVMC_NAME, TVMC_PARAMS (data, out); TVMC_POOL_N batches, TVMC_IH,
   TVMC_IW, TVMC_CH, TVMC_OH, TVMC_OW, TVMC_POOL_FH, TVMC_POOL_FW, TVMC_SH, TVMC_SW, TVMC_PT, TVMC_PL;
   TVMC_ACT_MIN, TVMC_ACT_MAX; TVMC_POOL_FULL_WINDOWS 1 when no window leaves the image (constant trip
   counts and divisor), TVMC_POOL_UNROLL 1 to unroll such windows completely. */
#include "tvmc_dsp.h"

#undef TVMC_POOL_AVG
#define TVMC_POOL_AVG(total) tvmc_clamp8(tvmc_avg((total), cnt), TVMC_ACT_MIN, TVMC_ACT_MAX)

int32_t TVMC_NAME(TVMC_PARAMS) {
  int32_t b, oy, ox, y, x, c;
  (void)c;
  for (b = 0; b < TVMC_POOL_N; ++b)
  for (oy = 0; oy < TVMC_OH; ++oy)
  for (ox = 0; ox < TVMC_OW; ++ox) {
    int32_t y0 = oy * TVMC_SH - TVMC_PT, x0 = ox * TVMC_SW - TVMC_PL;
#if TVMC_POOL_FULL_WINDOWS
    int32_t ya = y0, yb = y0 + TVMC_POOL_FH, xa = x0, xb = x0 + TVMC_POOL_FW;
    const int32_t cnt = TVMC_POOL_FH * TVMC_POOL_FW;
#else
    int32_t ya = y0 < 0 ? 0 : y0, yb = y0 + TVMC_POOL_FH > TVMC_IH ? TVMC_IH : y0 + TVMC_POOL_FH;
    int32_t xa = x0 < 0 ? 0 : x0, xb = x0 + TVMC_POOL_FW > TVMC_IW ? TVMC_IW : x0 + TVMC_POOL_FW;
    int32_t cnt = (yb - ya) * (xb - xa);
#endif
    const int8_t* src = data + b * (TVMC_IH * TVMC_IW * TVMC_CH);
    int8_t* dst = out + ((b * TVMC_OH + oy) * TVMC_OW + ox) * TVMC_CH;
#if TVMC_CH >= 4
    for (c = 0; c < TVMC_CH - TVMC_CH % 4; c += 4) {
      int32_t ev = 0, od = 0;
#if TVMC_POOL_UNROLL
      TVMC_UNROLL(TVMC_POOL_FH)
#endif
      for (y = ya; y < yb; ++y)
#if TVMC_POOL_UNROLL
        TVMC_UNROLL(TVMC_POOL_FW)
#endif
        for (x = xa; x < xb; ++x) {
          uint32_t v = tvmc_ld32(src + (y * TVMC_IW + x) * TVMC_CH + c);
          ev = tvmc_sxtab16(ev, v);
          od = tvmc_sxtab16_ror8(od, v);
        }
      dst[c] = TVMC_POOL_AVG((int32_t)(int16_t)(uint16_t)((uint32_t)ev & 0xffffu));
      dst[c + 1] = TVMC_POOL_AVG((int32_t)(int16_t)(uint16_t)((uint32_t)od & 0xffffu));
      dst[c + 2] = TVMC_POOL_AVG((int32_t)(int16_t)(uint16_t)((uint32_t)ev >> 16));
      dst[c + 3] = TVMC_POOL_AVG((int32_t)(int16_t)(uint16_t)((uint32_t)od >> 16));
    }
#endif
#if TVMC_CH % 4
    for (c = TVMC_CH - TVMC_CH % 4; c < TVMC_CH; ++c) {
      int32_t s = 0;
      for (y = ya; y < yb; ++y)
        for (x = xa; x < xb; ++x) s += src[(y * TVMC_IW + x) * TVMC_CH + c];
      dst[c] = TVMC_POOL_AVG(s);
    }
#endif
  }
  return 0;
}

#undef TVMC_POOL_AVG
#include "tvmc_undef.inc"
