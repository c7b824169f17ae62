/* Any text -> policy file parser and builder (beside a fixed zone): errors are reported, nothing
 * crashes or leaks; whatever builds opens as a valid image, and every policy in it can be
 * answered: zj_policy_choose returns at most ZJ_POLICY_MAX_ANSWER record sets of the policy for
 * an IPv4, an IPv6 and an unknown client. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "compile/emit.h"
#include "policy/policy.h"
#include "zonejet/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Names to collide with: a delegation and its glue, a CNAME, an MX target, a wildcard. */
static const char ZONE[] = "$ORIGIN example.com.\n$TTL 300\n"
                           "@ SOA ns1 host 1 2 3 4 60\n@ NS ns1\n"
                           "ns1 A 192.0.2.1\nmail A 192.0.2.2\nwww A 192.0.2.3\n"
                           "alias CNAME www\n*.wild A 192.0.2.4\n"
                           "sub NS ns.sub\nns.sub A 192.0.2.6\nd DNAME example.net.\n";

static void choose_all(const zj_image_t *img)
{
    static const zj_client_t clients[] = {
        {.family = AF_INET, .addr = {10, 1, 2, 3}, .source_len = 32},
        {.family = AF_INET6, .addr = {0x20, 0x01, 0x0d, 0xb8}, .source_len = 128},
        {.family = 0},
    };
    uint64_t rng[2] = {0x9E3779B97F4A7C15ull, 0x243F6A8885A308D3ull};
    for (uint32_t p = 0; p < img->n_policies; p++) {
        const zj_img_policy_d *pd = &img->policies[p];
        for (size_t c = 0; c < sizeof(clients) / sizeof(clients[0]); c++) {
            zj_policy_env_t env = {.client = &clients[c], .geo = NULL, .rng = rng};
            uint32_t out[ZJ_POLICY_MAX_ANSWER];
            uint8_t scope = 0;
            unsigned n = zj_policy_choose(img, p, &env, out, &scope);
            if (n > ZJ_POLICY_MAX_ANSWER) {
                abort();
            }
            for (unsigned k = 0; k < n; k++) {
                if (out[k] < pd->first_rrset || out[k] >= pd->first_rrset + pd->n_sets) {
                    abort(); /* an answer outside the policy's own record sets */
                }
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *devnull = fopen("/dev/null", "w");
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.diag = devnull;
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    if (zj_builder_add_text(b, "fuzz.zone", ZONE, sizeof(ZONE) - 1, NULL) != 0) {
        abort();
    }
    (void)zj_builder_add_policy_text(b, "fuzz.policy", (const char *)data, size, NULL);
    uint8_t *img = NULL;
    size_t len = 0;
    if (zj_builder_finish(b, &img, &len) == 0) {
        zj_image_t *im = NULL;
        char err[256];
        if (zj_image_open_mem(img, len, &im, err, sizeof(err)) != 0) {
            fprintf(stderr, "fuzz_policy: the builder wrote an image its reader rejects: %s\n",
                    err);
            abort();
        }
        choose_all(im);
        zj_image_close(im);
    }
    zj_builder_free(b);
    if (devnull != NULL) {
        fclose(devnull);
    }
    return 0;
}
