/*
 * The porting layer: the only functions a target must provide to host the device runtime.
 *
 * Host defaults live in runtime/platform/host/. A target overrides them by compiling its own file that
 * defines the same names instead (TFLite Micro style); nothing else in the runtime touches hardware.
 */
#ifndef TVMRT_PLATFORM_H_
#define TVMRT_PLATFORM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TVMRT_NORETURN __attribute__((noreturn))
#else
#define TVMRT_NORETURN
#endif

/* Blocking write of all `len` bytes to the host transport (UART, pipe, USB CDC, ...). */
void tvmrt_platform_write(const uint8_t* data, size_t len);

/* Restart the free-running timer used for run timing and per-operator profiles. */
void tvmrt_platform_timer_start(void);

/* Ticks since the last tvmrt_platform_timer_start(). Must not wrap during one model run. */
uint64_t tvmrt_platform_timer_elapsed(void);

/* Tick rate of tvmrt_platform_timer_elapsed(), in Hz. */
uint32_t tvmrt_platform_timer_hz(void);

/*
 * Optional: what tvmrt_platform_timer_elapsed() counts, sent in INFO so the host can label its figures.
 * A port that times with the core's cycle counter when it has one that counts (Cortex-M DWT CYCCNT)
 * says TVMRT_TIMER_KIND_CORE_CYCLES, with timer_hz the core clock. The runtime ships a weak default
 * (TVMRT_TIMER_KIND_TIMER: a timer ticking at timer_hz).
 */
#define TVMRT_TIMER_KIND_TIMER 0u
#define TVMRT_TIMER_KIND_CORE_CYCLES 1u
uint8_t tvmrt_platform_timer_kind(void);

/* Unrecoverable failure: stop (or reboot) with `code`. Never returns. */
TVMRT_NORETURN void tvmrt_platform_abort(int32_t code);

/*
 * Optional: a local debug sink (stderr, semihosting, a spare UART). The runtime ships a weak no-op
 * default, so targets without one need not define it. Messages for the host go over the log channel
 * of the wire protocol instead (tvmrt_server_log).
 */
void tvmrt_platform_log(const char* msg);

#ifdef __cplusplus
}
#endif

#endif /* TVMRT_PLATFORM_H_ */
