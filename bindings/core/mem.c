/*
 * mem.c - the allocator every C allocation of the module goes through
 * (see internal.h): libc's, unless a test harness replaces it with
 * aio_mem = its own (before any allocation, from one thread).
 */
#define AIO_MEM_IMPL
#include "internal.h"

aio_allocator aio_mem = {malloc, calloc, realloc, free};
