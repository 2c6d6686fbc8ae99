/* check.h: the tests' one assertion. A failed check prints one line and counts; main returns
 * non-zero if any failed, so CTest sees the failure. */
#ifndef NS_TEST_CHECK_H
#define NS_TEST_CHECK_H
#include <stdio.h>

static int checks, failures;

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        checks++;                                                                                \
        if (!(cond)) {                                                                           \
            failures++;                                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                 \
            printf("\n");                                                                        \
        }                                                                                        \
    } while (0)

#endif
