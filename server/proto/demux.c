/* First-byte demultiplexing, RFC 7983 §7. */
#include "server/proto/demux.h"

static hk_pkt_type_t drop(hk_demux_drop_t why, hk_demux_drop_t *reason)
{
    if (reason)
        *reason = why;
    return HK_PKT_DROP;
}

static hk_pkt_type_t accept_if(hk_pkt_type_t type, size_t len, size_t min, hk_demux_drop_t *reason)
{
    if (len < min)
        return drop(HK_DEMUX_DROP_TOO_SHORT, reason);
    if (reason)
        *reason = HK_DEMUX_DROP_NONE;
    return type;
}

/* RTP and RTCP share first bytes 128..191 (version 2). RFC 5761 §4: the second
 * byte of RTCP is its packet type 192..223 (SR 200, RR 201, SDES 202, BYE 203,
 * APP 204, RTPFB 205, PSFB 206, XR 207...), which for RTP would be marker bit set
 * and payload type 64..95, a range WebRTC never assigns to media.
 *
 *    0                   1
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|X|  CC   |M|     PT      |   RTP
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|   RC    |   packet type |   RTCP
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
static hk_pkt_type_t classify_rtp(const uint8_t *buf, size_t len, hk_demux_drop_t *reason)
{
    if (len < 2)
        return drop(HK_DEMUX_DROP_TOO_SHORT, reason);
    if (buf[1] >= 192 && buf[1] <= 223)
        return accept_if(HK_PKT_RTCP, len, HK_DEMUX_RTCP_MIN, reason);
    return accept_if(HK_PKT_RTP, len, HK_DEMUX_RTP_MIN, reason);
}

hk_pkt_type_t hk_demux_classify(const uint8_t *buf, size_t len, hk_demux_drop_t *reason)
{
    if (len == 0 || !buf)
        return drop(HK_DEMUX_DROP_TOO_SHORT, reason);
    if (len > HK_DEMUX_MAX_DATAGRAM)
        return drop(HK_DEMUX_DROP_TOO_LONG, reason);

    uint8_t b = buf[0];
    if (b <= 3)
        return accept_if(HK_PKT_STUN, len, HK_DEMUX_STUN_MIN, reason);
    if (b >= 20 && b <= 63)
        return accept_if(HK_PKT_DTLS, len, HK_DEMUX_DTLS_MIN, reason);
    if (b >= 128 && b <= 191)
        return classify_rtp(buf, len, reason);
    return drop(HK_DEMUX_DROP_UNKNOWN_FIRST, reason);
}

const char *hk_demux_type_name(hk_pkt_type_t type)
{
    switch (type) {
    case HK_PKT_DROP:
        return "drop";
    case HK_PKT_STUN:
        return "stun";
    case HK_PKT_DTLS:
        return "dtls";
    case HK_PKT_RTP:
        return "rtp";
    case HK_PKT_RTCP:
        return "rtcp";
    }
    return "unknown";
}

const char *hk_demux_drop_name(hk_demux_drop_t reason)
{
    switch (reason) {
    case HK_DEMUX_DROP_NONE:
        return "none";
    case HK_DEMUX_DROP_TOO_SHORT:
        return "too_short";
    case HK_DEMUX_DROP_TOO_LONG:
        return "too_long";
    case HK_DEMUX_DROP_UNKNOWN_FIRST:
        return "unknown_first_byte";
    case HK_DEMUX_DROP_COUNT:
        break;
    }
    return "unknown";
}
