/*
 * Packet types, status codes and layouts of the device session protocol (docs/wire-protocol.md is the
 * normative text; these numbers must match tvmc_micro/device/protocol.py).
 *
 * Every packet starts with a 3-byte header: type u8, seq u16 LE. A reply has type = request | 0x80,
 * echoes seq, then a status u8; an error reply carries a detail u32 LE after the status.
 */
#ifndef TVMRT_PROTOCOL_H_
#define TVMRT_PROTOCOL_H_

#define TVMRT_PROTOCOL_MAJOR 1u
#define TVMRT_PROTOCOL_MINOR 0u

#define TVMRT_HEADER_SIZE 3u       /* type, seq */
#define TVMRT_REPLY_HEADER_SIZE 4u /* type, seq, status */
#define TVMRT_REPLY_FLAG 0x80u

/* Requests (host -> device). */
#define TVMRT_MSG_HELLO 0x01u
#define TVMRT_MSG_INFO 0x02u
#define TVMRT_MSG_TENSOR_INFO 0x03u
#define TVMRT_MSG_OP_INFO 0x04u
#define TVMRT_MSG_SET_INPUT 0x05u
#define TVMRT_MSG_RUN 0x06u
#define TVMRT_MSG_GET_OUTPUT 0x07u
#define TVMRT_MSG_TIME_RUNS 0x08u
#define TVMRT_MSG_PROFILE 0x09u
#define TVMRT_MSG_OP_TIMES 0x0Au
#define TVMRT_MSG_RESET 0x0Bu

/* Unsolicited device packets (seq 0 except ACK, which echoes the request's seq). */
#define TVMRT_MSG_BOOT 0xF0u
#define TVMRT_MSG_LOG 0xF1u
#define TVMRT_MSG_NACK 0xF2u
#define TVMRT_MSG_ACK 0xF3u

/* Status codes. */
#define TVMRT_STATUS_OK 0u
#define TVMRT_STATUS_UNKNOWN_COMMAND 1u
#define TVMRT_STATUS_BAD_LENGTH 2u
#define TVMRT_STATUS_BAD_INDEX 3u
#define TVMRT_STATUS_OUT_OF_RANGE 4u
#define TVMRT_STATUS_NO_SESSION 5u
#define TVMRT_STATUS_BAD_SEQUENCE 6u
#define TVMRT_STATUS_MODEL_ERROR 7u
#define TVMRT_STATUS_NO_PROFILE 8u
#define TVMRT_STATUS_VERSION_MISMATCH 9u
#define TVMRT_STATUS_TOO_LARGE 10u

/* Log levels of LOG packets. */
#define TVMRT_LOG_DEBUG 0u
#define TVMRT_LOG_INFO 1u
#define TVMRT_LOG_WARNING 2u
#define TVMRT_LOG_ERROR 3u

/* Tensor kinds in TENSOR_INFO. */
#define TVMRT_TENSOR_INPUT 0u
#define TVMRT_TENSOR_OUTPUT 1u

#endif /* TVMRT_PROTOCOL_H_ */
