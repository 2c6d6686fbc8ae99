/* placement.c: the table of normalization placements.
 *
 * A placement is data: which norm slots a sublayer has, what the block's outer skip carries, and
 * where Scale Init's alpha goes. model.c interprets these fields in one place, so a new placement
 * (Sandwich/Peri-LN: norm_in + norm_out; B2T, DeepNorm: a skip gain or an extra skip term) is a
 * new row here plus its tests. */
#include "internal.h"
#include <string.h>

static const ns_placement placements[] = {
    {.name = "pre",
     .equation = "y = x + F(N(x))",
     .equation2 = "h = x + A(N1(x)); y = h + F(N2(h))",
     .norm_in = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .default_scale_init = "none",
     .final_norm = 1},
    {.name = "post",
     .equation = "y = N(x + F(x))",
     .equation2 = "h = N1(x + A(x)); y = N2(h + F(h))",
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .default_scale_init = "none",
     .final_norm = 0},
    /* SpanNorm (arXiv 2601.22580), reconstructed from the abstract: a clean skip over the whole
     * block and one PostNorm-style norm on the aggregated branch output, its gain starting at
     * alpha = 1/sqrt(L), so q_{l+1} = q_l + alpha^2 exactly at init. */
    {.name = "span",
     .equation = "y = x + N(F(x)), gain alpha",
     .equation2 = "a = A(x); f = F(x + a); y = x + N(a + f), gain alpha",
     .span = NS_SPAN_AGGREGATE,
     .alpha_site = NS_ALPHA_SPAN_GAIN,
     .default_scale_init = "sqrtL",
     .final_norm = 1},
    /* the "wrapped" reading: a PostNorm block inside one clean skip, alpha on its last norm */
    {.name = "span-wrapped",
     .equation = "y = x + alpha N(x + F(x))",
     .equation2 = "h = N1(x + A(x)); y = x + alpha N2(h + F(h))",
     .norm_sum = 1,
     .span = NS_SPAN_WRAP,
     .alpha_site = NS_ALPHA_LAST_NORM_GAIN,
     .default_scale_init = "sqrtL",
     .final_norm = 1},
};

const ns_placement *ns_placement_at(int i)
{
    if (i < 0 || i >= (int)(sizeof placements / sizeof placements[0]))
        return NULL;
    return &placements[i];
}

const ns_placement *ns_placement_find(const char *name)
{
    for (int i = 0; ns_placement_at(i); i++)
        if (strcmp(placements[i].name, name) == 0)
            return &placements[i];
    return NULL;
}
