/* The weak defaults for the optional platform functions: tvmrt_platform_log() drops messages (targets
   without a debug sink), tvmrt_platform_timer_kind() says the timer is a plain timer at timer_hz. */
#include "tvmrt/platform.h"

#if defined(__GNUC__) || defined(__clang__)
__attribute__((weak)) void tvmrt_platform_log(const char* msg) { (void)msg; }
__attribute__((weak)) uint8_t tvmrt_platform_timer_kind(void) { return TVMRT_TIMER_KIND_TIMER; }
#else
/* Without weak symbols a target must define tvmrt_platform_log and tvmrt_platform_timer_kind itself. */
typedef int tvmrt_platform_log_default_unused;
#endif
