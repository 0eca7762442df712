/* libFuzzer target `signaling`: feeds the input to hk_sora_parse_connect and to
 * hk_sora_parse_message. An accepted connect must satisfy every documented rule and its
 * metadata must survive the offer and notify builders; a refusal must carry a close code
 * and a reason and leave no json_t behind. The outputs are always cleared (LeakSanitizer
 * checks the ownership). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/proto/sora_msg.h"

static void require(int cond)
{
    if (!cond)
        abort();
}

/* 1..max characters from '!' to '~', NUL-terminated within its array. */
static void require_name(const char *s, size_t size, size_t min)
{
    const char *end = memchr(s, '\0', size);
    require(end != NULL);
    size_t n = (size_t)(end - s);
    require(n >= min);
    for (size_t i = 0; i < n; i++)
        require((unsigned char)s[i] >= 0x21 && (unsigned char)s[i] <= 0x7e);
}

/* json_true(), json_false() and json_null() are static: their count never changes. */
static int owned_once(const json_t *json)
{
    return json->refcount == 1 || json->refcount == (size_t)-1;
}

static void check_connect(const hk_connect_msg_t *msg)
{
    require(msg->role == HK_ROLE_SENDRECV || msg->role == HK_ROLE_SENDONLY ||
            msg->role == HK_ROLE_RECVONLY);
    require_name(msg->channel_id, sizeof msg->channel_id, 1);
    require_name(msg->client_id, sizeof msg->client_id, 0);
    require(strcmp(msg->video_codec, "VP8") == 0 || strcmp(msg->video_codec, "VP9") == 0 ||
            strcmp(msg->video_codec, "H264") == 0 || strcmp(msg->video_codec, "AV1") == 0);
    require(!msg->metadata || owned_once(msg->metadata));
    require(!msg->signaling_notify_metadata || (json_is_object(msg->signaling_notify_metadata) &&
                                                owned_once(msg->signaling_notify_metadata)));

    /* What the server does next with the client's values. */
    hk_offer_msg_t offer = {
        .sdp = "v=0\r\n",
        .client_id = msg->client_id[0] ? msg->client_id : "00000000000000000000000000",
        .connection_id = "00000000000000000000000000",
        .channel_id = msg->channel_id,
        .audio_mid = msg->audio ? "0" : NULL,
        .video_mid = msg->video ? "1" : NULL,
        .authn_metadata = msg->metadata,
    };
    char *text = hk_sora_build_offer(&offer);
    require(text != NULL);
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    require(root != NULL);
    require(!msg->metadata || json_equal(json_object_get(root, "metadata"), msg->metadata));
    json_decref(root);
    free(text);

    hk_notify_conn_t conn = {
        .role = msg->role,
        .client_id = offer.client_id,
        .connection_id = offer.connection_id,
        .audio = msg->audio,
        .video = msg->video,
        .metadata = msg->signaling_notify_metadata,
        .authn_metadata = msg->metadata,
    };
    hk_channel_counts_t counts = {.connections = 2, .sendrecv = 2};
    text = hk_sora_build_notify("connection.created", msg->channel_id, &conn, &counts, true, &conn,
                                1, false);
    require(text != NULL);
    root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    require(root != NULL);
    require(json_array_size(json_object_get(root, "data")) == 1);
    json_decref(root);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    hk_sora_error_t err;

    hk_connect_msg_t connect;
    err.close_code = 0;
    err.reason = NULL;
    int rc = hk_sora_parse_connect(text, size, &connect, &err);
    if (rc == 0) {
        check_connect(&connect);
    } else {
        require(rc == HK_EINVAL);
        require(err.close_code == HK_CLOSE_BAD_REQUEST && err.reason && err.reason[0]);
        require(connect.metadata == NULL && connect.signaling_notify_metadata == NULL);
    }
    hk_connect_msg_clear(&connect);
    require(connect.metadata == NULL && connect.signaling_notify_metadata == NULL);

    hk_sora_msg_t msg;
    err.close_code = 0;
    err.reason = NULL;
    rc = hk_sora_parse_message(text, size, &msg, &err);
    if (rc == 0) {
        require(msg.root != NULL);
        require(msg.type >= HK_MSG_ANSWER && msg.type <= HK_MSG_STATS);
        if (msg.type == HK_MSG_ANSWER || msg.type == HK_MSG_RE_ANSWER) {
            require(msg.sdp != NULL && msg.sdp_len > 0 && strlen(msg.sdp) == msg.sdp_len);
            char *reoffer = hk_sora_build_reoffer(msg.sdp);
            require(reoffer != NULL);
            free(reoffer);
        } else {
            require(msg.sdp == NULL);
        }
        if (msg.reason)
            require(msg.type == HK_MSG_DISCONNECT && strlen(msg.reason) < size);
    } else {
        require(rc == HK_EINVAL);
        require(err.close_code == HK_CLOSE_BAD_REQUEST && err.reason && err.reason[0]);
        require(msg.root == NULL && msg.sdp == NULL);
    }
    hk_sora_msg_clear(&msg);
    require(msg.root == NULL);
    return 0;
}
