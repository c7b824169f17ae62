/* RFC 1035 §5 master-file parser: text zones -> resource records, with file:line diagnostics.
 *
 * The parser is a library: zonejet-compile, zonejetd (for --zones) and tests link it. It reports
 * each record through a callback; it keeps nothing once zj_parse_file returns. Every error is
 * printed as "file:line: reason" to opts->diag (stderr if NULL) and counted; parsing continues to
 * the next line so that all errors (up to opts->max_errors) are shown in one run. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct zj_rr {
    const uint8_t *owner; /* absolute wire name, case as written in the file */
    uint16_t type;
    uint16_t rclass;
    uint32_t ttl;
    const uint8_t *rdata; /* uncompressed wire rdata, names absolute */
    uint16_t rdlen;
    const char *file; /* file the record came from (an $INCLUDE'd file for included records) */
    unsigned line;    /* line on which the record starts */
} zj_rr_t;

/** Called once per record in file order; pointers are valid only during the call. Return 0 to
 *  go on, a negative zj_err to stop parsing (returned from zj_parse_file). */
typedef int (*zj_rr_fn)(void *ctx, const zj_rr_t *rr);

typedef struct zj_parse_opts {
    const uint8_t *origin; /* initial origin (wire) or NULL: then $ORIGIN, or the SOA owner */
    uint32_t default_ttl;  /* used when neither $TTL nor an explicit TTL applies; 3600 if 0 */
    size_t max_file_bytes; /* per file, including $INCLUDEd files; 0 means no limit */
    unsigned max_errors;   /* stop after this many errors; 0 means 20 */
    FILE *diag;            /* diagnostics stream; NULL means stderr */
    bool quiet;            /* suppress warnings (errors are always printed) */
} zj_parse_opts_t;

typedef struct zj_parse_result {
    uint8_t origin[255]; /* the zone's origin: opts->origin, else the first $ORIGIN, else the
                          * owner of the first SOA record; origin_len 0 if none was known */
    size_t origin_len;
    unsigned n_records;
    unsigned n_errors;
    unsigned n_warnings;
} zj_parse_result_t;

/** Parse one master file. Returns 0 when the file parsed without errors, ZJ_EZONE when errors
 *  were reported, or the callback's negative return. */
int zj_parse_file(const char *path, const zj_parse_opts_t *opts, zj_rr_fn cb, void *ctx,
                  zj_parse_result_t *res);

/** The same over text in memory; name is used in diagnostics; $INCLUDE paths are relative to
 *  the current directory. */
int zj_parse_text(const char *name, const char *text, size_t len, const zj_parse_opts_t *opts,
                  zj_rr_fn cb, void *ctx, zj_parse_result_t *res);

/** Print one diagnostic in the parser's format ("file:line: reason") to opts->diag. Used by
 *  the compiler for the semantic checks it runs after parsing. */
void zj_diag(const zj_parse_opts_t *opts, const char *file, unsigned line, bool is_warning,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* --- rdata text <-> wire, and type mnemonics (src/compile/rdata.c) --- */

/** Type number for a mnemonic ("A", "aaaa", "TYPE65534"), or -1. */
int zj_rrtype_from_text(const char *s, size_t len);

/** Mnemonic for a type, or "TYPEnnn" written into buf (at least 16 bytes). */
const char *zj_rrtype_to_text(uint16_t type, char *buf, size_t cap);

/** Presentation form of rdata (the part after the type), as dig/kdig/dnspython print it, names
 *  absolute. Unknown types use RFC 3597 "\# len hex". Returns chars written or negative
 *  zj_err (ZJ_ESPACE if cap is too small; ZJ_EMALF if the rdata does not parse for its type, in
 *  which case callers may fall back to the generic form). */
int zj_rdata_to_text(uint16_t type, const uint8_t *rdata, size_t rdlen, char *out, size_t cap);

/** True if the type's rdata holds domain names that may be compressed in responses
 *  (RFC 3597 §4: NS, CNAME, SOA, PTR, MX, and the other RFC 1035 types). */
bool zj_rrtype_compressible(uint16_t type);
