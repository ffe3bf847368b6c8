/*
 * The firmware of a crt_host project: a host process whose stdin/stdout ARE the device transport.
 *
 * It serves the project's model (the generated glue's tvmrt_firmware_model()) with the runtime's RPC
 * server: bytes read from stdin are fed to the server, replies leave through tvmrt_platform_write()
 * (the host port writes them to stdout with write(2), unbuffered). End of file on stdin means the host
 * closed the session: exit 0. Diagnostics go to stderr only, never stdout.
 *
 * Build (one command): cc -std=c99 -I RUNTIME/include -I MLF/codegen/host/include, then every C file of
 * this src/ folder, of RUNTIME/src (except the _test.c unit tests), of RUNTIME/platform/host, the generated
 * glue, and of MLF/codegen/host/src; link with -lm. See tvmc_micro.device.reference_model.host_firmware_argv.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tvmrt/model.h"
#include "tvmrt/platform.h"
#include "tvmrt/protocol.h"
#include "tvmrt/server.h"

/* Pipes are fast and memory is plentiful here: big packets mean few round trips per tensor. */
#ifndef CRT_HOST_MAX_PAYLOAD
#define CRT_HOST_MAX_PAYLOAD 16384u
#endif

static tvmrt_server_t g_server;
static uint8_t g_rx_buffer[CRT_HOST_MAX_PAYLOAD];
static uint8_t g_tx_buffer[CRT_HOST_MAX_PAYLOAD];

static uint32_t boot_seed(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint32_t)ts.tv_nsec ^ ((uint32_t)ts.tv_sec << 7) ^ ((uint32_t)getpid() << 16);
}

int main(void) {
  static uint8_t chunk[4096];
  tvmrt_server_config_t config;
  config.model = tvmrt_firmware_model();
  config.rx_buffer = g_rx_buffer;
  config.rx_capacity = sizeof(g_rx_buffer);
  config.tx_buffer = g_tx_buffer;
  config.tx_capacity = sizeof(g_tx_buffer);
  config.nonce_seed = boot_seed();

  /* A host that goes away makes write() fail with EPIPE, handled in the platform, not a signal death. */
  signal(SIGPIPE, SIG_IGN);
  if (tvmrt_server_init(&g_server, &config) != 0) {
    fprintf(stderr, "crt_host: the runtime rejected the server configuration\n");
    tvmrt_platform_abort(2);
  }
  tvmrt_server_announce(&g_server);
  tvmrt_server_log(&g_server, TVMRT_LOG_INFO, "crt_host firmware up: serving over stdin/stdout");
  for (;;) {
    ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
    if (n > 0) {
      tvmrt_server_feed(&g_server, chunk, (size_t)n);
    } else if (n == 0) {
      return 0; /* end of file: the host closed the transport */
    } else if (errno != EINTR) {
      perror("crt_host: reading stdin");
      return 1;
    }
  }
}
