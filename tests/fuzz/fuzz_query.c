/* Any bytes -> zj_query_parse: never crash, never read outside the input. */
#include <stddef.h>
#include <stdint.h>

#include "dns/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zj_query_t q;
    (void)zj_query_parse(data, size, &q);
    return 0;
}
