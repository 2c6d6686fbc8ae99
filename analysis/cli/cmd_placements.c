/* cmd_placements.c: `normscope placements`, the placement table (core/placement.c) as text or,
 * with --json, for notebooks and scripts (with each row's colour and marker in the figures). */
#define _GNU_SOURCE
#include "cli.h"
#include "normscope.h"
#include "options.h"
#include "plots.h"
#include <stddef.h>
#include <stdio.h>

typedef struct {
    int json;
} opts;

static const ns_opt_spec placements_specs[] = {
    {"json", K_FLAG, offsetof(opts, json), NULL, NULL, NS_ONE, NULL,
     "print one JSON object instead of the table", NULL, NULL},
};

static void print_json(void)
{
    const ns_placement *p;
    printf("{\"placements\": [");
    for (int i = 0; (p = ns_placement_at(i)); i++) {
        const char *color;
        int point;
        ns_plot_placement_style(i, &color, &point);
        printf("%s\n  {\"index\": %d, \"name\": ", i ? "," : "", i);
        ns_cli_json_string(p->name);
        const struct {
            const char *key, *value;
        } texts[] = {{"title", p->title},
                     {"paper", p->paper},
                     {"equation_mlp", p->equation},
                     {"equation", p->equation2},
                     {"alpha_on", p->alpha_on},
                     {"default_scale_init", p->default_scale_init},
                     {"color", color}};
        for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
            printf(", \"%s\": ", texts[k].key);
            ns_cli_json_string(texts[k].value);
        }
        printf(", \"blocks\": [");
        for (int b = 0, k = 0; ns_opt_blocks[b]; b++)
            if (ns_placement_takes(p, (ns_block_kind)b))
                printf("%s\"%s\"", k++ ? ", " : "", ns_opt_blocks[b]);
        printf("], \"final_norm\": %s, \"marker\": %d}", p->final_norm ? "true" : "false",
               point);
    }
    printf("\n]}\n");
}

/* when a language model adds a final norm: always, never, or (a row that is a schedule of two,
 * Mix-LN) when its last block takes the row that needs one (lm.c) */
static void final_norm_text(const ns_placement *p, char *out, size_t n)
{
    const ns_placement *early = p->early ? ns_placement_find(p->early) : NULL;
    const ns_placement *late = p->late ? ns_placement_find(p->late) : NULL;
    if (early && late && early->final_norm != late->final_norm)
        snprintf(out, n, "; a language model adds a final norm when its last block is %s",
                 early->final_norm ? early->name : late->name);
    else
        snprintf(out, n, "%s", p->final_norm ? "; a language model adds a final norm" : "");
}

static void print_table(void)
{
    const ns_placement *p;
    char final[128];
    for (int i = 0; (p = ns_placement_at(i)); i++) {
        final_norm_text(p, final, sizeof final);
        printf("%s%s (%s; %s)\n  MLP block:         %s\n  Transformer block: %s\n"
               "  Scale Init alpha on %s, default --scale-init %s%s\n",
               i ? "\n" : "", p->name, p->title, p->paper, p->equation, p->equation2, p->alpha_on,
               p->default_scale_init, final);
    }
}

int ns_cmd_placements(int argc, char **argv)
{
    static const ns_command cmd = {
        .name = "normscope placements",
        .doc = "List the normalization placements (--placement NAME): equations of the MLP and "
               "Transformer blocks, where Scale Init's alpha sits, the default --scale-init.",
        .own = placements_specs,
        .nown = (int)(sizeof placements_specs / sizeof placements_specs[0])};
    static ns_opt_given g;
    opts o = {0};
    int st = ns_opt_parse(&g, &cmd, argc, argv);
    if (st == 0) {
        ns_opt_point_at(&g, 0, &o);
        if (o.json)
            print_json();
        else
            print_table();
    }
    ns_opt_free(&g);
    return st == 0 ? NS_EXIT_OK : NS_EXIT_USAGE;
}
