/* fuzz_time.c — RFC 3339 date-times (timeutil.c), as bodies (FT_TIME fields) carry them.
 *
 * Contract: a time that parses formats back to text that parses to the same instant. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "impactd/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    int64_t ms;
    if (time_parse_rfc3339(s, &ms) == 0) {
        char text[RFC3339_LEN];
        time_format_rfc3339(ms, text);
        int64_t again;
        FUZZ_ASSERT(time_parse_rfc3339(text, &again) == 0 && again == ms);
    }
    free(s);
    return 0;
}
