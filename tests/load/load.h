/* Shared pieces of the load generator (hisoka-load) and the raw relay (hisoka-raw-relay):
 * the synthetic E2EE frame format, the packetizer header, the raw relay's hello protocol
 * and its pre-shared SRTP keys.
 *
 * Synthetic E2EE frame (the RTP payload of all packets of one frame, concatenated after
 * each packet's 2-byte packetizer header):
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |X|  K  |Y|  C  |      KID (4 bytes, the publisher id) ...      |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  ...          |      CTR (4 bytes, the frame counter) ...     |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  ...          |  AES-128-GCM ciphertext of the plaintext ...  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                   authentication tag (16 bytes)               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The header is SFrame-like (RFC 9605 §4.3: config byte 0xBB = X=1 K=3, Y=1 C=3, i.e. a
 * 4-byte key id and a 4-byte counter) and is the GCM AAD; nonce = salt XOR counter.
 * Plaintext: magic "HKLD", KID, CTR, send time (u64 µs, CLOCK_MONOTONIC), length (u32),
 * then filler bytes that are a function of (CTR, offset): any change is detected.
 *
 * Packetizer header, first two payload bytes of every RTP packet (unencrypted, like a
 * VP8 payload descriptor): packet index within the frame, packet count of the frame. */
#ifndef HK_LOAD_H
#define HK_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/rtc/srtp.h"

#define HK_LOAD_FRAG          1200 /* frame bytes per RTP packet */
#define HK_LOAD_PKT_HDR       2    /* packetizer header */
#define HK_LOAD_SFRAME_HDR    9
#define HK_LOAD_TAG           16
#define HK_LOAD_PLAIN_HDR     24
#define HK_LOAD_MAX_FRAME     (255 * HK_LOAD_FRAG)
#define HK_LOAD_VIDEO_TS_STEP 3000 /* 90 kHz / 30 fps */
#define HK_LOAD_AUDIO_TS_STEP 960  /* 48 kHz * 20 ms */

/* Raw relay hello (generator -> relay), retransmitted until acknowledged:
 *   "HKRAW1" role(1: 'P' publisher, 'S' subscriber, 'M' both) channel(u32) peer_id(u32)
 * The relay answers "HKRAWOK" + peer_id(u32). */
#define HK_LOAD_HELLO_LEN 15
#define HK_LOAD_ACK_LEN   11

/* Monotonic clock in microseconds. */
uint64_t hk_load_now_us(void);

/* Encrypts a synthetic frame of frame_len bytes (>= HK_LOAD_SFRAME_HDR + HK_LOAD_PLAIN_HDR +
 * HK_LOAD_TAG) for publisher kid, counter ctr, stamped with send_us, into out.
 * Returns frame_len or a negative value on failure. */
int hk_load_frame_encrypt(uint32_t kid, uint32_t ctr, uint64_t send_us, uint8_t *out,
                          size_t frame_len);

/* Decrypts and checks a frame made by hk_load_frame_encrypt. Returns 0 and sets *send_us
 * when the tag verifies and every plaintext byte is as sent; -1 otherwise. */
int hk_load_frame_verify(const uint8_t *frame, size_t len, uint64_t *send_us);

/* The raw relay's fixed SRTP keys for peer_id (AEAD_AES_128_GCM). relay_side selects the
 * relay's view (local = what the relay sends to that peer). */
void hk_load_raw_keys(uint32_t peer_id, bool relay_side, hk_srtp_keys_t *out);

/* Percentile (0..1) of n sorted values; 0 when n is 0. */
uint64_t hk_load_percentile(const uint64_t *sorted, size_t n, double p);

/* Sorts n values in place. */
void hk_load_sort(uint64_t *v, size_t n);

#endif
