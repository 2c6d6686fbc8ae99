/* scale_init.c: the Scale Init factor alpha from its name. */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ns_scale_init_parse(const char *text, int depth, double *alpha)
{
    if (!text || depth < 1)
        return NS_ERR_INVALID;
    if (strcmp(text, "none") == 0)
        *alpha = 1.0;
    else if (strcmp(text, "sqrtL") == 0)
        *alpha = 1.0 / sqrt((double)depth);
    else if (strcmp(text, "sqrt2L") == 0)
        *alpha = 1.0 / sqrt(2.0 * depth);
    else {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v) || !(v > 0))
            return NS_ERR_INVALID;
        *alpha = v;
    }
    return NS_OK;
}
