/* Uncompressed wire-format names: validation, length, labels, canonical case, comparison. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Length of the uncompressed wire name at p (at most cap bytes readable), including the root
 *  label, or a negative zj_err: ZJ_ETRUNC if it runs past cap, ZJ_EMALF on a compression pointer,
 *  an extended label type or a name over 255 bytes. */
int zj_dname_len(const uint8_t *p, size_t cap);

/** Number of labels excluding the root (the root name has 0). Name must be valid. */
int zj_dname_labels(const uint8_t *name);

/** Copy a valid name to dst in lower case (ASCII only, as DNS requires); returns its length. */
size_t zj_dname_lower(uint8_t *dst, const uint8_t *name);

/** Case-insensitive equality of two valid names. */
bool zj_dname_eq(const uint8_t *a, const uint8_t *b);

/** True if name equals or is below parent (both valid, case-insensitive). */
bool zj_dname_is_sub(const uint8_t *name, const uint8_t *parent);

/** Pointer to the suffix of name after skipping n labels (n <= labels). */
const uint8_t *zj_dname_skip(const uint8_t *name, int n);

/** Canonical DNSSEC order comparison (RFC 4034 §6.1): <0, 0, >0. */
int zj_dname_cmp(const uint8_t *a, const uint8_t *b);

/** Presentation form of a valid name, absolute with a trailing dot, escaping as RFC 1035 §5.1.
 *  Returns chars written (excluding NUL) or ZJ_ESPACE. cap of 1024 always suffices. */
int zj_dname_to_text(const uint8_t *name, char *out, size_t cap);

/** Parse a presentation name (may be relative, with \DDD and \X escapes) into wire form.
 *  Relative names are completed with origin (wire, may be NULL: then relative is ZJ_EMALF).
 *  "@" means origin. Returns wire length or a negative zj_err. out must hold 255 bytes. */
int zj_dname_from_text(const char *s, size_t len, const uint8_t *origin, uint8_t *out);
