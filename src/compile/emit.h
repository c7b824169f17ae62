/* Zone image builder: parsed zones -> semantic checks -> one image in memory.
 *
 * Used by zonejet-compile (which writes the image to a file) and by zonejetd for --zones (which
 * opens it straight from memory). Not for the query path: it allocates freely. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct zj_builder zj_builder_t;

typedef struct zj_build_opts {
    FILE *diag;            /* diagnostics; NULL = stderr */
    unsigned max_errors;   /* stop reporting after this many; 0 = 20 */
    size_t max_file_bytes; /* zone file size limit; 0 = 1 GiB */
    bool quiet;            /* no warnings */
    uint64_t seed;         /* index hash seed; 0 = the fixed default (reproducible images) */
} zj_build_opts_t;

/** New builder; opts may be NULL for defaults. Aborts on out-of-memory (tools and start-up). */
zj_builder_t *zj_builder_new(const zj_build_opts_t *opts);

void zj_builder_free(zj_builder_t *b);

/** Parse one zone file into the builder; origin (wire) may be NULL (then $ORIGIN or the SOA
 *  owner). Errors are reported as "file:line: reason". Returns 0 or ZJ_EZONE.
 *  For x/name.zone or x/name.db, the policy file x/name.policy (docs/policies.md) is read too
 *  when it exists (zj_builder_add_policy_file); if the zone file failed, the policy file is
 *  reported as not read, after the zone's errors. */
/** The policy file of a zone file: x/name.zone or x/name.db -> x/name.policy (docs/policies.md);
 *  false for other file names (they have none) or when out (cap bytes) is too small. */
bool zj_policy_path(const char *zone_path, char *out, size_t cap);

int zj_builder_add_file(zj_builder_t *b, const char *path, const uint8_t *origin);

/** The same for zone text in memory (tests, fuzzing); name is used in diagnostics. */
int zj_builder_add_text(zj_builder_t *b, const char *name, const char *text, size_t len,
                        const uint8_t *origin);

/** Parse policy file text (docs/policies.md) for the zone whose origin (wire, any case) is
 *  given, or with origin NULL for the zone of the last zj_builder_add_file/add_text call. name
 *  is used in diagnostics ("name:line: reason"). A zone has at most one policy file. Errors:
 *  ZJ_EZONE (no such zone, or the last zone file failed; a second policy file for a zone;
 *  anything wrong in the text). The checks that need the zone's names (a policy beside records
 *  of its type, beside a CNAME, at or below a zone cut) run in zj_builder_finish. */
int zj_builder_add_policy_text(zj_builder_t *b, const char *name, const char *text, size_t len,
                               const uint8_t *origin);

/** The same for a file (read whole; at most the max_file_bytes option). */
int zj_builder_add_policy_file(zj_builder_t *b, const char *path, const uint8_t *origin);

/** Check every zone and lay out the image. On success *out is a malloc'd, 8-byte aligned
 *  buffer of *out_len bytes owned by the caller. Returns 0, or ZJ_EZONE if any error was
 *  reported (by this call or an earlier add), with nothing allocated. */
int zj_builder_finish(zj_builder_t *b, uint8_t **out, size_t *out_len);

/** The same checks as zj_builder_finish without laying out an image (--check). */
int zj_builder_check(zj_builder_t *b);

/** Check and write the image to fd (from the current position) without assembling it in
 *  memory; *out_len receives its size. Returns 0, ZJ_EZONE, or a negative errno on a write
 *  error. The caller owns fd (and fsyncs it). */
int zj_builder_finish_fd(zj_builder_t *b, int fd, size_t *out_len);

/** Errors and warnings reported so far. */
unsigned zj_builder_errors(const zj_builder_t *b);
unsigned zj_builder_warnings(const zj_builder_t *b);
