/* hisoka error codes: functions return 0 or a negative HK_E* code. */
#ifndef HK_ERROR_H
#define HK_ERROR_H

#define HK_OK          0
#define HK_EINVAL      (-1)  /* malformed input */
#define HK_ENOMEM      (-2)  /* allocation failed */
#define HK_ENOSPC      (-3)  /* output buffer too small */
#define HK_ERANGE      (-4)  /* value out of range */
#define HK_ENOENT      (-5)  /* no such object */
#define HK_EIO         (-6)  /* system or library call failed */
#define HK_ELIMIT      (-7)  /* a configured limit was reached */
#define HK_EPERM       (-8)  /* not allowed */
#define HK_ESTATE      (-9)  /* not valid in the current state */
#define HK_EINCOMPLETE (-10) /* more input needed */

/* For pure parsers: sets *err (when err is not NULL) to a static reason and returns
 * HK_EINVAL. */
static inline int hk_fail(const char **err, const char *why)
{
    if (err)
        *err = why;
    return HK_EINVAL;
}

/* Returns a static English description of an HK_E* code. */
const char *hk_strerror(int err);

#endif
