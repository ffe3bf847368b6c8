/*
 * An application that uses the KWS model as someone outside tvmc-micro would, written from the MLF's
 * README.md alone: write the input at its _PTR, run, read the output at its _PTR. Output goes through
 * newlib's printf to the debugger's console (semihosting), one line per run:
 *   run <k> status <rc> outputs <v0>,<v1>,...
 * user_inputs.h holds the inputs to classify (the test writes it; a real application would fill the
 * input from its microphone features).
 */
#include <stdio.h>
#include <string.h>

#include "tvmgen_kws.h"
#include "user_inputs.h"

int main(void) {
  int failures = 0;
  for (unsigned k = 0; k < USER_NUM_INPUTS; ++k) {
    /* A run consumes its input: write it before every run. */
    memcpy(TVMGEN_KWS_INPUT_1_PTR, user_inputs[k], TVMGEN_KWS_INPUT_1_SIZE);
    int32_t rc = tvmgen_kws_run(NULL, NULL);
    failures += rc != 0;
    printf("run %u status %ld outputs ", k, (long)rc);
    const TVMGEN_KWS_IDENTITY_TYPE* out = TVMGEN_KWS_IDENTITY_PTR;
    for (unsigned i = 0; i < TVMGEN_KWS_IDENTITY_ELEMENTS; ++i) {
      printf(i ? ",%d" : "%d", (int)out[i]);
    }
    printf("\n");
  }
  return failures;
}
