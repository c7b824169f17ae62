/* Mutated image bytes -> zj_image_open_mem accepts or rejects, never crashes; an accepted image
 * is then walked through the lookup API to prove its offsets are safe to use. A mutation almost
 * never keeps the XXH3 checksum (nor file_len), so both are rewritten to match the mutated
 * bytes: otherwise the fuzzer stops at the header checks and never reaches the section, node,
 * rrset and index checks behind them. The checksum-mismatch path is a unit test's job. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "dns/answer.h"
#include "zone/imgset_internal.h"
#include "zonejet/image.h"
#include "zonejet/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, 8, size ? size : 8) != 0) {
        return 0;
    }
    memcpy(buf, data, size);
    if (size >= sizeof(zj_img_header_d)) {
        uint64_t flen = size;
        memcpy(buf + offsetof(zj_img_header_d, file_len), &flen, sizeof(flen));
        uint64_t sum = XXH3_64bits(buf + ZJ_IMG_SUM_FROM, size - ZJ_IMG_SUM_FROM);
        memcpy(buf + offsetof(zj_img_header_d, checksum), &sum, sizeof(sum));
    }
    zj_image_t *img = NULL;
    char err[256];
    if (zj_image_open_mem(buf, size, &img, err, sizeof(err)) != 0) {
        free(buf);
        return 0;
    }
    /* answer queries for the first names of the image, for the types whose answers follow
     * links (CNAME, DNAME, NS, MX additional processing), through the whole answer path */
    zj_image_t *images[1] = {img};
    zj_imgset_t *set = NULL;
    if (zj_imgset_from_images(images, 1, &set) == 0) {
        static const uint16_t types[] = {1, 2, 5, 6, 15, 43, 255};
        static uint8_t out[65535];
        zj_answer_cfg_t cfg;
        zj_answer_cfg_default(&cfg);
        zj_responder_t r;
        zj_responder_init(&r, &cfg, 1);
        for (uint32_t n = 0; n < img->n_nodes && n < 64; n++) {
            uint8_t q[12 + 255 + 4] = {0x12, 0x34, 0, 0, 0, 1};
            size_t nl = img->nodes[n].name_len;
            memcpy(q + 12, zj_node_name(img, n), nl);
            for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
                q[12 + nl] = (uint8_t)(types[t] >> 8);
                q[13 + nl] = (uint8_t)types[t];
                q[14 + nl] = 0;
                q[15 + nl] = 1;
                (void)zj_answer(&r, set, q, 16 + nl, NULL, t % 2 == 0, out, sizeof(out));
            }
        }
        zj_imgset_close(set);
    }
    zj_image_close(img);
    return 0;
}
