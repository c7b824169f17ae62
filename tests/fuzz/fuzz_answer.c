/* Any bytes -> the whole answer path against a fixed image, over UDP and TCP limits. A response
 * must be well-formed: at least a header, QR set, ID copied, never over the size limit. The
 * answer table's batch prefetch reads the packet first, as a worker does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compile/emit.h"
#include "dns/answer.h"
#include "zone/imgset_internal.h"
#include "zonejet/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ZONE[] =
    "$ORIGIN example.com.\n$TTL 300\n"
    "@ SOA ns1 host 1 2 3 4 60\n@ NS ns1\n@ NS ns.sub\n@ MX 5 mail\n"
    "ns1 A 192.0.2.1\nmail A 192.0.2.2\nmail AAAA 2001:db8::2\n"
    "www A 192.0.2.3\nalias CNAME www\nloop1 CNAME loop2\n"
    "loop2 CNAME loop1\nout CNAME www.example.org.\n"
    "*.wild A 192.0.2.4\n*.wild TXT \"wild\"\nx.ent A 192.0.2.5\n"
    "sub NS ns.sub\nns.sub A 192.0.2.6\nd DNAME example.net.\n"
    "big TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"
    "big TXT \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\n";

static zj_imgset_t *fixture(void)
{
    static zj_imgset_t *set;
    static zj_image_t *images[1];
    if (set == NULL) {
        zj_build_opts_t o;
        memset(&o, 0, sizeof(o));
        o.quiet = true;
        zj_builder_t *b = zj_builder_new(&o);
        (void)zj_builder_add_text(b, "fuzz.zone", ZONE, sizeof(ZONE) - 1, NULL);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (zj_builder_finish(b, &buf, &len) != 0) {
            abort();
        }
        zj_builder_free(b);
        char err[256];
        if (zj_image_open_mem(buf, len, &images[0], err, sizeof(err)) != 0) {
            abort();
        }
        if (zj_imgset_from_images(images, 1, &set) != 0) {
            abort();
        }
    }
    return set;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static zj_answer_cfg_t cfg;
    static zj_responder_t r;
    static const uint8_t nsid[] = "fuzz";
    zj_imgset_t *set = fixture();
    zj_answer_cfg_default(&cfg);
    cfg.nsid = nsid;
    cfg.nsid_len = 4;
    cfg.version = "zonejet";
    zj_responder_init(&r, &cfg, 7);
    static uint8_t out[65535];
    zj_anstab_hint_t hint;
    zj_anstab_prefetch_start(set, data, size, &hint);
    for (int round = 0; round < ZJ_ANSTAB_PREFETCH_STEPS; round++) {
        zj_anstab_prefetch_step(&hint);
    }
    for (int tcp = 0; tcp < 2; tcp++) {
        size_t cap = tcp ? sizeof(out) : 4096;
        size_t n = zj_answer(&r, set, data, size, NULL, tcp != 0, out, cap);
        if (n == 0) {
            continue;
        }
        if (n < ZJ_DNS_HEADER_LEN || n > cap || !(out[2] & 0x80) || size < 2 ||
            memcmp(out, data, 2) != 0) {
            abort();
        }
    }
    return 0;
}
