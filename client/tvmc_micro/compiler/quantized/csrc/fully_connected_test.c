/* fully_connected_test.c: fully_connected.h instances (16-element steps, 4-element groups and a scalar tail
   of K; a block of 4 units and a tail block; int8 weights and weights widened at compile time) against a
   plain loop, bit for bit. */
#include "kernel_test.h"
#include "tvmc_dsp.h"

static void ref_fc(const int8_t* x, const int8_t* w, const int32_t* b, int batches, int depth, int units,
                   const int32_t* m, const int32_t* s, int per_channel, int32_t zp, int32_t lo, int32_t hi,
                   int8_t* out) {
  int i, u, k;
  for (i = 0; i < batches; ++i)
    for (u = 0; u < units; ++u) {
      int32_t acc = b[u];
      for (k = 0; k < depth; ++k) acc += x[i * depth + k] * w[u * depth + k];
      out[i * units + u] = kt_out(acc, m[per_channel ? u : 0], s[per_channel ? u : 0], zp, lo, hi);
    }
}

/* A: K = 37 (two 16-element steps, one 4-element group, a scalar tail of 1), 6 units (a tail block of 2),
   2 batches, per-channel with unit 4 outside tvmc_rqz's domain. */
#define TVMC_NAME fc_a
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_FC_BATCHES 2
#define TVMC_FC_DEPTH 37
#define TVMC_FC_UNITS 6
#define TVMC_FC_BLOCK 4
#define TVMC_FC_WIDE 0
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-9)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "fully_connected.h"

/* B: K = 2 (no SMLAD at all), 3 units (only the tail block), per-tensor in tvmc_rqz's domain, ReLU. */
#define TVMC_NAME fc_b
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int8_t* out
#define TVMC_FC_BATCHES 3
#define TVMC_FC_DEPTH 2
#define TVMC_FC_UNITS 3
#define TVMC_FC_BLOCK 4
#define TVMC_FC_WIDE 0
#define TVMC_RQ_MODE TVMC_RQ_FIXED
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1188214285
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 4
#define TVMC_OUT_ZP (-128)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "fully_connected.h"

/* C: widened input, K = 20 (one 16-element step and one 4-element group), 13 units (two blocks of 6 and a
   tail block of 1), 2 batches, per-channel in tvmc_rqz's domain (no fallback branch), ReLU6-like clamp. */
#define TVMC_NAME fc_c
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_FC_BATCHES 2
#define TVMC_FC_DEPTH 20
#define TVMC_FC_UNITS 13
#define TVMC_FC_BLOCK 6
#define TVMC_FC_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (3)
#define TVMC_ACT_MIN (-20)
#define TVMC_ACT_MAX (90)
#include "fully_connected.h"

/* D: widened input, K = 4 (a single group, no 16-element step), 5 units (only the tail block), per-tensor
   exact requantisation (a left shift). */
#define TVMC_NAME fc_d
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int8_t* out
#define TVMC_FC_BATCHES 1
#define TVMC_FC_DEPTH 4
#define TVMC_FC_UNITS 5
#define TVMC_FC_BLOCK 6
#define TVMC_FC_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_EXACT
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1518500250
#define TVMC_RQ_LEFT 2
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-1)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "fully_connected.h"

/* E: widened input, K = 128, 18 units (three full blocks, no tail), per-channel with unit 7 outside
   tvmc_rqz's domain: the shape of the 128-wide layers of the MLPerf Tiny anomaly-detection model. */
#define TVMC_NAME fc_e
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_FC_BATCHES 1
#define TVMC_FC_DEPTH 128
#define TVMC_FC_UNITS 18
#define TVMC_FC_BLOCK 6
#define TVMC_FC_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-128)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "fully_connected.h"

/* The compile-time layout of --kernel-weights int16 (ckernels.widened_blocks), from its description: per
   block of `block` units (the last one shorter) and 4-element group, each unit's elements 0, 2 then 1, 3. */
static int16_t wide_w[4096] __attribute__((aligned(4)));
static void widen_blocks(const int8_t* w, int units, int depth, int block) {
  static const int order[4] = {0, 2, 1, 3};
  int u0, g, a, q, n;
  int16_t* d = wide_w;
  for (u0 = 0; u0 < units; u0 += block) {
    n = units - u0 < block ? units - u0 : block;
    for (g = 0; g < depth; g += 4)
      for (a = 0; a < n; ++a)
        for (q = 0; q < 4; ++q) *d++ = w[(u0 + a) * depth + g + order[q]];
  }
}

/* F: fc_c (K = 20, 13 units in blocks of 6 and a tail of 1) with weights widened at compile time. */
#define TVMC_NAME fc_f
#define TVMC_PARAMS int8_t* data, int16_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_FC_BATCHES 2
#define TVMC_FC_DEPTH 20
#define TVMC_FC_UNITS 13
#define TVMC_FC_BLOCK 6
#define TVMC_FC_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (3)
#define TVMC_ACT_MIN (-20)
#define TVMC_ACT_MAX (90)
#define TVMC_FC_WIDE_W 1
#include "fully_connected.h"

/* G: fc_e (K = 128, 18 units, three blocks of 6) with weights widened at compile time. */
#define TVMC_NAME fc_g
#define TVMC_PARAMS int8_t* data, int16_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_FC_BATCHES 1
#define TVMC_FC_DEPTH 128
#define TVMC_FC_UNITS 18
#define TVMC_FC_BLOCK 6
#define TVMC_FC_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-128)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#define TVMC_FC_WIDE_W 1
#include "fully_connected.h"

/* H: fc_d (K = 4, 5 units: only the tail block) with weights widened at compile time. */
#define TVMC_NAME fc_h
#define TVMC_PARAMS int8_t* data, int16_t* weight, int32_t* bias, int8_t* out
#define TVMC_FC_BATCHES 1
#define TVMC_FC_DEPTH 4
#define TVMC_FC_UNITS 5
#define TVMC_FC_BLOCK 6
#define TVMC_FC_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_EXACT
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1518500250
#define TVMC_RQ_LEFT 2
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-1)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#define TVMC_FC_WIDE_W 1
#include "fully_connected.h"

/* P: C's shape with the per-channel tables read precomputed (TVMC_RQ_PACKED), every unit in tvmc_rqz's
   domain up to its edges, output zero point -60, a clamp. */
#define TVMC_NAME fc_p
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int32_t* rq_right, int8_t* out
#define TVMC_FC_BATCHES 2
#define TVMC_FC_DEPTH 20
#define TVMC_FC_UNITS 13
#define TVMC_FC_BLOCK 6
#define TVMC_FC_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PACKED 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-60)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (90)
#include "fully_connected.h"

int main(void) {
  static int8_t x[256], w[4096], got[64], want[64], r[32];
  static int32_t b[32], m[32], s[32], packed[64];
  int rep, u;
  for (rep = 0; rep < 8; ++rep) {
    kt_fill8(x, 2 * 37, -128, 127);
    kt_fill8(w, 6 * 37, -127, 127);
    for (u = 0; u < 6; ++u) b[u] = kt_range(-3000, 3000);
    kt_requant(m, r, s, 6, 4);
    ref_fc(x, w, b, 2, 37, 6, m, s, 1, -9, -128, 127, want);
    fc_a(x, w, b, m, r, got);
    kt_compare("fc_a K=37, 6 units, table + fallback", got, want, 12);

    kt_fill8(x, 3 * 2, -128, 127);
    kt_fill8(w, 3 * 2, -127, 127);
    m[0] = 1188214285, s[0] = -4;
    ref_fc(x, w, b, 3, 2, 3, m, s, 0, -128, -128, 127, want);
    fc_b(x, w, b, got);
    kt_compare("fc_b K=2, 3 units, fixed", got, want, 9);

    kt_fill8(x, 2 * 20, -128, 127);
    kt_fill8(w, 13 * 20, -127, 127);
    for (u = 0; u < 13; ++u) b[u] = kt_range(-3000, 3000);
    kt_requant(m, r, s, 13, -1);
    ref_fc(x, w, b, 2, 20, 13, m, s, 1, 3, -20, 90, want);
    fc_c(x, w, b, m, r, got);
    kt_compare("fc_c wide K=20, 13 units, table in domain", got, want, 26);

    kt_fill8(x, 4, -128, 127);
    kt_fill8(w, 5 * 4, -127, 127);
    m[0] = 1518500250, s[0] = 2;
    ref_fc(x, w, b, 1, 4, 5, m, s, 0, -1, -128, 127, want);
    fc_d(x, w, b, got);
    kt_compare("fc_d wide K=4, 5 units, exact with a left shift", got, want, 5);

    /* an input row at an odd address: the kernel reads it bytewise-safe (only its stack copy is aligned) */
    kt_fill8(x + 1, 128, -128, 127);
    kt_fill8(w, 18 * 128, -127, 127);
    for (u = 0; u < 18; ++u) b[u] = kt_range(-30000, 30000);
    kt_requant(m, r, s, 18, 7);
    ref_fc(x + 1, w, b, 1, 128, 18, m, s, 1, -128, -128, 127, want);
    fc_e(x + 1, w, b, m, r, got);
    kt_compare("fc_e wide K=128, 18 units, table + fallback", got, want, 18);

    kt_fill8(x, 2 * 20, -128, 127);
    kt_fill8(w, 13 * 20, -127, 127);
    for (u = 0; u < 13; ++u) b[u] = kt_range(-3000, 3000);
    kt_requant(m, r, s, 13, -1);
    ref_fc(x, w, b, 2, 20, 13, m, s, 1, 3, -20, 90, want);
    widen_blocks(w, 13, 20, 6);
    fc_f(x, wide_w, b, m, r, got);
    kt_compare("fc_f widened weights K=20, 13 units", got, want, 26);

    kt_fill8(x + 1, 128, -128, 127);
    kt_fill8(w, 18 * 128, -127, 127);
    for (u = 0; u < 18; ++u) b[u] = kt_range(-30000, 30000);
    kt_requant(m, r, s, 18, 7);
    ref_fc(x + 1, w, b, 1, 128, 18, m, s, 1, -128, -128, 127, want);
    widen_blocks(w, 18, 128, 6);
    fc_g(x + 1, wide_w, b, m, r, got);
    kt_compare("fc_g widened weights K=128, 18 units", got, want, 18);

    kt_fill8(x, 4, -128, 127);
    kt_fill8(w, 5 * 4, -127, 127);
    m[0] = 1518500250, s[0] = 2;
    ref_fc(x, w, b, 1, 4, 5, m, s, 0, -1, -128, 127, want);
    widen_blocks(w, 5, 4, 6);
    fc_h(x, wide_w, b, got);
    kt_compare("fc_h widened weights K=4, 5 units", got, want, 5);

    kt_fill8(x, 2 * 20, -128, 127);
    kt_fill8(w, 13 * 20, -127, 127);
    for (u = 0; u < 13; ++u) b[u] = kt_range(-3000, 3000);
    kt_requant(m, r, s, 13, -2);
    ref_fc(x, w, b, 2, 20, 13, m, s, 1, -60, -128, 90, want);
    kt_pack_rq(r, 13, -60, packed);
    fc_p(x, w, b, m, packed, got);
    kt_compare("fc_p wide K=20, 13 units, packed tables over the domain", got, want, 26);
  }
  return kt_report();
}
