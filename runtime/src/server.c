/*
 * The device RPC server (protocol in docs/wire-protocol.md, constants in protocol.h).
 *
 * Stop-and-wait: the host has at most one request outstanding. A request is executed only when its
 * seq is the previous one plus 1; a repeat of the previous seq is answered from the reply cache
 * (tx_buffer) without executing again, so a host retrying after a lost reply never runs a command
 * twice. Anything else is rejected without touching the cache.
 */
#include "tvmrt/server.h"

#include <string.h>

#include "tvmrt/platform.h"
#include "tvmrt/profiler.h"
#include "tvmrt/protocol.h"
#include "tvmrt/wire.h"

/* Bytes of an error reply: header, status, detail u32. */
#define ERROR_REPLY_SIZE (TVMRT_REPLY_HEADER_SIZE + 4u)

static void write_to_platform(void* ctx, const uint8_t* data, size_t len) {
  (void)ctx;
  tvmrt_platform_write(data, len);
}

/* A fixed bijective mix (murmur3 finaliser) so nearby seeds give unrelated nonces; never 0. */
static uint32_t mix_nonce(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x == 0u ? 1u : x;
}

static size_t bounded_strlen(const char* s, size_t max) {
  size_t n = 0;
  while (s != NULL && n < max && s[n] != '\0') {
    ++n;
  }
  return n;
}

static size_t hello_reply_size(const tvmrt_model_t* model) {
  return TVMRT_REPLY_HEADER_SIZE + 2u + 4u + 4u + 2u + 2u + 1u + bounded_strlen(model->name, 255u) + 1u +
         bounded_strlen(model->signature, 255u);
}

int tvmrt_server_init(tvmrt_server_t* server, const tvmrt_server_config_t* config) {
  if (server == NULL || config == NULL || config->model == NULL || config->rx_buffer == NULL ||
      config->tx_buffer == NULL || config->rx_capacity < TVMRT_SERVER_MIN_RX ||
      config->tx_capacity < TVMRT_SERVER_MIN_TX || config->tx_capacity < hello_reply_size(config->model)) {
    return -1;
  }
  memset(server, 0, sizeof(*server));
  server->cfg = *config;
  /* Lengths travel as u16: larger buffers are simply not used beyond 65535 bytes. */
  if (server->cfg.rx_capacity > 0xFFFFu) server->cfg.rx_capacity = 0xFFFFu;
  if (server->cfg.tx_capacity > 0xFFFFu) server->cfg.tx_capacity = 0xFFFFu;
  tvmrt_frame_decoder_init(&server->decoder, server->cfg.rx_buffer, server->cfg.rx_capacity);
  tvmrt_frame_encoder_init(&server->encoder, write_to_platform, NULL);
  server->device_nonce = mix_nonce(config->nonce_seed);
  server->max_reply = (uint16_t)server->cfg.tx_capacity;
  return 0;
}

static void send_packet(tvmrt_server_t* server, const uint8_t* payload, size_t len) {
  tvmrt_frame_write(&server->encoder, payload, (uint16_t)len);
}

/* Replies that must not replace the cache (rejections, ACKs) are built on the stack. */
static void send_uncached_error(tvmrt_server_t* server, uint8_t type, uint16_t seq, uint8_t status,
                                uint32_t detail) {
  uint8_t reply[ERROR_REPLY_SIZE];
  reply[0] = (uint8_t)(type | TVMRT_REPLY_FLAG);
  tvmrt_put_u16(reply + 1, seq);
  reply[3] = status;
  tvmrt_put_u32(reply + 4, detail);
  send_packet(server, reply, sizeof(reply));
  server->stats.requests_rejected++;
}

static void send_ack(tvmrt_server_t* server, uint16_t seq) {
  uint8_t ack[TVMRT_HEADER_SIZE];
  ack[0] = (uint8_t)TVMRT_MSG_ACK;
  tvmrt_put_u16(ack + 1, seq);
  send_packet(server, ack, sizeof(ack));
}

void tvmrt_server_announce(tvmrt_server_t* server) {
  uint8_t boot[TVMRT_HEADER_SIZE + 6u];
  boot[0] = (uint8_t)TVMRT_MSG_BOOT;
  tvmrt_put_u16(boot + 1, 0);
  boot[3] = (uint8_t)TVMRT_PROTOCOL_MAJOR;
  boot[4] = (uint8_t)TVMRT_PROTOCOL_MINOR;
  tvmrt_put_u32(boot + 5, server->device_nonce);
  send_packet(server, boot, sizeof(boot));
}

void tvmrt_server_log(tvmrt_server_t* server, uint8_t level, const char* message) {
  uint8_t header[TVMRT_HEADER_SIZE + 1u];
  size_t limit = (size_t)server->max_reply - sizeof(header);
  size_t len = bounded_strlen(message, limit);
  tvmrt_platform_log(message);
  header[0] = (uint8_t)TVMRT_MSG_LOG;
  tvmrt_put_u16(header + 1, 0);
  header[3] = level;
  /* Streamed straight through the encoder: the reply cache in tx_buffer stays intact. */
  tvmrt_frame_begin(&server->encoder, (uint16_t)(sizeof(header) + len));
  tvmrt_frame_put(&server->encoder, header, sizeof(header));
  tvmrt_frame_put(&server->encoder, (const uint8_t*)message, len);
  tvmrt_frame_end(&server->encoder);
}

/* ---- replies to executed requests: built in tx_buffer, which then doubles as the replay cache ---- */

static uint8_t* reply_begin(tvmrt_server_t* server, uint8_t type, uint16_t seq) {
  uint8_t* tx = server->cfg.tx_buffer;
  tx[0] = (uint8_t)(type | TVMRT_REPLY_FLAG);
  tvmrt_put_u16(tx + 1, seq);
  tx[3] = (uint8_t)TVMRT_STATUS_OK;
  server->cached_len = TVMRT_REPLY_HEADER_SIZE;
  return tx + TVMRT_REPLY_HEADER_SIZE;
}

static size_t reply_room(const tvmrt_server_t* server) {
  return (size_t)server->max_reply - TVMRT_REPLY_HEADER_SIZE;
}

static void reply_error(tvmrt_server_t* server, uint8_t status, uint32_t detail) {
  uint8_t* tx = server->cfg.tx_buffer;
  tx[3] = status;
  tvmrt_put_u32(tx + 4, detail);
  server->cached_len = ERROR_REPLY_SIZE;
}

static void put_name(uint8_t* p, const char* name, size_t len) {
  p[0] = (uint8_t)len;
  if (len > 0u) memcpy(p + 1, name, len);
}

static void handle_hello(tvmrt_server_t* server, uint16_t seq, const uint8_t* body, size_t len) {
  const tvmrt_model_t* model = server->cfg.model;
  uint32_t host_nonce;
  uint16_t host_max;
  size_t name_len, sig_len, max_reply;
  uint8_t* p;
  if (len < 8u) {
    send_uncached_error(server, TVMRT_MSG_HELLO, seq, TVMRT_STATUS_BAD_LENGTH, 8u);
    return;
  }
  if (body[0] != TVMRT_PROTOCOL_MAJOR) {
    send_uncached_error(server, TVMRT_MSG_HELLO, seq, TVMRT_STATUS_VERSION_MISMATCH,
                        (TVMRT_PROTOCOL_MAJOR << 8) | TVMRT_PROTOCOL_MINOR);
    return;
  }
  host_nonce = tvmrt_get_u32(body + 2);
  host_max = tvmrt_get_u16(body + 6);
  if (server->has_session && host_nonce == server->host_nonce) {
    /* A duplicate of the HELLO that opened this session: replay it if nothing happened since. */
    if (seq == server->last_seq && server->cached_len > 0u) {
      send_packet(server, server->cfg.tx_buffer, server->cached_len);
      server->stats.replies_replayed++;
    }
    return;
  }
  max_reply = server->cfg.tx_capacity < host_max ? server->cfg.tx_capacity : host_max;
  if (max_reply < hello_reply_size(model)) {
    send_uncached_error(server, TVMRT_MSG_HELLO, seq, TVMRT_STATUS_TOO_LARGE,
                        (uint32_t)hello_reply_size(model));
    return;
  }
  server->has_session = 1;
  server->host_nonce = host_nonce;
  server->last_seq = seq;
  server->max_reply = (uint16_t)max_reply;
  server->profile_valid = 0;
  server->stats.requests_executed++;

  name_len = bounded_strlen(model->name, 255u);
  sig_len = bounded_strlen(model->signature, 255u);
  p = reply_begin(server, TVMRT_MSG_HELLO, seq);
  p[0] = (uint8_t)TVMRT_PROTOCOL_MAJOR;
  p[1] = (uint8_t)TVMRT_PROTOCOL_MINOR;
  tvmrt_put_u32(p + 2, host_nonce);
  tvmrt_put_u32(p + 6, server->device_nonce);
  tvmrt_put_u16(p + 10, (uint16_t)server->cfg.rx_capacity);
  tvmrt_put_u16(p + 12, (uint16_t)max_reply);
  put_name(p + 14, model->name, name_len);
  put_name(p + 15 + name_len, model->signature, sig_len);
  server->cached_len = hello_reply_size(model);
  send_packet(server, server->cfg.tx_buffer, server->cached_len);
}

static void do_info(tvmrt_server_t* server, uint8_t* out) {
  const tvmrt_model_t* model = server->cfg.model;
  out[0] = (uint8_t)model->num_inputs;
  out[1] = (uint8_t)model->num_outputs;
  tvmrt_put_u16(out + 2, (uint16_t)model->num_ops);
  tvmrt_put_u32(out + 4, tvmrt_platform_timer_hz());
  out[8] = tvmrt_platform_timer_kind();
  server->cached_len += 9u;
}

static void do_tensor_info(tvmrt_server_t* server, uint8_t* out, const uint8_t* body, size_t len) {
  const tvmrt_model_t* model = server->cfg.model;
  const tvmrt_tensor_t* t;
  size_t name_len, need, i;
  if (len < 2u) {
    reply_error(server, TVMRT_STATUS_BAD_LENGTH, 2u);
    return;
  }
  if (body[0] == TVMRT_TENSOR_INPUT && body[1] < model->num_inputs) {
    t = &model->inputs[body[1]];
  } else if (body[0] == TVMRT_TENSOR_OUTPUT && body[1] < model->num_outputs) {
    t = &model->outputs[body[1]];
  } else {
    reply_error(server, TVMRT_STATUS_BAD_INDEX, body[0] == TVMRT_TENSOR_INPUT ? model->num_inputs
                                                                                 : model->num_outputs);
    return;
  }
  name_len = bounded_strlen(t->name, 255u);
  need = 3u + 4u * t->ndim + 4u + 1u + name_len;
  if (need > reply_room(server)) {
    reply_error(server, TVMRT_STATUS_TOO_LARGE, (uint32_t)need);
    return;
  }
  out[0] = t->dtype_code;
  out[1] = t->dtype_bits;
  out[2] = t->ndim;
  for (i = 0; i < t->ndim; ++i) {
    tvmrt_put_u32(out + 3 + 4u * i, t->shape[i]);
  }
  tvmrt_put_u32(out + 3 + 4u * t->ndim, t->size_bytes);
  put_name(out + 7 + 4u * t->ndim, t->name, name_len);
  server->cached_len += need;
}

static void do_op_info(tvmrt_server_t* server, uint8_t* out, const uint8_t* body, size_t len) {
  const tvmrt_model_t* model = server->cfg.model;
  uint16_t index;
  size_t name_len;
  if (len < 2u) {
    reply_error(server, TVMRT_STATUS_BAD_LENGTH, 2u);
    return;
  }
  index = tvmrt_get_u16(body);
  if (index >= model->num_ops) {
    reply_error(server, TVMRT_STATUS_BAD_INDEX, model->num_ops);
    return;
  }
  name_len = bounded_strlen(model->op_names[index], 255u);
  if (1u + name_len > reply_room(server)) name_len = reply_room(server) - 1u;
  put_name(out, model->op_names[index], name_len);
  server->cached_len += 1u + name_len;
}

/* Checks index and [offset, offset + n) against a tensor table; returns the tensor or NULL (error set). */
static const tvmrt_tensor_t* checked_range(tvmrt_server_t* server, const tvmrt_tensor_t* table,
                                           uint32_t count, uint8_t index, uint32_t offset, size_t n) {
  const tvmrt_tensor_t* t;
  if (index >= count) {
    reply_error(server, TVMRT_STATUS_BAD_INDEX, count);
    return NULL;
  }
  t = &table[index];
  if (offset > t->size_bytes || n > t->size_bytes - offset) {
    reply_error(server, TVMRT_STATUS_OUT_OF_RANGE, t->size_bytes);
    return NULL;
  }
  return t;
}

static void do_set_input(tvmrt_server_t* server, const uint8_t* body, size_t len) {
  const tvmrt_model_t* model = server->cfg.model;
  const tvmrt_tensor_t* t;
  uint32_t offset;
  if (len < 5u) {
    reply_error(server, TVMRT_STATUS_BAD_LENGTH, 5u);
    return;
  }
  offset = tvmrt_get_u32(body + 1);
  t = checked_range(server, model->inputs, model->num_inputs, body[0], offset, len - 5u);
  if (t != NULL && len > 5u) {
    memcpy(t->data + offset, body + 5, len - 5u);
  }
}

static void do_get_output(tvmrt_server_t* server, uint8_t* out, const uint8_t* body, size_t len) {
  const tvmrt_model_t* model = server->cfg.model;
  const tvmrt_tensor_t* t;
  uint32_t offset;
  uint16_t n;
  if (len < 7u) {
    reply_error(server, TVMRT_STATUS_BAD_LENGTH, 7u);
    return;
  }
  offset = tvmrt_get_u32(body + 1);
  n = tvmrt_get_u16(body + 5);
  if (n > reply_room(server)) {
    reply_error(server, TVMRT_STATUS_TOO_LARGE, (uint32_t)reply_room(server));
    return;
  }
  t = checked_range(server, model->outputs, model->num_outputs, body[0], offset, n);
  if (t != NULL) {
    if (n > 0u) memcpy(out, t->data + offset, n);
    server->cached_len += n;
  }
}

static void do_run(tvmrt_server_t* server, uint8_t* out) {
  int32_t rc;
  uint64_t ticks;
  tvmrt_platform_timer_start();
  rc = server->cfg.model->run();
  ticks = tvmrt_platform_timer_elapsed();
  if (rc != 0) {
    reply_error(server, TVMRT_STATUS_MODEL_ERROR, (uint32_t)rc);
    return;
  }
  tvmrt_put_u64(out, ticks);
  server->cached_len += 8u;
}

static void do_time_runs(tvmrt_server_t* server, uint8_t* out, const uint8_t* body, size_t len) {
  uint32_t count, i;
  uint64_t total = 0, min = 0, max = 0;
  if (len < 4u) {
    reply_error(server, TVMRT_STATUS_BAD_LENGTH, 4u);
    return;
  }
  count = tvmrt_get_u32(body);
  if (count == 0u) {
    reply_error(server, TVMRT_STATUS_OUT_OF_RANGE, 0u);
    return;
  }
  for (i = 0; i < count; ++i) {
    int32_t rc;
    uint64_t ticks;
    tvmrt_platform_timer_start();
    rc = server->cfg.model->run();
    ticks = tvmrt_platform_timer_elapsed();
    if (rc != 0) {
      reply_error(server, TVMRT_STATUS_MODEL_ERROR, (uint32_t)rc);
      return;
    }
    total += ticks;
    if (i == 0u || ticks < min) min = ticks;
    if (ticks > max) max = ticks;
  }
  tvmrt_put_u32(out, count);
  tvmrt_put_u64(out + 4, total);
  tvmrt_put_u64(out + 12, min);
  tvmrt_put_u64(out + 20, max);
  server->cached_len += 28u;
}

static void do_profile(tvmrt_server_t* server, uint8_t* out) {
  const tvmrt_model_t* model = server->cfg.model;
  uint64_t total = 0;
  int32_t rc;
  int complete;
  server->profile_valid = 0;
  if (model->num_ops > 0u && model->op_ticks == NULL) {
    reply_error(server, TVMRT_STATUS_NO_PROFILE, 0u);
    return;
  }
  tvmrt_profiler_begin(model->op_ticks, model->num_ops);
  rc = model->run();
  complete = tvmrt_profiler_end(&total);
  if (rc != 0) {
    reply_error(server, TVMRT_STATUS_MODEL_ERROR, (uint32_t)rc);
    return;
  }
  if (!complete) {
    /* The executor never called the hooks in order: it was built without -DTVMGEN_PROFILE. */
    reply_error(server, TVMRT_STATUS_NO_PROFILE, 1u);
    return;
  }
  server->profile_valid = 1;
  tvmrt_put_u16(out, (uint16_t)model->num_ops);
  tvmrt_put_u64(out + 2, total);
  server->cached_len += 10u;
}

static void do_op_times(tvmrt_server_t* server, uint8_t* out, const uint8_t* body, size_t len) {
  const tvmrt_model_t* model = server->cfg.model;
  uint16_t first, count, i;
  if (len < 4u) {
    reply_error(server, TVMRT_STATUS_BAD_LENGTH, 4u);
    return;
  }
  first = tvmrt_get_u16(body);
  count = tvmrt_get_u16(body + 2);
  if (!server->profile_valid) {
    reply_error(server, TVMRT_STATUS_NO_PROFILE, 0u);
    return;
  }
  if ((uint32_t)first + count > model->num_ops) {
    reply_error(server, TVMRT_STATUS_OUT_OF_RANGE, model->num_ops);
    return;
  }
  if (2u + 8u * (size_t)count > reply_room(server)) {
    reply_error(server, TVMRT_STATUS_TOO_LARGE, (uint32_t)((reply_room(server) - 2u) / 8u));
    return;
  }
  tvmrt_put_u16(out, count);
  for (i = 0; i < count; ++i) {
    tvmrt_put_u64(out + 2 + 8u * i, model->op_ticks[first + i]);
  }
  server->cached_len += 2u + 8u * (size_t)count;
}

static void clear_io(const tvmrt_model_t* model) {
  uint32_t i;
  for (i = 0; i < model->num_inputs; ++i) memset(model->inputs[i].data, 0, model->inputs[i].size_bytes);
  for (i = 0; i < model->num_outputs; ++i) memset(model->outputs[i].data, 0, model->outputs[i].size_bytes);
}

static void execute(tvmrt_server_t* server, uint8_t type, uint16_t seq, const uint8_t* body, size_t len) {
  uint8_t* out;
  /* Long commands are acknowledged first so the host can tell "running" from "request lost". */
  if (type == TVMRT_MSG_RUN || type == TVMRT_MSG_TIME_RUNS || type == TVMRT_MSG_PROFILE) {
    send_ack(server, seq);
  }
  out = reply_begin(server, type, seq);
  switch (type) {
    case TVMRT_MSG_INFO: do_info(server, out); break;
    case TVMRT_MSG_TENSOR_INFO: do_tensor_info(server, out, body, len); break;
    case TVMRT_MSG_OP_INFO: do_op_info(server, out, body, len); break;
    case TVMRT_MSG_SET_INPUT: do_set_input(server, body, len); break;
    case TVMRT_MSG_RUN: do_run(server, out); break;
    case TVMRT_MSG_GET_OUTPUT: do_get_output(server, out, body, len); break;
    case TVMRT_MSG_TIME_RUNS: do_time_runs(server, out, body, len); break;
    case TVMRT_MSG_PROFILE: do_profile(server, out); break;
    case TVMRT_MSG_OP_TIMES: do_op_times(server, out, body, len); break;
    case TVMRT_MSG_RESET: break;
    default: reply_error(server, TVMRT_STATUS_UNKNOWN_COMMAND, type); break;
  }
  server->stats.requests_executed++;
  send_packet(server, server->cfg.tx_buffer, server->cached_len);
  if (type == TVMRT_MSG_RESET) {
    /* Back to the power-on state, after the reply went out; a retried RESET then sees NO_SESSION. */
    clear_io(server->cfg.model);
    server->has_session = 0;
    server->cached_len = 0;
    server->profile_valid = 0;
  }
}

static void handle_packet(tvmrt_server_t* server, const uint8_t* p, size_t len) {
  uint8_t type;
  uint16_t seq;
  if (len < TVMRT_HEADER_SIZE) {
    server->stats.requests_rejected++;
    return;
  }
  type = p[0];
  seq = tvmrt_get_u16(p + 1);
  if (type == TVMRT_MSG_HELLO) {
    handle_hello(server, seq, p + TVMRT_HEADER_SIZE, len - TVMRT_HEADER_SIZE);
    return;
  }
  if ((type & TVMRT_REPLY_FLAG) != 0u) {
    server->stats.requests_rejected++; /* device-to-host traffic echoed back: not a request */
    return;
  }
  if (!server->has_session) {
    send_uncached_error(server, type, seq, TVMRT_STATUS_NO_SESSION, 0u);
    return;
  }
  if (seq == server->last_seq && server->cached_len > 0u &&
      server->cfg.tx_buffer[0] == (uint8_t)(type | TVMRT_REPLY_FLAG)) {
    send_packet(server, server->cfg.tx_buffer, server->cached_len);
    server->stats.replies_replayed++;
    return;
  }
  if (seq != (uint16_t)(server->last_seq + 1u)) {
    send_uncached_error(server, type, seq, TVMRT_STATUS_BAD_SEQUENCE, server->last_seq);
    return;
  }
  server->last_seq = seq;
  execute(server, type, seq, p + TVMRT_HEADER_SIZE, len - TVMRT_HEADER_SIZE);
}

void tvmrt_server_feed(tvmrt_server_t* server, const uint8_t* data, size_t len) {
  size_t i;
  for (i = 0; i < len; ++i) {
    tvmrt_frame_event_t ev = tvmrt_frame_decoder_push(&server->decoder, data[i]);
    if (ev == TVMRT_FRAME_OK) {
      server->stats.frames_ok++;
      handle_packet(server, server->decoder.buffer, server->decoder.length);
    } else if (ev != TVMRT_FRAME_NONE) {
      /* Tell the host at once so it retransmits now instead of waiting out its reply timeout. */
      uint8_t nack[TVMRT_HEADER_SIZE + 1u];
      server->stats.frames_bad++;
      nack[0] = (uint8_t)TVMRT_MSG_NACK;
      tvmrt_put_u16(nack + 1, 0);
      nack[3] = (uint8_t)ev;
      send_packet(server, nack, sizeof(nack));
    }
  }
}
