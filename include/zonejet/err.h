/* The one error vocabulary: 0 is success, POSIX codes as negatives, project codes from -1000 down.
 */
#pragma once

#include <errno.h>

enum zj_err {
    ZJ_OK = 0,
    ZJ_ENOMEM = -ENOMEM,
    ZJ_EINVAL = -EINVAL,
    ZJ_ENOENT = -ENOENT,
    ZJ_EIO = -EIO,
    ZJ_ERANGE = -ERANGE,
    ZJ_EMALF = -1000,    /* malformed input (packet, text, rdata) */
    ZJ_ETRUNC = -1001,   /* input ends early */
    ZJ_EIMAGE = -1002,   /* image fails validation (bounds, offsets, layout) */
    ZJ_EVERSION = -1003, /* image format version not understood */
    ZJ_ECHECKSUM = -1004,
    ZJ_ESPACE = -1005, /* output buffer too small */
    ZJ_EZONE = -1006,  /* zone content fails a semantic check */
    ZJ_ELIMIT = -1007, /* a configured limit was exceeded */
    ZJ_ELOOP = -1008,  /* $INCLUDE loop or similar */
};

/** Static text for an error code (never NULL). Thread-safe. */
const char *zj_strerror(int err);
