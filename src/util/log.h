/* Leveled logging to stderr: one line per start-up step and per error, never per query.
 *
 * Every line is prefixed with the program name ("zonejetd: "). The level is process-wide and is
 * set once at start-up, before workers start; logging itself is thread-safe (one fprintf per
 * line, stdio locks the stream). Not for the hot path (STYLE §0.2): workers log only at start
 * and stop. */
#pragma once

#include <stdarg.h>

#include "zonejet/compiler.h"

typedef enum zj_log_level {
    ZJ_LOG_ERR = 0,
    ZJ_LOG_WARN = 1,
    ZJ_LOG_INFO = 2,
    ZJ_LOG_DEBUG = 3,
} zj_log_level_t;

/** Set the program name printed before every line (a static string) and the highest level that
 *  is printed. Call before any other thread starts. */
void zj_log_init(const char *prog, zj_log_level_t level);

/** Print one line (a newline is appended) if level is enabled. Thread-safe, may block on stderr. */
void zj_log(zj_log_level_t level, const char *fmt, ...) ZJ_PRINTF(2, 3);

#define zj_log_err(...) zj_log(ZJ_LOG_ERR, __VA_ARGS__)
#define zj_log_warn(...) zj_log(ZJ_LOG_WARN, __VA_ARGS__)
#define zj_log_info(...) zj_log(ZJ_LOG_INFO, __VA_ARGS__)
#define zj_log_debug(...) zj_log(ZJ_LOG_DEBUG, __VA_ARGS__)
