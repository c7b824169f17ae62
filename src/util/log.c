#include "util/log.h"

#include <stdio.h>

static const char *log_prog = "zonejetd";
static zj_log_level_t log_level = ZJ_LOG_INFO;

void zj_log_init(const char *prog, zj_log_level_t level)
{
    if (prog != NULL) {
        log_prog = prog;
    }
    log_level = level;
}

void zj_log(zj_log_level_t level, const char *fmt, ...)
{
    if (level > log_level) {
        return;
    }
    /* Format into one buffer so that one line is one write and lines from workers that start
     * at the same time do not interleave. 1 KiB: the longest line is a path plus a reason. */
    char line[1024];
    int off = snprintf(line, sizeof(line), "%s: ", log_prog);
    if (off < 0 || (size_t)off >= sizeof(line)) {
        off = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    fprintf(stderr, "%s\n", line);
}
