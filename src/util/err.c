/* Text for the error vocabulary of include/zonejet/err.h. */
#include "zonejet/err.h"

#include <string.h>

const char *zj_strerror(int err)
{
    switch (err) {
    case ZJ_OK:
        return "success";
    case ZJ_EMALF:
        return "malformed input";
    case ZJ_ETRUNC:
        return "input truncated";
    case ZJ_EIMAGE:
        return "image fails validation";
    case ZJ_EVERSION:
        return "unsupported image format version";
    case ZJ_ECHECKSUM:
        return "image checksum mismatch";
    case ZJ_ESPACE:
        return "output buffer too small";
    case ZJ_EZONE:
        return "zone has errors";
    case ZJ_ELIMIT:
        return "limit exceeded";
    case ZJ_ELOOP:
        return "include loop";
    default:
        return err < 0 && err > -1000 ? strerror(-err) : "unknown error";
    }
}
