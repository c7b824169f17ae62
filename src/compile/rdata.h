/* Private interface between the master-file lexer (parse.c) and the rdata codecs (rdata.c).
 *
 * The lexer cuts a record into tokens that are views into the file buffer (no copies, no
 * per-token allocation); rdata.c turns the rdata tokens into uncompressed wire rdata. Escapes
 * (RFC 1035 §5.1 \X and \DDD) are left in the views and decoded by whoever reads the field. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest rdata: RDLENGTH is 16 bits (RFC 1035 §3.2.1). */
#define ZJ_RDATA_MAX 65535

/* One token: a view into the text. For a quoted string, p/len exclude the quotes. */
typedef struct zj_tok {
    const char *p;
    uint32_t len;
    bool is_quoted; /* written as "..." */
    bool is_glued;  /* no blank between this token and the one before (SVCB key="value") */
} zj_tok_t;

/** Parse the rdata tokens of one record of the given type into wire form in out (cap bytes).
 *  Names are completed with origin (wire; NULL if no origin is known, and then relative names
 *  are an error). Accepts RFC 3597 "\# len hex" for every type. Returns the rdata length, or
 *  ZJ_EMALF with a one-line reason naming the field written to err (errcap bytes, NUL-ended).
 *  Pure function of its arguments; thread-safe; does not allocate. */
int zj_rdata_from_text(uint16_t type, const zj_tok_t *tok, size_t n, const uint8_t *origin,
                       uint8_t *out, size_t cap, char *err, size_t errcap);

/** A TTL or time field: decimal seconds, or BIND units (1w2d3h4m5s, case-insensitive).
 *  Returns 0 and sets *out, or ZJ_EMALF on syntax or above UINT32_MAX. */
int zj_rdata_parse_ttl(const char *s, size_t len, uint32_t *out);

/** Why the presentation name s could not be parsed (for a diagnostic): "label longer than 63
 *  bytes", "name longer than 255 bytes", "bad escape", "empty label", "relative name without
 *  origin", or "bad name". origin may be NULL. Never NULL. */
const char *zj_rdata_name_error(const char *s, size_t len, const uint8_t *origin);

/** Names inside the RDATA of the types a response compresses (NS, CNAME, PTR, MX, SOA;
 *  zj_rdata_names_compressed) are stored in lower case, as in the canonical form of RFC 4034
 *  §6.2, so that the answer path can compare them with memcmp while compressing: zone files and
 *  policy files alike. Copies rd (rdlen bytes) to out (cap bytes) with those names folded and
 *  returns true; false (out unused) for other types, RDATA longer than cap, or names that do
 *  not parse (the image validator rejects those). */
bool zj_rdata_lower_names(uint16_t type, const uint8_t *rd, size_t rdlen, uint8_t *out, size_t cap);
