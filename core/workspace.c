/* workspace.c: memory that models reuse one after another (normscope.h, ns_workspace).
 *
 * Why: a 64-block run touches 1-2 GiB of fresh pages, and the kernel faults and zeroes each one
 * on first touch an order of magnitude more slowly than memset rewrites a resident page.
 * glibc returns blocks this large to the kernel on free, so without a workspace every sweep
 * point and every repeat pays the faults again. Nor is the memory cleared between models: that
 * alone would cost a pass over all of it. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

struct ns_workspace {
    void *base;
    size_t bytes;
    int in_use;
};

int ns_workspace_create(ns_workspace **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? NS_OK : NS_ERR_NOMEM;
}

void ns_workspace_free(ns_workspace *ws)
{
    if (!ws)
        return;
    ns_free_large(ws->base);
    free(ws);
}

int ns_workspace_take(ns_workspace *ws, size_t bytes, void **base)
{
    if (ws->in_use)
        return NS_ERR_INVALID;
    if (bytes > ws->bytes) { /* grow: free first, so the old and new never coexist */
        ns_free_large(ws->base);
        ws->bytes = 0;
        if (!(ws->base = ns_alloc_large(bytes)))
            return NS_ERR_NOMEM;
        ws->bytes = bytes;
    }
#ifndef NDEBUG
    /* The memory is handed over as it is: the model zeroes what it accumulates into and writes
     * everything else before reading it. Debug builds fill it with NaNs, so that a read before
     * a write shows in every test that runs in a workspace. */
    memset(ws->base, 0xff, bytes);
#endif
    ws->in_use = 1;
    *base = ws->base;
    return NS_OK;
}

void ns_workspace_give_back(ns_workspace *ws) { ws->in_use = 0; }

void ns_copy_or_zero(void *out, const void *in, size_t bytes)
{
    enum { CHUNK = 65536 };
    size_t nchunks = (bytes + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (bytes >= NS_PAR_MIN * sizeof(float))
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * CHUNK, len = bytes - i0 < CHUNK ? bytes - i0 : CHUNK;
        if (in)
            memcpy((char *)out + i0, (const char *)in + i0, len);
        else
            memset((char *)out + i0, 0, len);
    }
}
