/* Layout of an image set, for the answer path (src/dns/answer.c) and the control plane. */
#pragma once

#include <stddef.h>

#include "zone/imgset.h"
#include "zonejet/zone.h"

typedef struct zj_imgsrc zj_imgsrc_t; /* a source and its image, shared between sets (imgset.c) */

struct zj_imgset {
    zj_image_t **images; /* what the answer path reads: images[i] is srcs[i]'s image */
    size_t n_images;
    zj_imgsrc_t **srcs; /* n_images entries; NULL in sets that tests build by hand */
};
