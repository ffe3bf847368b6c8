/* conv_test.c: conv.h instances of every patch path and requantisation mode, K walked whole or in chunks,
   int8 weights and weights widened at compile time (TVMC_CONV_WIDE_W), against kt_conv, bit for bit (built for the host: the portable twins of the DSP intrinsics). */
#include "kernel_test.h"
#include "tvmc_dsp.h"

typedef void (*conv_call)(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws);
struct conv_case {
  const char* name;
  int ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl;
  int32_t in_zp, out_zp, lo, hi;
  int per_channel, bad;        /* per-channel tables (bad: a channel outside tvmc_rqz's domain, or -1) */
  int32_t mult, shift;         /* per-tensor */
  conv_call call;
};

static void run(const struct conv_case* t) {
  static int8_t x[4096], w[4096], got[4096], want[4096], r[64];
  static int32_t b[64], m[64], s[64];
  static int16_t ws[4096] __attribute__((aligned(16))); /* an arena tensor is 16-byte aligned */
  int n = t->oh * t->ow * t->oc, rep;
  for (rep = 0; rep < 4; ++rep) {
    kt_fill8(x, t->ih * t->iw * t->ic, -128, 127);
    kt_fill8(w, t->oc * t->kh * t->kw * t->ic, -127, 127);
    for (int c = 0; c < t->oc; ++c) b[c] = kt_range(-3000, 3000);
    if (t->per_channel) {
      kt_requant(m, r, s, t->oc, t->bad);
    } else {
      m[0] = t->mult, s[0] = t->shift;
    }
    kt_conv(x, w, b, 0, t->ih, t->iw, t->ic, t->oh, t->ow, t->oc, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw,
            t->pt, t->pl, t->in_zp, m, s, t->per_channel, t->out_zp, t->lo, t->hi, want);
    memset(got, 0x55, sizeof(got));
    t->call(x, w, b, m, r, got, ws);
    kt_compare(t->name, got, want, n);
  }
}

/* A: 1x1 unpadded (widened straight from the input), per-tensor in tvmc_rqz's domain, 10 pixels (three
   3-pixel blocks and a tail of 1), 5 output channels (a single-channel step), K = 12. */
#define TVMC_NAME conv_a
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int8_t* out, int16_t* ws
#define TVMC_IH 2
#define TVMC_IW 5
#define TVMC_IC 12
#define TVMC_OH 2
#define TVMC_OW 5
#define TVMC_OC 5
#define TVMC_KH 1
#define TVMC_KW 1
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 0
#define TVMC_PL 0
#define TVMC_IN_ZP (-7)
#define TVMC_CONV_K 12
#define TVMC_CONV_KB 12
#define TVMC_CONV_ROW 12
#define TVMC_CONV_PATCH TVMC_CONV_DIRECT
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 72
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 9
#define TVMC_CONV_REST 1
#define TVMC_CONV_UNROLL_FULL 3
#define TVMC_CONV_UNROLL_TAIL 1
#define TVMC_RQ_MODE TVMC_RQ_FIXED
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1518500250
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 7
#define TVMC_OUT_ZP (5)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "conv.h"
static void call_a(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  (void)m, (void)r;
  conv_a(x, w, b, o, ws);
}

/* B: 3x3 padded, whole 4-tap rows widened from the input (rows cut by the edges assembled first),
   per-channel with channel 2 outside tvmc_rqz's domain, a fused clamp, 20 pixels (tail of 2). */
#define TVMC_NAME conv_b
#define TVMC_PARAMS \
  int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out, int16_t* ws
#define TVMC_IH 4
#define TVMC_IW 5
#define TVMC_IC 4
#define TVMC_OH 4
#define TVMC_OW 5
#define TVMC_OC 6
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (-128)
#define TVMC_CONV_K 36
#define TVMC_CONV_KB 36
#define TVMC_CONV_ROW 36
#define TVMC_CONV_PATCH TVMC_CONV_ROWS
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 252
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 18
#define TVMC_CONV_REST 2
#define TVMC_CONV_UNROLL_FULL 9
#define TVMC_CONV_UNROLL_TAIL 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-3)
#define TVMC_ACT_MIN (-100)
#define TVMC_ACT_MAX (90)
#include "conv.h"
static void call_b(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  conv_b(x, w, b, m, r, o, ws);
}

/* C: 3x3x3 strided (K = 27 padded to 28 with zero taps against a zero-padded weight copy), patches
   assembled byte-wise, per-tensor outside tvmc_rqz's domain (right shift 1: the exact tvmc_rq). */
#define TVMC_NAME conv_c
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int8_t* out, int16_t* ws
#define TVMC_IH 7
#define TVMC_IW 6
#define TVMC_IC 3
#define TVMC_OH 4
#define TVMC_OW 3
#define TVMC_OC 4
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (9)
#define TVMC_CONV_K 27
#define TVMC_CONV_KB 28
#define TVMC_CONV_ROW 28
#define TVMC_CONV_PATCH TVMC_CONV_BYTES
#define TVMC_CONV_PAD_K 1
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 196
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 12
#define TVMC_CONV_REST 0
#define TVMC_CONV_UNROLL_FULL 7
#define TVMC_CONV_UNROLL_TAIL 1
#define TVMC_RQ_MODE TVMC_RQ_EXACT
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1317624576
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 1
#define TVMC_OUT_ZP (0)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "conv.h"
static void call_c(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  (void)m, (void)r;
  conv_c(x, w, b, o, ws);
}

/* D: one input channel, 3x3 dilated by 2 with padding 2 (K = 9: a scalar tail after two 4-tap groups),
   3 output channels, per-channel all inside tvmc_rqz's domain (no branch), 49 pixels (tail of 1). */
#define TVMC_NAME conv_d
#define TVMC_PARAMS \
  int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out, int16_t* ws
#define TVMC_IH 7
#define TVMC_IW 7
#define TVMC_IC 1
#define TVMC_OH 7
#define TVMC_OW 7
#define TVMC_OC 3
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 2
#define TVMC_DW 2
#define TVMC_PT 2
#define TVMC_PL 2
#define TVMC_IN_ZP (-1)
#define TVMC_CONV_K 9
#define TVMC_CONV_KB 9
#define TVMC_CONV_ROW 10
#define TVMC_CONV_PATCH TVMC_CONV_BYTES
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 72
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 48
#define TVMC_CONV_REST 1
#define TVMC_CONV_UNROLL_FULL 2
#define TVMC_CONV_UNROLL_TAIL 2
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (127)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "conv.h"
static void call_d(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  conv_d(x, w, b, m, r, o, ws);
}


/* E: 1x1, K = 72 walked in 9 chunks of 2 4-tap groups (each pixel's patch words at
   offsets from the middle pixel's row), 11 pixels (three blocks and a tail of 2), 7 output channels. */
#define TVMC_NAME conv_e
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out, \
    int16_t* ws
#define TVMC_IH 1
#define TVMC_IW 11
#define TVMC_IC 72
#define TVMC_OH 1
#define TVMC_OW 11
#define TVMC_OC 7
#define TVMC_KH 1
#define TVMC_KW 1
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 0
#define TVMC_PL 0
#define TVMC_IN_ZP (3)
#define TVMC_CONV_K 72
#define TVMC_CONV_KB 72
#define TVMC_CONV_ROW 72
#define TVMC_CONV_PATCH TVMC_CONV_DIRECT
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 432
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 9
#define TVMC_CONV_REST 2
#define TVMC_CONV_UNROLL_FULL 2
#define TVMC_CONV_UNROLL_TAIL 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-4)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "conv.h"
static void call_e(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  conv_e(x, w, b, m, r, o, ws);
}

/* F: 1x1, K = 600: rows 1,200 bytes apart, beyond LDRD's reach from the middle row
   (the outer pixels take two LDRs on the DSP cores), 4 pixels (one block and a tail of 1), 3 channels. */
#define TVMC_NAME conv_f
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out, \
    int16_t* ws
#define TVMC_IH 1
#define TVMC_IW 4
#define TVMC_IC 600
#define TVMC_OH 1
#define TVMC_OW 4
#define TVMC_OC 3
#define TVMC_KH 1
#define TVMC_KW 1
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 0
#define TVMC_PL 0
#define TVMC_IN_ZP (-128)
#define TVMC_CONV_K 600
#define TVMC_CONV_KB 600
#define TVMC_CONV_ROW 600
#define TVMC_CONV_PATCH TVMC_CONV_DIRECT
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 3600
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 3
#define TVMC_CONV_REST 1
#define TVMC_CONV_UNROLL_FULL 2
#define TVMC_CONV_UNROLL_TAIL 2
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (0)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "conv.h"
static void call_f(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  conv_f(x, w, b, m, r, o, ws);
}

/* The compile-time layout of --kernel-weights int16 (ckernels.widened_blocks), written here from its
   description: OHWI rows zero-padded to kb taps, in channel pairs (a lone last channel), per 4-tap group
   each channel's taps 0, 2 then 1, 3. */
static int16_t wide_w[8192] __attribute__((aligned(4)));
static void widen_pairs(const int8_t* w, int oc, int k, int kb) {
  int c0, g, a, n;
  int16_t* d = wide_w;
  for (c0 = 0; c0 < oc; c0 += 2) {
    n = oc - c0 < 2 ? oc - c0 : 2;
    for (g = 0; g < kb; g += 4)
      for (a = 0; a < n; ++a) {
        static const int order[4] = {0, 2, 1, 3};
        int q;
        for (q = 0; q < 4; ++q) {
          int t = g + order[q];
          *d++ = t < k ? w[(c0 + a) * k + t] : 0;
        }
      }
  }
}

/* G: conv_b's 3x3 rows with weights widened at compile time, 5 channels (a lone last channel). */
#define TVMC_NAME conv_g
#define TVMC_PARAMS \
  int8_t* data, int16_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out, int16_t* ws
#define TVMC_IH 4
#define TVMC_IW 5
#define TVMC_IC 4
#define TVMC_OH 4
#define TVMC_OW 5
#define TVMC_OC 5
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (-128)
#define TVMC_CONV_K 36
#define TVMC_CONV_KB 36
#define TVMC_CONV_ROW 36
#define TVMC_CONV_PATCH TVMC_CONV_ROWS
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 252
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 18
#define TVMC_CONV_REST 2
#define TVMC_CONV_UNROLL_FULL 9
#define TVMC_CONV_UNROLL_TAIL 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-3)
#define TVMC_ACT_MIN (-100)
#define TVMC_ACT_MAX (90)
#define TVMC_CONV_WIDE_W 1
#include "conv.h"
static void call_g(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  widen_pairs(w, 5, 36, 36);
  conv_g(x, wide_w, b, m, r, o, ws);
}

/* H: conv_c's K = 27 with the weights zero-padded to 28 and widened at compile time (no per-call copy). */
#define TVMC_NAME conv_h
#define TVMC_PARAMS int8_t* data, int16_t* weight, int32_t* bias, int8_t* out, int16_t* ws
#define TVMC_IH 7
#define TVMC_IW 6
#define TVMC_IC 3
#define TVMC_OH 4
#define TVMC_OW 3
#define TVMC_OC 4
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (9)
#define TVMC_CONV_K 27
#define TVMC_CONV_KB 28
#define TVMC_CONV_ROW 28
#define TVMC_CONV_PATCH TVMC_CONV_BYTES
#define TVMC_CONV_PAD_K 1
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 196
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 12
#define TVMC_CONV_REST 0
#define TVMC_CONV_UNROLL_FULL 7
#define TVMC_CONV_UNROLL_TAIL 1
#define TVMC_RQ_MODE TVMC_RQ_EXACT
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1317624576
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 1
#define TVMC_OUT_ZP (0)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#define TVMC_CONV_WIDE_W 1
#include "conv.h"
static void call_h(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  (void)m, (void)r;
  widen_pairs(w, 4, 27, 28);
  conv_h(x, wide_w, b, o, ws);
}

/* I: conv_f's K = 600 walked in chunks of 2 groups with widened weights. */
#define TVMC_NAME conv_i
#define TVMC_PARAMS int8_t* data, int16_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out, \
    int16_t* ws
#define TVMC_IH 1
#define TVMC_IW 4
#define TVMC_IC 600
#define TVMC_OH 1
#define TVMC_OW 4
#define TVMC_OC 3
#define TVMC_KH 1
#define TVMC_KW 1
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 0
#define TVMC_PL 0
#define TVMC_IN_ZP (-128)
#define TVMC_CONV_K 600
#define TVMC_CONV_KB 600
#define TVMC_CONV_ROW 600
#define TVMC_CONV_PATCH TVMC_CONV_DIRECT
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 3600
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 3
#define TVMC_CONV_REST 1
#define TVMC_CONV_UNROLL_FULL 2
#define TVMC_CONV_UNROLL_TAIL 2
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (0)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#define TVMC_CONV_WIDE_W 1
#include "conv.h"
static void call_i(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  widen_pairs(w, 3, 600, 600);
  conv_i(x, wide_w, b, m, r, o, ws);
}

/* J: B's geometry with the per-channel tables read precomputed (TVMC_RQ_PACKED): every channel in
   tvmc_rqz's domain up to its edges, output zero point 127 (the largest high word), a clamp. */
#define TVMC_NAME conv_j
#define TVMC_PARAMS \
  int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int32_t* rq_right, int8_t* out, int16_t* ws
#define TVMC_IH 4
#define TVMC_IW 5
#define TVMC_IC 4
#define TVMC_OH 4
#define TVMC_OW 5
#define TVMC_OC 6
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (-128)
#define TVMC_CONV_K 36
#define TVMC_CONV_KB 36
#define TVMC_CONV_ROW 36
#define TVMC_CONV_PATCH TVMC_CONV_ROWS
#define TVMC_CONV_PAD_K 0
#define TVMC_CONV_WEIGHT_HWO 0
#define TVMC_CONV_WK_OFFSET 252
#define TVMC_CONV_PIX 3
#define TVMC_CONV_FULL 18
#define TVMC_CONV_REST 2
#define TVMC_CONV_UNROLL_FULL 9
#define TVMC_CONV_UNROLL_TAIL 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PACKED 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (127)
#define TVMC_ACT_MIN (-100)
#define TVMC_ACT_MAX (90)
#include "conv.h"
static void call_j(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* r, int8_t* o, int16_t* ws) {
  int32_t packed[2 * 6];
  kt_pack_rq(r, 6, 127, packed);
  conv_j(x, w, b, m, packed, o, ws);
}

int main(void) {
  static const struct conv_case cases[] = {
      {"conv_a 1x1 direct, fixed", 2, 5, 12, 2, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0, -7, 5, -128, 127, 0, -1,
       1518500250, -7, call_a},
      {"conv_b 3x3 rows, table + fallback, clamp", 4, 5, 4, 4, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, -128, -3, -100,
       90, 1, 2, 0, 0, call_b},
      {"conv_c 3x3x3 padded K, bytes, exact", 7, 6, 3, 4, 3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 9, 0, -128, 127, 0,
       -1, 1317624576, -1, call_c},
      {"conv_d dilated, K tail, table in domain", 7, 7, 1, 7, 7, 3, 3, 3, 1, 1, 2, 2, 2, 2, -1, 127, -128,
       127, 1, -1, 0, 0, call_d},
      {"conv_e K=72 in chunks, table + fallback", 1, 11, 72, 1, 11, 7, 1, 1, 1, 1, 1, 1, 0, 0, 3, -4, -128,
       127, 1, 6, 0, 0, call_e},
      {"conv_f K=600, rows beyond LDRD's reach", 1, 4, 600, 1, 4, 3, 1, 1, 1, 1, 1, 1, 0, 0, -128, 0, -128,
       127, 1, -1, 0, 0, call_f},
      {"conv_g widened weights, 3x3 rows, odd channels", 4, 5, 4, 4, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, -128, -3,
       -100, 90, 1, 2, 0, 0, call_g},
      {"conv_h widened weights, padded K", 7, 6, 3, 4, 3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 9, 0, -128, 127, 0, -1,
       1317624576, -1, call_h},
      {"conv_i widened weights, K=600 in chunks", 1, 4, 600, 1, 4, 3, 1, 1, 1, 1, 1, 1, 0, 0, -128, 0, -128,
       127, 1, -1, 0, 0, call_i},
      {"conv_j 3x3 rows, packed tables over the domain, clamp", 4, 5, 4, 4, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1,
       -128, 127, -100, 90, 1, -2, 0, 0, call_j},
  };
  unsigned i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) run(&cases[i]);
  return kt_report();
}
