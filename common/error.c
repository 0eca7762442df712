#include "common/error.h"

const char *hk_strerror(int err)
{
    switch (err) {
    case HK_OK:
        return "success";
    case HK_EINVAL:
        return "invalid input";
    case HK_ENOMEM:
        return "out of memory";
    case HK_ENOSPC:
        return "buffer too small";
    case HK_ERANGE:
        return "value out of range";
    case HK_ENOENT:
        return "not found";
    case HK_EIO:
        return "I/O error";
    case HK_ELIMIT:
        return "limit reached";
    case HK_EPERM:
        return "not permitted";
    case HK_ESTATE:
        return "invalid state";
    case HK_EINCOMPLETE:
        return "incomplete input";
    }
    return "unknown error";
}
