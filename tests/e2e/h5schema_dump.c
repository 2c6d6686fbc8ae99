/* h5schema_dump: prints the schema table (analysis/h5/h5schema.c), one entry a line, for
 * schema_table.py; exits 1 if the table itself is malformed (a missing row, a path twice, a
 * rank out of range, a dimension without a symbol). Fields, tab-separated:
 *   path  type  rank  shape  labels  blocks  description
 * type is f64, series or strings; shape is symbolic, e.g. [S, L+1]; labels are comma-separated,
 * "-" when the dataset is not labelled; blocks are the block kinds whose files hold it, and
 * "dual" when only files of a placement with a dual stream (ResiDual) hold it. */
#include "h5schema.h"
#include <stdio.h>
#include <string.h>

int main(void)
{
    static const char *const types[] = {"f64", "series", "strings"};
    int bad = 0;
    for (int i = 0; i < NS_H5S_COUNT; i++) {
        const ns_h5schema_entry *e = ns_h5schema_get((ns_h5schema_id)i);
        if (!e->path || !e->description || e->rank < 1 || e->rank > NS_H5SCHEMA_MAX_RANK ||
            (unsigned)e->type > NS_H5T_STRINGS || !(e->blocks & NS_H5B_ALL) ||
            (e->type == NS_H5T_STRINGS && e->rank != 1)) {
            fprintf(stderr, "h5schema_dump: entry %d is incomplete or malformed\n", i);
            bad = 1;
            continue;
        }
        if (ns_h5schema_find(e->path) != i) {
            fprintf(stderr, "h5schema_dump: %s is in the table twice\n", e->path);
            bad = 1;
        }
        char shape[64], labels[128] = "";
        const char *lab[NS_H5SCHEMA_MAX_RANK];
        ns_h5schema_shape((ns_h5schema_id)i, shape, sizeof shape);
        if (ns_h5schema_labels((ns_h5schema_id)i, lab))
            for (int k = 0; k < e->rank; k++)
                snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s",
                         k ? "," : "", lab[k]);
        else
            snprintf(labels, sizeof labels, "-");
        static const char *const kinds[] = {"mlp", "transformer", "moe"};
        char blocks[64] = "";
        for (int k = 0; k < 3; k++)
            if (e->blocks & (1u << k))
                snprintf(blocks + strlen(blocks), sizeof blocks - strlen(blocks), "%s%s",
                         blocks[0] ? "," : "", kinds[k]);
        if (e->blocks & NS_H5B_DUAL)
            snprintf(blocks + strlen(blocks), sizeof blocks - strlen(blocks), ",dual");
        printf("%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e->path, types[e->type], e->rank, shape, labels,
               blocks, e->description);
    }
    return bad;
}
