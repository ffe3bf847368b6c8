/* add_test.c: add.h instances (ADD and SUB, a tail of elements after the 4-element steps) against TFLite's
   arithmetic written as a plain loop, bit for bit. */
#include "kernel_test.h"
#include "tvmc_dsp.h"

#define N 23

static int8_t ref_add(int8_t a, int8_t b, int sub) {
  /* zero points 3 and -2, left shift 20, input scales (1518500250, -1) and (1073741824, -2), output
     (1652386430, -19) with zero point -1, ReLU6-like clamp [-1, 90] */
  int32_t ra = kt_mbqm((int32_t)((uint32_t)(a - 3) << 20), 1518500250, -1);
  int32_t rb = kt_mbqm((int32_t)((uint32_t)(b + 2) << 20), 1073741824, -2);
  return kt_out(sub ? ra - rb : ra + rb, 1652386430, -19, -1, -1, 90);
}

#define TVMC_NAME add_a
#define TVMC_PARAMS int8_t* a, int8_t* b, int8_t* out, int32_t* ws
#define TVMC_ADD_N N
#define TVMC_ADD_OP +
#define TVMC_ADD_SHIFT 20
#define TVMC_ADD_ZP_A (3)
#define TVMC_ADD_MULT_A 1518500250
#define TVMC_ADD_LEFT_A 0
#define TVMC_ADD_RIGHT_A 1
#define TVMC_ADD_ZP_B (-2)
#define TVMC_ADD_MULT_B 1073741824
#define TVMC_ADD_LEFT_B 0
#define TVMC_ADD_RIGHT_B 2
#define TVMC_RQ_MODE TVMC_RQ_FIXED
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1652386430
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 19
#define TVMC_OUT_ZP (-1)
#define TVMC_ACT_MIN (-1)
#define TVMC_ACT_MAX (90)
#include "add.h"

#define TVMC_NAME sub_a
#define TVMC_PARAMS int8_t* a, int8_t* b, int8_t* out, int32_t* ws
#define TVMC_ADD_N N
#define TVMC_ADD_OP -
#define TVMC_ADD_SHIFT 20
#define TVMC_ADD_ZP_A (3)
#define TVMC_ADD_MULT_A 1518500250
#define TVMC_ADD_LEFT_A 0
#define TVMC_ADD_RIGHT_A 1
#define TVMC_ADD_ZP_B (-2)
#define TVMC_ADD_MULT_B 1073741824
#define TVMC_ADD_LEFT_B 0
#define TVMC_ADD_RIGHT_B 2
#define TVMC_RQ_MODE TVMC_RQ_FIXED
#define TVMC_RQ_IN_DOMAIN 0
#define TVMC_RQ_PER_CHANNEL 0
#define TVMC_RQ_HAS_LEFT 0
#define TVMC_RQ_MULT 1652386430
#define TVMC_RQ_LEFT 0
#define TVMC_RQ_RIGHT 19
#define TVMC_OUT_ZP (-1)
#define TVMC_ACT_MIN (-1)
#define TVMC_ACT_MAX (90)
#include "add.h"

int main(void) {
  static int8_t a[N], b[N], got[N], want[N];
  static int32_t ws[512];
  int rep, i, sub;
  for (rep = 0; rep < 8; ++rep)
    for (sub = 0; sub < 2; ++sub) {
      kt_fill8(a, N, -128, 127);
      kt_fill8(b, N, -128, 127);
      for (i = 0; i < N; ++i) want[i] = ref_add(a[i], b[i], sub);
      if (sub) sub_a(a, b, got, ws);
      else add_a(a, b, got, ws);
      kt_compare(sub ? "sub 23 elements" : "add 23 elements", got, want, N);
    }
  return kt_report();
}
