/* server/sdp: the offer writer against golden files, the answer parser against real
 * Chromium 156 answers (tools/gen-sdp-fixtures.mjs) and hand-made hostile answers.
 *
 * Regenerate the golden offers after an intended change of the writer:
 *   HK_UPDATE_GOLDEN=1 build/unit-tests sdp_offer_golden
 * then regenerate the Chromium answers (and check Chromium still accepts every offer):
 *   node tools/gen-sdp-fixtures.mjs */
#include "common/error.h"
#include "server/proto/sdp.h"
#include "tests/unit/unit.h"

#define FIXTURES "tests/unit/fixtures/sdp/"

/* ---- offer cases ------------------------------------------------------------------- */

static const char *const fixed_candidates[] = {"192.0.2.10", "2001:db8::10"};

#define PUB_A "0A1B2C3D4E5F6G7H8J9K0M1N2P"
#define PUB_B "3Q4R5S6T7V8W9X0Y1Z2A3B4C5D"

static hk_sdp_section_t recv_section(hk_media_kind_t kind, const char *mid)
{
    hk_sdp_section_t s;
    memset(&s, 0, sizeof s);
    s.type = HK_SECTION_RECV;
    s.kind = kind;
    snprintf(s.mid, sizeof s.mid, "%s", mid);
    return s;
}

static hk_sdp_section_t forward_section(hk_media_kind_t kind, const char *mid, const char *stream,
                                        const char *track, uint32_t ssrc, uint32_t rtx_ssrc)
{
    hk_sdp_section_t s = recv_section(kind, mid);
    s.type = HK_SECTION_FORWARD;
    snprintf(s.stream_id, sizeof s.stream_id, "%s", stream);
    snprintf(s.track_id, sizeof s.track_id, "%s", track);
    snprintf(s.cname, sizeof s.cname, "%s", stream);
    s.ssrc = ssrc;
    s.rtx_ssrc = rtx_ssrc;
    return s;
}

/* The six golden cases; fills sections (room for 8) and returns the offer. */
static hk_sdp_offer_t make_case(const char *name, hk_sdp_section_t *sec)
{
    hk_sdp_offer_t o;
    memset(&o, 0, sizeof o);
    o.session_id = 7123456789012345678ull;
    o.session_version = 2;
    o.ice_ufrag = "Hs0kUfrg";
    o.ice_pwd = "hisokaServerIcePassword1";
    o.fingerprint = "sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:"
                    "10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F";
    o.candidate_addresses[0] = fixed_candidates[0];
    o.candidate_addresses[1] = fixed_candidates[1];
    o.n_candidates = 2;
    o.media_port = 50000;
    o.preferred_video = HK_VIDEO_VP8;
    o.sections = sec;
    size_t n = 0;
    if (strcmp(name, "sendrecv") == 0) {
        sec[n++] = recv_section(HK_MEDIA_AUDIO, "0");
        sec[n++] = recv_section(HK_MEDIA_VIDEO, "1");
    } else if (strcmp(name, "sendrecv-2pub") == 0) {
        sec[n++] = recv_section(HK_MEDIA_AUDIO, "0");
        sec[n++] = recv_section(HK_MEDIA_VIDEO, "1");
        sec[n++] = forward_section(HK_MEDIA_AUDIO, "2", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000a", 11111111, 0);
        sec[n++] = forward_section(HK_MEDIA_VIDEO, "3", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000b", 22222222, 22222223);
        sec[n++] = forward_section(HK_MEDIA_AUDIO, "4", PUB_B,
                                   "b0000000-0000-4000-8000-00000000000a", 33333333, 0);
        /* SSRC not known yet: no a=ssrc lines */
        sec[n++] = forward_section(HK_MEDIA_VIDEO, "5", PUB_B,
                                   "b0000000-0000-4000-8000-00000000000b", 0, 0);
    } else if (strcmp(name, "recvonly-1pub") == 0) {
        sec[n++] = forward_section(HK_MEDIA_AUDIO, "0", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000a", 11111111, 0);
        sec[n++] = forward_section(HK_MEDIA_VIDEO, "1", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000b", 4294967295u, 1);
    } else if (strcmp(name, "sendonly") == 0) {
        o.preferred_video = HK_VIDEO_H264;
        o.media_tcp_port = 50000; /* passive ICE-TCP candidates too (RFC 6544) */
        sec[n++] = recv_section(HK_MEDIA_AUDIO, "0");
        sec[n++] = recv_section(HK_MEDIA_VIDEO, "1");
    } else if (strcmp(name, "e2ee") == 0) {
        o.e2ee = true;
        sec[n++] = recv_section(HK_MEDIA_AUDIO, "0");
        sec[n++] = recv_section(HK_MEDIA_VIDEO, "1");
        sec[n++] = forward_section(HK_MEDIA_AUDIO, "2", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000a", 11111111, 0);
        sec[n++] = forward_section(HK_MEDIA_VIDEO, "3", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000b", 22222222, 22222223);
    } else if (strcmp(name, "closed") == 0) {
        o.preferred_video = HK_VIDEO_VP9;
        sec[n++] = recv_section(HK_MEDIA_AUDIO, "0");
        sec[n++] = recv_section(HK_MEDIA_VIDEO, "1");
        sec[n++] = forward_section(HK_MEDIA_AUDIO, "2", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000a", 0, 0);
        sec[n++] = forward_section(HK_MEDIA_VIDEO, "3", PUB_A,
                                   "a0000000-0000-4000-8000-00000000000b", 0, 0);
        sec[n - 1].type = HK_SECTION_CLOSED;
    } else {
        fprintf(stderr, "unknown case %s\n", name);
        exit(1);
    }
    o.n_sections = n;
    return o;
}

static const char *const offer_cases[] = {
    "sendrecv", "sendrecv-2pub", "recvonly-1pub", "sendonly", "e2ee", "closed",
};
#define N_OFFER_CASES (sizeof offer_cases / sizeof offer_cases[0])

static char offer_buf[65536];

static size_t write_case(const char *name)
{
    hk_sdp_section_t sec[8];
    hk_sdp_offer_t o = make_case(name, sec);
    int n = hk_sdp_write_offer(&o, offer_buf, sizeof offer_buf);
    CHECK(n > 0);
    CHECK_INT_EQ(strlen(offer_buf), n);
    return (size_t)n;
}

TEST(sdp_offer_golden)
{
    const char *update = getenv("HK_UPDATE_GOLDEN");
    for (size_t c = 0; c < N_OFFER_CASES; c++) {
        size_t n = write_case(offer_cases[c]);
        char path[256];
        snprintf(path, sizeof path, FIXTURES "offer-%s.sdp", offer_cases[c]);
        if (update && strcmp(update, "1") == 0) {
            FILE *f = fopen(path, "wb");
            CHECK(f != NULL);
            CHECK_INT_EQ(fwrite(offer_buf, 1, n, f), n);
            CHECK_INT_EQ(fclose(f), 0);
            continue;
        }
        size_t golden_len;
        char *golden = hk_test_read_file(path, &golden_len);
        if (golden_len != n || memcmp(golden, offer_buf, n) != 0) {
            size_t i = 0;
            while (i < n && i < golden_len && golden[i] == offer_buf[i])
                i++;
            fprintf(stderr, "%s differs at byte %zu (written %zu, golden %zu bytes)\n", path, i, n,
                    golden_len);
            exit(1);
        }
        free(golden);
    }
}

/* Every line ends in CRLF; no bare CR or LF. */
TEST(sdp_offer_crlf_only)
{
    for (size_t c = 0; c < N_OFFER_CASES; c++) {
        size_t n = write_case(offer_cases[c]);
        CHECK(n >= 2 && offer_buf[n - 2] == '\r' && offer_buf[n - 1] == '\n');
        for (size_t i = 0; i < n; i++) {
            if (offer_buf[i] == '\r')
                CHECK(i + 1 < n && offer_buf[i + 1] == '\n');
            if (offer_buf[i] == '\n')
                CHECK(i > 0 && offer_buf[i - 1] == '\r');
        }
    }
}

TEST(sdp_offer_content)
{
    write_case("sendrecv-2pub");
    CHECK(strstr(offer_buf, "v=0\r\no=- 7123456789012345678 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                            "a=group:BUNDLE 0 1 2 3 4 5\r\na=ice-lite\r\n") == offer_buf);
    CHECK(strstr(offer_buf, "a=msid-semantic: WMS *\r\n"));
    CHECK(strstr(offer_buf, "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 102 103 104 105\r\n"));
    CHECK(strstr(offer_buf, "a=extmap:4 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"));
    CHECK(strstr(offer_buf, "a=msid:" PUB_A " a0000000-0000-4000-8000-00000000000b\r\n"));
    CHECK(strstr(offer_buf,
                 "a=ssrc-group:FID 22222222 22222223\r\n"
                 "a=ssrc:22222222 cname:" PUB_A "\r\n"
                 "a=ssrc:22222222 msid:" PUB_A " a0000000-0000-4000-8000-00000000000b\r\n"
                 "a=ssrc:22222223 cname:" PUB_A "\r\n"));
    CHECK(strstr(offer_buf, "a=candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host "
                            "generation 0\r\na=candidate:2 1 udp 2130706175 2001:db8::10 50000 "
                            "typ host generation 0\r\na=end-of-candidates\r\n"));
    CHECK(strstr(offer_buf, "a=ssrc:33333333 cname:") != NULL);
    /* publisher B's video: ssrc 0 -> no ssrc lines at all after its mid */
    const char *mid5 = strstr(offer_buf, "a=mid:5\r\n");
    CHECK(mid5 && !strstr(mid5, "a=ssrc"));

    write_case("sendonly"); /* H264 preferred: listed first with its RTX */
    CHECK(strstr(offer_buf, "m=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97 98 99 104 105\r\n"));

    write_case("e2ee");
    CHECK(!strstr(offer_buf, "audio-level"));

    write_case("closed");
    CHECK(strstr(offer_buf, "a=group:BUNDLE 0 1 2\r\n"));
    /* A rejected section keeps the transport attributes strict stacks (aiortc) require. */
    const char *closed = strstr(offer_buf, "m=video 0 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\n"
                                           "a=ice-ufrag:");
    CHECK(closed != NULL);
    CHECK(closed && strstr(closed, "a=ice-pwd:") && strstr(closed, "a=fingerprint:sha-256 ") &&
          strstr(closed, "a=setup:actpass\r\na=mid:3\r\na=inactive\r\na=rtcp-mux\r\n"
                         "a=rtpmap:98 VP9/90000\r\n"));
}

/* Every buffer size below the needed one: HK_ENOSPC and not one byte past size. */
TEST(sdp_offer_enospc_every_size)
{
    for (size_t c = 0; c < N_OFFER_CASES; c++) {
        size_t len = write_case(offer_cases[c]);
        char *expected = malloc(len + 1);
        memcpy(expected, offer_buf, len + 1);
        hk_sdp_section_t sec[8];
        hk_sdp_offer_t o = make_case(offer_cases[c], sec);
        const size_t guard = 16;
        char *buf = malloc(len + 1 + guard);
        for (size_t size = 0; size <= len + 1; size++) {
            memset(buf, 0xA5, len + 1 + guard);
            int rc = hk_sdp_write_offer(&o, size ? buf : NULL, size);
            for (size_t i = size; i < len + 1 + guard; i++)
                CHECK((unsigned char)buf[i] == 0xA5);
            if (size <= len) {
                CHECK_INT_EQ(rc, HK_ENOSPC);
                if (size > 0)
                    CHECK_INT_EQ(buf[0], '\0');
            } else {
                CHECK_INT_EQ(rc, len);
                CHECK_MEM_EQ(buf, expected, len + 1);
            }
        }
        free(buf);
        free(expected);
    }
}

TEST(sdp_offer_rejects_bad_params)
{
    hk_sdp_section_t sec[8];
    char buf[16384];
    hk_sdp_offer_t base = make_case("sendrecv-2pub", sec);
    hk_sdp_offer_t o;
    CHECK(hk_sdp_write_offer(&base, buf, sizeof buf) > 0);
    CHECK_INT_EQ(hk_sdp_write_offer(NULL, buf, sizeof buf), HK_EINVAL);
    CHECK_INT_EQ(hk_sdp_write_offer(&base, NULL, 10), HK_EINVAL);

    o = base, o.ice_ufrag = NULL;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.ice_ufrag = "abc"; /* under 4 */
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.ice_ufrag = "ab cd";
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.ice_pwd = NULL;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.ice_pwd = "short";
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.ice_pwd = "hisokaServerIcePassword\r\n";
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.fingerprint = NULL;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.fingerprint = "sha-256 00:01";
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.fingerprint = "sha-256  00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:"
                              "10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F";
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.n_sections = 0;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.n_sections = HK_SDP_MAX_MEDIA + 1;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.sections = NULL;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.n_candidates = HK_SDP_MAX_CANDIDATES + 1;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.candidate_addresses[1] = "example.com";
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.candidate_addresses[1] = NULL;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);
    o = base, o.preferred_video = (hk_video_codec_t)4;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);

    hk_sdp_section_t bad[8];
    o = base;
    o.sections = bad;
#define WITH_BAD_SECTION(stmt)                                                                     \
    do {                                                                                           \
        memcpy(bad, sec, sizeof bad);                                                              \
        stmt;                                                                                      \
        CHECK_INT_EQ(hk_sdp_write_offer(&o, buf, sizeof buf), HK_EINVAL);                          \
    } while (0)
    WITH_BAD_SECTION(strcpy(bad[1].mid, "a b"));
    WITH_BAD_SECTION(strcpy(bad[1].mid, ""));
    WITH_BAD_SECTION(strcpy(bad[1].mid, "1\r"));
    WITH_BAD_SECTION(memset(bad[1].mid, 'x', sizeof bad[1].mid)); /* no NUL */
    WITH_BAD_SECTION(strcpy(bad[3].mid, "0"));                    /* duplicate */
    WITH_BAD_SECTION(strcpy(bad[2].stream_id, "a b"));
    WITH_BAD_SECTION(strcpy(bad[2].track_id, ""));
    WITH_BAD_SECTION(strcpy(bad[2].cname, "x\ty"));
    WITH_BAD_SECTION(memset(bad[2].track_id, 'x', sizeof bad[2].track_id));
    WITH_BAD_SECTION(bad[2].type = (hk_section_type_t)7);
    WITH_BAD_SECTION(bad[2].kind = (hk_media_kind_t)2);
    /* a RECV section's ids are not written: not checked */
    memcpy(bad, sec, sizeof bad);
    strcpy(bad[0].stream_id, "a b");
    CHECK(hk_sdp_write_offer(&o, buf, sizeof buf) > 0);
}

/* The answer parser reads the writer's output like any other SDP. */
TEST(sdp_offer_parses_back)
{
    static hk_sdp_answer_t a;
    const char *err = NULL;
    size_t n = write_case("sendrecv-2pub");
    CHECK_INT_EQ(hk_sdp_parse_answer(offer_buf, n, 65536, &a, &err), 0);
    CHECK_INT_EQ(a.n_media, 6);
    CHECK_STR_EQ(a.ice_ufrag, "Hs0kUfrg");
    CHECK_STR_EQ(a.ice_pwd, "hisokaServerIcePassword1");
    CHECK_STR_EQ(a.fingerprint_algorithm, "sha-256");
    CHECK_INT_EQ(a.fingerprint_len, 32);
    for (int i = 0; i < 32; i++)
        CHECK_INT_EQ(a.fingerprint[i], i);
    CHECK_STR_EQ(a.setup, "actpass");
    CHECK_INT_EQ(a.media[0].direction, HK_DIR_RECVONLY);
    CHECK_INT_EQ(a.media[0].payload_type, HK_PT_OPUS);
    CHECK_INT_EQ(a.media[1].n_payload_types, 8);
    CHECK_INT_EQ(a.media[3].direction, HK_DIR_SENDONLY);
    CHECK_INT_EQ(a.media[3].kind, HK_MEDIA_VIDEO);
    CHECK_STR_EQ(a.media[3].stream_id, PUB_A);
    CHECK_STR_EQ(a.media[3].track_id, "a0000000-0000-4000-8000-00000000000b");
    CHECK_INT_EQ(a.media[3].ssrc, 22222222);
    CHECK_INT_EQ(a.media[3].rtx_ssrc, 22222223);
    CHECK_INT_EQ(a.media[4].ssrc, 33333333);
    CHECK_INT_EQ(a.media[5].ssrc, 0);

    n = write_case("closed");
    CHECK_INT_EQ(hk_sdp_parse_answer(offer_buf, n, 65536, &a, &err), 0);
    CHECK_INT_EQ(a.n_media, 4);
    CHECK(a.media[3].rejected);
    CHECK_INT_EQ(a.media[3].direction, HK_DIR_INACTIVE);
    CHECK_INT_EQ(a.media[3].payload_type, HK_PT_VP9);
    CHECK_STR_EQ(a.media[3].mid, "3");
    CHECK(!a.media[2].rejected);
}

/* ---- Chromium answers -------------------------------------------------------------- */

static hk_sdp_answer_t answer;

static void parse_fixture(const char *name)
{
    char path[256];
    size_t len;
    const char *err = NULL;
    snprintf(path, sizeof path, FIXTURES "answer-%s.sdp", name);
    char *text = hk_test_read_file(path, &len);
    int rc = hk_sdp_parse_answer(text, len, 65536, &answer, &err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", path, err ? err : "(no reason)");
    CHECK_INT_EQ(rc, 0);
    CHECK(err == NULL);
    /* Chromium: 4-char ufrag, 24-char pwd, one sha-256 fingerprint, DTLS client. */
    CHECK_INT_EQ(strlen(answer.ice_ufrag), 4);
    CHECK_INT_EQ(strlen(answer.ice_pwd), 24);
    CHECK_STR_EQ(answer.fingerprint_algorithm, "sha-256");
    CHECK_INT_EQ(answer.fingerprint_len, 32);
    CHECK_STR_EQ(answer.setup, "active");
    /* The values really come from the text. */
    char want[300];
    snprintf(want, sizeof want, "a=ice-ufrag:%s\r\n", answer.ice_ufrag);
    CHECK(strstr(text, want));
    snprintf(want, sizeof want, "a=ice-pwd:%s\r\n", answer.ice_pwd);
    CHECK(strstr(text, want));
    const char *fp = strstr(text, "a=fingerprint:sha-256 ");
    CHECK(fp);
    for (int i = 0; i < 32; i++) {
        unsigned byte;
        CHECK(sscanf(fp + 22 + i * 3, "%2x", &byte) == 1);
        CHECK_INT_EQ(byte, answer.fingerprint[i]);
    }
    free(text);
}

static const hk_sdp_media_t *find(const char *mid)
{
    const hk_sdp_media_t *m = hk_sdp_answer_find(&answer, mid);
    CHECK(m != NULL);
    CHECK_STR_EQ(m->mid, mid);
    return m;
}

/* The client's own sending video section: an SSRC with an RTX partner from its FID
 * group, as written in the text. */
static void check_sending_video(const char *name, const char *mid)
{
    const hk_sdp_media_t *v = find(mid);
    CHECK_INT_EQ(v->kind, HK_MEDIA_VIDEO);
    CHECK_INT_EQ(v->direction, HK_DIR_SENDONLY);
    CHECK(v->ssrc != 0);
    CHECK(v->rtx_ssrc != 0);
    CHECK(v->stream_id[0] != '\0');
    CHECK(v->track_id[0] != '\0');
    char path[256];
    snprintf(path, sizeof path, FIXTURES "answer-%s.sdp", name);
    char *text = hk_test_read_file(path, NULL);
    char want[100];
    snprintf(want, sizeof want, "a=ssrc-group:FID %" PRIu32 " %" PRIu32 "\r\n", v->ssrc,
             v->rtx_ssrc);
    CHECK(strstr(text, want));
    free(text);
}

static void check_sending_audio(const char *mid)
{
    const hk_sdp_media_t *a = find(mid);
    CHECK_INT_EQ(a->kind, HK_MEDIA_AUDIO);
    CHECK_INT_EQ(a->direction, HK_DIR_SENDONLY);
    CHECK_INT_EQ(a->payload_type, HK_PT_OPUS);
    CHECK(a->ssrc != 0);
    CHECK_INT_EQ(a->rtx_ssrc, 0);
}

static void check_receiving(const char *mid, hk_media_kind_t kind)
{
    const hk_sdp_media_t *m = find(mid);
    CHECK_INT_EQ(m->kind, kind);
    CHECK(!m->rejected);
    CHECK_INT_EQ(m->direction, HK_DIR_RECVONLY);
    CHECK_INT_EQ(m->ssrc, 0);
    CHECK_INT_EQ(m->payload_type, kind == HK_MEDIA_AUDIO ? HK_PT_OPUS : HK_PT_VP8);
}

TEST(sdp_chromium_answer_sendrecv)
{
    parse_fixture("sendrecv");
    CHECK_INT_EQ(answer.n_media, 2);
    check_sending_audio("0");
    check_sending_video("sendrecv", "1");
    CHECK_INT_EQ(find("1")->payload_type, HK_PT_VP8);
}

TEST(sdp_chromium_answer_sendrecv_2pub)
{
    parse_fixture("sendrecv-2pub");
    CHECK_INT_EQ(answer.n_media, 6);
    check_sending_audio("0");
    check_sending_video("sendrecv-2pub", "1");
    check_receiving("2", HK_MEDIA_AUDIO);
    check_receiving("3", HK_MEDIA_VIDEO);
    check_receiving("4", HK_MEDIA_AUDIO);
    check_receiving("5", HK_MEDIA_VIDEO);
    for (size_t i = 0; i < answer.n_media; i++) {
        char mid[24];
        snprintf(mid, sizeof mid, "%zu", i);
        CHECK_STR_EQ(answer.media[i].mid, mid);
    }
}

TEST(sdp_chromium_answer_recvonly_1pub)
{
    parse_fixture("recvonly-1pub");
    CHECK_INT_EQ(answer.n_media, 2);
    check_receiving("0", HK_MEDIA_AUDIO);
    check_receiving("1", HK_MEDIA_VIDEO);
}

TEST(sdp_chromium_answer_sendonly)
{
    parse_fixture("sendonly");
    CHECK_INT_EQ(answer.n_media, 2);
    check_sending_audio("0");
    check_sending_video("sendonly", "1");
}

TEST(sdp_chromium_answer_e2ee)
{
    parse_fixture("e2ee");
    CHECK_INT_EQ(answer.n_media, 4);
    check_sending_audio("0");
    check_sending_video("e2ee", "1");
    check_receiving("2", HK_MEDIA_AUDIO);
    check_receiving("3", HK_MEDIA_VIDEO);
}

TEST(sdp_chromium_answer_closed)
{
    parse_fixture("closed");
    CHECK_INT_EQ(answer.n_media, 4);
    check_sending_audio("0");
    check_sending_video("closed", "1");
    CHECK_INT_EQ(find("1")->payload_type, HK_PT_VP9);
    check_receiving("2", HK_MEDIA_AUDIO);
    const hk_sdp_media_t *closed = find("3");
    CHECK(closed->rejected);
    CHECK_INT_EQ(closed->kind, HK_MEDIA_VIDEO);
    CHECK(hk_sdp_answer_find(&answer, "4") == NULL);
    CHECK(hk_sdp_answer_find(&answer, "") == NULL);
    CHECK(hk_sdp_answer_find(NULL, "0") == NULL);
}

/* ---- hand-made answers ------------------------------------------------------------- */

#define FP_SHA256                                                                                  \
    "sha-256 A0:A1:A2:A3:A4:A5:A6:A7:A8:A9:AA:AB:AC:AD:AE:AF:"                                     \
    "B0:B1:B2:B3:B4:B5:B6:B7:B8:B9:BA:BB:BC:BD:BE:BF"

static const char base_answer[] = "v=0\r\n"
                                  "o=- 99 2 IN IP4 127.0.0.1\r\n"
                                  "s=-\r\n"
                                  "t=0 0\r\n"
                                  "a=group:BUNDLE 0 1\r\n"
                                  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n"
                                  "c=IN IP4 0.0.0.0\r\n"
                                  "a=ice-ufrag:AbCd\r\n"
                                  "a=ice-pwd:0123456789abcdefghijKL\r\n"
                                  "a=fingerprint:" FP_SHA256 "\r\n"
                                  "a=setup:active\r\n"
                                  "a=mid:0\r\n"
                                  "a=sendonly\r\n"
                                  "a=msid:s1 t1\r\n"
                                  "a=ssrc:1234 cname:x\r\n"
                                  "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"
                                  "c=IN IP4 0.0.0.0\r\n"
                                  "a=ice-ufrag:AbCd\r\n"
                                  "a=ice-pwd:0123456789abcdefghijKL\r\n"
                                  "a=fingerprint:" FP_SHA256 "\r\n"
                                  "a=setup:active\r\n"
                                  "a=mid:1\r\n"
                                  "a=recvonly\r\n";

static int parse_text(const char *text, const char **err)
{
    *err = NULL;
    int rc = hk_sdp_parse_answer(text, strlen(text), 65536, &answer, err);
    CHECK(rc == 0 || rc == HK_EINVAL);
    CHECK((rc == 0) == (*err == NULL));
    return rc;
}

/* base_answer with the first `from` replaced by `to`; the caller frees. */
static char *edit(const char *from, const char *to)
{
    const char *at = strstr(base_answer, from);
    if (!at) {
        fprintf(stderr, "edit: \"%s\" not in the base answer\n", from);
        exit(1);
    }
    size_t head = (size_t)(at - base_answer);
    size_t n = strlen(base_answer) - strlen(from) + strlen(to);
    char *s = malloc(n + 1);
    memcpy(s, base_answer, head);
    strcpy(s + head, to);
    strcat(s, at + strlen(from));
    return s;
}

static void expect_refused(const char *from, const char *to, const char *reason)
{
    const char *err;
    char *text = edit(from, to);
    int rc = parse_text(text, &err);
    if (rc != HK_EINVAL || strcmp(err, reason) != 0) {
        fprintf(stderr, "edit \"%s\" -> \"%s\": rc %d, err \"%s\", expected \"%s\"\n", from, to, rc,
                err ? err : "(null)", reason);
        exit(1);
    }
    CHECK_INT_EQ(answer.n_media, 0); /* nothing half-parsed left behind */
    free(text);
}

static void expect_accepted(const char *from, const char *to)
{
    const char *err;
    char *text = edit(from, to);
    if (parse_text(text, &err) != 0) {
        fprintf(stderr, "edit \"%s\" -> \"%s\": %s\n", from, to, err);
        exit(1);
    }
    free(text);
}

TEST(sdp_answer_base)
{
    const char *err;
    CHECK_INT_EQ(parse_text(base_answer, &err), 0);
    CHECK_INT_EQ(answer.n_media, 2);
    CHECK_STR_EQ(answer.ice_ufrag, "AbCd");
    CHECK_STR_EQ(answer.ice_pwd, "0123456789abcdefghijKL");
    CHECK_INT_EQ(answer.fingerprint_len, 32);
    CHECK_INT_EQ(answer.fingerprint[0], 0xA0);
    CHECK_INT_EQ(answer.fingerprint[31], 0xBF);
    CHECK_STR_EQ(answer.setup, "active");
    const hk_sdp_media_t *a = &answer.media[0];
    CHECK_INT_EQ(a->kind, HK_MEDIA_AUDIO);
    CHECK(!a->rejected);
    CHECK_INT_EQ(a->direction, HK_DIR_SENDONLY);
    CHECK_STR_EQ(a->mid, "0");
    CHECK_STR_EQ(a->stream_id, "s1");
    CHECK_STR_EQ(a->track_id, "t1");
    CHECK_INT_EQ(a->ssrc, 1234);
    CHECK_INT_EQ(a->rtx_ssrc, 0);
    CHECK_INT_EQ(a->payload_type, 111);
    CHECK_INT_EQ(a->n_payload_types, 2);
    const hk_sdp_media_t *v = &answer.media[1];
    CHECK_INT_EQ(v->kind, HK_MEDIA_VIDEO);
    CHECK_INT_EQ(v->direction, HK_DIR_RECVONLY);
    CHECK_STR_EQ(v->stream_id, "");
    CHECK_INT_EQ(v->payload_type, 96);
    CHECK(hk_sdp_answer_find(&answer, "1") == v);
}

TEST(sdp_answer_lf_only)
{
    char *text = malloc(sizeof base_answer);
    size_t k = 0;
    for (const char *p = base_answer; *p; p++) {
        if (*p != '\r')
            text[k++] = *p;
    }
    text[k] = '\0';
    const char *err;
    CHECK_INT_EQ(parse_text(text, &err), 0);
    CHECK_STR_EQ(answer.media[1].mid, "1");
    CHECK_STR_EQ(answer.ice_pwd, "0123456789abcdefghijKL");
    /* no line end at all on the last line */
    text[k - 1] = '\0';
    CHECK_INT_EQ(parse_text(text, &err), 0);
    CHECK_INT_EQ(answer.media[1].direction, HK_DIR_RECVONLY);
    free(text);
}

TEST(sdp_answer_refusals)
{
    const char *err;
    /* no m= line */
    CHECK_INT_EQ(parse_text("v=0\r\na=ice-ufrag:AbCd\r\n", &err), HK_EINVAL);
    CHECK_STR_EQ(err, "no m= line");
    CHECK_INT_EQ(parse_text("", &err), HK_EINVAL);
    CHECK_STR_EQ(err, "no m= line");
    expect_refused("a=mid:1", "a=mid:0", "duplicate mid");
    expect_refused("a=mid:0\r\n", "a=mid:0\r\na=mid:2\r\n", "two a=mid in one section");
    expect_refused("a=mid:1", "a=mid:0123456789abcdef", "bad a=mid");
    expect_refused("a=mid:1", "a=mid:", "bad a=mid");
    expect_refused("a=mid:1", "a=mid:a b", "bad a=mid");
    expect_refused("a=fingerprint:" FP_SHA256 "\r\n", "a=fingerprint:" FP_SHA256 "3\r\n",
                   "fingerprint length does not match its algorithm");
    expect_refused("A0:A1", "G0:A1", "bad fingerprint hex");
    expect_refused("A0:A1", "A0-A1", "bad fingerprint hex");
    expect_refused("sha-256 A0", "md5 A0", "unsupported fingerprint algorithm");
    expect_refused("sha-256 A0", "sha-256A0", "malformed a=fingerprint");
    expect_refused("a=mid:1", "a=mid:1\r\na=ice-pwd:0123456789abcdefghijKX", "conflicting ice-pwd");
    expect_refused("a=ice-ufrag:AbCd", "a=ice-ufrag:Ab-d", "bad a=ice-ufrag");
    expect_refused("a=ice-ufrag:AbCd", "a=ice-ufrag:Abc", "bad a=ice-ufrag");
    expect_refused("a=ice-pwd:0123456789abcdefghijKL", "a=ice-pwd:0123456789", "bad a=ice-pwd");
    expect_refused("a=setup:active", "a=setup:sideways", "bad a=setup");
    expect_refused("a=ssrc:1234", "a=ssrc:99999999999", "bad a=ssrc");
    expect_refused("a=ssrc:1234", "a=ssrc:4294967296", "bad a=ssrc");
    expect_refused("a=ssrc:1234", "a=ssrc:-1", "bad a=ssrc");
    expect_refused("a=ssrc:1234", "a=ssrc:", "bad a=ssrc");
    expect_refused("a=ssrc:1234 cname:x", "a=ssrc-group:FID 1 99999999999", "bad a=ssrc-group");
    expect_refused("a=ssrc:1234 cname:x", "a=ssrc-group:FID 1", "a=ssrc-group:FID needs two SSRCs");
    expect_refused("a=msid:s1 t1",
                   "a=msid:s123456789012345678901234567890123456789012345678901234567890123",
                   "bad msid");
    expect_refused("111 63", "111 128", "bad payload type in m= line");
    expect_refused("111 63", "111 99999999999999999999999", "bad payload type in m= line");
    expect_refused("m=audio 9 ", "m=audio 65536 ", "bad port in m= line");
    expect_refused("m=audio 9 ", "m=audio 9/x ", "bad port in m= line");
    expect_refused("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9", "malformed m= line");
    expect_refused("s=-", "s=caf\xc3\xa9", "non-printable byte");
    expect_refused("s=-", "s=a\tb", "non-printable byte");
    expect_refused("s=-", "s=a\rb", "non-printable byte");
    expect_refused("s=-\r\n", "s=-\r\n\x01\r\n", "non-printable byte");
    expect_refused("s=-", "S=-", "malformed line");
    expect_refused("s=-", "s", "malformed line");
    expect_refused("s=-", "garbage", "malformed line");
}

TEST(sdp_answer_refuses_missing_transport)
{
    /* drop the attribute from both sections */
    static const struct {
        const char *line;
        const char *reason;
    } cases[] = {
        {"a=ice-ufrag:AbCd\r\n", "missing a=ice-ufrag"},
        {"a=ice-pwd:0123456789abcdefghijKL\r\n", "missing a=ice-pwd"},
        {"a=fingerprint:" FP_SHA256 "\r\n", "missing a=fingerprint"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *once = edit(cases[c].line, "");
        char *at = strstr(once, cases[c].line);
        CHECK(at != NULL);
        memmove(at, at + strlen(cases[c].line), strlen(at + strlen(cases[c].line)) + 1);
        const char *err;
        CHECK_INT_EQ(parse_text(once, &err), HK_EINVAL);
        CHECK_STR_EQ(err, cases[c].reason);
        free(once);
    }
    /* in one section only: the other section's value is used */
    expect_accepted("a=ice-ufrag:AbCd\r\n", "");
    CHECK_STR_EQ(answer.ice_ufrag, "AbCd");
    expect_accepted("a=fingerprint:" FP_SHA256 "\r\n", "");
    CHECK_INT_EQ(answer.fingerprint_len, 32);
    /* a=setup is not required (RFC 4145's default is left to the caller) */
    char *no_setup = edit("a=setup:active\r\n", "");
    char *at = strstr(no_setup, "a=setup:active\r\n");
    memmove(at, at + 16, strlen(at + 16) + 1);
    const char *err;
    CHECK_INT_EQ(parse_text(no_setup, &err), 0);
    CHECK_STR_EQ(answer.setup, "");
    free(no_setup);
}

TEST(sdp_answer_size_limits)
{
    const char *err;
    size_t len = strlen(base_answer);
    CHECK_INT_EQ(hk_sdp_parse_answer(base_answer, len, len, &answer, &err), 0);
    CHECK_INT_EQ(hk_sdp_parse_answer(base_answer, len, len - 1, &answer, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "answer too large");
    CHECK_INT_EQ(hk_sdp_parse_answer(NULL, 0, 10, &answer, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_sdp_parse_answer(NULL, 5, 10, &answer, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_sdp_parse_answer(base_answer, len, 65536, NULL, &err), HK_EINVAL);
    CHECK_INT_EQ(hk_sdp_parse_answer(base_answer, len, 65536, &answer, NULL), 0);

    /* a line of exactly 4096 bytes is fine, 4097 is not */
    char *line = malloc(4098 + 2);
    memcpy(line, "a=x:", 4);
    memset(line + 4, 'y', 4096 - 4);
    strcpy(line + 4096, "\r\n");
    char *ok = edit("a=mid:1\r\n", "");
    size_t n = strlen(ok);
    char *text = malloc(n + 4100 + 20);
    sprintf(text, "%sa=mid:1\r\n%s", ok, line);
    CHECK_INT_EQ(parse_text(text, &err), 0);
    memset(line + 4, 'y', 4096 - 3);
    strcpy(line + 4097, "\r\n");
    sprintf(text, "%sa=mid:1\r\n%s", ok, line);
    CHECK_INT_EQ(parse_text(text, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "line too long");
    free(text);
    free(ok);
    free(line);
}

static char *many_sections(size_t count)
{
    static const char head[] = "v=0\r\na=ice-ufrag:AbCd\r\na=ice-pwd:0123456789abcdefghijKL\r\n"
                               "a=fingerprint:" FP_SHA256 "\r\n";
    size_t cap = sizeof head + count * 64;
    char *text = malloc(cap);
    size_t k = strlen(head);
    memcpy(text, head, k + 1);
    for (size_t i = 0; i < count; i++)
        k += (size_t)snprintf(text + k, cap - k, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:%zu\r\n",
                              i);
    return text;
}

TEST(sdp_answer_max_media)
{
    const char *err;
    char *text = many_sections(HK_SDP_MAX_MEDIA);
    CHECK(strlen(text) < 65536);
    CHECK_INT_EQ(parse_text(text, &err), 0);
    CHECK_INT_EQ(answer.n_media, HK_SDP_MAX_MEDIA);
    CHECK_STR_EQ(answer.media[HK_SDP_MAX_MEDIA - 1].mid, "511");
    free(text);
    text = many_sections(HK_SDP_MAX_MEDIA + 1);
    CHECK_INT_EQ(parse_text(text, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "too many m= lines");
    free(text);
}

TEST(sdp_answer_tolerated)
{
    const char *err;
    /* session-level transport attributes only */
    static const char session_level[] = "v=0\na=ice-ufrag:AbCd\na=ice-pwd:0123456789abcdefghijKL\n"
                                        "a=fingerprint:" FP_SHA256 "\na=setup:active\n"
                                        "a=sendonly\n"
                                        "m=video 9 UDP/TLS/RTP/SAVPF\na=mid:v\n";
    CHECK_INT_EQ(parse_text(session_level, &err), 0);
    CHECK_INT_EQ(answer.media[0].direction, HK_DIR_SENDONLY); /* session default */
    CHECK_INT_EQ(answer.media[0].payload_type, -1);
    CHECK_INT_EQ(answer.media[0].n_payload_types, 0);
    CHECK_STR_EQ(answer.setup, "active");

    /* unknown attributes, unknown payload types, extra spaces, blank lines */
    expect_accepted("a=mid:1\r\n", "a=mid:1\r\na=extmap:14 urn:x:y\r\na=rtpmap:63 red/48000/2\r\n"
                                   "a=weird\r\n\r\nb=AS:30\r\n");
    expect_accepted("96 97", "96  97 ");
    CHECK_INT_EQ(answer.media[1].n_payload_types, 2);
    /* other fingerprint algorithms, lower-case hex and algorithm */
    expect_accepted("a=fingerprint:" FP_SHA256 "\r\na=setup:active\r\na=mid:1",
                    "a=setup:active\r\na=mid:1");
    static const char *const sha1 = "SHA-1 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:"
                                    "00:11:22:33";
    char fp[400];
    snprintf(fp, sizeof fp, "a=fingerprint:%s", sha1);
    char *text = edit("a=fingerprint:" FP_SHA256, fp);
    char *at = strstr(text, "a=fingerprint:" FP_SHA256 "\r\n");
    memmove(at, at + strlen("a=fingerprint:" FP_SHA256 "\r\n"),
            strlen(at + strlen("a=fingerprint:" FP_SHA256 "\r\n")) + 1);
    CHECK_INT_EQ(parse_text(text, &err), 0);
    CHECK_STR_EQ(answer.fingerprint_algorithm, "sha-1");
    CHECK_INT_EQ(answer.fingerprint_len, 20);
    CHECK_INT_EQ(answer.fingerprint[10], 0xaa);
    free(text);

    /* a second, different, fingerprint is a conflict */
    snprintf(fp, sizeof fp, "a=mid:1\r\na=fingerprint:%s", sha1);
    expect_refused("a=mid:1", fp, "conflicting fingerprint");

    /* rejected section: its transport attributes do not count */
    expect_accepted("m=video 9 ", "m=video 0 ");
    CHECK(answer.media[1].rejected);
    expect_accepted("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\n"
                    "a=ice-ufrag:AbCd\r\na=ice-pwd:0123456789abcdefghijKL",
                    "m=video 0 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\n"
                    "a=ice-ufrag:Zzzz\r\na=ice-pwd:zzzzzzzzzzzzzzzzzzzzzzzzzz");
    CHECK_STR_EQ(answer.ice_ufrag, "AbCd");

    /* port with a count */
    expect_accepted("m=audio 9 ", "m=audio 9/2 ");

    /* FID group: media and RTX SSRCs, whatever order the ssrc lines come in */
    expect_accepted("a=ssrc:1234 cname:x", "a=ssrc:5 cname:x\r\na=ssrc:4 cname:x\r\n"
                                           "a=ssrc-group:FID 4 5\r\na=ssrc-group:FID 6 7");
    CHECK_INT_EQ(answer.media[0].ssrc, 4);
    CHECK_INT_EQ(answer.media[0].rtx_ssrc, 5);
    expect_accepted("a=ssrc:1234 cname:x", "a=ssrc-group:SIM 1 2 3\r\na=ssrc:4294967295 x");
    CHECK_INT_EQ(answer.media[0].ssrc, 4294967295u);
    CHECK_INT_EQ(answer.media[0].rtx_ssrc, 0);
    /* msid without appdata; only the first msid counts */
    expect_accepted("a=msid:s1 t1", "a=msid:-\r\na=msid:x y");
    CHECK_STR_EQ(answer.media[0].stream_id, "-");
    CHECK_STR_EQ(answer.media[0].track_id, "");
}

TEST(sdp_answer_other_media_skipped)
{
    const char *err;
    char *text = edit("m=video", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                                 "a=mid:d\r\na=sctp-port:5000\r\nm=video");
    CHECK_INT_EQ(parse_text(text, &err), 0);
    CHECK_INT_EQ(answer.n_media, 2);
    CHECK_STR_EQ(answer.media[0].mid, "0");
    CHECK_STR_EQ(answer.media[1].mid, "1");
    CHECK(hk_sdp_answer_find(&answer, "d") == NULL);
    free(text);
    /* nothing but an application section */
    static const char only_app[] = "v=0\na=ice-ufrag:AbCd\na=ice-pwd:0123456789abcdefghijKL\n"
                                   "a=fingerprint:" FP_SHA256 "\n"
                                   "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=mid:d\n";
    CHECK_INT_EQ(parse_text(only_app, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "no audio or video m= line");
    /* its mid still counts for duplicates */
    text = edit("m=video", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                           "a=mid:1\r\nm=video");
    CHECK_INT_EQ(parse_text(text, &err), HK_EINVAL);
    CHECK_STR_EQ(err, "duplicate mid");
    free(text);
}

/* Every prefix of a real answer: refused or accepted, never more. */
TEST(sdp_answer_every_truncation)
{
    size_t len;
    char *text = hk_test_read_file(FIXTURES "answer-sendrecv-2pub.sdp", &len);
    for (size_t n = 0; n <= len; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, text, n);
        const char *err = NULL;
        int rc = hk_sdp_parse_answer(copy, n, 65536, &answer, &err);
        CHECK(rc == 0 || (rc == HK_EINVAL && err != NULL));
        CHECK(answer.n_media <= 6);
        free(copy);
    }
    free(text);
}

/* PROTOCOL.md §5: a publisher's video section offers Sora's rids with the rid extensions;
 * the answer's a=simulcast:send gives the layers it will send (paused ones and other rids
 * left out); simulcast anywhere but a RECV video section is refused. */
TEST(sdp_simulcast_offer_and_answer)
{
    hk_sdp_section_t sec[8];
    hk_sdp_offer_t o = make_case("sendrecv", sec);
    sec[1].simulcast_rids = 0x7;
    CHECK(hk_sdp_write_offer(&o, offer_buf, sizeof offer_buf) > 0);
    const char *video = strstr(offer_buf, "m=video");
    CHECK(video != NULL);
    CHECK(strstr(video, "a=extmap:6 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
                        "a=extmap:7 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
                        "a=recvonly\r\n"));
    CHECK(strstr(video, "a=rid:r0 recv\r\na=rid:r1 recv\r\na=rid:r2 recv\r\n"
                        "a=simulcast:recv r0;r1;r2\r\n"));
    /* The audio section has none of it. */
    CHECK(strstr(offer_buf, "rtp-stream-id") > video);
    /* Two layers. */
    sec[1].simulcast_rids = 0x5;
    CHECK(hk_sdp_write_offer(&o, offer_buf, sizeof offer_buf) > 0);
    CHECK(strstr(offer_buf, "a=rid:r0 recv\r\na=rid:r2 recv\r\na=simulcast:recv r0;r2\r\n"));
    CHECK(!strstr(offer_buf, "a=rid:r1"));
    /* Refused: on audio, on a forwarded section, rids beyond r2. */
    sec[1].simulcast_rids = 0x8;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, offer_buf, sizeof offer_buf), HK_EINVAL);
    sec[1].simulcast_rids = 0;
    sec[0].simulcast_rids = 0x1;
    CHECK_INT_EQ(hk_sdp_write_offer(&o, offer_buf, sizeof offer_buf), HK_EINVAL);
    hk_sdp_section_t fwd[8];
    hk_sdp_offer_t f = make_case("recvonly-1pub", fwd);
    fwd[1].simulcast_rids = 0x7;
    CHECK_INT_EQ(hk_sdp_write_offer(&f, offer_buf, sizeof offer_buf), HK_EINVAL);

    static const struct {
        const char *line;
        uint8_t rids;
    } answers[] = {
        {"a=simulcast:send r0;r1;r2\r\n", 0x7},
        {"a=simulcast:send r0;~r1;r2\r\n", 0x5},     /* r1 paused */
        {"a=simulcast:send r2,r1;r0\r\n", 0x5},      /* first alternatives: r2, r0 */
        {"a=simulcast:send r0;h;q\r\n", 0x1},        /* rids that are not Sora's */
        {"a=simulcast:recv r0;r1 send r1\r\n", 0x2}, /* only the send direction */
        {"a=simulcast:send\r\n", 0},                 /* malformed: nothing */
        {"", 0},
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        char text[2048];
        snprintf(text, sizeof text, "%sa=sendonly\r\na=rid:r0 send\r\n%s", base_answer,
                 answers[i].line);
        /* base_answer ends with the video section's a=recvonly: the later a=sendonly wins. */
        const char *err;
        int rc = parse_text(text, &err);
        if (strcmp(answers[i].line, "a=simulcast:send\r\n") == 0) {
            CHECK_INT_EQ(rc, HK_EINVAL);
            continue;
        }
        CHECK_INT_EQ(rc, 0);
        CHECK_INT_EQ(answer.media[1].simulcast_rids, answers[i].rids);
        CHECK_INT_EQ(answer.media[0].simulcast_rids, 0);
    }
}
