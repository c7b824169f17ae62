/* Wire-format domain names (RFC 1035 §3.1): validation, case folding, comparison, and the
 * presentation form with RFC 1035 §5.1 escapes. Names here are always uncompressed; the packet
 * parser resolves nothing (a pointer in a question is FORMERR, src/dns/query.c). */
#include "zonejet/dname.h"

#include <stdio.h>
#include <string.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"

static inline uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

int zj_dname_len(const uint8_t *p, size_t cap)
{
    size_t i = 0;
    for (;;) {
        if (i >= cap) {
            return ZJ_ETRUNC;
        }
        uint8_t l = p[i];
        if (l & 0xC0) {
            return ZJ_EMALF; /* pointer or extended label type (RFC 6891 §5) */
        }
        i += (size_t)l + 1;
        if (i > ZJ_DNS_MAX_NAME) {
            return ZJ_EMALF;
        }
        if (l == 0) {
            return (int)i;
        }
    }
}

int zj_dname_labels(const uint8_t *name)
{
    int n = 0;
    while (*name) {
        name += *name + 1;
        n++;
    }
    return n;
}

size_t zj_dname_lower(uint8_t *dst, const uint8_t *name)
{
    size_t i = 0;
    for (;;) {
        uint8_t l = name[i];
        dst[i] = l;
        i++;
        if (l == 0) {
            return i;
        }
        for (uint8_t k = 0; k < l; k++, i++) {
            dst[i] = lower(name[i]);
        }
    }
}

bool zj_dname_eq(const uint8_t *a, const uint8_t *b)
{
    size_t i = 0;
    for (;;) {
        uint8_t l = a[i];
        if (l != b[i]) {
            return false;
        }
        i++;
        if (l == 0) {
            return true;
        }
        for (uint8_t k = 0; k < l; k++, i++) {
            if (lower(a[i]) != lower(b[i])) {
                return false;
            }
        }
    }
}

const uint8_t *zj_dname_skip(const uint8_t *name, int n)
{
    while (n-- > 0 && *name) {
        name += *name + 1;
    }
    return name;
}

bool zj_dname_is_sub(const uint8_t *name, const uint8_t *parent)
{
    int ln = zj_dname_labels(name);
    int lp = zj_dname_labels(parent);
    if (ln < lp) {
        return false;
    }
    return zj_dname_eq(zj_dname_skip(name, ln - lp), parent);
}

int zj_dname_cmp(const uint8_t *a, const uint8_t *b)
{
    /* RFC 4034 §6.1: compare label by label from the root, each label as lower-cased octets. */
    const uint8_t *la[ZJ_DNS_MAX_LABELS] = {0};
    const uint8_t *lb[ZJ_DNS_MAX_LABELS] = {0};
    int na = 0;
    int nb = 0;
    for (const uint8_t *p = a; *p && na < ZJ_DNS_MAX_LABELS; p += *p + 1) {
        la[na++] = p;
    }
    for (const uint8_t *p = b; *p && nb < ZJ_DNS_MAX_LABELS; p += *p + 1) {
        lb[nb++] = p;
    }
    while (na > 0 && nb > 0) {
        const uint8_t *x = la[--na];
        const uint8_t *y = lb[--nb];
        uint8_t lx = x[0];
        uint8_t ly = y[0];
        uint8_t m = lx < ly ? lx : ly;
        for (uint8_t k = 1; k <= m; k++) {
            int d = (int)lower(x[k]) - (int)lower(y[k]);
            if (d != 0) {
                return d;
            }
        }
        if (lx != ly) {
            return (int)lx - (int)ly;
        }
    }
    return na - nb;
}

int zj_dname_to_text(const uint8_t *name, char *out, size_t cap)
{
    size_t o = 0;
    if (*name == 0) {
        if (cap < 2) {
            return ZJ_ESPACE;
        }
        out[0] = '.';
        out[1] = '\0';
        return 1;
    }
    for (const uint8_t *p = name; *p; p += *p + 1) {
        for (uint8_t k = 1; k <= *p; k++) {
            uint8_t c = p[k];
            if (o + 5 >= cap) {
                return ZJ_ESPACE;
            }
            if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
                c == '$') {
                out[o++] = '\\';
                out[o++] = (char)c;
            } else if (c <= 0x20 || c >= 0x7f) {
                o += (size_t)snprintf(out + o, cap - o, "\\%03u", c);
            } else {
                out[o++] = (char)c;
            }
        }
        if (o + 2 >= cap) {
            return ZJ_ESPACE;
        }
        out[o++] = '.';
    }
    out[o] = '\0';
    return (int)o;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int zj_dname_from_text(const char *s, size_t len, const uint8_t *origin, uint8_t *out)
{
    if (len == 1 && s[0] == '@') {
        if (origin == NULL) {
            return ZJ_EMALF;
        }
        int ol = zj_dname_len(origin, ZJ_DNS_MAX_NAME);
        if (ol < 0) {
            return ol;
        }
        memcpy(out, origin, (size_t)ol);
        return ol;
    }
    if (len == 1 && s[0] == '.') {
        out[0] = 0;
        return 1;
    }
    if (len == 0) {
        return ZJ_EMALF;
    }
    size_t o = 0;   /* write position */
    size_t lab = 0; /* position of the current label's length byte */
    bool absolute = false;
    out[0] = 0;
    o = 1;
    for (size_t i = 0; i < len;) {
        char c = s[i];
        if (c == '.') {
            size_t ll = o - lab - 1;
            if (ll == 0) {
                return ZJ_EMALF; /* empty label */
            }
            out[lab] = (uint8_t)ll;
            i++;
            if (i == len) {
                absolute = true;
                break;
            }
            lab = o;
            if (o >= ZJ_DNS_MAX_NAME) {
                return ZJ_EMALF;
            }
            out[o++] = 0;
            continue;
        }
        uint8_t v;
        if (c == '\\') {
            if (i + 1 >= len) {
                return ZJ_EMALF;
            }
            if (is_digit(s[i + 1])) {
                if (i + 3 >= len || !is_digit(s[i + 2]) || !is_digit(s[i + 3])) {
                    return ZJ_EMALF;
                }
                unsigned d = (unsigned)(s[i + 1] - '0') * 100 + (unsigned)(s[i + 2] - '0') * 10 +
                             (unsigned)(s[i + 3] - '0');
                if (d > 255) {
                    return ZJ_EMALF;
                }
                v = (uint8_t)d;
                i += 4;
            } else {
                v = (uint8_t)s[i + 1];
                i += 2;
            }
        } else {
            v = (uint8_t)c;
            i++;
        }
        if (o - lab - 1 >= ZJ_DNS_MAX_LABEL || o >= ZJ_DNS_MAX_NAME - 1) {
            return ZJ_EMALF;
        }
        out[o++] = v;
    }
    if (!absolute) {
        size_t ll = o - lab - 1;
        if (ll == 0) {
            return ZJ_EMALF;
        }
        out[lab] = (uint8_t)ll;
        if (origin == NULL) {
            return ZJ_EMALF;
        }
        int ol = zj_dname_len(origin, ZJ_DNS_MAX_NAME);
        if (ol < 0) {
            return ol;
        }
        if (o + (size_t)ol > ZJ_DNS_MAX_NAME) {
            return ZJ_EMALF;
        }
        memcpy(out + o, origin, (size_t)ol);
        return (int)(o + (size_t)ol);
    }
    if (o + 1 > ZJ_DNS_MAX_NAME) {
        return ZJ_EMALF;
    }
    out[o++] = 0;
    return (int)o;
}
