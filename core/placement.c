/* placement.c: the table of normalization placements, the only place that knows one.
 *
 * A placement is data: which norm slots a sublayer has, what the block's outer skip carries, and
 * where Scale Init's alpha goes. model.c interprets these fields in one place; the program's
 * --placement choices and help, the theory (by the structure of a row), verify's cases, the
 * figures' colours (by row) and the notebooks (`normscope placements --json`) all read this
 * table, so a new placement (Sandwich/Peri-LN: norm_in + norm_out; B2T, DeepNorm: a skip gain or
 * an extra skip term) is a new row here plus its tests. */
#include "internal.h"
#include <string.h>

static const ns_placement placements[] = {
    {.name = "pre",
     .title = "PreNorm",
     .paper = "Xiong et al. 2020, arXiv 2002.04745",
     .equation = "y = x + F(N(x))",
     .equation2 = "h = x + A(N1(x)); y = h + F(N2(h))",
     .norm_in = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .final_norm = 1,
     .config_scheme = "pre",
     .config_span_variant = "aggregate"},
    {.name = "post",
     .title = "PostNorm",
     .paper = "Vaswani et al. 2017, arXiv 1706.03762",
     .equation = "y = N(x + F(x))",
     .equation2 = "h = N1(x + A(x)); y = N2(h + F(h))",
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .final_norm = 0,
     .config_scheme = "post",
     .config_span_variant = "aggregate"},
    /* SpanNorm (arXiv 2601.22580), reconstructed from the abstract: a clean skip over the whole
     * block and one PostNorm-style norm on the aggregated branch output, its gain starting at
     * alpha = 1/sqrt(L), so q_{l+1} = q_l + alpha^2 exactly at init. */
    {.name = "span",
     .title = "SpanNorm",
     .paper = "arXiv 2601.22580 (reconstructed from the abstract)",
     .equation = "y = x + N(F(x)), gain alpha",
     .equation2 = "a = A(x); f = F(x + a); y = x + N(a + f), gain alpha",
     .span = NS_SPAN_AGGREGATE,
     .alpha_site = NS_ALPHA_SPAN_GAIN,
     .alpha_on = "the gain of the span norm",
     .default_scale_init = "sqrtL",
     .final_norm = 1,
     .config_scheme = "span",
     .config_span_variant = "aggregate"},
    /* the "wrapped" reading: a PostNorm block inside one clean skip, alpha on its last norm */
    {.name = "span-wrapped",
     .title = "SpanNorm, wrapped",
     .paper = "arXiv 2601.22580, the wrapped reading of the abstract",
     .equation = "y = x + alpha N(x + F(x))",
     .equation2 = "h = N1(x + A(x)); y = x + alpha N2(h + F(h))",
     .norm_sum = 1,
     .span = NS_SPAN_WRAP,
     .alpha_site = NS_ALPHA_LAST_NORM_GAIN,
     .alpha_on = "the gain of the block's last norm",
     .default_scale_init = "sqrtL",
     .final_norm = 1,
     .config_scheme = "span",
     .config_span_variant = "wrapped"},
};
#define NPLACEMENTS (int)(sizeof placements / sizeof placements[0])

int ns_placement_count(void) { return NPLACEMENTS; }

const ns_placement *ns_placement_at(int i)
{
    return i >= 0 && i < NPLACEMENTS ? &placements[i] : NULL;
}

const ns_placement *ns_placement_find(const char *name)
{
    for (int i = 0; name && i < NPLACEMENTS; i++)
        if (strcmp(placements[i].name, name) == 0)
            return &placements[i];
    return NULL;
}

int ns_placement_index(const ns_placement *p)
{
    for (int i = 0; i < NPLACEMENTS; i++) /* equality: p may point anywhere */
        if (p == &placements[i])
            return i;
    return -1;
}
