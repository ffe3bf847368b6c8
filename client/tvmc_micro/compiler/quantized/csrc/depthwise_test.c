/* depthwise_test.c: depthwise.h instances (interior and tap-table blocks, a 2-pixel tail, channels not a
   multiple of 4, strides, dilation, every requantisation mode) against kt_conv, bit for bit. */
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

/* A: 3x3 pad 1 over 5x8x8: interior blocks at constant offsets and tap-table blocks at the edges; per-channel with channel 3 outside tvmc_rqz's domain; weights widened per call. */
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
#define TVMC_DW_FULL 40
#define TVMC_DW_REST 0
#define TVMC_DW_INTERIOR 1
#define TVMC_DW_BORDER 1
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

/* B: 3x3 unpadded over 5x6x12: every block inside (no tap table); per-tensor in tvmc_rqz's domain with a clamp. */
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
#define TVMC_DW_FULL 12
#define TVMC_DW_REST 0
#define TVMC_DW_INTERIOR 1
#define TVMC_DW_BORDER 0
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

/* C: 3x2 taps, stride 2, dilation 2x1, 7 channels (a tail of 3 after one group of 4), 9 pixels (a 1-pixel tail), tap table only; per-channel with a left shift (the exact tvmc_rq). */
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
#define TVMC_DW_FULL 8
#define TVMC_DW_REST 1
#define TVMC_DW_INTERIOR 0
#define TVMC_DW_BORDER 1
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

int main(void) {
  static const struct dw_case cases[] = {
      {"dw_a interior + border, table + fallback", 5, 8, 8, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, -128, -5, -128, 127,
       1, 3, -1, 0, 0, call_a},
      {"dw_b all interior, fixed, clamp", 5, 6, 12, 3, 4, 3, 3, 1, 1, 1, 1, 0, 0, 3, 7, -20, 100, 0, -1, -1,
       1518500250, -6, call_b},
      {"dw_c strided dilated, channel tail, exact with left", 7, 6, 7, 3, 3, 3, 2, 2, 2, 2, 1, 1, 0, 4, 0,
       -128, 127, 1, -1, 1, 0, 0, call_c},
  };
  unsigned i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) run(&cases[i]);
  return kt_report();
}
