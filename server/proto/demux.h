/* Demultiplexing of datagrams on the shared media port by their first byte
 * (RFC 7983 §7, updating RFC 5764 §5.1.2), with RTP/RTCP told apart by the second
 * byte (RFC 5761 §4). Pure: no I/O, no globals.
 *
 *                  +----------------+
 *                  |        [0..3] -+--> STUN        (>= 20 bytes)
 *                  |                |
 *                  |      [16..19] -+--> ZRTP        dropped
 *                  |                |
 *      packet -->  |      [20..63] -+--> DTLS        (>= 13 bytes)
 *                  |                |
 *                  |      [64..79] -+--> TURN chan.  dropped
 *                  |                |
 *                  |    [128..191] -+--> RTP/RTCP    (RTP >= 12, RTCP >= 8 bytes)
 *                  +----------------+
 *
 * Everything else, empty datagrams and datagrams over HK_DEMUX_MAX_DATAGRAM bytes
 * are dropped with a reason for the drop counters. */
#ifndef HK_DEMUX_H
#define HK_DEMUX_H

#include <stddef.h>
#include <stdint.h>

#define HK_DEMUX_MAX_DATAGRAM 1500

#define HK_DEMUX_STUN_MIN 20 /* STUN header, RFC 5389 §6 */
#define HK_DEMUX_DTLS_MIN 13 /* DTLS record header, RFC 6347 §4.1 */
#define HK_DEMUX_RTP_MIN  12 /* fixed RTP header, RFC 3550 §5.1 */
#define HK_DEMUX_RTCP_MIN 8  /* RTCP header + sender SSRC, RFC 3550 §6.4 */

typedef enum {
    HK_PKT_DROP = 0,
    HK_PKT_STUN,
    HK_PKT_DTLS,
    HK_PKT_RTP,
    HK_PKT_RTCP,
} hk_pkt_type_t;

/* Why a datagram was dropped; HK_DEMUX_DROP_NONE when it was not. */
typedef enum {
    HK_DEMUX_DROP_NONE = 0,
    HK_DEMUX_DROP_TOO_SHORT,     /* empty, or shorter than its protocol's header */
    HK_DEMUX_DROP_TOO_LONG,      /* over HK_DEMUX_MAX_DATAGRAM bytes */
    HK_DEMUX_DROP_UNKNOWN_FIRST, /* first byte in no range we serve */
    HK_DEMUX_DROP_COUNT,         /* number of reasons, for counter arrays */
} hk_demux_drop_t;

/* Classifies one datagram. When the result is HK_PKT_DROP and reason is not NULL,
 * *reason says why; otherwise *reason is HK_DEMUX_DROP_NONE. buf may be NULL when
 * len is 0. */
hk_pkt_type_t hk_demux_classify(const uint8_t *buf, size_t len, hk_demux_drop_t *reason);

/* Static lower-case names for metrics and logs ("stun", "too_short", ...). */
const char *hk_demux_type_name(hk_pkt_type_t type);
const char *hk_demux_drop_name(hk_demux_drop_t reason);

#endif
