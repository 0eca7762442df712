/* RTCP (RFC 3550 §6) compound parsing and building, with the feedback messages a
 * WebRTC SFU needs: generic NACK and PLI (RFC 4585 §6), FIR (RFC 5104 §4.3.1), REMB
 * (draft-alvestrand-rmcat-remb-03) and transport-wide congestion control feedback
 * (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
 *
 * Pure: no I/O, no globals, no allocation. Parsers take views into the caller's
 * buffer; builders write into a caller buffer and return the length written or
 * HK_ENOSPC. Every count field is checked against the packet length. */
#ifndef HK_RTCP_H
#define HK_RTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_RTCP_SR    200
#define HK_RTCP_RR    201
#define HK_RTCP_SDES  202
#define HK_RTCP_BYE   203
#define HK_RTCP_APP   204
#define HK_RTCP_RTPFB 205
#define HK_RTCP_PSFB  206

#define HK_RTCP_FMT_NACK 1  /* RTPFB */
#define HK_RTCP_FMT_TWCC 15 /* RTPFB */
#define HK_RTCP_FMT_PLI  1  /* PSFB */
#define HK_RTCP_FMT_FIR  4  /* PSFB */
#define HK_RTCP_FMT_AFB  15 /* PSFB: application layer feedback (REMB) */

#define HK_RTCP_MAX_REPORTS   31 /* 5-bit count */
#define HK_RTCP_MAX_REMB_SSRC 16

/* One packet of a compound, as returned by hk_rtcp_next. */
typedef struct {
    uint8_t version;
    bool padding;
    uint8_t count; /* RC, SC or FMT: the 5 low bits of the first byte */
    uint8_t type;  /* packet type, 200..206 ... */
    uint16_t length_words;
    const uint8_t *data; /* the whole packet, header included */
    size_t len;          /* (length_words + 1) * 4 */
    const uint8_t *body; /* after the 4-byte header */
    size_t body_len;     /* without padding */
} hk_rtcp_packet_t;

/* Iterates over the compound packet buf[0..len): set *offset to 0 before the first
 * call. Returns 1 with *out filled and *offset advanced by at least 4 bytes, 0 at the
 * end, or HK_EINVAL (with *err) for a compound shorter than 8 bytes, a version other
 * than 2, trailing bytes shorter than a header, `length*4+4` past the end, or a padding
 * count larger than the packet. A header with length 0 is a 4-byte packet with an
 * empty body: the typed parsers below refuse it, the loop still advances. */
int hk_rtcp_next(const uint8_t *buf, size_t len, size_t *offset, hk_rtcp_packet_t *out,
                 const char **err);

/* RFC 3550 §6.4.1 report block. */
typedef struct {
    uint32_t ssrc;
    uint8_t fraction_lost;
    int32_t cumulative_lost; /* 24-bit signed */
    uint32_t highest_seq;    /* extended highest sequence number received */
    uint32_t jitter;
    uint32_t lsr;
    uint32_t dlsr;
} hk_rtcp_report_block_t;

/* Sender report (with has_sender_info) or receiver report. */
typedef struct {
    uint32_t ssrc;
    bool has_sender_info;
    uint32_t ntp_sec;
    uint32_t ntp_frac;
    uint32_t rtp_timestamp;
    uint32_t packet_count;
    uint32_t octet_count;
    uint8_t report_count;
    hk_rtcp_report_block_t reports[HK_RTCP_MAX_REPORTS];
} hk_rtcp_report_t;

/* Parses an SR (§6.4.1) or an RR (§6.4.2). Profile-specific extensions after the
 * report blocks are ignored. Returns 0 or HK_EINVAL. */
int hk_rtcp_parse_report(const hk_rtcp_packet_t *pkt, hk_rtcp_report_t *out, const char **err);

/* Validates an SDES packet (§6.5): each of the `count` chunks has an SSRC, items
 * within bounds and a null terminator padded to 32 bits. Sets *first_ssrc (0 if no
 * chunk). Returns 0 or HK_EINVAL. */
int hk_rtcp_parse_sdes(const hk_rtcp_packet_t *pkt, uint32_t *first_ssrc, const char **err);

/* Parses a BYE (§6.6): up to `max` SSRCs into ssrcs, *n the number listed in the
 * packet (possibly more than max). The optional reason is bounds-checked. */
int hk_rtcp_parse_bye(const hk_rtcp_packet_t *pkt, uint32_t *ssrcs, size_t max, size_t *n,
                      const char **err);

/* RFC 4585 §6.1 common feedback header (RTPFB and PSFB). */
typedef struct {
    uint8_t fmt;
    uint32_t sender_ssrc;
    uint32_t media_ssrc;
    const uint8_t *fci;
    size_t fci_len;
} hk_rtcp_fb_t;

/* Parses the feedback header of an RTPFB or PSFB packet. Returns 0 or HK_EINVAL. */
int hk_rtcp_parse_fb(const hk_rtcp_packet_t *pkt, hk_rtcp_fb_t *out, const char **err);

/* RFC 4585 §6.2.1 generic NACK: expands the PID/BLP pairs into sequence numbers,
 * storing at most `max` into seqs. Returns the number of sequence numbers the packet
 * lists (may exceed max; only max are stored), or HK_EINVAL. */
int hk_rtcp_parse_nack(const hk_rtcp_fb_t *fb, uint16_t *seqs, size_t max, const char **err);

/* RFC 5104 §4.3.1 FIR entry. */
typedef struct {
    uint32_t ssrc;
    uint8_t seq;
} hk_rtcp_fir_entry_t;

/* Parses FIR entries, at most `max` stored. Returns the number of entries in the
 * packet (at least 1), or HK_EINVAL. */
int hk_rtcp_parse_fir(const hk_rtcp_fb_t *fb, hk_rtcp_fir_entry_t *entries, size_t max,
                      const char **err);

/* REMB (draft-alvestrand-rmcat-remb-03 §2.2). */
typedef struct {
    uint64_t bitrate; /* bits per second, saturated at UINT64_MAX */
    uint8_t ssrc_count;
    uint32_t ssrcs[HK_RTCP_MAX_REMB_SSRC]; /* the first HK_RTCP_MAX_REMB_SSRC */
} hk_rtcp_remb_t;

/* Parses a PSFB FMT 15 packet as REMB. Returns 0, HK_ENOENT if the application
 * feedback is not 'REMB', or HK_EINVAL (SSRC count past the end). */
int hk_rtcp_parse_remb(const hk_rtcp_fb_t *fb, hk_rtcp_remb_t *out, const char **err);

/* Transport-wide feedback header fields. */
typedef struct {
    uint16_t base_seq;
    uint16_t status_count;
    int32_t reference_time; /* 24-bit signed, multiples of 64 ms */
    uint8_t fb_count;
} hk_rtcp_twcc_t;

/* One packet's status in a transport-wide feedback. */
typedef struct {
    uint16_t seq;
    bool received;
    int32_t delta;      /* receive delta in 250 us ticks (received only) */
    int64_t arrival_us; /* reference_time * 64000 + sum of deltas * 250 (received only) */
} hk_rtcp_twcc_packet_t;

/* Parses a transport-wide feedback (RTPFB FMT 15): header into *out, then every one of
 * status_count packet statuses, storing the first `max` into pkts (pkts may be NULL
 * when max is 0). Chunk and delta counts are checked against the packet length;
 * a reserved 2-bit symbol (3) is refused. Returns status_count or HK_EINVAL. */
int hk_rtcp_parse_twcc(const hk_rtcp_fb_t *fb, hk_rtcp_twcc_t *out, hk_rtcp_twcc_packet_t *pkts,
                       size_t max, const char **err);

/* Builders: each writes one RTCP packet into buf[0..cap) and returns its length, or
 * HK_ENOSPC if it does not fit, or HK_EINVAL / HK_ERANGE for arguments that cannot be
 * encoded. */

/* SR (report->has_sender_info ignored: always written) with report->report_count blocks. */
int hk_rtcp_build_sr(uint8_t *buf, size_t cap, const hk_rtcp_report_t *report);

/* RR from `ssrc` with n report blocks (n <= 31). */
int hk_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t ssrc, const hk_rtcp_report_block_t *blocks,
                     size_t n);

/* PLI (RFC 4585 §6.3.1). */
int hk_rtcp_build_pli(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc);

/* FIR (RFC 5104 §4.3.1) with one entry for media_ssrc; media SSRC field 0. */
int hk_rtcp_build_fir(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      uint8_t seq);

/* Generic NACK for n sequence numbers (best packed when ascending): each run within
 * 16 of a PID shares one PID/BLP pair. n must be at least 1. */
int hk_rtcp_build_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       const uint16_t *seqs, size_t n);

/* REMB for bitrate (bits/s) applying to n SSRCs (n <= 255). */
int hk_rtcp_build_remb(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint64_t bitrate,
                       const uint32_t *ssrcs, size_t n);

/* Transport-wide feedback for n packet statuses in ascending sequence order (gaps are
 * reported as not received; at least one must be received, the first listed received
 * packet's arrival sets the reference time). Uses run-length chunks for runs and 1- or
 * 2-bit status vectors otherwise, small deltas (0..63.75 ms) when they fit and large
 * ones otherwise. Deltas are rounded to 250 us and accumulated without drift. Returns
 * HK_ERANGE if a delta does not fit in 16 bits or the span exceeds 65535 statuses. */
int hk_rtcp_build_twcc(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint8_t fb_count, const hk_rtcp_twcc_packet_t *pkts, size_t n);

/* What a receiver reports next: its n arrivals (in any order, repeats allowed; sorted in
 * place) from *next on, as hk_rtcp_build_twcc takes them: ascending, each number once, and
 * starting with *next reported lost when it did not arrive (so a loss just before the
 * first arrival counts). out holds n + 1 entries. Advances *next past the last arrival.
 * Returns the count (0 when n is 0). */
size_t hk_rtcp_twcc_report(hk_rtcp_twcc_packet_t *arrivals, size_t n, uint16_t *next,
                           hk_rtcp_twcc_packet_t *out);

#endif
