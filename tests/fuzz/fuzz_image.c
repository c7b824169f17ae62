/* Mutated image bytes -> zj_image_open_mem accepts or rejects, never crashes; an accepted image
 * is then walked through the lookup API to prove its offsets are safe to use. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zonejet/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, 8, size ? size : 8) != 0) {
        return 0;
    }
    memcpy(buf, data, size);
    zj_image_t *img = NULL;
    char err[256];
    if (zj_image_open_mem(buf, size, &img, err, sizeof(err)) != 0) {
        free(buf);
        return 0;
    }
    for (uint32_t n = 0; n < img->n_nodes && n < 256; n++) {
        zj_qname_t q;
        zj_qname_init(&q, zj_node_name(img, n), img->nodes[n].name_len);
        int labels = 0;
        uint32_t z = zj_image_find_zone(img, &q, false, &labels);
        if (z != ZJ_IMG_NONE) {
            zj_lookup_t lk;
            zj_zone_lookup(img, z, &q, 1, &lk);
        }
    }
    zj_image_close(img);
    return 0;
}
