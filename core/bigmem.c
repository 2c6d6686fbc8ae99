/* bigmem.c: zeroed memory for large arrays (normscope.h, ns_alloc_large), on transparent huge
 * pages where the kernel offers them.
 *
 * Why: the kernel maps a fresh page on its first touch, one fault per 4 KiB, and on the virtual
 * machines we run on a fault costs microseconds. A 64-block Transformer (W1 of normscope bench)
 * touches 1.5 GiB, about 390k faults, which made its first run twice as long as a run on resident
 * memory; the theory's trajectories fault in 64 MiB each. A transparent huge page maps 2 MiB per
 * fault, but the kernel's default mode ("madvise") gives them only to ranges that ask with
 * madvise(MADV_HUGEPAGE), and glibc's malloc does not ask. Where the kernel has no huge pages
 * the advice is ignored and the memory is plain pages, as malloc's would be. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MADV_HUGEPAGE */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* AddressSanitizer puts its guard zones around heap blocks only, so its builds (the debug
 * preset) keep every array on the heap, where overruns still show */
#ifdef __SANITIZE_ADDRESS__
#define HEAP_ONLY 1
#else
#define HEAP_ONLY 0
#endif

#define HUGE_PAGE ((size_t)2 << 20)
/* the mapping's length sits in front of the array; 64 bytes keep the array cache-line aligned */
#define HEADER ((size_t)64)

void *ns_alloc_large(size_t bytes)
{
    if (bytes > SIZE_MAX - HEADER - 2 * HUGE_PAGE)
        return NULL;
    size_t need = bytes + HEADER;
    if (need < HUGE_PAGE || HEAP_ONLY) { /* too small for a huge page: the heap */
        size_t rounded = (need + HEADER - 1) / HEADER * HEADER;
        char *small = aligned_alloc(HEADER, rounded);
        if (!small)
            return NULL;
        memset(small, 0, rounded); /* length 0 in the header: the heap's */
        return small + HEADER;
    }
    /* map a huge page more than needed and cut it back to a 2 MiB-aligned range, so that every
     * 2 MiB of the array can be one huge page */
    size_t len = (need + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *base = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    size_t head = (size_t)(base - raw);
    if (head)
        munmap(raw, head);
    if (HUGE_PAGE - head)
        munmap(base + len, HUGE_PAGE - head);
#ifdef MADV_HUGEPAGE
    madvise(base, len, MADV_HUGEPAGE); /* advice: where refused, plain pages */
#endif
    *(size_t *)base = len;
    return base + HEADER;
}

void ns_free_large(void *p)
{
    if (!p)
        return;
    char *base = (char *)p - HEADER;
    size_t len = *(size_t *)base;
    if (len)
        munmap(base, len);
    else
        free(base);
}
