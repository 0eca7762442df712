/* SDP (RFC 8866) as JSEP (RFC 8829) uses it: the server's offer writer and the
 * client's answer parser. Pure: no I/O, no globals. */
#include "common/bytes.h"
#include "server/proto/sdp.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

#define MAX_LINE 4096 /* bytes per answer line, line end excluded */

/* A view into the caller's text; never NUL-terminated. */
typedef struct {
    const char *p;
    size_t n;
} slice_t;

static bool slice_eq(slice_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Splits off the next space-separated token; false when only spaces remain. */
static bool next_token(slice_t *rest, slice_t *tok)
{
    while (rest->n > 0 && rest->p[0] == ' ') {
        rest->p++;
        rest->n--;
    }
    if (rest->n == 0)
        return false;
    size_t i = 0;
    while (i < rest->n && rest->p[i] != ' ')
        i++;
    tok->p = rest->p;
    tok->n = i;
    rest->p += i;
    rest->n -= i;
    return true;
}

/* Decimal digits only, at most max; false on anything else or overflow. */
static bool parse_uint(slice_t s, uint64_t max, uint64_t *out)
{
    if (s.n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (d > max || v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* ice-char = ALPHA / DIGIT / "+" / "/"  (RFC 8839 section 5.4). */
static bool is_ice_chars(slice_t s, size_t min, size_t max)
{
    if (s.n < min || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok)
            return false;
    }
    return true;
}

static const struct {
    const char *name;
    size_t len;
} fingerprint_algorithms[] = {
    {"sha-1", 20}, {"sha-224", 28}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64},
};

/* RFC 8122 section 5:
 *   fingerprint-attribute = "fingerprint" ":" hash-func SP fingerprint
 *   fingerprint = 2UHEX *(":" 2UHEX)
 * Lower-case hex is accepted too. The byte count must match the hash function. */
static const char *decode_fingerprint(slice_t value, char algorithm[16], uint8_t bytes[64],
                                      size_t *bytes_len)
{
    slice_t rest = value, alg, hex, extra;
    if (!next_token(&rest, &alg) || !next_token(&rest, &hex) || next_token(&rest, &extra))
        return "malformed a=fingerprint";
    size_t want = 0;
    for (size_t i = 0; i < sizeof fingerprint_algorithms / sizeof fingerprint_algorithms[0]; i++) {
        const char *name = fingerprint_algorithms[i].name;
        if (alg.n == strlen(name) && strncasecmp(alg.p, name, alg.n) == 0) {
            memcpy(algorithm, name, alg.n + 1);
            want = fingerprint_algorithms[i].len;
        }
    }
    if (want == 0)
        return "unsupported fingerprint algorithm";
    if (hex.n != want * 3 - 1)
        return "fingerprint length does not match its algorithm";
    for (size_t i = 0; i < want; i++) {
        const char *h = hex.p + i * 3;
        int hi = hk_hex_value(h[0]), lo = hk_hex_value(h[1]);
        if (hi < 0 || lo < 0 || (i + 1 < want && h[2] != ':'))
            return "bad fingerprint hex";
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    *bytes_len = want;
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Offer writer
 *
 * Session part, then one m-section per hk_sdp_section_t, in order:
 *
 *   v=0
 *   o=- <session_id> <version> IN IP4 0.0.0.0
 *   s=-
 *   t=0 0
 *   a=group:BUNDLE <mid of every non-closed section>     (RFC 9143)
 *   a=ice-lite                                           (RFC 8839 section 5.3)
 *   a=extmap-allow-mixed
 *   a=msid-semantic: WMS *
 *   m=<kind> 9 UDP/TLS/RTP/SAVPF <pts>                   (closed: port 0, one pt, and
 *                                                         only the transport attributes)
 *   c=IN IP4 0.0.0.0
 *   a=rtcp:9 IN IP4 0.0.0.0
 *   a=ice-ufrag / a=ice-pwd / a=fingerprint / a=setup:actpass / a=mid
 *   a=extmap:<fixed ids>
 *   a=recvonly (RECV) | a=sendonly + a=msid (FORWARD)
 *   a=rtcp-mux, a=rtcp-rsize (video)
 *   a=rtpmap / a=rtcp-fb / a=fmtp per codec
 *   a=ssrc-group:FID, a=ssrc (FORWARD with a known SSRC; RFC 5576)
 *   a=candidate ... typ host, a=end-of-candidates        (RFC 8839 section 5.1)
 *   a=candidate ... tcp ... typ host tcptype passive      (RFC 6544 section 4.5)
 * ------------------------------------------------------------------------------------- */

/* Bounded appender: never writes past size, keeps the text NUL-terminated, and
 * remembers that something did not fit. */
typedef struct {
    char *buf;
    size_t size;
    size_t len;
    bool full;
} writer_t;

static void put_str(writer_t *w, const char *s)
{
    size_t n = strlen(s);
    if (w->full || n >= w->size - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void put_fmt(writer_t *w, const char *fmt, ...)
{
    if (w->full || w->len >= w->size) {
        w->full = true;
        return;
    }
    size_t room = w->size - w->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->buf + w->len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        w->buf[w->len] = '\0';
        w->full = true;
        return;
    }
    w->len += (size_t)n;
}

typedef struct {
    int pt;
    int rtx_pt;
    const char *name;
    const char *fmtp; /* NULL: none */
} video_codec_t;

/* Indexed by hk_video_codec_t. */
static const video_codec_t video_codecs[] = {
    [HK_VIDEO_VP8] = {HK_PT_VP8, HK_PT_VP8_RTX, "VP8", NULL},
    [HK_VIDEO_VP9] = {HK_PT_VP9, HK_PT_VP9_RTX, "VP9", "profile-id=0"},
    [HK_VIDEO_H264] = {HK_PT_H264, HK_PT_H264_RTX, "H264",
                       "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
    [HK_VIDEO_AV1] = {HK_PT_AV1, HK_PT_AV1_RTX, "AV1", NULL},
};
#define N_VIDEO_CODECS (sizeof video_codecs / sizeof video_codecs[0])

int hk_sdp_rtx_pt(int pt)
{
    for (size_t i = 0; i < N_VIDEO_CODECS; i++)
        if (video_codecs[i].pt == pt)
            return video_codecs[i].rtx_pt;
    return -1;
}

/* The preferred codec first, then the others in enum order. */
static void video_codec_order(hk_video_codec_t preferred, const video_codec_t *order[])
{
    size_t k = 0;
    order[k++] = &video_codecs[preferred];
    for (size_t i = 0; i < N_VIDEO_CODECS; i++) {
        if (i != (size_t)preferred)
            order[k++] = &video_codecs[i];
    }
}

/* NUL within cap, 1..cap-1 bytes, each printable and not a space. */
static bool valid_id(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    if (!end || end == s)
        return false;
    for (const char *c = s; c < end; c++) {
        if (*c <= 0x20 || *c > 0x7e)
            return false;
    }
    return true;
}

static bool valid_address(const char *s)
{
    unsigned char tmp[16];
    if (!s || !memchr(s, '\0', INET6_ADDRSTRLEN))
        return false;
    return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

static int validate_offer(const hk_sdp_offer_t *o)
{
    if (!o->ice_ufrag || !o->ice_pwd || !o->fingerprint || !o->sections)
        return HK_EINVAL;
    if (o->n_sections == 0 || o->n_sections > HK_SDP_MAX_MEDIA)
        return HK_EINVAL;
    if (o->n_candidates > HK_SDP_MAX_CANDIDATES)
        return HK_EINVAL;
    if ((unsigned)o->preferred_video >= N_VIDEO_CODECS)
        return HK_EINVAL;
    size_t n = strnlen(o->ice_ufrag, 257);
    if (!is_ice_chars((slice_t){o->ice_ufrag, n}, 4, 256))
        return HK_EINVAL;
    n = strnlen(o->ice_pwd, 257);
    if (!is_ice_chars((slice_t){o->ice_pwd, n}, 22, 256))
        return HK_EINVAL;
    n = strnlen(o->fingerprint, 256);
    char alg[16];
    uint8_t bytes[64];
    size_t bytes_len;
    if (n == 256 || decode_fingerprint((slice_t){o->fingerprint, n}, alg, bytes, &bytes_len))
        return HK_EINVAL;
    if (memchr(o->fingerprint, ' ', n) != strrchr(o->fingerprint, ' '))
        return HK_EINVAL; /* exactly one space: written verbatim */
    for (size_t i = 0; i < o->n_candidates; i++) {
        if (!valid_address(o->candidate_addresses[i]))
            return HK_EINVAL;
    }
    for (size_t i = 0; i < o->n_sections; i++) {
        const hk_sdp_section_t *s = &o->sections[i];
        if ((unsigned)s->type > HK_SECTION_CLOSED || (unsigned)s->kind > HK_MEDIA_VIDEO)
            return HK_EINVAL;
        if (s->simulcast_rids && (s->type != HK_SECTION_RECV || s->kind != HK_MEDIA_VIDEO ||
                                  s->simulcast_rids >> HK_SIMULCAST_MAX_LAYERS))
            return HK_EINVAL; /* simulcast is received, on video, with Sora's rids */
        if (!valid_id(s->mid, sizeof s->mid))
            return HK_EINVAL;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(o->sections[j].mid, s->mid) == 0)
                return HK_EINVAL;
        }
        if (s->type != HK_SECTION_FORWARD || s->stream_id[0] == '\0')
            continue;
        if (!valid_id(s->stream_id, sizeof s->stream_id) ||
            !valid_id(s->track_id, sizeof s->track_id))
            return HK_EINVAL;
        if (s->ssrc != 0 && !valid_id(s->cname, sizeof s->cname))
            return HK_EINVAL;
    }
    return 0;
}

static void write_ssrc_lines(writer_t *w, const hk_sdp_section_t *s, uint32_t ssrc)
{
    put_fmt(w, "a=ssrc:%" PRIu32 " cname:%s\r\n", ssrc, s->cname);
    put_fmt(w, "a=ssrc:%" PRIu32 " msid:%s %s\r\n", ssrc, s->stream_id, s->track_id);
}

static void write_closed_section(writer_t *w, const hk_sdp_offer_t *o, const hk_sdp_section_t *s)
{
    if (s->kind == HK_MEDIA_AUDIO) {
        put_fmt(w, "m=audio 0 UDP/TLS/RTP/SAVPF %d\r\n", HK_PT_OPUS);
    } else {
        put_fmt(w, "m=video 0 UDP/TLS/RTP/SAVPF %d\r\n", video_codecs[o->preferred_video].pt);
    }
    put_str(w, "c=IN IP4 0.0.0.0\r\n");
    /* Strict stacks (aiortc) refuse a rejected section without the transport attributes. */
    put_fmt(w, "a=ice-ufrag:%s\r\n", o->ice_ufrag);
    put_fmt(w, "a=ice-pwd:%s\r\n", o->ice_pwd);
    put_fmt(w, "a=fingerprint:%s\r\n", o->fingerprint);
    put_str(w, "a=setup:actpass\r\n");
    put_fmt(w, "a=mid:%s\r\n", s->mid);
    put_str(w, "a=inactive\r\n");
    put_str(w, "a=rtcp-mux\r\n");
    if (s->kind == HK_MEDIA_AUDIO) {
        put_fmt(w, "a=rtpmap:%d opus/48000/2\r\n", HK_PT_OPUS);
    } else {
        const video_codec_t *c = &video_codecs[o->preferred_video];
        put_fmt(w, "a=rtpmap:%d %s/90000\r\n", c->pt, c->name);
    }
}

static void write_section(writer_t *w, const hk_sdp_offer_t *o, const hk_sdp_section_t *s)
{
    bool video = s->kind == HK_MEDIA_VIDEO;
    const video_codec_t *order[N_VIDEO_CODECS];
    video_codec_order(o->preferred_video, order);

    if (video) {
        put_str(w, "m=video 9 UDP/TLS/RTP/SAVPF");
        for (size_t i = 0; i < N_VIDEO_CODECS; i++)
            put_fmt(w, " %d %d", order[i]->pt, order[i]->rtx_pt);
        put_str(w, "\r\n");
    } else {
        put_fmt(w, "m=audio 9 UDP/TLS/RTP/SAVPF %d\r\n", HK_PT_OPUS);
    }
    put_str(w, "c=IN IP4 0.0.0.0\r\n");
    put_str(w, "a=rtcp:9 IN IP4 0.0.0.0\r\n");
    put_fmt(w, "a=ice-ufrag:%s\r\n", o->ice_ufrag);
    put_fmt(w, "a=ice-pwd:%s\r\n", o->ice_pwd);
    put_fmt(w, "a=fingerprint:%s\r\n", o->fingerprint);
    put_str(w, "a=setup:actpass\r\n");
    put_fmt(w, "a=mid:%s\r\n", s->mid);
    put_fmt(w, "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:mid\r\n", HK_EXT_MID);
    put_fmt(w, "a=extmap:%d http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n",
            HK_EXT_ABS_SEND_TIME);
    put_fmt(w,
            "a=extmap:%d "
            "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n",
            HK_EXT_TRANSPORT_CC);
    if (!video && !o->e2ee)
        put_fmt(w, "a=extmap:%d urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
                HK_EXT_AUDIO_LEVEL);
    if (video && o->e2ee)
        put_fmt(w,
                "a=extmap:%d https://aomediacodec.github.io/av1-rtp-spec/"
                "#dependency-descriptor-rtp-header-extension\r\n",
                HK_EXT_DEPENDENCY_DESCRIPTOR);
    if (s->type == HK_SECTION_RECV && video && s->simulcast_rids) {
        put_fmt(w, "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", HK_EXT_RID);
        put_fmt(w, "a=extmap:%d urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n",
                HK_EXT_REPAIRED_RID);
    }
    if (s->type == HK_SECTION_RECV) {
        put_str(w, "a=recvonly\r\n");
    } else if (s->stream_id[0] == '\0') {
        put_str(w, "a=inactive\r\n"); /* idle FORWARD: no publisher yet */
    } else {
        put_str(w, "a=sendonly\r\n");
        put_fmt(w, "a=msid:%s %s\r\n", s->stream_id, s->track_id);
    }
    put_str(w, "a=rtcp-mux\r\n");
    if (video) {
        put_str(w, "a=rtcp-rsize\r\n");
        for (size_t i = 0; i < N_VIDEO_CODECS; i++) {
            const video_codec_t *c = order[i];
            put_fmt(w, "a=rtpmap:%d %s/90000\r\n", c->pt, c->name);
            put_fmt(w, "a=rtcp-fb:%d goog-remb\r\n", c->pt);
            put_fmt(w, "a=rtcp-fb:%d transport-cc\r\n", c->pt);
            put_fmt(w, "a=rtcp-fb:%d ccm fir\r\n", c->pt);
            put_fmt(w, "a=rtcp-fb:%d nack\r\n", c->pt);
            put_fmt(w, "a=rtcp-fb:%d nack pli\r\n", c->pt);
            if (c->fmtp)
                put_fmt(w, "a=fmtp:%d %s\r\n", c->pt, c->fmtp);
            put_fmt(w, "a=rtpmap:%d rtx/90000\r\n", c->rtx_pt);
            put_fmt(w, "a=fmtp:%d apt=%d\r\n", c->rtx_pt, c->pt);
        }
    } else {
        put_fmt(w, "a=rtpmap:%d opus/48000/2\r\n", HK_PT_OPUS);
        put_fmt(w, "a=rtcp-fb:%d transport-cc\r\n", HK_PT_OPUS);
        put_fmt(w, "a=fmtp:%d minptime=10;useinbandfec=1\r\n", HK_PT_OPUS);
    }
    if (s->type == HK_SECTION_RECV && video && s->simulcast_rids) {
        /* RFC 8853 §5.1: the layers we take, smallest first (Sora's order). */
        for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++)
            if (s->simulcast_rids & (1u << i))
                put_fmt(w, "a=rid:r%d recv\r\n", i);
        put_str(w, "a=simulcast:recv ");
        bool first = true;
        for (int i = 0; i < HK_SIMULCAST_MAX_LAYERS; i++)
            if (s->simulcast_rids & (1u << i)) {
                put_fmt(w, first ? "r%d" : ";r%d", i);
                first = false;
            }
        put_str(w, "\r\n");
    }
    if (s->type == HK_SECTION_FORWARD && s->stream_id[0] && s->ssrc != 0) {
        if (s->rtx_ssrc != 0)
            put_fmt(w, "a=ssrc-group:FID %" PRIu32 " %" PRIu32 "\r\n", s->ssrc, s->rtx_ssrc);
        write_ssrc_lines(w, s, s->ssrc);
        if (s->rtx_ssrc != 0)
            write_ssrc_lines(w, s, s->rtx_ssrc);
    }
    /* RFC 8445 section 5.1.2.1: priority = 2^24 * type pref (126 for host)
     * + 2^8 * local pref + (256 - component id). */
    for (size_t i = 0; i < o->n_candidates; i++) {
        uint32_t priority = (126u << 24) + ((uint32_t)(65535 - i) << 8) + 255u;
        put_fmt(w, "a=candidate:%zu 1 udp %" PRIu32 " %s %u typ host generation 0\r\n", i + 1,
                priority, o->candidate_addresses[i], (unsigned)o->media_port);
    }
    /* RFC 6544 section 4.2: local preference = 2^13 * direction pref (passive host: 4)
     * + other pref, below every UDP candidate's; each its own foundation. */
    for (size_t i = 0; o->media_tcp_port && i < o->n_candidates; i++) {
        uint32_t local = (4u << 13) + (uint32_t)(8191 - i);
        uint32_t priority = (126u << 24) + (local << 8) + 255u;
        put_fmt(w,
                "a=candidate:%zu 1 tcp %" PRIu32 " %s %u typ host tcptype passive generation 0\r\n",
                o->n_candidates + i + 1, priority, o->candidate_addresses[i],
                (unsigned)o->media_tcp_port);
    }
    put_str(w, "a=end-of-candidates\r\n");
}

int hk_sdp_write_offer(const hk_sdp_offer_t *offer, char *buf, size_t size)
{
    if (!offer || (!buf && size > 0))
        return HK_EINVAL;
    int rc = validate_offer(offer);
    if (rc != 0)
        return rc;

    writer_t w = {buf, size, 0, false};
    put_str(&w, "v=0\r\n");
    put_fmt(&w, "o=- %" PRIu64 " %" PRIu64 " IN IP4 0.0.0.0\r\n", offer->session_id,
            offer->session_version);
    put_str(&w, "s=-\r\nt=0 0\r\n");
    bool any_bundled = false;
    for (size_t i = 0; i < offer->n_sections; i++) {
        const hk_sdp_section_t *s = &offer->sections[i];
        if (s->type == HK_SECTION_CLOSED)
            continue;
        put_str(&w, any_bundled ? " " : "a=group:BUNDLE ");
        put_str(&w, s->mid);
        any_bundled = true;
    }
    if (any_bundled)
        put_str(&w, "\r\n");
    put_str(&w, "a=ice-lite\r\n");
    put_str(&w, "a=extmap-allow-mixed\r\n");
    put_str(&w, "a=msid-semantic: WMS *\r\n");
    for (size_t i = 0; i < offer->n_sections; i++) {
        const hk_sdp_section_t *s = &offer->sections[i];
        if (s->type == HK_SECTION_CLOSED)
            write_closed_section(&w, offer, s);
        else
            write_section(&w, offer, s);
    }
    if (w.full || w.len > INT_MAX) {
        if (size > 0)
            buf[0] = '\0';
        return HK_ENOSPC;
    }
    return (int)w.len;
}

/* ---------------------------------------------------------------------------------------
 * Answer parser
 *
 * RFC 8866 section 5: the text is a sequence of "<type>=<value>" lines; the session
 * part runs up to the first "m=" line, each "m=" line opens a media section:
 *
 *   m=<media> <port>[/<count>] <proto> <fmt> ...
 *   a=<attribute>[:<value>]
 *
 * Lines may end in CRLF or LF. Only the attributes the SFU needs are read.
 * ------------------------------------------------------------------------------------- */

typedef struct {
    hk_sdp_answer_t *out;
    hk_direction_t session_direction;
    bool skip[HK_SDP_MAX_MEDIA]; /* m= lines that are neither audio nor video */
    /* State of the section being parsed. */
    hk_sdp_media_t *cur;
    bool have_mid, have_msid, have_first_ssrc, have_fid;
    uint32_t first_ssrc, fid_ssrc, fid_rtx_ssrc;
} parser_t;

static void finish_section(parser_t *ps)
{
    if (!ps->cur)
        return;
    if (ps->have_fid) {
        ps->cur->ssrc = ps->fid_ssrc;
        ps->cur->rtx_ssrc = ps->fid_rtx_ssrc;
    } else if (ps->have_first_ssrc) {
        ps->cur->ssrc = ps->first_ssrc;
    }
    ps->cur = NULL;
}

static const char *parse_m_line(parser_t *ps, slice_t rest)
{
    slice_t media, port, proto, fmt;
    if (!next_token(&rest, &media) || !next_token(&rest, &port) || !next_token(&rest, &proto))
        return "malformed m= line";
    finish_section(ps);
    hk_sdp_answer_t *out = ps->out;
    if (out->n_media == HK_SDP_MAX_MEDIA)
        return "too many m= lines";

    /* port ["/" integer] */
    slice_t port_number = port;
    const char *slash = memchr(port.p, '/', port.n);
    uint64_t value;
    if (slash) {
        port_number.n = (size_t)(slash - port.p);
        slice_t count = {slash + 1, port.n - port_number.n - 1};
        if (!parse_uint(count, 65535, &value))
            return "bad port in m= line";
    }
    if (!parse_uint(port_number, 65535, &value))
        return "bad port in m= line";

    size_t index = out->n_media++;
    hk_sdp_media_t *m = &out->media[index];
    memset(m, 0, sizeof *m);
    m->rejected = value == 0;
    m->direction = ps->session_direction;
    m->payload_type = -1;
    if (slice_eq(media, "audio")) {
        m->kind = HK_MEDIA_AUDIO;
    } else if (slice_eq(media, "video")) {
        m->kind = HK_MEDIA_VIDEO;
    } else {
        ps->skip[index] = true;
    }
    if (!ps->skip[index]) {
        while (next_token(&rest, &fmt)) {
            if (!parse_uint(fmt, 127, &value))
                return "bad payload type in m= line";
            if (m->n_payload_types == 0)
                m->payload_type = (int)value;
            m->n_payload_types++;
        }
    }
    ps->cur = m;
    ps->have_mid = ps->have_msid = ps->have_first_ssrc = ps->have_fid = false;
    return NULL;
}

/* Copies a session-wide value, or checks that it equals the one already seen. */
static const char *merge_value(char *dst, size_t cap, slice_t v, const char *conflict)
{
    if (v.n >= cap)
        return "attribute value too long";
    if (dst[0] == '\0') {
        memcpy(dst, v.p, v.n);
        dst[v.n] = '\0';
        return NULL;
    }
    if (strlen(dst) != v.n || memcmp(dst, v.p, v.n) != 0)
        return conflict;
    return NULL;
}

static const char *copy_id(char *dst, size_t cap, slice_t v)
{
    if (v.n == 0 || v.n >= cap)
        return "bad msid";
    memcpy(dst, v.p, v.n);
    dst[v.n] = '\0';
    return NULL;
}

/* RFC 5576 section 4.1:  a=ssrc:<ssrc-id> <attribute>[:<value>] */
static const char *parse_ssrc(parser_t *ps, slice_t value)
{
    slice_t rest = value, id;
    uint64_t ssrc;
    if (!next_token(&rest, &id) || !parse_uint(id, UINT32_MAX, &ssrc))
        return "bad a=ssrc";
    if (ps->cur && !ps->have_first_ssrc) {
        ps->first_ssrc = (uint32_t)ssrc;
        ps->have_first_ssrc = true;
    }
    return NULL;
}

/* RFC 5576 section 4.2:  a=ssrc-group:<semantics> <ssrc-id> ... ; FID pairs media and
 * RTX (RFC 4588 section 8.1). */
static const char *parse_ssrc_group(parser_t *ps, slice_t value)
{
    slice_t rest = value, semantics, id;
    uint64_t ssrcs[2] = {0, 0};
    size_t n = 0;
    if (!next_token(&rest, &semantics))
        return "bad a=ssrc-group";
    while (next_token(&rest, &id)) {
        uint64_t ssrc;
        if (!parse_uint(id, UINT32_MAX, &ssrc))
            return "bad a=ssrc-group";
        if (n < 2)
            ssrcs[n] = ssrc;
        n++;
    }
    if (!slice_eq(semantics, "FID"))
        return NULL;
    if (n != 2)
        return "a=ssrc-group:FID needs two SSRCs";
    if (ps->cur && !ps->have_fid) {
        ps->fid_ssrc = (uint32_t)ssrcs[0];
        ps->fid_rtx_ssrc = (uint32_t)ssrcs[1];
        ps->have_fid = true;
    }
    return NULL;
}

/* RFC 8853 §5.1: a=simulcast:send <alt-list>[;<alt-list>...] [recv ...]; alternatives
 * are separated by ',' and a '~' marks a paused stream. Only Sora's rids r0..r2 in the
 * send direction are recorded (the first alternative of each stream). */
static const char *parse_simulcast(hk_sdp_media_t *m, slice_t value)
{
    slice_t rest = value, dir, list;
    while (next_token(&rest, &dir)) {
        if (!next_token(&rest, &list))
            return "bad a=simulcast";
        if (!slice_eq(dir, "send"))
            continue;
        size_t i = 0;
        while (i < list.n) {
            size_t start = i;
            while (i < list.n && list.p[i] != ';')
                i++;
            slice_t stream = {list.p + start, i - start};
            const char *comma = memchr(stream.p, ',', stream.n);
            if (comma)
                stream.n = (size_t)(comma - stream.p);
            if (stream.n == 2 && stream.p[0] == 'r' && stream.p[1] >= '0' &&
                stream.p[1] < '0' + HK_SIMULCAST_MAX_LAYERS)
                m->simulcast_rids |= (uint8_t)(1u << (stream.p[1] - '0'));
            i++; /* past ';' */
        }
    }
    return NULL;
}

static const char *parse_attribute(parser_t *ps, slice_t attr)
{
    const char *colon = memchr(attr.p, ':', attr.n);
    slice_t name = attr, value = {attr.p + attr.n, 0};
    if (colon) {
        name.n = (size_t)(colon - attr.p);
        value.p = colon + 1;
        value.n = attr.n - name.n - 1;
    }
    hk_sdp_media_t *m = ps->cur;
    hk_sdp_answer_t *out = ps->out;
    /* Transport attributes of rejected sections describe nothing. */
    bool transport = !m || !m->rejected;

    static const struct {
        const char *name;
        hk_direction_t direction;
    } directions[] = {
        {"sendrecv", HK_DIR_SENDRECV},
        {"sendonly", HK_DIR_SENDONLY},
        {"recvonly", HK_DIR_RECVONLY},
        {"inactive", HK_DIR_INACTIVE},
    };
    for (size_t i = 0; i < sizeof directions / sizeof directions[0]; i++) {
        if (slice_eq(name, directions[i].name)) {
            if (m)
                m->direction = directions[i].direction;
            else
                ps->session_direction = directions[i].direction;
            return NULL;
        }
    }

    if (slice_eq(name, "mid")) {
        if (!m)
            return NULL;
        if (ps->have_mid)
            return "two a=mid in one section";
        if (value.n == 0 || value.n >= HK_SDP_MID_LEN || memchr(value.p, ' ', value.n))
            return "bad a=mid";
        memcpy(m->mid, value.p, value.n);
        m->mid[value.n] = '\0';
        ps->have_mid = true;
        return NULL;
    }
    if (slice_eq(name, "msid")) {
        /* RFC 8830 section 2: msid-value = msid-id [ SP msid-appdata ] */
        slice_t rest = value, stream, track;
        if (!m || ps->have_msid)
            return NULL;
        if (!next_token(&rest, &stream))
            return "bad msid";
        const char *e = copy_id(m->stream_id, sizeof m->stream_id, stream);
        if (!e && next_token(&rest, &track))
            e = copy_id(m->track_id, sizeof m->track_id, track);
        ps->have_msid = true;
        return e;
    }
    if (slice_eq(name, "simulcast"))
        return m ? parse_simulcast(m, value) : NULL;
    if (slice_eq(name, "ssrc"))
        return parse_ssrc(ps, value);
    if (slice_eq(name, "ssrc-group"))
        return parse_ssrc_group(ps, value);
    if (slice_eq(name, "ice-ufrag")) {
        if (!transport)
            return NULL;
        if (!is_ice_chars(value, 4, 256))
            return "bad a=ice-ufrag";
        return merge_value(out->ice_ufrag, sizeof out->ice_ufrag, value, "conflicting ice-ufrag");
    }
    if (slice_eq(name, "ice-pwd")) {
        if (!transport)
            return NULL;
        if (!is_ice_chars(value, 22, 256))
            return "bad a=ice-pwd";
        return merge_value(out->ice_pwd, sizeof out->ice_pwd, value, "conflicting ice-pwd");
    }
    if (slice_eq(name, "fingerprint")) {
        if (!transport)
            return NULL;
        char algorithm[16];
        uint8_t bytes[64];
        size_t bytes_len = 0;
        const char *e = decode_fingerprint(value, algorithm, bytes, &bytes_len);
        if (e)
            return e;
        if (out->fingerprint_len == 0) {
            memcpy(out->fingerprint_algorithm, algorithm, sizeof algorithm);
            memcpy(out->fingerprint, bytes, bytes_len);
            out->fingerprint_len = bytes_len;
        } else if (strcmp(out->fingerprint_algorithm, algorithm) != 0 ||
                   out->fingerprint_len != bytes_len ||
                   memcmp(out->fingerprint, bytes, bytes_len) != 0) {
            return "conflicting fingerprint";
        }
        return NULL;
    }
    if (slice_eq(name, "setup")) {
        /* RFC 4145 section 4: active / passive / actpass / holdconn */
        if (!transport)
            return NULL;
        if (!slice_eq(value, "active") && !slice_eq(value, "passive") &&
            !slice_eq(value, "actpass") && !slice_eq(value, "holdconn"))
            return "bad a=setup";
        return merge_value(out->setup, sizeof out->setup, value, "conflicting a=setup");
    }
    return NULL;
}

static const char *parse_lines(parser_t *ps, const char *sdp, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *line = sdp + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n > MAX_LINE)
            return "line too long";
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x20 || c > 0x7e)
                return "non-printable byte";
        }
        if (n == 0)
            continue;
        if (n < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z')
            return "malformed line";
        slice_t value = {line + 2, n - 2};
        const char *e = NULL;
        if (line[0] == 'm')
            e = parse_m_line(ps, value);
        else if (line[0] == 'a')
            e = parse_attribute(ps, value);
        if (e)
            return e;
    }
    finish_section(ps);
    return NULL;
}

static const char *check_answer(parser_t *ps)
{
    hk_sdp_answer_t *out = ps->out;
    if (out->n_media == 0)
        return "no m= line";
    if (out->ice_ufrag[0] == '\0')
        return "missing a=ice-ufrag";
    if (out->ice_pwd[0] == '\0')
        return "missing a=ice-pwd";
    if (out->fingerprint_len == 0)
        return "missing a=fingerprint";
    for (size_t i = 0; i < out->n_media; i++) {
        if (out->media[i].mid[0] == '\0')
            continue;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out->media[i].mid, out->media[j].mid) == 0)
                return "duplicate mid";
        }
    }
    /* Drop the sections that are neither audio nor video. */
    size_t k = 0;
    for (size_t i = 0; i < out->n_media; i++) {
        if (ps->skip[i])
            continue;
        if (k != i)
            out->media[k] = out->media[i];
        k++;
    }
    out->n_media = k;
    if (k == 0)
        return "no audio or video m= line";
    return NULL;
}

int hk_sdp_parse_answer(const char *sdp, size_t len, size_t max_size, hk_sdp_answer_t *out,
                        const char **err)
{
    const char *unused;
    if (!err)
        err = &unused;
    *err = NULL;
    if (!out || (!sdp && len > 0)) {
        *err = "no input or output";
        return HK_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (len > max_size) {
        *err = "answer too large";
        return HK_EINVAL;
    }
    parser_t ps;
    memset(&ps, 0, sizeof ps);
    ps.out = out;
    ps.session_direction = HK_DIR_SENDRECV; /* RFC 8866 section 6.7 default */
    const char *e = parse_lines(&ps, sdp, len);
    if (!e)
        e = check_answer(&ps);
    if (e) {
        *err = e;
        memset(out, 0, sizeof *out);
        return HK_EINVAL;
    }
    return 0;
}

const hk_sdp_media_t *hk_sdp_answer_find(const hk_sdp_answer_t *answer, const char *mid)
{
    if (!answer || !mid || mid[0] == '\0')
        return NULL;
    for (size_t i = 0; i < answer->n_media && i < HK_SDP_MAX_MEDIA; i++) {
        if (strcmp(answer->media[i].mid, mid) == 0)
            return &answer->media[i];
    }
    return NULL;
}
