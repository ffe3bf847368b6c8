/* kernel_test.h: support for the host unit tests of the kernel templates (*_test.c beside them): a
   deterministic generator, TFLite's requantisation written the plain way (SaturatingRoundingDoublingHighMul
   then RoundingDivideByPOT, as gemmlowp/TFLite Micro have it), plain reference loops, and a counter of
   mismatches. Built by tests/quantized/test_q_csrc.py with -fsanitize=address,undefined. */
#ifndef TVMC_KERNEL_TEST_H
#define TVMC_KERNEL_TEST_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int kt_failures = 0, kt_checked = 0;
static uint32_t kt_state = 12345u;

static uint32_t kt_next(void) {
  kt_state = kt_state * 1664525u + 1013904223u;
  return kt_state >> 8;
}
/* uniform in [lo, hi] */
static int32_t kt_range(int32_t lo, int32_t hi) { return lo + (int32_t)(kt_next() % (uint32_t)(hi - lo + 1)); }
static void kt_fill8(int8_t* p, int n, int lo, int hi) {
  int i;
  for (i = 0; i < n; ++i) p[i] = (int8_t)kt_range(lo, hi);
}

static int32_t kt_srdhm(int32_t a, int32_t b) {
  int64_t ab;
  int32_t nudge;
  if (a == b && a == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}
static int32_t kt_rdbp(int32_t x, int e) {
  int64_t mask = ((int64_t)1 << e) - 1, remainder = (int64_t)x & mask;
  int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (int32_t)(((int64_t)x >> e) + (remainder > threshold ? 1 : 0));
}
/* TFLite's MultiplyByQuantizedMultiplier(x, m, shift): shift > 0 is a left shift. */
static int32_t kt_mbqm(int32_t x, int32_t m, int shift) {
  int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return kt_rdbp(kt_srdhm((int32_t)((uint32_t)x << left), m), right);
}
static int8_t kt_out(int32_t acc, int32_t m, int shift, int32_t zp, int32_t lo, int32_t hi) {
  int32_t v = kt_mbqm(acc, m, shift) + zp;
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Per-channel requantisation of a test case: multipliers in [2^30, 2^31), right shifts 3..9 (so outputs
   spread over int8), then the given channel forced out of tvmc_rqz's domain (shift 0) when bad >= 0. */
__attribute__((unused)) static void kt_requant(int32_t* mult, int8_t* right, int32_t* shift, int n, int bad) {
  int i;
  for (i = 0; i < n; ++i) {
    mult[i] = (int32_t)(0x40000000u + (kt_next() & 0x3fffffffu));
    shift[i] = -kt_range(3, 9);
    right[i] = (int8_t)-shift[i];
  }
  if (bad >= 0) shift[bad] = 0, right[bad] = 0;
  if (bad == -2) /* every channel in tvmc_rqz's domain, its edges included: m 0, 2^30, 2^31 - 1; e 2 .. 22 */
    for (i = 0; i < n; ++i) {
      static const int32_t edge[3] = {0, 0x40000000, 0x7fffffff};
      if (i % 4 < 3) mult[i] = edge[i % 4];
      right[i] = (int8_t)(i % 3 == 0 ? 2 + (i / 3) % 21 : (i % 3 == 1 ? 22 - (i / 3) % 21 : kt_range(2, 22)));
      shift[i] = -right[i];
    }
}

/* tvmc_epilogue.inc's TVMC_RQ_PACKED table from the shifts (as ckernels._rq_right_layout writes it):
   (2 zp + 1) * 2^(e - 2) and e - 1 per channel. */
__attribute__((unused)) static void kt_pack_rq(const int8_t* right, int n, int32_t zp, int32_t* packed) {
  int i;
  for (i = 0; i < n; ++i) {
    packed[2 * i] = (int32_t)((int64_t)(2 * zp + 1) * ((int64_t)1 << (right[i] - 2)));
    packed[2 * i + 1] = right[i] - 1;
  }
}

/* Plain convolution (depthwise: channel c reads only input channel c, weights [KH, KW, C]; else OHWI):
   out-of-image taps read the input zero point, the bias carries the rest of the zero-point terms. */
__attribute__((unused)) static void kt_conv(const int8_t* x, const int8_t* w, const int32_t* bias, int depthwise, int ih, int iw,
                    int ic, int oh, int ow, int oc, int kh, int kw, int sh, int sw, int dh, int dw, int pt,
                    int pl, int32_t in_zp, const int32_t* mult, const int32_t* shift, int per_channel,
                    int32_t out_zp, int32_t lo, int32_t hi, int8_t* out) {
  int oy, ox, c, ky, kx, i;
  for (oy = 0; oy < oh; ++oy)
    for (ox = 0; ox < ow; ++ox)
      for (c = 0; c < oc; ++c) {
        int32_t acc = bias[c];
        for (ky = 0; ky < kh; ++ky)
          for (kx = 0; kx < kw; ++kx) {
            int y = oy * sh - pt + ky * dh, xx = ox * sw - pl + kx * dw;
            int inside = y >= 0 && y < ih && xx >= 0 && xx < iw;
            if (depthwise) {
              int32_t v = inside ? x[(y * iw + xx) * ic + c] : in_zp;
              acc += v * w[(ky * kw + kx) * oc + c];
            } else {
              for (i = 0; i < ic; ++i) {
                int32_t v = inside ? x[(y * iw + xx) * ic + i] : in_zp;
                acc += v * w[((c * kh + ky) * kw + kx) * ic + i];
              }
            }
          }
        out[(oy * ow + ox) * oc + c] =
            kt_out(acc, mult[per_channel ? c : 0], shift[per_channel ? c : 0], out_zp, lo, hi);
      }
}

static void kt_compare(const char* what, const int8_t* got, const int8_t* want, int n) {
  int i, bad = 0;
  for (i = 0; i < n; ++i)
    if (got[i] != want[i]) {
      if (bad < 3) printf("%s: element %d: got %d, want %d\n", what, i, got[i], want[i]);
      ++bad;
    }
  kt_checked += 1;
  kt_failures += bad != 0;
}

static int kt_report(void) {
  printf("%d cases, %d failures\n", kt_checked, kt_failures);
  return kt_failures != 0;
}
#endif /* TVMC_KERNEL_TEST_H */
