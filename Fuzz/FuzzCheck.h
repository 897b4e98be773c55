// CHECK for the C fuzz harnesses: a broken invariant prints what broke and aborts, which libFuzzer reports as a
// finding (an assert would vanish under NDEBUG).
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(condition, ...)                                           \
    do {                                                                \
        if (!(condition)) {                                             \
            fprintf(stderr, "invariant broken: " __VA_ARGS__);          \
            fprintf(stderr, "\n");                                      \
            abort();                                                    \
        }                                                               \
    } while (0)

#endif
