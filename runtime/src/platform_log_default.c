/* The weak default for the optional tvmrt_platform_log(): targets without a debug sink drop messages. */
#include "tvmrt/platform.h"

#if defined(__GNUC__) || defined(__clang__)
__attribute__((weak)) void tvmrt_platform_log(const char* msg) { (void)msg; }
#else
/* Without weak symbols a target must define tvmrt_platform_log itself. */
typedef int tvmrt_platform_log_default_unused;
#endif
