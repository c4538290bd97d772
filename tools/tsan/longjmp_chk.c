/*
 * longjmp_chk.c - linked into the ThreadSanitizer build only (make
 * check-tsan).
 *
 * Debian's liblua5.4 is built with _FORTIFY_SOURCE, so Lua's error and
 * yield path (luaD_throw) leaves through __longjmp_chk. GCC 12's TSan
 * runtime intercepts setjmp/_setjmp and longjmp/siglongjmp, but not
 * __longjmp_chk: each throw out of a lua_resume or lua_pcall then skips
 * TSan's own unwinding (its shadow call stack and its list of jmp_bufs).
 * Every await from a C function (a yield across C, a throw) leaks a few
 * shadow-stack entries; after some 65,000 in one thread TSan corrupts its
 * own state (SEGV in JmpBufGarbageCollect) and its stack depot CHECK
 * fails on a "stack" of more than 65,536 frames. A 64 MiB file write is
 * just long enough for a ticking task to get there.
 *
 * Defined in the executable, this __longjmp_chk is the one liblua's
 * calls bind to; it hands over to longjmp, which TSan intercepts. What is
 * lost is only fortify's check that the jump goes up the stack.
 */
#undef _FORTIFY_SOURCE /* longjmp itself must not become __longjmp_chk */
#include <setjmp.h>

void __longjmp_chk(jmp_buf env, int val) __attribute__((noreturn));

__attribute__((visibility("default")))
void __longjmp_chk(jmp_buf env, int val) {
  longjmp(env, val);
}
