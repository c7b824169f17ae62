/* Any text -> zone file parser and builder: errors are reported, nothing crashes; what builds
 * must open as a valid image. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile/emit.h"
#include "zonejet/zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *devnull = fopen("/dev/null", "w");
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.diag = devnull;
    o.quiet = true;
    static const uint8_t origin[] = "\7example\3com";
    zj_builder_t *b = zj_builder_new(&o);
    (void)zj_builder_add_text(b, "fuzz.zone", (const char *)data, size, origin);
    uint8_t *img = NULL;
    size_t len = 0;
    if (zj_builder_finish(b, &img, &len) == 0) {
        zj_image_t *im = NULL;
        char err[256];
        if (zj_image_open_mem(img, len, &im, err, sizeof(err)) != 0) {
            abort(); /* the builder wrote an image its own reader rejects */
        }
        zj_image_close(im);
    }
    zj_builder_free(b);
    if (devnull != NULL) {
        fclose(devnull);
    }
    return 0;
}
