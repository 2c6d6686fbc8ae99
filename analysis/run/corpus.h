/* corpus.h: a byte corpus read from files and directories, and its held-out split.
 *
 * The corpus is named by a comma list of paths. A file is taken whole, whatever its bytes. A
 * directory contributes its regular files (not its subdirectories, not its symbolic links),
 * sorted by name (byte order), except those holding a NUL byte, which are binary (fortune's
 * .dat indexes); it is not descended into. The files' bytes are concatenated in that order.
 *
 * The held-out split is a deterministic set of whole chunks: the corpus of n bytes is cut into
 * chunks of ns_corpus_chunk_bytes(n) bytes (4096, or fewer so that there are at least 100),
 * and chunk i is held out when floor((i + 1) f) > floor(i f) for the held-out fraction f, so
 * that exactly floor(K f) of any first K chunks are held out, evenly spread over the corpus.
 * The two parts are each concatenated in corpus order.
 *
 * Inputs may be hostile: only regular files are read (a FIFO is refused without waiting for a
 * writer, a device without reading it), at most NS_CORPUS_MAX_FILES files and
 * NS_CORPUS_MAX_BYTES bytes in all. Status codes and one-line messages; nothing prints. */
#ifndef NS_CORPUS_H
#define NS_CORPUS_H
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define NS_CORPUS_MAX_BYTES INT_MAX /* the batch sampler indexes windows with an int */
#define NS_CORPUS_MAX_FILES 100000
#define NS_CORPUS_CHUNK 4096

typedef struct {
    unsigned char *bytes; /* the train part [0, ntrain), then the held-out part */
    size_t ntrain, nheldout;
    int nfiles;
    char **files; /* the files read, in corpus order */
} ns_corpus;

/* reads the corpus named by spec with held-out fraction f (0 < f < 1) into *c. NS_ERR_IO (a
 * path that cannot be read, e.g. missing), NS_ERR_INVALID (not a regular file or directory,
 * nothing to read, too large, too many files), NS_ERR_NOMEM; a one-line message in err. */
int ns_corpus_read(ns_corpus *c, const char *spec, double f, char *err, size_t errlen);
void ns_corpus_free(ns_corpus *c); /* accepts a zeroed or freed corpus */
/* FNV-1a (64-bit) over the corpus bytes, train part then held-out part: a resume compares it
 * with the checkpoint's, so a changed text is not trained on as if it were the same */
uint64_t ns_corpus_digest(const ns_corpus *c);

/* the chunk length for a corpus of n bytes, and whether chunk i is held out at fraction f */
size_t ns_corpus_chunk_bytes(size_t n);
int ns_corpus_chunk_heldout(size_t i, double f);

#endif
