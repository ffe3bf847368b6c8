/*
 * The device RPC server: decodes request frames fed to it, runs commands against the model descriptor
 * and writes replies through tvmrt_platform_write(). Single-threaded and allocation-free: all memory is
 * the caller's (the config's buffers plus this struct).
 */
#ifndef TVMRT_SERVER_H_
#define TVMRT_SERVER_H_

#include <stddef.h>
#include <stdint.h>

#include "tvmrt/frame.h"
#include "tvmrt/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Smallest buffers the server accepts: a HELLO must fit in rx, an error reply and short INFO in tx. */
#define TVMRT_SERVER_MIN_RX 32u
#define TVMRT_SERVER_MIN_TX 64u

typedef struct {
  const tvmrt_model_t* model;
  uint8_t* rx_buffer; /* largest request payload the device accepts (advertised to the host) */
  size_t rx_capacity;
  uint8_t* tx_buffer; /* the last reply, kept so a duplicated request replays it */
  size_t tx_capacity;
  uint32_t nonce_seed; /* anything that differs between boots (timer, ADC noise, a boot counter) */
} tvmrt_server_config_t;

typedef struct {
  uint32_t frames_ok;
  uint32_t frames_bad; /* CRC, length, truncation or escape errors: each answered with a NACK */
  uint32_t requests_executed;
  uint32_t replies_replayed; /* duplicated requests answered from the cache */
  uint32_t requests_rejected; /* no session / out-of-sequence */
} tvmrt_server_stats_t;

typedef struct {
  tvmrt_server_config_t cfg;
  tvmrt_frame_decoder_t decoder;
  tvmrt_frame_encoder_t encoder;
  tvmrt_server_stats_t stats;
  uint32_t device_nonce;
  uint32_t host_nonce;
  uint16_t max_reply; /* min(tx_capacity, the host's receive limit) */
  uint16_t last_seq;
  size_t cached_len; /* bytes of tx_buffer holding the reply to last_seq; 0 = none */
  uint8_t has_session;
  uint8_t profile_valid;
} tvmrt_server_t;

/* Returns 0, or -1 when the config is unusable (null model/buffers, buffers below the minimums). */
int tvmrt_server_init(tvmrt_server_t* server, const tvmrt_server_config_t* config);

/* Tell the host this device has (re)started: a BOOT packet carrying the new device nonce. */
void tvmrt_server_announce(tvmrt_server_t* server);

/* Hand received transport bytes to the server; complete requests are executed before it returns. */
void tvmrt_server_feed(tvmrt_server_t* server, const uint8_t* data, size_t len);

/* Send a message over the log channel (and to tvmrt_platform_log). Level: TVMRT_LOG_*. */
void tvmrt_server_log(tvmrt_server_t* server, uint8_t level, const char* message);

#ifdef __cplusplus
}
#endif

#endif /* TVMRT_SERVER_H_ */
