/* Policy files (docs/policies.md): line lexer, statements, checks across statements, and the
 * image tables built from the result.
 *
 * The file is read line by line. A line is cut into tokens exactly as the zone-file lexer cuts a
 * record (views into the text; quoted strings without their quotes; escapes left in), so record
 * lines after a "set" go straight to the zone parser's RDATA codecs (zj_rdata_from_text) with the
 * zone's origin. Statement lines join glued tokens (key="a b") into decoded words.
 *
 * Everything a statement names may be declared later in the file (a check used by a set, a
 * child of a calculated check, a CIDR collection, a latency region), so the parser collects raw
 * statements first and resolves names, finds duplicates and groups the sets of one (owner,
 * type) into a policy at the end (zj_polfile_parse -> finish). Duplicate prefixes and sets are
 * found by sorting, never by comparing all pairs, so a file with 100k prefixes or sets stays
 * fast. Names of checks, collections and locations are looked up by a linear scan: fine for the
 * tens to hundreds of them a zone has, quadratic for thousands (not measured).
 *
 * Calculated checks are ordered children first (an explicit-stack depth-first walk, which also
 * finds cycles), so in the image every child index is lower than its parent's: the validator
 * checks that and the health checker can evaluate in index order.
 *
 * Rejected: a general-purpose format (YAML, JSON) -- a line format matches zone files, needs no
 * library, and gives every error a line number. */
#include "compile/policy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zonejet/compiler.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "zonejet/zone.h"
#include "compile/parse.h"
#include "compile/rdata.h"
#include "policy/pmap.h"

#define POL_DEFAULT_TTL 60u     /* short: a policy answer changes with health */
#define POL_MAX_TTL 2147483647u /* RFC 2181 §8 */
#define POL_NAME_MAX 63u        /* check, collection, location and region names */
#define POL_SETID_MAX 128u      /* Route 53's limit for a set identifier */
#define POL_TEXT_MAX 255u       /* HTTP path, host and body match */
#define POL_MAX_CHILDREN 256u   /* Route 53's limit for a calculated check */
#define POL_MAX_WIRE 65535u     /* a record set must fit in one DNS message */
/* Fields on one line: a cidr line lists many prefixes, a TXT record many strings; the zone
 * parser's bound (parse.c) serves for both. */
#define POL_MAX_TOKENS 65600u
#define POL_DEFAULT_INTERVAL_MS 30000u
#define POL_DEFAULT_TIMEOUT_MS 4000u
#define POL_MIN_INTERVAL_MS 1000u
#define POL_MAX_INTERVAL_MS 3600000u
#define POL_DEFAULT_THRESHOLD 3u
#define POL_MSG_MAX 512
#define POL_SHOW 60 /* characters of a bad token quoted in a message */

/* ISO 3166-1 alpha-2 codes assigned at the time of writing (249), sorted: two letters each. */
static const char iso_countries[] = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBR"
                                    "BSBTBVBWBYBZCACCCDCFCGCHCICKCLCMCN"
                                    "COCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGE"
                                    "GFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHM"
                                    "HNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALB"
                                    "LCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMK"
                                    "MLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPF"
                                    "PGPHPKPLPMPNPRPSPTPWPYQARERORSRURW"
                                    "SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTN"
                                    "TOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVI"
                                    "VNVUWFWSYEYTZAZMZW";
static const char continents[] = "AFANASEUNAOCSA"; /* the seven of MaxMind's continent codes */

typedef struct pcheck {
    uint32_t name; /* strings below are offsets in the model's strs, or ZJ_IMG_NONE */
    uint32_t line;
    uint16_t kind;
    uint16_t flags;
    uint16_t port;
    uint16_t family;
    uint8_t addr[16];
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint32_t threshold;
    uint32_t path, host, match;
    uint32_t kids_first; /* kids[kids_first, + n_kids): names, then check indices */
    uint32_t n_kids;
    uint32_t min_healthy;
    uint32_t order; /* position in the emitted CHECKS */
    uint8_t mark;   /* walk state: 0 new, 1 on the stack, 2 done */
} pcheck_t;

typedef struct pcoll {
    uint32_t name;
    uint32_t n_locs;
} pcoll_t;

typedef struct ploc {
    uint32_t coll;
    uint32_t name;
} ploc_t;

typedef struct ppfx {
    zj_prefix_t p; /* value: location index (CIDR) or latency entry */
    uint32_t line;
    uint32_t owner; /* collection, or ZJ_IMG_NONE for a latency client */
    uint32_t seq;
} ppfx_t;

typedef struct plat {
    uint32_t line;
    bool is_prefix;
    uint16_t level, code;
    uint32_t sub;
    uint32_t reg_first, n_reg; /* model reglist */
} plat_t;

typedef struct rawset {
    uint8_t owner[ZJ_DNS_MAX_NAME];
    uint8_t owner_len;
    bool is_bad;
    uint16_t type, kind;
    uint32_t seq, line, ttl;
    uint32_t id;
    uint32_t check_name, check;
    uint32_t coll_name, coll;
    uint32_t loc_name; /* CIDR location or latency region name; ZJ_IMG_NONE: "*" */
    uint32_t value;
    uint16_t geo_level, geo_code;
    uint32_t first_rr, n_rr;
    uint32_t wire_len;
    bool has_bad_record; /* reported already: no "has no records" on top */
} rawset_t;

struct zj_pol_model {
    char *strs;
    size_t strs_len, strs_cap;
    pcheck_t *checks;
    size_t n_checks, cap_checks;
    uint32_t *kids;
    size_t n_kids, cap_kids;
    uint32_t *order; /* check indices, children first */
    pcoll_t *colls;
    size_t n_colls, cap_colls;
    ploc_t *locs;
    size_t n_locs, cap_locs;
    ppfx_t *pfx; /* CIDR prefixes and latency client prefixes */
    size_t n_pfx, cap_pfx;
    plat_t *lat;
    size_t n_lat, cap_lat;
    uint32_t *regs; /* region names */
    size_t n_regs, cap_regs;
    uint32_t *reglist;
    size_t n_reglist, cap_reglist;
    rawset_t *raw;
    size_t n_raw, cap_raw;
    uint32_t *set_raw; /* f->sets[k] came from raw[set_raw[k]] */
};

typedef struct word {
    const char *s; /* decoded, NUL-terminated */
    uint32_t len;
    int32_t eq; /* position of the first unquoted, unescaped '=', or -1 */
} word_t;

typedef struct pstate {
    zj_polfile_t *f;
    struct zj_pol_model *m;
    const uint8_t *origin;
    zj_pol_diag_fn diag;
    void *ctx;
    unsigned n_errors;
    uint32_t ttl;
    size_t cur;        /* open set in m->raw, or SIZE_MAX */
    bool skip_records; /* the last set line failed: its record lines are not read */
    zj_tok_t *toks;
    size_t n_toks, cap_toks;
    word_t *words;
    size_t n_words, cap_words;
    char *wbuf;
    size_t wcap;
    size_t cap_pols, cap_sets, cap_rrs, cap_rdata;
    uint8_t *rd; /* ZJ_RDATA_MAX */
} pstate_t;

/* ---- small helpers ----------------------------------------------------------------------- */

/* zj_grow that aborts on out-of-memory, as the builder does (src/compile/emit.c). */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    void *q = zj_grow(p, cap, need, elem, 16);
    if (q == NULL && need > *cap) {
        fprintf(stderr, "zonejet: out of memory\n");
        abort();
    }
    return q;
}

/* n elements of elem bytes (n >= 1), uninitialised; aborts on out-of-memory. */
static void *xalloc(size_t n, size_t elem)
{
    size_t cap = 0;
    return grow(NULL, &cap, n, elem);
}

#define PUSH(arr, n, cap) ((arr) = grow((arr), &(cap), (n) + 1, sizeof(*(arr))), &(arr)[(n)++])

static void perr(pstate_t *ps, unsigned line, const char *fmt, ...) ZJ_PRINTF(3, 4);

static void perr(pstate_t *ps, unsigned line, const char *fmt, ...)
{
    char msg[POL_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ps->n_errors++;
    ps->diag(ps->ctx, line, msg);
}

static uint32_t str_add(struct zj_pol_model *m, const char *s, size_t len)
{
    m->strs = grow(m->strs, &m->strs_cap, m->strs_len + len + 1, 1);
    uint32_t off = (uint32_t)m->strs_len;
    memcpy(m->strs + off, s, len);
    m->strs[off + len] = '\0';
    m->strs_len += len + 1;
    return off;
}

static const char *str_at(const struct zj_pol_model *m, uint32_t off)
{
    return off == ZJ_IMG_NONE ? "*" : m->strs + off;
}

static int show(size_t len)
{
    return len > POL_SHOW ? POL_SHOW : (int)len;
}

static bool word_is(const word_t *w, const char *s)
{
    return zj_eq_nocase(w->s, w->len, s);
}

/* Decimal without sign, at most max. */
static bool parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* "<n>", "<n>s" or "<n>ms" -> milliseconds. */
static bool parse_ms(const char *s, size_t len, uint64_t *ms)
{
    uint64_t v;
    if (len > 2 && s[len - 2] == 'm' && s[len - 1] == 's') {
        if (!parse_uint(s, len - 2, 1000000000ull, &v)) {
            return false;
        }
        *ms = v;
        return true;
    }
    if (len > 1 && s[len - 1] == 's') {
        len--;
    }
    if (!parse_uint(s, len, 1000000ull, &v)) {
        return false;
    }
    *ms = v * 1000;
    return true;
}

/* Names of checks, collections, locations and regions: letters, digits, '-', '_', '.'. */
static bool ident_ok(const char *s, size_t len)
{
    if (len == 0 || len > POL_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool code2_in(const char *list, size_t n_codes, char a, char b)
{
    size_t lo = 0;
    size_t hi = n_codes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = list[2 * mid] != a ? list[2 * mid] - a : list[2 * mid + 1] - b;
        if (d == 0) {
            return true;
        }
        if (d < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

static bool country_ok(char a, char b)
{
    return code2_in(iso_countries, (sizeof(iso_countries) - 1) / 2, a, b);
}

static bool continent_ok(char a, char b)
{
    for (size_t i = 0; i + 1 < sizeof(continents); i += 2) {
        if (continents[i] == a && continents[i + 1] == b) {
            return true;
        }
    }
    return false;
}

/* "*", "continent:XX", "country:XX", "subdivision:XX-YYY" (case-insensitive). */
static bool parse_location(const char *s, size_t len, uint16_t *level, uint16_t *code,
                           uint32_t *sub, char *why, size_t cap)
{
    *code = 0;
    *sub = 0;
    if (len == 1 && s[0] == '*') {
        *level = ZJ_GEO_DEFAULT;
        return true;
    }
    const char *colon = memchr(s, ':', len);
    if (colon == NULL) {
        snprintf(why, cap,
                 "bad location '%.*s' (continent:XX, country:XX, subdivision:XX-YYY or *)",
                 show(len), s);
        return false;
    }
    size_t kl = (size_t)(colon - s);
    const char *v = colon + 1;
    size_t vl = len - kl - 1;
    char a = vl >= 1 ? zj_upper(v[0]) : 0;
    char b = vl >= 2 ? zj_upper(v[1]) : 0;
    if (zj_eq_nocase(s, kl, "continent")) {
        if (vl != 2 || !continent_ok(a, b)) {
            snprintf(why, cap, "unknown continent '%.*s' (AF, AN, AS, EU, NA, OC, SA)", show(vl),
                     v);
            return false;
        }
        *level = ZJ_GEO_CONTINENT;
        *code = ZJ_GEO_CODE2(a, b);
        return true;
    }
    bool is_sub = zj_eq_nocase(s, kl, "subdivision");
    if (!is_sub && !zj_eq_nocase(s, kl, "country")) {
        snprintf(why, cap,
                 "bad location '%.*s' (continent:XX, country:XX, subdivision:XX-YYY or *)",
                 show(len), s);
        return false;
    }
    if (vl < 2 || !country_ok(a, b) || (!is_sub && vl != 2)) {
        snprintf(why, cap, "unknown country code '%.*s' (ISO 3166-1 alpha-2)",
                 show(is_sub ? 2 : vl), v);
        return false;
    }
    *code = ZJ_GEO_CODE2(a, b);
    if (!is_sub) {
        *level = ZJ_GEO_COUNTRY;
        return true;
    }
    if (vl < 4 || vl > 6 || v[2] != '-') {
        snprintf(why, cap, "bad subdivision '%.*s' (country, '-', 1-3 letters or digits: US-CA)",
                 show(vl), v);
        return false;
    }
    uint32_t packed = 0;
    for (size_t i = 3; i < vl; i++) {
        if (!is_alnum(v[i])) {
            snprintf(why, cap,
                     "bad subdivision '%.*s' (country, '-', 1-3 letters or digits: US-CA)",
                     show(vl), v);
            return false;
        }
        /* image.h: upper case, left-aligned in the three high bytes */
        packed |= (uint32_t)(uint8_t)zj_upper(v[i]) << (8 * (3 - (i - 3)));
    }
    *level = ZJ_GEO_SUBDIVISION;
    *sub = packed;
    return true;
}

/* "addr/len" or a bare address (the whole address). Host bits must be zero. */
static bool parse_prefix(const char *s, size_t len, zj_prefix_t *p, char *why, size_t cap)
{
    char a[64];
    const char *slash = memchr(s, '/', len);
    size_t al = slash ? (size_t)(slash - s) : len;
    memset(p, 0, sizeof(*p));
    if (al == 0 || al >= sizeof(a)) {
        snprintf(why, cap, "bad prefix '%.*s' (address/length)", show(len), s);
        return false;
    }
    memcpy(a, s, al);
    a[al] = '\0';
    unsigned bits;
    if (inet_pton(AF_INET, a, p->addr) == 1) {
        p->family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, a, p->addr) == 1) {
        p->family = AF_INET6;
        bits = 128;
    } else {
        snprintf(why, cap, "bad prefix '%.*s' (not an IPv4 or IPv6 address)", show(len), s);
        return false;
    }
    uint64_t l = bits;
    if (slash != NULL && !parse_uint(slash + 1, len - al - 1, bits, &l)) {
        snprintf(why, cap, "bad prefix length in '%.*s' (0-%u)", show(len), s, bits);
        return false;
    }
    p->len = (uint8_t)l;
    uint8_t host[16] = {0};
    bool has_host = false;
    for (unsigned i = 0; i < bits / 8; i++) {
        unsigned keep = l >= 8 * (i + 1) ? 8 : (l > 8 * i ? (unsigned)l - 8 * i : 0);
        uint8_t mask = (uint8_t)(0xFFu >> keep);
        host[i] = p->addr[i] & mask;
        has_host |= host[i] != 0;
    }
    if (has_host) {
        char hb[64];
        char net[64];
        uint8_t n[16];
        for (unsigned i = 0; i < 16; i++) {
            n[i] = (uint8_t)(p->addr[i] & ~host[i]);
        }
        inet_ntop(p->family, host, hb, sizeof(hb));
        inet_ntop(p->family, n, net, sizeof(net));
        snprintf(why, cap,
                 "prefix %s/%u has host bits set (%s beyond the /%u; the network is %s/%u)", a,
                 p->len, hb, p->len, net, p->len);
        return false;
    }
    return true;
}

/* ---- lexer ------------------------------------------------------------------------------- */

static bool push_tok(pstate_t *ps, unsigned line, const char *p, size_t len, bool is_quoted,
                     bool is_glued)
{
    if (ps->n_toks >= POL_MAX_TOKENS || len > UINT32_MAX) {
        perr(ps, line, "line has more than %u fields", POL_MAX_TOKENS);
        return false;
    }
    zj_tok_t *t = PUSH(ps->toks, ps->n_toks, ps->cap_toks);
    t->p = p;
    t->len = (uint32_t)len;
    t->is_quoted = is_quoted;
    t->is_glued = is_glued;
    return true;
}

/* Cut [p, end) into tokens. A ';' outside quotes, or a '#' where a token would start, begins a
 * comment. Returns false after reporting an error. */
static bool lex_line(pstate_t *ps, unsigned line, const char *p, const char *end)
{
    ps->n_toks = 0;
    const char *last_end = NULL;
    while (p < end) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\r') {
            p++;
            continue;
        }
        if (c == ';' || (c == '#' && p != last_end)) {
            break;
        }
        if (c == '"') {
            const char *q = p + 1;
            while (q < end && *q != '"') {
                q += (*q == '\\' && q + 1 < end) ? 2 : 1;
            }
            if (q >= end) {
                perr(ps, line, "unterminated quoted string");
                return false;
            }
            if (!push_tok(ps, line, p + 1, (size_t)(q - p - 1), true, p == last_end)) {
                return false;
            }
            p = q + 1;
            last_end = p;
            continue;
        }
        const char *s = p;
        while (p < end) {
            c = *p;
            if (c == ' ' || c == '\t' || c == '\r' || c == '"' || c == ';') {
                break;
            }
            p += (c == '\\' && p + 1 < end) ? 2 : 1;
        }
        if (!push_tok(ps, line, s, (size_t)(p - s), false, s == last_end)) {
            return false;
        }
        last_end = p;
    }
    return true;
}

/* Join glued tokens into words. Inside quotes \X is X; unquoted text is kept as written, so
 * a name's escapes (a\.b, \032) reach the name parser intact. */
static void make_words(pstate_t *ps)
{
    size_t need = 1;
    for (size_t i = 0; i < ps->n_toks; i++) {
        need += ps->toks[i].len + 1;
    }
    ps->wbuf = grow(ps->wbuf, &ps->wcap, need, 1);
    ps->n_words = 0;
    size_t o = 0;
    for (size_t i = 0; i < ps->n_toks;) {
        word_t *w = PUSH(ps->words, ps->n_words, ps->cap_words);
        size_t start = o;
        w->eq = -1;
        do {
            const zj_tok_t *t = &ps->toks[i];
            for (uint32_t k = 0; k < t->len; k++) {
                char c = t->p[k];
                if (t->is_quoted && c == '\\' && k + 1 < t->len) {
                    c = t->p[++k];
                } else if (!t->is_quoted && c == '=' && w->eq < 0) {
                    w->eq = (int32_t)(o - start);
                }
                ps->wbuf[o++] = c;
            }
            i++;
        } while (i < ps->n_toks && ps->toks[i].is_glued);
        ps->wbuf[o++] = '\0';
        w->len = (uint32_t)(o - start - 1);
        w->s = ps->wbuf + start; /* wbuf was sized for the whole line above: it does not move */
    }
}

/* ---- statements -------------------------------------------------------------------------- */

static const char *const kind_names[] = {
    [ZJ_POL_WEIGHTED] = "weighted",
    [ZJ_POL_FAILOVER] = "failover",
    [ZJ_POL_MULTIVALUE] = "multivalue",
    [ZJ_POL_GEO] = "geo",
    [ZJ_POL_CIDR] = "cidr",
    [ZJ_POL_LATENCY] = "latency",
};

static void close_set(pstate_t *ps)
{
    if (ps->cur != SIZE_MAX) {
        rawset_t *r = &ps->m->raw[ps->cur];
        if (r->n_rr == 0 && r->has_bad_record) {
            r->is_bad = true;
        } else if (r->n_rr == 0) {
            perr(ps, r->line, "set '%s' has no records (indented lines after the set line)",
                 str_at(ps->m, r->id));
            r->is_bad = true;
        }
    }
    ps->cur = SIZE_MAX;
    ps->skip_records = false;
}

static bool str_ok(pstate_t *ps, unsigned line, const word_t *w, const char *what, size_t max)
{
    if (w->len == 0 || w->len > max || memchr(w->s, '\0', w->len) != NULL) {
        perr(ps, line, "bad %s '%.*s' (1-%zu bytes)", what, show(w->len), w->s, max);
        return false;
    }
    return true;
}

static bool ident_word(pstate_t *ps, unsigned line, const char *s, size_t len, const char *what)
{
    if (!ident_ok(s, len)) {
        perr(ps, line, "bad %s '%.*s' (1-%u letters, digits, '-', '_', '.')", what, show(len), s,
             POL_NAME_MAX);
        return false;
    }
    return true;
}

/* key=value attribute: the key as a word, the value after the '='. */
typedef struct attr {
    const char *key;
    bool is_flag; /* a bare word, no value */
    bool is_off;  /* not allowed here: reported as unknown */
    bool seen;
    const char *v;
    size_t vlen;
} attr_t;

/* Match words[first..] against the allowed attributes; reports unknown and duplicate ones. */
static bool read_attrs(pstate_t *ps, unsigned line, size_t first, attr_t *a, size_t n,
                       const char *what)
{
    bool ok = true;
    for (size_t i = first; i < ps->n_words; i++) {
        const word_t *w = &ps->words[i];
        size_t kl = w->eq >= 0 ? (size_t)w->eq : w->len;
        attr_t *hit = NULL;
        for (size_t k = 0; k < n && hit == NULL; k++) {
            if (!a[k].is_off && zj_eq_nocase(w->s, kl, a[k].key) && a[k].is_flag == (w->eq < 0)) {
                hit = &a[k];
            }
        }
        if (hit == NULL) {
            perr(ps, line, "unknown attribute '%.*s' for %s", show(w->len), w->s, what);
            ok = false;
            continue;
        }
        if (hit->seen) {
            perr(ps, line, "attribute '%s' given twice", hit->key);
            ok = false;
            continue;
        }
        hit->seen = true;
        hit->v = w->eq >= 0 ? w->s + w->eq + 1 : NULL;
        hit->vlen = w->eq >= 0 ? w->len - (size_t)w->eq - 1 : 0;
    }
    return ok;
}

static bool need_attr(pstate_t *ps, unsigned line, const attr_t *a, const char *form,
                      const char *what)
{
    if (!a->seen) {
        perr(ps, line, "%s needs %s", what, form);
        return false;
    }
    return true;
}

static bool parse_ttl_value(pstate_t *ps, unsigned line, const char *s, size_t len, uint32_t *ttl)
{
    if (zj_rdata_parse_ttl(s, len, ttl) < 0 || *ttl > POL_MAX_TTL) {
        perr(ps, line, "bad TTL '%.*s' (seconds up to %u, or units like 1h30m)", show(len), s,
             POL_MAX_TTL);
        return false;
    }
    return true;
}

static void stmt_ttl(pstate_t *ps, unsigned line)
{
    if (ps->n_words != 2) {
        perr(ps, line, "$TTL takes exactly one TTL");
        return;
    }
    uint32_t ttl;
    if (parse_ttl_value(ps, line, ps->words[1].s, ps->words[1].len, &ttl)) {
        ps->ttl = ttl;
    }
}

enum { A_TTL, A_CHECK, A_WEIGHT, A_ROLE, A_LOCATION, A_COLLECTION, A_REGION, A_N };

/* The per-kind attribute of a set line. */
static bool set_kind_attrs(pstate_t *ps, unsigned line, rawset_t *r, attr_t *a)
{
    char why[POL_MSG_MAX];
    uint64_t v;
    switch (r->kind) {
    case ZJ_POL_WEIGHTED:
        if (!need_attr(ps, line, &a[A_WEIGHT], "weight=<0-255>", "a weighted set")) {
            return false;
        }
        if (!parse_uint(a[A_WEIGHT].v, a[A_WEIGHT].vlen, 255, &v)) {
            perr(ps, line, "weight '%.*s' is not a number from 0 to 255", show(a[A_WEIGHT].vlen),
                 a[A_WEIGHT].v);
            return false;
        }
        r->value = (uint32_t)v;
        return true;
    case ZJ_POL_FAILOVER:
        if (!need_attr(ps, line, &a[A_ROLE], "role=primary or role=secondary", "a failover set")) {
            return false;
        }
        if (zj_eq_nocase(a[A_ROLE].v, a[A_ROLE].vlen, "primary")) {
            r->value = ZJ_FAILOVER_PRIMARY;
        } else if (zj_eq_nocase(a[A_ROLE].v, a[A_ROLE].vlen, "secondary")) {
            r->value = ZJ_FAILOVER_SECONDARY;
        } else {
            perr(ps, line, "role '%.*s' is neither primary nor secondary", show(a[A_ROLE].vlen),
                 a[A_ROLE].v);
            return false;
        }
        return true;
    case ZJ_POL_GEO:
        if (!need_attr(ps, line, &a[A_LOCATION], "location=<location>", "a geo set")) {
            return false;
        }
        if (!parse_location(a[A_LOCATION].v, a[A_LOCATION].vlen, &r->geo_level, &r->geo_code,
                            &r->value, why, sizeof(why))) {
            perr(ps, line, "%s", why);
            return false;
        }
        return true;
    case ZJ_POL_CIDR:
        if (!need_attr(ps, line, &a[A_COLLECTION], "collection=<name>", "a cidr set") ||
            !need_attr(ps, line, &a[A_LOCATION], "location=<name> or location=*", "a cidr set") ||
            !ident_word(ps, line, a[A_COLLECTION].v, a[A_COLLECTION].vlen, "collection name")) {
            return false;
        }
        r->coll_name = str_add(ps->m, a[A_COLLECTION].v, a[A_COLLECTION].vlen);
        if (a[A_LOCATION].vlen == 1 && a[A_LOCATION].v[0] == '*') {
            r->loc_name = ZJ_IMG_NONE;
            return true;
        }
        if (!ident_word(ps, line, a[A_LOCATION].v, a[A_LOCATION].vlen, "location name")) {
            return false;
        }
        r->loc_name = str_add(ps->m, a[A_LOCATION].v, a[A_LOCATION].vlen);
        return true;
    case ZJ_POL_LATENCY:
        if (!need_attr(ps, line, &a[A_REGION], "region=<region>", "a latency set") ||
            !ident_word(ps, line, a[A_REGION].v, a[A_REGION].vlen, "region name")) {
            return false;
        }
        r->loc_name = str_add(ps->m, a[A_REGION].v, a[A_REGION].vlen);
        return true;
    default:
        return true; /* multivalue: nothing */
    }
}

static void stmt_set(pstate_t *ps, unsigned line)
{
    ps->skip_records = true;
    const word_t *w = ps->words;
    if (ps->n_words < 5) {
        perr(ps, line, "set needs an owner, a type, a policy and a set id");
        return;
    }
    rawset_t r;
    memset(&r, 0, sizeof(r));
    r.line = line;
    r.seq = (uint32_t)ps->m->n_raw;
    r.ttl = ps->ttl;
    r.check_name = r.check = r.coll_name = r.coll = r.loc_name = ZJ_IMG_NONE;
    uint8_t owner[ZJ_DNS_MAX_NAME];
    if (zj_dname_from_text(w[1].s, w[1].len, ps->origin, owner) < 0) {
        perr(ps, line, "bad owner name '%.*s': %s", show(w[1].len), w[1].s,
             zj_rdata_name_error(w[1].s, w[1].len, ps->origin));
        return;
    }
    r.owner_len = (uint8_t)zj_dname_lower(r.owner, owner);
    if (!zj_dname_is_sub(r.owner, ps->origin)) {
        char t[1024];
        char o[1024];
        zj_dname_to_text(r.owner, t, sizeof(t));
        zj_dname_to_text(ps->origin, o, sizeof(o));
        perr(ps, line, "%s is outside the zone %s", t, o);
        return;
    }
    int type = zj_rrtype_from_text(w[2].s, w[2].len);
    if (type < 0) {
        perr(ps, line, "unknown type '%.*s'", show(w[2].len), w[2].s);
        return;
    }
    if (!zj_policy_type_ok((uint16_t)type)) {
        perr(ps, line,
             "type %.*s cannot have a routing policy (A, AAAA, CNAME, MX, TXT, SRV, PTR, CAA, "
             "NAPTR and SPF can)",
             show(w[2].len), w[2].s);
        return;
    }
    r.type = (uint16_t)type;
    if (r.type == ZJ_T_CNAME && r.owner_len == (size_t)zj_dname_len(ps->origin, ZJ_DNS_MAX_NAME)) {
        perr(ps, line, "a CNAME policy cannot be at the zone apex");
        return;
    }
    for (uint16_t k = ZJ_POL_WEIGHTED; k <= ZJ_POL_LATENCY; k++) {
        if (word_is(&w[3], kind_names[k])) {
            r.kind = k;
        }
    }
    if (r.kind == 0) {
        perr(ps, line, "unknown policy '%.*s' (weighted, failover, multivalue, geo, cidr, latency)",
             show(w[3].len), w[3].s);
        return;
    }
    if (r.type == ZJ_T_CNAME && r.kind == ZJ_POL_MULTIVALUE) {
        /* multivalue answers with several sets at once: several CNAMEs at one owner */
        perr(ps, line,
             "a CNAME cannot have a multivalue policy (one CNAME per owner, RFC 2181 §10.1)");
        return;
    }
    if (w[4].eq >= 0) {
        perr(ps, line, "set id missing before '%.*s'", show(w[4].len), w[4].s);
        return;
    }
    if (!str_ok(ps, line, &w[4], "set id", POL_SETID_MAX)) {
        return;
    }
    attr_t a[A_N] = {
        [A_TTL] = {.key = "ttl"},           [A_CHECK] = {.key = "check"},
        [A_WEIGHT] = {.key = "weight"},     [A_ROLE] = {.key = "role"},
        [A_LOCATION] = {.key = "location"}, [A_COLLECTION] = {.key = "collection"},
        [A_REGION] = {.key = "region"},
    };
    /* ttl and check go with every kind; of the rest, only this kind's are known */
    static const uint8_t kind_attrs[][2] = {
        [ZJ_POL_WEIGHTED] = {A_WEIGHT, A_WEIGHT},   [ZJ_POL_FAILOVER] = {A_ROLE, A_ROLE},
        [ZJ_POL_MULTIVALUE] = {A_N, A_N},           [ZJ_POL_GEO] = {A_LOCATION, A_LOCATION},
        [ZJ_POL_CIDR] = {A_LOCATION, A_COLLECTION}, [ZJ_POL_LATENCY] = {A_REGION, A_REGION},
    };
    for (int k = A_WEIGHT; k < A_N; k++) {
        a[k].is_off = k < kind_attrs[r.kind][0] || k > kind_attrs[r.kind][1];
    }
    char what[64];
    snprintf(what, sizeof(what), "a %s set", kind_names[r.kind]);
    if (!read_attrs(ps, line, 5, a, A_N, what)) {
        return;
    }
    if (a[A_TTL].seen && !parse_ttl_value(ps, line, a[A_TTL].v, a[A_TTL].vlen, &r.ttl)) {
        return;
    }
    if (a[A_CHECK].seen) {
        if (!ident_word(ps, line, a[A_CHECK].v, a[A_CHECK].vlen, "check name")) {
            return;
        }
        r.check_name = str_add(ps->m, a[A_CHECK].v, a[A_CHECK].vlen);
    }
    if (!set_kind_attrs(ps, line, &r, a)) {
        return;
    }
    r.id = str_add(ps->m, w[4].s, w[4].len);
    r.first_rr = (uint32_t)ps->f->n_rrs;
    *PUSH(ps->m->raw, ps->m->n_raw, ps->m->cap_raw) = r;
    ps->cur = ps->m->n_raw - 1;
    ps->skip_records = false;
}

/* Names inside the RDATA a response compresses are stored in lower case (see emit.c). */
static void record_line(pstate_t *ps, unsigned line)
{
    if (ps->cur == SIZE_MAX) {
        if (!ps->skip_records) {
            perr(ps, line, "record line outside a set (records are indented lines after a set)");
        }
        return;
    }
    rawset_t *r = &ps->m->raw[ps->cur];
    char why[POL_MSG_MAX];
    char tb[16];
    r->has_bad_record = true; /* until the record is stored */
    int n = zj_rdata_from_text(r->type, ps->toks, ps->n_toks, ps->origin, ps->rd, ZJ_RDATA_MAX, why,
                               sizeof(why));
    if (n < 0) {
        perr(ps, line, "%s", why);
        return;
    }
    size_t rdlen = (size_t)n;
    if (!zj_rdata_layout_ok(r->type, ps->rd, rdlen)) {
        perr(ps, line, "malformed %s rdata", zj_rrtype_to_text(r->type, tb, sizeof(tb)));
        return;
    }
    uint8_t folded[ZJ_DNS_MAX_NAME * 2 + 20]; /* the longest compressible RDATA: SOA */
    if (zj_rdata_lower_names(r->type, ps->rd, rdlen, folded, sizeof(folded))) {
        memcpy(ps->rd, folded, rdlen);
    }
    zj_polfile_t *f = ps->f;
    for (uint32_t k = r->first_rr; k < r->first_rr + r->n_rr; k++) {
        if (f->rrs[k].rdlen == rdlen &&
            memcmp(f->rdata + f->rrs[k].rdata_off, ps->rd, rdlen) == 0) {
            return; /* a duplicate record is dropped, as in zone files (RFC 2181 §5) */
        }
    }
    if (r->kind == ZJ_POL_MULTIVALUE && r->n_rr == 1) {
        perr(ps, line, "a multivalue set holds exactly one record");
        return;
    }
    if (r->type == ZJ_T_CNAME && r->n_rr == 1) {
        perr(ps, line,
             "a CNAME set holds exactly one record (one CNAME per owner, RFC 2181 §10.1)");
        return;
    }
    if (r->wire_len + 12 + rdlen > POL_MAX_WIRE) {
        perr(ps, line, "set '%s' is larger than %u bytes of wire data", str_at(ps->m, r->id),
             POL_MAX_WIRE);
        return;
    }
    r->wire_len += 12 + (uint32_t)rdlen;
    f->rdata = grow(f->rdata, &ps->cap_rdata, f->rdata_len + rdlen, 1);
    zj_pol_rr_t *rr = PUSH(f->rrs, f->n_rrs, ps->cap_rrs);
    rr->rdata_off = (uint32_t)f->rdata_len;
    rr->rdlen = (uint16_t)rdlen;
    rr->line = line;
    if (rdlen > 0) {
        memcpy(f->rdata + f->rdata_len, ps->rd, rdlen);
    }
    f->rdata_len += rdlen;
    r->n_rr++;
    r->has_bad_record = false;
}

static uint32_t find_check(const struct zj_pol_model *m, const char *s, size_t len)
{
    for (size_t i = 0; i < m->n_checks; i++) {
        const char *n = m->strs + m->checks[i].name;
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            return (uint32_t)i;
        }
    }
    return ZJ_IMG_NONE;
}

enum { C_INTERVAL, C_TIMEOUT, C_THRESHOLD, C_INVERTED, C_DISABLED, C_PATH, C_HOST, C_MATCH, C_N };

static bool check_probe(pstate_t *ps, unsigned line, pcheck_t *c, const word_t *w)
{
    char a[64];
    if (ps->n_words < 5 || w[3].eq >= 0 || w[4].eq >= 0) {
        perr(ps, line, "a %s check needs an address and a port", w[2].s);
        return false;
    }
    if (w[3].len >= sizeof(a) || memchr(w[3].s, '\0', w[3].len) != NULL) {
        perr(ps, line, "bad address '%.*s' (an IPv4 or IPv6 literal)", show(w[3].len), w[3].s);
        return false;
    }
    memcpy(a, w[3].s, w[3].len + 1);
    if (inet_pton(AF_INET, a, c->addr) == 1) {
        c->family = AF_INET;
    } else if (inet_pton(AF_INET6, a, c->addr) == 1) {
        c->family = AF_INET6;
    } else {
        perr(ps, line, "bad address '%.*s' (an IPv4 or IPv6 literal)", show(w[3].len), w[3].s);
        return false;
    }
    uint64_t v;
    if (!parse_uint(w[4].s, w[4].len, 65535, &v) || v == 0) {
        perr(ps, line, "bad port '%.*s' (1-65535)", show(w[4].len), w[4].s);
        return false;
    }
    c->port = (uint16_t)v;
    attr_t at[C_N] = {
        [C_INTERVAL] = {.key = "interval"},
        [C_TIMEOUT] = {.key = "timeout"},
        [C_THRESHOLD] = {.key = "threshold"},
        [C_INVERTED] = {.key = "inverted", .is_flag = true},
        [C_DISABLED] = {.key = "disabled", .is_flag = true},
        [C_PATH] = {.key = "path"},
        [C_HOST] = {.key = "host"},
        [C_MATCH] = {.key = "match"},
    };
    char what[64];
    snprintf(what, sizeof(what), "a %s check", w[2].s);
    if (!read_attrs(ps, line, 5, at, c->kind == ZJ_CHECK_TCP ? C_PATH : C_N, what)) {
        return false;
    }
    c->flags = (uint16_t)((at[C_INVERTED].seen ? ZJ_CHECK_INVERTED : 0) |
                          (at[C_DISABLED].seen ? ZJ_CHECK_DISABLED : 0));
    uint64_t ms = POL_DEFAULT_INTERVAL_MS;
    if (at[C_INTERVAL].seen && (!parse_ms(at[C_INTERVAL].v, at[C_INTERVAL].vlen, &ms) ||
                                ms < POL_MIN_INTERVAL_MS || ms > POL_MAX_INTERVAL_MS)) {
        perr(ps, line, "bad interval '%.*s' (1-3600 seconds)", show(at[C_INTERVAL].vlen),
             at[C_INTERVAL].v);
        return false;
    }
    c->interval_ms = (uint32_t)ms;
    /* default 4 s, or half the interval when the interval is not longer than 4 s */
    ms = c->interval_ms > POL_DEFAULT_TIMEOUT_MS ? POL_DEFAULT_TIMEOUT_MS : c->interval_ms / 2;
    if (at[C_TIMEOUT].seen) {
        if (!parse_ms(at[C_TIMEOUT].v, at[C_TIMEOUT].vlen, &ms) || ms == 0) {
            perr(ps, line, "bad timeout '%.*s' (seconds, or milliseconds as <n>ms)",
                 show(at[C_TIMEOUT].vlen), at[C_TIMEOUT].v);
            return false;
        }
        if (ms >= c->interval_ms) {
            perr(ps, line, "timeout %llu ms is not below the interval (%u ms)",
                 (unsigned long long)ms, c->interval_ms);
            return false;
        }
    }
    c->timeout_ms = (uint32_t)ms;
    uint64_t th = POL_DEFAULT_THRESHOLD;
    if (at[C_THRESHOLD].seen &&
        (!parse_uint(at[C_THRESHOLD].v, at[C_THRESHOLD].vlen, ZJ_CHECK_MAX_THRESHOLD, &th) ||
         th == 0)) {
        perr(ps, line, "bad threshold '%.*s' (1-%u)", show(at[C_THRESHOLD].vlen), at[C_THRESHOLD].v,
             ZJ_CHECK_MAX_THRESHOLD);
        return false;
    }
    c->threshold = (uint32_t)th;
    if (c->kind == ZJ_CHECK_TCP) {
        return true;
    }
    /* HTTP(S): path and host go into the request line and header, so no blanks or controls */
    static const char *const names[] = {[C_PATH] = "path", [C_HOST] = "host", [C_MATCH] = "match"};
    for (int k = C_PATH; k <= C_MATCH; k++) {
        if (!at[k].seen) {
            continue;
        }
        bool ok = at[k].vlen > 0 && at[k].vlen <= POL_TEXT_MAX &&
                  memchr(at[k].v, '\0', at[k].vlen) == NULL;
        for (size_t i = 0; ok && k != C_MATCH && i < at[k].vlen; i++) {
            ok = (uint8_t)at[k].v[i] > 0x20 && (uint8_t)at[k].v[i] != 0x7F;
        }
        if (!ok || (k == C_PATH && at[k].v[0] != '/')) {
            perr(ps, line, "bad %s '%.*s' (1-%u bytes%s)", names[k], show(at[k].vlen), at[k].v,
                 POL_TEXT_MAX,
                 k == C_PATH ? " starting with '/', no blanks"
                             : (k == C_HOST ? ", no blanks" : ""));
            return false;
        }
    }
    c->path =
        at[C_PATH].seen ? str_add(ps->m, at[C_PATH].v, at[C_PATH].vlen) : str_add(ps->m, "/", 1);
    c->host = at[C_HOST].seen ? str_add(ps->m, at[C_HOST].v, at[C_HOST].vlen) : ZJ_IMG_NONE;
    c->match = at[C_MATCH].seen ? str_add(ps->m, at[C_MATCH].v, at[C_MATCH].vlen) : ZJ_IMG_NONE;
    return true;
}

static bool check_calculated(pstate_t *ps, unsigned line, pcheck_t *c, const word_t *w)
{
    struct zj_pol_model *m = ps->m;
    if (ps->n_words < 5 || w[3].eq >= 0 || w[4].eq >= 0) {
        perr(ps, line, "a calculated check needs <min-healthy> <child>[,<child>...]");
        return false;
    }
    attr_t at[2] = {{.key = "inverted", .is_flag = true}, {.key = "disabled", .is_flag = true}};
    if (!read_attrs(ps, line, 5, at, 2, "a calculated check")) {
        return false;
    }
    c->flags =
        (uint16_t)((at[0].seen ? ZJ_CHECK_INVERTED : 0) | (at[1].seen ? ZJ_CHECK_DISABLED : 0));
    c->kids_first = (uint32_t)m->n_kids;
    const char *s = w[4].s;
    const char *end = s + w[4].len;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        if (!ident_word(ps, line, s, (size_t)(e - s), "child check name")) {
            return false;
        }
        for (uint32_t k = c->kids_first; k < m->n_kids; k++) {
            const char *o = m->strs + m->kids[k];
            if (strlen(o) == (size_t)(e - s) && memcmp(o, s, (size_t)(e - s)) == 0) {
                perr(ps, line, "child check '%s' listed twice", o);
                return false;
            }
        }
        if (m->n_kids - c->kids_first >= POL_MAX_CHILDREN) {
            perr(ps, line, "a calculated check has at most %u children", POL_MAX_CHILDREN);
            return false;
        }
        uint32_t off = str_add(m, s, (size_t)(e - s));
        *PUSH(m->kids, m->n_kids, m->cap_kids) = off;
        if (comma == NULL) {
            break;
        }
        s = comma + 1;
    }
    c->n_kids = (uint32_t)(m->n_kids - c->kids_first);
    uint64_t v;
    if (!parse_uint(w[3].s, w[3].len, POL_MAX_CHILDREN, &v)) {
        perr(ps, line, "bad min-healthy '%.*s' (a number of children)", show(w[3].len), w[3].s);
        return false;
    }
    if (v > c->n_kids) {
        perr(ps, line, "min-healthy %llu is more than the %u children", (unsigned long long)v,
             c->n_kids);
        return false;
    }
    c->min_healthy = (uint32_t)v;
    return true;
}

static void stmt_check(pstate_t *ps, unsigned line)
{
    struct zj_pol_model *m = ps->m;
    const word_t *w = ps->words;
    if (ps->n_words < 3) {
        perr(ps, line, "check needs a name and a kind (tcp, http, https, calculated)");
        return;
    }
    if (!ident_word(ps, line, w[1].s, w[1].len, "check name")) {
        return;
    }
    uint32_t dup = find_check(m, w[1].s, w[1].len);
    if (dup != ZJ_IMG_NONE) {
        perr(ps, line, "check '%s' already declared at line %u", m->strs + m->checks[dup].name,
             m->checks[dup].line);
        return;
    }
    pcheck_t c;
    memset(&c, 0, sizeof(c));
    c.line = line;
    c.path = c.host = c.match = ZJ_IMG_NONE;
    if (word_is(&w[2], "tcp")) {
        c.kind = ZJ_CHECK_TCP;
    } else if (word_is(&w[2], "http")) {
        c.kind = ZJ_CHECK_HTTP;
    } else if (word_is(&w[2], "https")) {
        c.kind = ZJ_CHECK_HTTPS;
    } else if (word_is(&w[2], "calculated")) {
        c.kind = ZJ_CHECK_CALCULATED;
    } else {
        perr(ps, line, "unknown check kind '%.*s' (tcp, http, https, calculated)", show(w[2].len),
             w[2].s);
    }
    bool ok = c.kind != 0 && (c.kind == ZJ_CHECK_CALCULATED ? check_calculated(ps, line, &c, w)
                                                            : check_probe(ps, line, &c, w));
    if (!ok) {
        c.n_kids = 0; /* the name stays known, so sets using it get no second error */
    }
    c.name = str_add(m, w[1].s, w[1].len);
    *PUSH(m->checks, m->n_checks, m->cap_checks) = c;
}

static uint32_t find_coll(const struct zj_pol_model *m, const char *s)
{
    for (size_t i = 0; i < m->n_colls; i++) {
        if (strcmp(m->strs + m->colls[i].name, s) == 0) {
            return (uint32_t)i;
        }
    }
    return ZJ_IMG_NONE;
}

/* Index of location s within collection c, or ZJ_IMG_NONE. */
static uint32_t find_loc(const struct zj_pol_model *m, uint32_t c, const char *s)
{
    uint32_t idx = 0;
    for (size_t i = 0; i < m->n_locs; i++) {
        if (m->locs[i].coll != c) {
            continue;
        }
        if (strcmp(m->strs + m->locs[i].name, s) == 0) {
            return idx;
        }
        idx++;
    }
    return ZJ_IMG_NONE;
}

static void stmt_cidr(pstate_t *ps, unsigned line)
{
    struct zj_pol_model *m = ps->m;
    const word_t *w = ps->words;
    if (ps->n_words < 4) {
        perr(ps, line, "cidr needs a collection, a location and at least one prefix");
        return;
    }
    if (!ident_word(ps, line, w[1].s, w[1].len, "collection name")) {
        return;
    }
    if (w[2].len == 1 && w[2].s[0] == '*') {
        perr(ps, line,
             "'*' is the default of a cidr set (location=*), not a location of a "
             "collection");
        return;
    }
    if (!ident_word(ps, line, w[2].s, w[2].len, "location name")) {
        return;
    }
    uint32_t c = find_coll(m, w[1].s);
    if (c == ZJ_IMG_NONE) {
        pcoll_t *pc = PUSH(m->colls, m->n_colls, m->cap_colls);
        pc->name = str_add(m, w[1].s, w[1].len);
        pc->n_locs = 0;
        c = (uint32_t)m->n_colls - 1;
    }
    uint32_t loc = find_loc(m, c, w[2].s);
    if (loc == ZJ_IMG_NONE) {
        ploc_t *pl = PUSH(m->locs, m->n_locs, m->cap_locs);
        pl->coll = c;
        pl->name = str_add(m, w[2].s, w[2].len);
        loc = m->colls[c].n_locs++;
    }
    char why[POL_MSG_MAX];
    for (size_t i = 3; i < ps->n_words; i++) {
        ppfx_t x;
        memset(&x, 0, sizeof(x));
        if (!parse_prefix(w[i].s, w[i].len, &x.p, why, sizeof(why))) {
            perr(ps, line, "%s", why);
            continue;
        }
        x.p.value = loc;
        x.line = line;
        x.owner = c;
        x.seq = (uint32_t)m->n_pfx;
        *PUSH(m->pfx, m->n_pfx, m->cap_pfx) = x;
    }
}

static void stmt_latency(pstate_t *ps, unsigned line)
{
    struct zj_pol_model *m = ps->m;
    const word_t *w = ps->words;
    if (ps->n_words != 3) {
        perr(ps, line, "latency needs <region>[,<region>...] and one client");
        return;
    }
    plat_t e;
    memset(&e, 0, sizeof(e));
    e.line = line;
    char why[POL_MSG_MAX];
    const char *cl = w[2].s;
    size_t cll = w[2].len;
    zj_prefix_t pfx;
    /* an IPv6 prefix has colons too, but never starts with a letter other than a-f */
    const char *colon = memchr(cl, ':', cll);
    size_t kl = colon ? (size_t)(colon - cl) : 0;
    bool is_loc =
        (cll == 1 && cl[0] == '*') ||
        (colon != NULL && (zj_eq_nocase(cl, kl, "continent") || zj_eq_nocase(cl, kl, "country") ||
                           zj_eq_nocase(cl, kl, "subdivision")));
    e.is_prefix = !is_loc;
    if (is_loc && !parse_location(cl, cll, &e.level, &e.code, &e.sub, why, sizeof(why))) {
        perr(ps, line, "%s", why);
        return;
    }
    if (e.is_prefix && !parse_prefix(cl, cll, &pfx, why, sizeof(why))) {
        perr(ps, line, "%s (a latency client is a prefix, a location or *)", why);
        return;
    }
    if (!e.is_prefix) {
        for (size_t i = 0; i < m->n_lat; i++) {
            const plat_t *o = &m->lat[i];
            if (!o->is_prefix && o->level == e.level && o->code == e.code && o->sub == e.sub) {
                perr(ps, line, "latency client '%.*s' already listed at line %u", show(cll), cl,
                     o->line);
                return;
            }
        }
    }
    e.reg_first = (uint32_t)m->n_reglist;
    const char *s = w[1].s;
    const char *end = s + w[1].len;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *en = comma ? comma : end;
        size_t l = (size_t)(en - s);
        if (!ident_word(ps, line, s, l, "region name")) {
            m->n_reglist = e.reg_first;
            return;
        }
        uint32_t r = ZJ_IMG_NONE;
        for (size_t i = 0; i < m->n_regs && r == ZJ_IMG_NONE; i++) {
            const char *n = m->strs + m->regs[i];
            if (strlen(n) == l && memcmp(n, s, l) == 0) {
                r = (uint32_t)i;
            }
        }
        if (r == ZJ_IMG_NONE) {
            *PUSH(m->regs, m->n_regs, m->cap_regs) = str_add(m, s, l);
            r = (uint32_t)m->n_regs - 1;
        }
        for (size_t i = e.reg_first; i < m->n_reglist; i++) {
            if (m->reglist[i] == r) {
                perr(ps, line, "region '%s' listed twice", m->strs + m->regs[r]);
                m->n_reglist = e.reg_first;
                return;
            }
        }
        *PUSH(m->reglist, m->n_reglist, m->cap_reglist) = r;
        if (comma == NULL) {
            break;
        }
        s = comma + 1;
    }
    e.n_reg = (uint32_t)(m->n_reglist - e.reg_first);
    if (e.is_prefix) {
        ppfx_t x;
        memset(&x, 0, sizeof(x));
        x.p = pfx;
        x.p.value = (uint32_t)m->n_lat; /* the entry, renumbered when the table is written */
        x.line = line;
        x.owner = ZJ_IMG_NONE;
        x.seq = (uint32_t)m->n_pfx;
        *PUSH(m->pfx, m->n_pfx, m->cap_pfx) = x;
    }
    *PUSH(m->lat, m->n_lat, m->cap_lat) = e;
}

static void statement(pstate_t *ps, unsigned line)
{
    const word_t *w = ps->words;
    if (word_is(&w[0], "set")) {
        stmt_set(ps, line);
    } else if (word_is(&w[0], "check")) {
        stmt_check(ps, line);
    } else if (word_is(&w[0], "cidr")) {
        stmt_cidr(ps, line);
    } else if (word_is(&w[0], "latency")) {
        stmt_latency(ps, line);
    } else if (word_is(&w[0], "$TTL")) {
        stmt_ttl(ps, line);
    } else {
        perr(ps, line, "unknown statement '%.*s' (set, check, cidr, latency, $TTL)", show(w[0].len),
             w[0].s);
    }
}

/* ---- checks across statements ------------------------------------------------------------ */

/* Resolve children; order the checks children first and report cycles. */
static void order_checks(pstate_t *ps)
{
    struct zj_pol_model *m = ps->m;
    for (size_t i = 0; i < m->n_checks; i++) {
        pcheck_t *c = &m->checks[i];
        for (uint32_t k = c->kids_first; k < c->kids_first + c->n_kids; k++) {
            const char *n = m->strs + m->kids[k];
            uint32_t idx = find_check(m, n, strlen(n));
            if (idx == ZJ_IMG_NONE) {
                perr(ps, c->line, "check '%s': no check named '%s'", m->strs + c->name, n);
                c->n_kids = 0;
                break;
            }
            m->kids[k] = idx;
        }
    }
    m->order = xalloc(m->n_checks + 1, sizeof(uint32_t));
    uint32_t *stack = xalloc(m->n_checks + 1, sizeof(uint32_t));
    uint32_t *next = xalloc(m->n_checks + 1, sizeof(uint32_t));
    size_t n_order = 0;
    for (size_t root = 0; root < m->n_checks; root++) {
        if (m->checks[root].mark != 0) {
            continue;
        }
        /* each check is on the stack at most once (mark 1), so the depth is bounded by the
         * number of checks */
        size_t sp = 0;
        stack[sp] = (uint32_t)root;
        next[sp++] = 0;
        m->checks[root].mark = 1;
        while (sp > 0) {
            pcheck_t *c = &m->checks[stack[sp - 1]];
            if (next[sp - 1] < c->n_kids) {
                uint32_t k = m->kids[c->kids_first + next[sp - 1]++];
                pcheck_t *kc = &m->checks[k];
                if (kc->mark == 1) {
                    perr(ps, c->line, "calculated check '%s' is in a cycle through '%s'",
                         m->strs + c->name, m->strs + kc->name);
                    c->n_kids = 0; /* report each cycle once */
                } else if (kc->mark == 0) {
                    kc->mark = 1;
                    stack[sp] = k;
                    next[sp++] = 0;
                }
                continue;
            }
            c->mark = 2;
            c->order = (uint32_t)n_order;
            m->order[n_order++] = stack[sp - 1];
            sp--;
        }
    }
    free(stack);
    free(next);
}

/* Name of location idx of collection c. */
static const char *loc_name(const struct zj_pol_model *m, uint32_t c, uint32_t idx)
{
    for (size_t i = 0; i < m->n_locs; i++) {
        if (m->locs[i].coll == c && idx-- == 0) {
            return m->strs + m->locs[i].name;
        }
    }
    return "?";
}

static int cmp_pfx(const void *a, const void *b)
{
    const ppfx_t *x = a;
    const ppfx_t *y = b;
    if (x->owner != y->owner) {
        return x->owner < y->owner ? -1 : 1; /* latency clients (ZJ_IMG_NONE) last */
    }
    if (x->p.family != y->p.family) {
        return x->p.family < y->p.family ? -1 : 1;
    }
    int d = memcmp(x->p.addr, y->p.addr, sizeof(x->p.addr));
    if (d != 0) {
        return d;
    }
    if (x->p.len != y->p.len) {
        return x->p.len < y->p.len ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int cmp_seq(const void *a, const void *b)
{
    const ppfx_t *x = a;
    const ppfx_t *y = b;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void check_prefixes(pstate_t *ps)
{
    struct zj_pol_model *m = ps->m;
    char t[INET6_ADDRSTRLEN];
    if (m->n_pfx > 1) {
        qsort(m->pfx, m->n_pfx, sizeof(*m->pfx), cmp_pfx);
    }
    for (size_t i = 1; i < m->n_pfx; i++) {
        const ppfx_t *a = &m->pfx[i - 1];
        const ppfx_t *b = &m->pfx[i];
        if (a->owner != b->owner || a->p.family != b->p.family || a->p.len != b->p.len ||
            memcmp(a->p.addr, b->p.addr, sizeof(a->p.addr)) != 0) {
            continue;
        }
        inet_ntop(b->p.family, b->p.addr, t, sizeof(t));
        if (b->owner == ZJ_IMG_NONE) {
            perr(ps, b->line, "latency client %s/%u already listed at line %u", t, b->p.len,
                 a->line);
        } else if (a->p.value != b->p.value) {
            perr(ps, b->line,
                 "prefix %s/%u of location '%s' is already in collection '%s' for location '%s' "
                 "(line %u)",
                 t, b->p.len, loc_name(m, b->owner, b->p.value), m->strs + m->colls[b->owner].name,
                 loc_name(m, a->owner, a->p.value), a->line);
        } else {
            perr(ps, b->line, "prefix %s/%u of location '%s' already listed at line %u", t,
                 b->p.len, loc_name(m, b->owner, b->p.value), a->line);
        }
    }
    if (m->n_pfx > 1) {
        qsort(m->pfx, m->n_pfx, sizeof(*m->pfx), cmp_seq); /* back to file order */
    }
}

/* Names a set uses. */
static void resolve_set(pstate_t *ps, rawset_t *r)
{
    struct zj_pol_model *m = ps->m;
    if (r->check_name != ZJ_IMG_NONE) {
        const char *n = m->strs + r->check_name;
        r->check = find_check(m, n, strlen(n));
        if (r->check == ZJ_IMG_NONE) {
            perr(ps, r->line, "no check named '%s'", n);
            r->is_bad = true;
        }
    }
    if (r->kind == ZJ_POL_CIDR) {
        const char *cn = m->strs + r->coll_name;
        r->coll = find_coll(m, cn);
        if (r->coll == ZJ_IMG_NONE) {
            perr(ps, r->line, "no CIDR collection named '%s'", cn);
            r->is_bad = true;
        } else if (r->loc_name == ZJ_IMG_NONE) {
            r->value = ZJ_IMG_NONE;
        } else {
            r->value = find_loc(m, r->coll, m->strs + r->loc_name);
            if (r->value == ZJ_IMG_NONE) {
                perr(ps, r->line, "location '%s' is not in CIDR collection '%s'",
                     m->strs + r->loc_name, cn);
                r->is_bad = true;
            }
        }
    } else if (r->kind == ZJ_POL_LATENCY) {
        r->value = ZJ_IMG_NONE;
        for (size_t i = 0; i < m->n_regs && r->value == ZJ_IMG_NONE; i++) {
            if (strcmp(m->strs + m->regs[i], m->strs + r->loc_name) == 0) {
                r->value = (uint32_t)i;
            }
        }
        if (r->value == ZJ_IMG_NONE) {
            perr(ps, r->line, "region '%s' is not in the zone's latency table",
                 m->strs + r->loc_name);
            r->is_bad = true;
        }
    }
}

static int cmp_raw(const void *a, const void *b, void *ctx)
{
    const struct zj_pol_model *m = ctx;
    const rawset_t *x = &m->raw[*(const uint32_t *)a];
    const rawset_t *y = &m->raw[*(const uint32_t *)b];
    int d = memcmp(x->owner, y->owner, x->owner_len < y->owner_len ? x->owner_len : y->owner_len);
    if (d != 0) {
        return d;
    }
    if (x->owner_len != y->owner_len) {
        return x->owner_len < y->owner_len ? -1 : 1;
    }
    if (x->type != y->type) {
        return x->type < y->type ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Within one policy: the set's key for duplicate detection (id strings are compared apart). */
static uint64_t set_key(const rawset_t *r)
{
    switch (r->kind) {
    case ZJ_POL_GEO:
        return ((uint64_t)r->geo_level << 48) | ((uint64_t)r->geo_code << 32) | r->value;
    case ZJ_POL_CIDR:
    case ZJ_POL_LATENCY:
        return r->value;
    default:
        return 0;
    }
}

static int cmp_by_id(const void *a, const void *b, void *ctx)
{
    const struct zj_pol_model *m = ctx;
    const rawset_t *x = &m->raw[*(const uint32_t *)a];
    const rawset_t *y = &m->raw[*(const uint32_t *)b];
    int d = strcmp(m->strs + x->id, m->strs + y->id);
    return d != 0 ? d : (x->seq < y->seq ? -1 : (x->seq > y->seq));
}

static int cmp_by_key(const void *a, const void *b, void *ctx)
{
    const struct zj_pol_model *m = ctx;
    const rawset_t *x = &m->raw[*(const uint32_t *)a];
    const rawset_t *y = &m->raw[*(const uint32_t *)b];
    uint64_t kx = set_key(x);
    uint64_t ky = set_key(y);
    if (kx != ky) {
        return kx < ky ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void describe_key(const struct zj_pol_model *m, const rawset_t *r, char *out, size_t cap)
{
    if (r->kind == ZJ_POL_GEO) {
        static const char *const lv[] = {"*", "continent", "country", "subdivision"};
        char sub[4] = {(char)(r->value >> 24), (char)(r->value >> 16), (char)(r->value >> 8), 0};
        if (r->geo_level == ZJ_GEO_DEFAULT) {
            snprintf(out, cap, "location *");
        } else {
            snprintf(out, cap, "location %s:%c%c%s%s", lv[r->geo_level], r->geo_code >> 8,
                     r->geo_code & 0xFF, r->geo_level == ZJ_GEO_SUBDIVISION ? "-" : "", sub);
        }
    } else if (r->kind == ZJ_POL_CIDR) {
        snprintf(out, cap, "location %s", str_at(m, r->loc_name));
    } else {
        snprintf(out, cap, "region %s", str_at(m, r->loc_name));
    }
}

/* The sets g[0..n) of one (owner, type), in file order: one kind, unique ids, the kind's rules.
 * Returns false if any error was reported. */
static bool check_policy(pstate_t *ps, uint32_t *g, size_t n)
{
    struct zj_pol_model *m = ps->m;
    const rawset_t *first = &m->raw[g[0]];
    char on[1024];
    char tb[16];
    char k1[80];
    zj_dname_to_text(first->owner, on, sizeof(on));
    const char *tn = zj_rrtype_to_text(first->type, tb, sizeof(tb));
    unsigned before = ps->n_errors;
    for (size_t i = 1; i < n; i++) {
        const rawset_t *r = &m->raw[g[i]];
        if (r->kind != first->kind) {
            perr(ps, r->line,
                 "set '%s' of %s %s uses policy %s, but its first set (line %u) uses %s",
                 m->strs + r->id, on, tn, kind_names[r->kind], first->line,
                 kind_names[first->kind]);
        } else if (r->kind == ZJ_POL_CIDR && r->coll != first->coll) {
            perr(ps, r->line,
                 "set '%s' of %s %s uses collection '%s', its first set (line %u) '%s'",
                 m->strs + r->id, on, tn, m->strs + r->coll_name, first->line,
                 m->strs + first->coll_name);
        } else if (r->kind == ZJ_POL_MULTIVALUE && r->ttl != first->ttl) {
            /* the sets chosen answer as one RRset, and an RRset has one TTL (RFC 2181 §5.2) */
            perr(ps, r->line,
                 "set '%s' of %s %s has TTL %u, its first set (line %u) TTL %u: the sets of a "
                 "multivalue policy answer as one RRset and need one TTL",
                 m->strs + r->id, on, tn, r->ttl, first->line, first->ttl);
        }
    }
    if (n > ZJ_POLICY_MAX_SETS) {
        perr(ps, first->line, "%s %s has %zu sets, more than %u (the limit of a policy)", on, tn, n,
             ZJ_POLICY_MAX_SETS);
    }
    if (ps->n_errors != before) {
        return false;
    }
    uint32_t *s = xalloc(n, sizeof(uint32_t));
    memcpy(s, g, n * sizeof(uint32_t));
    qsort_r(s, n, sizeof(uint32_t), cmp_by_id, m);
    for (size_t i = 1; i < n; i++) {
        const rawset_t *a = &m->raw[s[i - 1]];
        const rawset_t *b = &m->raw[s[i]];
        if (strcmp(m->strs + a->id, m->strs + b->id) == 0) {
            perr(ps, b->line, "set id '%s' of %s %s already used at line %u", m->strs + b->id, on,
                 tn, a->line);
        }
    }
    if (first->kind == ZJ_POL_GEO || first->kind == ZJ_POL_CIDR || first->kind == ZJ_POL_LATENCY) {
        qsort_r(s, n, sizeof(uint32_t), cmp_by_key, m);
        for (size_t i = 1; i < n; i++) {
            const rawset_t *a = &m->raw[s[i - 1]];
            const rawset_t *b = &m->raw[s[i]];
            if (set_key(a) == set_key(b)) {
                describe_key(m, b, k1, sizeof(k1));
                perr(ps, b->line, "%s used twice in %s %s (also line %u)", k1, on, tn, a->line);
            }
        }
    }
    free(s);
    if (first->kind == ZJ_POL_FAILOVER) {
        const rawset_t *prim = NULL;
        const rawset_t *sec = NULL;
        for (size_t i = 0; i < n; i++) {
            const rawset_t *r = &m->raw[g[i]];
            const rawset_t **slot = r->value == ZJ_FAILOVER_PRIMARY ? &prim : &sec;
            if (*slot != NULL) {
                perr(ps, r->line, "%s %s has a second %s set (the first is at line %u)", on, tn,
                     r->value == ZJ_FAILOVER_PRIMARY ? "primary" : "secondary", (*slot)->line);
            }
            *slot = r;
        }
        if (prim == NULL) {
            perr(ps, first->line, "failover without a primary set for %s %s", on, tn);
        }
    }
    return ps->n_errors == before;
}

static void group_sets(pstate_t *ps)
{
    struct zj_pol_model *m = ps->m;
    zj_polfile_t *f = ps->f;
    uint32_t *idx = xalloc(m->n_raw + 1, sizeof(uint32_t));
    size_t n = 0;
    for (size_t i = 0; i < m->n_raw; i++) {
        if (!m->raw[i].is_bad) {
            idx[n++] = (uint32_t)i;
        }
    }
    if (n > 1) {
        qsort_r(idx, n, sizeof(uint32_t), cmp_raw, m);
    }
    m->set_raw = xalloc(n + 1, sizeof(uint32_t));
    f->sets = grow(NULL, &ps->cap_sets, n + 1, sizeof(*f->sets));
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        const rawset_t *a = &m->raw[idx[i]];
        while (j < n) {
            const rawset_t *b = &m->raw[idx[j]];
            if (b->type != a->type || b->owner_len != a->owner_len ||
                memcmp(b->owner, a->owner, a->owner_len) != 0) {
                break;
            }
            j++;
        }
        if (check_policy(ps, idx + i, j - i)) {
            zj_pol_policy_t *p = PUSH(f->pols, f->n_pols, ps->cap_pols);
            memcpy(p->owner, a->owner, a->owner_len);
            p->owner_len = a->owner_len;
            p->type = a->type;
            p->kind = a->kind;
            p->line = a->line;
            p->first_set = (uint32_t)f->n_sets;
            p->n_sets = (uint32_t)(j - i);
            for (size_t k = i; k < j; k++) {
                const rawset_t *r = &m->raw[idx[k]];
                m->set_raw[f->n_sets] = idx[k];
                zj_pol_set_t *s = &f->sets[f->n_sets++];
                s->line = r->line;
                s->ttl = r->ttl;
                s->first_rr = r->first_rr;
                s->n_rr = r->n_rr;
            }
        }
        i = j;
    }
    free(idx);
}

static void finish(pstate_t *ps)
{
    struct zj_pol_model *m = ps->m;
    close_set(ps);
    order_checks(ps);
    check_prefixes(ps);
    for (size_t i = 0; i < m->n_raw; i++) {
        if (!m->raw[i].is_bad) {
            resolve_set(ps, &m->raw[i]);
        }
    }
    group_sets(ps);
    ps->f->n_checks = m->n_checks;
}

/* ---- entry points ------------------------------------------------------------------------ */

static void model_free(struct zj_pol_model *m)
{
    if (m == NULL) {
        return;
    }
    free(m->strs);
    free(m->checks);
    free(m->kids);
    free(m->order);
    free(m->colls);
    free(m->locs);
    free(m->pfx);
    free(m->lat);
    free(m->regs);
    free(m->reglist);
    free(m->raw);
    free(m->set_raw);
    free(m);
}

void zj_polfile_free(zj_polfile_t *f)
{
    if (f == NULL) {
        return;
    }
    free(f->pols);
    free(f->sets);
    free(f->rrs);
    free(f->rdata);
    model_free(f->m);
    free(f);
}

int zj_polfile_parse(const char *text, size_t len, const uint8_t *origin, zj_pol_diag_fn diag,
                     void *ctx, zj_polfile_t **out)
{
    *out = NULL;
    pstate_t ps;
    memset(&ps, 0, sizeof(ps));
    ps.f = xalloc(1, sizeof(zj_polfile_t));
    memset(ps.f, 0, sizeof(*ps.f));
    ps.m = xalloc(1, sizeof(struct zj_pol_model));
    memset(ps.m, 0, sizeof(*ps.m));
    ps.f->m = ps.m;
    ps.origin = origin;
    ps.diag = diag;
    ps.ctx = ctx;
    ps.ttl = POL_DEFAULT_TTL;
    ps.cur = SIZE_MAX;
    ps.rd = xalloc(ZJ_RDATA_MAX, 1);
    str_add(ps.m, "", 0); /* offset 0 is never a name */
    const char *p = text;
    const char *end = text + len;
    unsigned line = 0;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        bool is_indented = *p == ' ' || *p == '\t';
        bool ok = lex_line(&ps, line, p, le);
        p = nl ? nl + 1 : end;
        if (!ok) {
            if (!is_indented) {
                close_set(&ps);
                ps.skip_records = true;
            } else if (ps.cur != SIZE_MAX && ps.m->raw[ps.cur].n_rr == 0) {
                ps.m->raw[ps.cur].has_bad_record = true;
            }
            continue;
        }
        if (ps.n_toks == 0) {
            continue; /* blank or comment: does not end a set */
        }
        if (is_indented) {
            record_line(&ps, line);
            continue;
        }
        close_set(&ps);
        make_words(&ps);
        statement(&ps, line);
    }
    finish(&ps);
    free(ps.toks);
    free(ps.words);
    free(ps.wbuf);
    free(ps.rd);
    if (ps.n_errors > 0) {
        zj_polfile_free(ps.f);
        return ZJ_EZONE;
    }
    *out = ps.f;
    return ZJ_OK;
}

/* ---- image tables ------------------------------------------------------------------------ */

static uint32_t tab_str(zj_poltab_t *t, const char *s)
{
    size_t n = strlen(s) + 1;
    t->strs = grow(t->strs, &t->strs_cap, t->strs_len + n, 1);
    uint32_t off = (uint32_t)t->strs_len;
    memcpy(t->strs + off, s, n);
    t->strs_len += n;
    return off;
}

static void tab_u32(zj_poltab_t *t, uint32_t v)
{
    *PUSH(t->u32, t->n_u32, t->cap_u32) = v;
}

/* Flatten prefixes into maps appended to t. */
static int add_maps(zj_poltab_t *t, const zj_prefix_t *p, size_t n, zj_img_table_d *td)
{
    zj_pmap4_d *m4 = NULL;
    zj_pmap6_d *m6 = NULL;
    size_t n4 = 0;
    size_t n6 = 0;
    int rc = zj_pmap_build(p, n, &m4, &n4, &m6, &n6);
    if (rc != ZJ_OK) {
        return rc;
    }
    t->p4 = grow(t->p4, &t->cap_p4, t->n_p4 + n4, sizeof(*t->p4));
    t->p6 = grow(t->p6, &t->cap_p6, t->n_p6 + n6, sizeof(*t->p6));
    td->first4 = (uint32_t)t->n_p4;
    td->n4 = (uint32_t)n4;
    td->first6 = (uint32_t)t->n_p6;
    td->n6 = (uint32_t)n6;
    if (n4 > 0) {
        memcpy(t->p4 + t->n_p4, m4, n4 * sizeof(*m4));
    }
    if (n6 > 0) {
        memcpy(t->p6 + t->n_p6, m6, n6 * sizeof(*m6));
    }
    t->n_p4 += n4;
    t->n_p6 += n6;
    free(m4);
    free(m6);
    return ZJ_OK;
}

static void emit_checks(zj_polfile_t *f, uint32_t zone, zj_poltab_t *t)
{
    const struct zj_pol_model *m = f->m;
    f->check_base = (uint32_t)t->n_chk;
    for (size_t o = 0; o < m->n_checks; o++) {
        const pcheck_t *c = &m->checks[m->order[o]];
        zj_img_check_d d;
        memset(&d, 0, sizeof(d));
        d.kind = c->kind;
        d.flags = c->flags;
        d.port = c->port;
        d.family = c->family;
        memcpy(d.addr, c->addr, sizeof(d.addr));
        d.interval_ms = c->interval_ms;
        d.timeout_ms = c->timeout_ms;
        d.threshold = c->threshold;
        d.name_off = tab_str(t, m->strs + c->name);
        d.path_off = c->path == ZJ_IMG_NONE ? ZJ_IMG_NONE : tab_str(t, m->strs + c->path);
        d.host_off = c->host == ZJ_IMG_NONE ? ZJ_IMG_NONE : tab_str(t, m->strs + c->host);
        d.match_off = c->match == ZJ_IMG_NONE ? ZJ_IMG_NONE : tab_str(t, m->strs + c->match);
        d.children_off = (uint32_t)t->n_u32;
        d.n_children = (uint16_t)c->n_kids;
        d.min_healthy = (uint16_t)c->min_healthy;
        d.zone = zone;
        for (uint32_t k = 0; k < c->n_kids; k++) {
            tab_u32(t, f->check_base + m->checks[m->kids[c->kids_first + k]].order);
        }
        *PUSH(t->chk, t->n_chk, t->cap_chk) = d;
    }
}

static int emit_collection(const zj_polfile_t *f, uint32_t ci, uint32_t zone, zj_poltab_t *t)
{
    const struct zj_pol_model *m = f->m;
    zj_img_table_d td;
    memset(&td, 0, sizeof(td));
    td.kind = ZJ_TABLE_CIDR;
    td.name_off = tab_str(t, m->strs + m->colls[ci].name);
    td.zone = zone;
    zj_prefix_t *p = xalloc(m->n_pfx + 1, sizeof(*p));
    size_t n = 0;
    for (size_t i = 0; i < m->n_pfx; i++) {
        if (m->pfx[i].owner == ci) {
            p[n++] = m->pfx[i].p;
        }
    }
    int rc = add_maps(t, p, n, &td);
    free(p);
    if (rc != ZJ_OK) {
        return rc;
    }
    td.values_off = (uint32_t)t->n_u32;
    td.n_values = m->colls[ci].n_locs;
    for (size_t i = 0; i < m->n_locs; i++) {
        if (m->locs[i].coll == ci) {
            tab_u32(t, tab_str(t, m->strs + m->locs[i].name));
        }
    }
    td.regions_off = (uint32_t)t->n_u32;
    *PUSH(t->tab, t->n_tab, t->cap_tab) = td;
    return ZJ_OK;
}

/* Latency entries: client prefixes first (reached through the maps), then locations from the
 * most specific level down, then "*" -- so a reader scanning the location entries in order
 * meets the most specific match first. */
static int emit_latency(const zj_polfile_t *f, uint32_t zone, zj_poltab_t *t)
{
    const struct zj_pol_model *m = f->m;
    zj_img_table_d td;
    memset(&td, 0, sizeof(td));
    td.kind = ZJ_TABLE_LATENCY;
    td.name_off = tab_str(t, "latency");
    td.zone = zone;
    uint32_t *ord = xalloc(m->n_lat + 1, sizeof(uint32_t));
    uint32_t *pos = xalloc(m->n_lat + 1, sizeof(uint32_t));
    size_t n = 0;
    for (size_t i = 0; i < m->n_lat; i++) {
        if (m->lat[i].is_prefix) {
            ord[n++] = (uint32_t)i;
        }
    }
    for (int level = ZJ_GEO_SUBDIVISION; level >= ZJ_GEO_DEFAULT; level--) {
        for (size_t i = 0; i < m->n_lat; i++) {
            if (!m->lat[i].is_prefix && m->lat[i].level == level) {
                ord[n++] = (uint32_t)i;
            }
        }
    }
    for (size_t e = 0; e < n; e++) {
        pos[ord[e]] = (uint32_t)e;
    }
    zj_prefix_t *p = xalloc(m->n_pfx + 1, sizeof(*p));
    size_t np = 0;
    for (size_t i = 0; i < m->n_pfx; i++) {
        if (m->pfx[i].owner == ZJ_IMG_NONE) {
            p[np] = m->pfx[i].p;
            p[np++].value = pos[m->pfx[i].p.value];
        }
    }
    int rc = add_maps(t, p, np, &td);
    free(p);
    if (rc == ZJ_OK) {
        uint32_t *first = pos; /* reused: U32 index of each emitted entry's region list */
        for (size_t e = 0; e < n; e++) {
            const plat_t *l = &m->lat[ord[e]];
            first[e] = (uint32_t)t->n_u32;
            for (uint32_t k = 0; k < l->n_reg; k++) {
                tab_u32(t, m->reglist[l->reg_first + k]);
            }
        }
        td.values_off = (uint32_t)t->n_u32;
        td.n_values = (uint32_t)n;
        for (size_t e = 0; e < n; e++) {
            const plat_t *l = &m->lat[ord[e]];
            tab_u32(t, l->is_prefix ? ZJ_LAT_PREFIX_ENTRY : ((uint32_t)l->level << 16 | l->code));
            tab_u32(t, l->sub);
            tab_u32(t, first[e]);
            tab_u32(t, l->n_reg);
        }
        td.regions_off = (uint32_t)t->n_u32;
        td.n_regions = (uint32_t)m->n_regs;
        for (size_t i = 0; i < m->n_regs; i++) {
            tab_u32(t, tab_str(t, m->strs + m->regs[i]));
        }
        *PUSH(t->tab, t->n_tab, t->cap_tab) = td;
    }
    free(ord);
    free(pos);
    return rc;
}

/* Every count and offset of the sections is 32 bits, ZJ_IMG_NONE reserved. */
#define POL_SECTION_MAX 0xFFFFFFF0u

int zj_polfile_emit_tables(zj_polfile_t *f, uint32_t zone, zj_poltab_t *t)
{
    const struct zj_pol_model *m = f->m;
    emit_checks(f, zone, t);
    f->table_base = (uint32_t)t->n_tab;
    for (uint32_t ci = 0; ci < m->n_colls; ci++) {
        int rc = emit_collection(f, ci, zone, t);
        if (rc != ZJ_OK) {
            return rc;
        }
    }
    if (m->n_lat > 0) {
        int rc = emit_latency(f, zone, t);
        if (rc != ZJ_OK) {
            return rc;
        }
    }
    if (t->strs_len > POL_SECTION_MAX || t->n_u32 > POL_SECTION_MAX || t->n_p4 > POL_SECTION_MAX ||
        t->n_p6 > POL_SECTION_MAX) {
        return ZJ_ELIMIT;
    }
    return ZJ_OK;
}

void zj_polfile_emit_policy(const zj_polfile_t *f, size_t i, uint32_t zone, uint32_t node,
                            uint32_t first_rrset, zj_poltab_t *t)
{
    const struct zj_pol_model *m = f->m;
    const zj_pol_policy_t *p = &f->pols[i];
    const rawset_t *first = &m->raw[m->set_raw[p->first_set]];
    zj_img_policy_d d;
    memset(&d, 0, sizeof(d));
    d.kind = p->kind;
    d.n_sets = (uint16_t)p->n_sets;
    d.first_pset = (uint32_t)t->n_pset;
    d.first_rrset = first_rrset;
    d.table = ZJ_IMG_NONE;
    if (p->kind == ZJ_POL_CIDR) {
        d.table = f->table_base + first->coll;
    } else if (p->kind == ZJ_POL_LATENCY) {
        d.table = f->table_base + (uint32_t)m->n_colls;
    }
    d.zone = zone;
    d.node = node;
    *PUSH(t->pol, t->n_pol, t->cap_pol) = d;
    for (uint32_t k = 0; k < p->n_sets; k++) {
        const rawset_t *r = &m->raw[m->set_raw[p->first_set + k]];
        zj_img_pset_d s;
        memset(&s, 0, sizeof(s));
        s.check = r->check == ZJ_IMG_NONE ? ZJ_IMG_NONE : f->check_base + m->checks[r->check].order;
        s.id_off = tab_str(t, m->strs + r->id);
        s.value = r->value;
        s.geo_level = r->geo_level;
        s.geo_code = r->geo_code;
        if (p->kind == ZJ_POL_MULTIVALUE) {
            s.value = 0;
        }
        *PUSH(t->pset, t->n_pset, t->cap_pset) = s;
    }
}

bool zj_poltab_used(const zj_poltab_t *t)
{
    return t->n_pol > 0 || t->n_chk > 0 || t->n_tab > 0;
}

void zj_poltab_fini(zj_poltab_t *t)
{
    free(t->pol);
    free(t->pset);
    free(t->chk);
    free(t->u32);
    free(t->strs);
    free(t->tab);
    free(t->p4);
    free(t->p6);
    memset(t, 0, sizeof(*t));
}
