/* depthwise_test.c: depthwise.h instances (edge blocks unrolled with their out-of-image columns folded,
   the loop without bounds tests, zero-point rows above and below, short blocks at the end of a row,
   channels not a multiple of 4, strides, dilation, 5x5 taps, a single output pixel, every requantisation
   mode, edge rows copied into the row buffer or read through one pointer per kernel row (C, G)) against
   kt_conv, bit for bit. The edge parameters (TVMC_DW_XL/XR/ZROW) are what ckernels._dw_plan gives for
   each shape. */
#include "kernel_test.h"
#include "tvmc_dsp.h"

typedef void (*dw_call)(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o);
struct dw_case {
  const char* name;
  int ih, iw, ch, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl;
  int32_t in_zp, out_zp, lo, hi;
  int per_channel, bad, left; /* left: a channel with a left shift (rq_left), or -1 */
  int32_t mult, shift;
  dw_call call;
};

static void run(const struct dw_case* t) {
  static int8_t x[4096], w[1024], got[4096], want[4096], l[64], r[64];
  static int32_t b[64], m[64], s[64];
  int n = t->oh * t->ow * t->ch, rep, c;
  for (rep = 0; rep < 4; ++rep) {
    kt_fill8(x, t->ih * t->iw * t->ch, -128, 127);
    kt_fill8(w, t->kh * t->kw * t->ch, -127, 127);
    for (c = 0; c < t->ch; ++c) b[c] = kt_range(-3000, 3000);
    if (t->per_channel) {
      kt_requant(m, r, s, t->ch, t->bad);
      memset(l, 0, sizeof(l));
      if (t->left >= 0) s[t->left] = 2, l[t->left] = 2, r[t->left] = 0;
    } else {
      m[0] = t->mult, s[0] = t->shift;
    }
    kt_conv(x, w, b, 1, t->ih, t->iw, t->ch, t->oh, t->ow, t->ch, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw,
            t->pt, t->pl, t->in_zp, m, s, t->per_channel, t->out_zp, t->lo, t->hi, want);
    memset(got, 0x55, sizeof(got));
    t->call(x, w, b, m, l, r, got);
    kt_compare(t->name, got, want, n);
  }
}

/* A: 3x3 pad 1 over 5x8x8: edge blocks on both sides of the bounds-free loop, edge rows copied; per-channel with channel 3 outside tvmc_rqz's domain; weights widened per call. */
#define TVMC_NAME dw_a
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_IH 5
#define TVMC_IW 8
#define TVMC_CH 8
#define TVMC_OH 5
#define TVMC_OW 8
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (-128)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 2
#define TVMC_DW_XR 6
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 1
#define TVMC_DW_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-5)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "depthwise.h"
static void call_a(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  (void)l;
  dw_a(x, w, b, m, r, o);
}

/* B: 3x3 unpadded over 5x6x12: every block in the bounds-free loop, no row copy; per-tensor in tvmc_rqz's domain with a clamp. */
#define TVMC_NAME dw_b
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int8_t* out
#define TVMC_IH 5
#define TVMC_IW 6
#define TVMC_CH 12
#define TVMC_OH 3
#define TVMC_OW 4
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 0
#define TVMC_PL 0
#define TVMC_IN_ZP (3)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 0
#define TVMC_DW_XR 4
#define TVMC_DW_ZROW 0
#define TVMC_DW_ROWBUF 0
#define TVMC_DW_WIDE 0
#define TVMC_RQ_MODE TVMC_RQ_FIXED
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1518500250
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 6
#define TVMC_OUT_ZP (7)
#define TVMC_ACT_MIN (-20)
#define TVMC_ACT_MAX (100)
#include "depthwise.h"
static void call_b(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  (void)m, (void)l, (void)r;
  dw_b(x, w, b, o);
}

/* C: 3x2 taps, stride 2, dilation 2x1, 7 channels (a tail of 3 after one group of 4), rows of 3 pixels (a 1-pixel edge block), one pointer per kernel row (no row copy); per-channel with a left shift (the exact tvmc_rq). */
#define TVMC_NAME dw_c
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_left, int8_t* rq_right, int8_t* out
#define TVMC_IH 7
#define TVMC_IW 6
#define TVMC_CH 7
#define TVMC_OH 3
#define TVMC_OW 3
#define TVMC_KH 3
#define TVMC_KW 2
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_DH 2
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 0
#define TVMC_IN_ZP (4)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 0
#define TVMC_DW_XR 2
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 0
#define TVMC_DW_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_EXACT
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 1
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (0)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "depthwise.h"
static void call_c(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  dw_c(x, w, b, m, l, r, o);
}

/* D: stride 2 over 8x8x16, SAME padding only below and right (the last row reads the zero-point row, the last column folds to the zero point); per-tensor fixed. */
#define TVMC_NAME dw_d
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int8_t* out
#define TVMC_IH 8
#define TVMC_IW 8
#define TVMC_CH 16
#define TVMC_OH 4
#define TVMC_OW 4
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 0
#define TVMC_PL 0
#define TVMC_IN_ZP (-7)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 0
#define TVMC_DW_XR 2
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 1
#define TVMC_DW_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_FIXED
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1300000000
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 7
#define TVMC_OUT_ZP (3)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "depthwise.h"
static void call_d(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  (void)m, (void)l, (void)r;
  dw_d(x, w, b, o);
}

/* E: a KWS-like narrow row (5 columns: edge, 3 inside, edge) with 12 channels and weights widened per tap; per-tensor exact with a left shift. */
#define TVMC_NAME dw_e
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int8_t* out
#define TVMC_IH 6
#define TVMC_IW 5
#define TVMC_CH 12
#define TVMC_OH 6
#define TVMC_OW 5
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (11)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 2
#define TVMC_DW_XR 4
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 1
#define TVMC_DW_WIDE 0
#define TVMC_RQ_MODE TVMC_RQ_EXACT
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1800000000
#define TVMC_RQ_LEFT 1
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-2)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "depthwise.h"
static void call_e(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  (void)m, (void)l, (void)r;
  dw_e(x, w, b, o);
}

/* F: 5x5 taps, pad 2, over 7x9x4: edge blocks unrolled on both sides (the last one short), one 4-channel group; per-channel in domain, clamp. */
#define TVMC_NAME dw_f
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_IH 7
#define TVMC_IW 9
#define TVMC_CH 4
#define TVMC_OH 7
#define TVMC_OW 9
#define TVMC_KH 5
#define TVMC_KW 5
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 2
#define TVMC_PL 2
#define TVMC_IN_ZP (-128)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 2
#define TVMC_DW_XR 6
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 1
#define TVMC_DW_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (0)
#define TVMC_ACT_MIN (-100)
#define TVMC_ACT_MAX (90)
#include "depthwise.h"
static void call_f(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  (void)l;
  dw_f(x, w, b, m, r, o);
}

/* G: one output pixel over 2x2x5 (stride 2, pad 1: every edge at once, a 1-channel tail; one pointer per kernel row). */
#define TVMC_NAME dw_g
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_IH 2
#define TVMC_IW 2
#define TVMC_CH 5
#define TVMC_OH 1
#define TVMC_OW 1
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (5)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 1
#define TVMC_DW_XR 1
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 0
#define TVMC_DW_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (1)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "depthwise.h"
static void call_g(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  (void)l;
  dw_g(x, w, b, m, r, o);
}

/* H: dilation 2, pad 2 over 7x7x8; per-channel with channel 6 outside tvmc_rqz's domain. */
#define TVMC_NAME dw_h
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int8_t* rq_right, int8_t* out
#define TVMC_IH 7
#define TVMC_IW 7
#define TVMC_CH 8
#define TVMC_OH 7
#define TVMC_OW 7
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 2
#define TVMC_DW 2
#define TVMC_PT 2
#define TVMC_PL 2
#define TVMC_IN_ZP (0)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 2
#define TVMC_DW_XR 4
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 1
#define TVMC_DW_WIDE 1
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
#include "depthwise.h"
static void call_h(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  (void)l;
  dw_h(x, w, b, m, r, o);
}

/* I: A's geometry with the per-channel tables read precomputed (TVMC_RQ_PACKED), every channel in tvmc_rqz's domain up to its edges, output zero point -128 */
#define TVMC_NAME dw_i
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int32_t* rq_right, int8_t* out
#define TVMC_IH 5
#define TVMC_IW 8
#define TVMC_CH 8
#define TVMC_OH 5
#define TVMC_OW 8
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 1
#define TVMC_SW 1
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (-128)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 2
#define TVMC_DW_XR 6
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 1
#define TVMC_DW_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PACKED 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (-128)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "depthwise.h"
static void call_i(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  int32_t packed[2 * 8];
  (void)l;
  kt_pack_rq(r, 8, -128, packed);
  dw_i(x, w, b, m, packed, o);
}

/* J: G's geometry (a channel tail: TVMC_RQ1) with packed tables over the domain, output zero point 127 */
#define TVMC_NAME dw_j
#define TVMC_PARAMS int8_t* data, int8_t* weight, int32_t* bias, int32_t* rq_mult, int32_t* rq_right, int8_t* out
#define TVMC_IH 2
#define TVMC_IW 2
#define TVMC_CH 5
#define TVMC_OH 1
#define TVMC_OW 1
#define TVMC_KH 3
#define TVMC_KW 3
#define TVMC_SH 2
#define TVMC_SW 2
#define TVMC_DH 1
#define TVMC_DW 1
#define TVMC_PT 1
#define TVMC_PL 1
#define TVMC_IN_ZP (5)
#define TVMC_DW_PIX 2
#define TVMC_DW_XL 1
#define TVMC_DW_XR 1
#define TVMC_DW_ZROW 1
#define TVMC_DW_ROWBUF 0
#define TVMC_DW_WIDE 1
#define TVMC_RQ_MODE TVMC_RQ_TABLE
#define TVMC_RQ_IN_DOMAIN 1
#define TVMC_RQ_PACKED 1
#define TVMC_RQ_PER_CHANNEL 1
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 0
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 0
#define TVMC_OUT_ZP (127)
#define TVMC_ACT_MIN (-128)
#define TVMC_ACT_MAX (127)
#include "depthwise.h"
static void call_j(int8_t* x, int8_t* w, int32_t* b, int32_t* m, int8_t* l, int8_t* r, int8_t* o) {
  int32_t packed[2 * 5];
  (void)l;
  kt_pack_rq(r, 5, 127, packed);
  dw_j(x, w, b, m, packed, o);
}

int main(void) {
  static const struct dw_case cases[] = {
      {"dw_a interior + border, table + fallback", 5, 8, 8, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, -128, -5, -128, 127,
       1, 3, -1, 0, 0, call_a},
      {"dw_b all interior, fixed, clamp", 5, 6, 12, 3, 4, 3, 3, 1, 1, 1, 1, 0, 0, 3, 7, -20, 100, 0, -1, -1,
       1518500250, -6, call_b},
      {"dw_c strided dilated, channel tail, exact with left", 7, 6, 7, 3, 3, 3, 2, 2, 2, 2, 1, 1, 0, 4, 0,
       -128, 127, 1, -1, 1, 0, 0, call_c},
      {"dw_d stride 2 over 8x8x16, SAME padding only ", 8, 8, 16, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, -7, 3, -128, 127,
       0, -1, -1, 1300000000, -7, call_d},
      {"dw_e a KWS-like narrow row (5 columns: edge, ", 6, 5, 12, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 11, -2, -128, 127,
       0, -1, -1, 1800000000, 1, call_e},
      {"dw_f 5x5 taps, pad 2, over 7x9x4, clamp", 7, 9, 4, 7, 9, 5, 5, 1, 1, 1, 1, 2, 2, -128, 0, -100, 90,
       1, -1, -1, 0, 0, call_f},
      {"dw_g one output pixel over 2x2x5 (stride 2, p", 2, 2, 5, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 5, 1, -128, 127,
       1, 4, -1, 0, 0, call_g},
      {"dw_h dilation 2, pad 2 over 7x7x8", 7, 7, 8, 7, 7, 3, 3, 1, 1, 2, 2, 2, 2, 0, -9, -128, 127,
       1, 6, -1, 0, 0, call_h},
      {"dw_i A with packed tables over the domain", 5, 8, 8, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, -128, -128, -128,
       127, 1, -2, -1, 0, 0, call_i},
      {"dw_j G (channel tail) with packed tables", 2, 2, 5, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 5, 127, -128, 127,
       1, -2, -1, 0, 0, call_j},
  };
  unsigned i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) run(&cases[i]);
  return kt_report();
}
