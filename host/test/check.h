/*
 * check.h - the counting CHECK of the C tests in host/test: a failed
 * check prints where and what, and counts; main reports the count.
 */
#ifndef LUAIO_TEST_CHECK_H
#define LUAIO_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,      \
              #cond);                                                       \
      failures++;                                                           \
    }                                                                       \
  } while (0)

#endif
