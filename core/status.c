/* status.c: names of status codes and the version string. */
#include "normscope.h"

#ifndef NS_VERSION_STRING
#define NS_VERSION_STRING "unknown"
#endif

const char *ns_strerror(int status)
{
    switch (status) {
    case NS_OK: return "success";
    case NS_ERR_NOMEM: return "out of memory";
    case NS_ERR_INVALID: return "invalid argument";
    case NS_ERR_NUMERIC: return "numerical routine failed";
    case NS_ERR_INTERRUPTED: return "interrupted";
    case NS_ERR_IO: return "input/output error";
    default: return "unknown error";
    }
}

const char *ns_version(void) { return NS_VERSION_STRING; }
