/* Layout of an image set, for the answer path (src/dns/answer.c) and the control plane. */
#pragma once

#include <stddef.h>

#include "zone/imgset.h"
#include "zonejet/zone.h"

struct zj_imgset {
    zj_image_t **images;
    size_t n_images;
};
