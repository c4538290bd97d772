# luaio - asyncio for Lua 5.4 on libuv.
#
#   make           build build/luaio, build/asyncio/core.so, build/libluaio.a
#   make run       build and run an example (EXAMPLE=examples/....lua)
#   make test      install missing Debian packages (as root), build, run
#                  the C tests and every busted spec under build/luaio
#   make check     the tests under ASan+UBSan, valgrind memcheck and TSan
#   make bench     the benchmarks, next to CPython asyncio and uvloop
#   make install / uninstall / clean
# Quiet unless V=1.

CC ?= cc
PKG_CONFIG ?= pkg-config
LUA_PC ?= lua5.4
LUA ?= lua5.4
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
LUA_VERSION ?= 5.4
VERSION = 0.1.0

# gcc's C headers (libc6-dev) are only a Recommends, which apt-get skips
# with --no-install-recommends; redis-server serves examples_io_spec.lua.
PKGS = gcc libc6-dev pkg-config lua5.4 liblua5.4-dev libuv1-dev lua-busted \
  redis-server
CHECK_PKGS = valgrind
BENCH_PKGS = python3 python3-uvloop

# recursively expanded: pkg-config runs only once the packages exist
LUA_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PC))
LUA_LIBS = $(shell $(PKG_CONFIG) --libs $(LUA_PC))
UV_CFLAGS = $(shell $(PKG_CONFIG) --cflags libuv)
UV_LIBS = $(shell $(PKG_CONFIG) --libs libuv)

OPT ?= -O2 -g
WARN = -Wall -Wextra -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?=
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(OPT) \
  $(WARN) $(CFLAGS) \
  -DLUAIO_VERSION='"$(VERSION)"' -Ibindings -Ihost -I$(BUILD)/gen \
  $(LUA_CFLAGS) $(UV_CFLAGS) -MMD -MP
LDFLAGS ?=

ifeq ($(V),1)
Q =
else
Q = @
endif

BINDINGS_SRC = $(wildcard bindings/*.c)
BINDINGS_OBJ = $(BINDINGS_SRC:%.c=$(BUILD)/obj/%.o)
HOST_OBJ = $(BUILD)/obj/host/luaio.o $(BUILD)/obj/gen/luaio_sources.o
LUA_SRC = $(wildcard lua/asyncio/*.lua)
CTEST_SRC = $(wildcard host/test/*.c)
CTEST_BIN = $(CTEST_SRC:host/test/%.c=$(BUILD)/test/%)

MODULE = $(BUILD)/asyncio/core.so
LIB = $(BUILD)/libluaio.a
CLI = $(BUILD)/luaio

.PHONY: all run test test-c test-spec check check-asan check-valgrind \
  check-tsan bench install uninstall clean deps

EMBED_BIN = $(BUILD)/examples/embed/game

all: $(CLI) $(MODULE) $(LIB) $(CTEST_BIN) $(EMBED_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  CC      $<" || true
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/gen/luaio_sources.c: $(LUA_SRC) tools/embed.lua
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  EMBED   lua/asyncio" || true
	$(Q)$(LUA) tools/embed.lua $@ \
	  $(foreach f,$(LUA_SRC),$(subst .init,,asyncio.$(basename $(notdir $(f))))=$(f))

$(BUILD)/obj/host/luaio.o: $(BUILD)/gen/luaio_sources.c

$(MODULE): $(BINDINGS_OBJ)
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) -shared -o $@ $^ $(LDFLAGS) $(UV_LIBS)

$(LIB): $(BINDINGS_OBJ) $(HOST_OBJ)
	@test -n "$(Q)" && echo "  AR      $@" || true
	$(Q)rm -f $@ && ar rcs $@ $^

$(CLI): $(BUILD)/obj/host/main.o $(LIB)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) -o $@ $< $(LIB) $(LDFLAGS) $(LUA_LIBS) $(UV_LIBS) -lm

$(BUILD)/test/%: host/test/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LUA_LIBS) \
	  $(UV_LIBS) -lm -lpthread

$(EMBED_BIN): examples/embed/game.c $(LIB)
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LUA_LIBS) \
	  $(UV_LIBS) -lm -lpthread

EXAMPLE ?= examples/hello.lua
run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(CLI) $(EXAMPLE)

deps:
	$(Q)tools/deps.sh $(PKGS)

test: deps
	$(Q)$(MAKE) --no-print-directory test-c test-spec

# CLI_WRAP: a command the C tests and the spec runner run under (valgrind).
CLI_WRAP ?=
test-c: $(CTEST_BIN)
	$(Q)for t in $(CTEST_BIN); do echo "  TEST    $$t"; \
	  $(CLI_WRAP) $$t || exit 1; done

# the specs run the CLI, load the module and run examples/embed/game
BUSTED_ARGS ?=
test-spec: all
	$(Q)LUAIO_BUILD=$(BUILD) $(CLI_WRAP) $(CLI) tools/busted.lua $(BUSTED_ARGS)

# Sanitizers and valgrind: separate build trees, the same tests. Each
# sub-make gets its build's flags, so whatever it rebuilds is built alike.
check: deps
	$(Q)tools/deps.sh $(CHECK_PKGS)
	$(Q)$(MAKE) --no-print-directory check-asan check-valgrind check-tsan

ASAN_BUILD = BUILD=build-asan LDFLAGS="-fsanitize=address,undefined" \
  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
check-asan:
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LUAIO_LUA_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(MAKE) --no-print-directory $(ASAN_BUILD) test-c test-spec

check-valgrind:
	$(Q)LUAIO_VALGRIND=1 $(MAKE) --no-print-directory BUILD=build-vg \
	  OPT="-O0 -g" \
	  CLI_WRAP="valgrind --error-exitcode=99 --child-silent-after-fork=yes --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --quiet" \
	  test-c test-spec

# ThreadSanitizer: the C tests and the specs that use threads.
TSAN_SPECS = $(wildcard spec/thread*_spec.lua spec/executor_spec.lua \
  spec/channel_spec.lua spec/transfer_spec.lua spec/embed_spec.lua)
check-tsan:
	$(Q)TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  $(MAKE) --no-print-directory BUILD=build-tsan \
	  OPT="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	  test-c test-spec BUSTED_ARGS="$(TSAN_SPECS)"

bench: deps
	$(Q)tools/deps.sh $(BENCH_PKGS)
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run.sh $(CLI)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VERSION)/asyncio \
	  $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VERSION)/asyncio
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/luaio
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libluaio.a
	install -m 644 host/luaio.h $(DESTDIR)$(PREFIX)/include/luaio.h
	install -m 755 $(MODULE) $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VERSION)/asyncio/core.so
	install -m 644 $(LUA_SRC) $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VERSION)/asyncio/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' luaio.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/luaio.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/luaio $(DESTDIR)$(PREFIX)/lib/libluaio.a \
	  $(DESTDIR)$(PREFIX)/include/luaio.h \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/luaio.pc
	rm -rf $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VERSION)/asyncio \
	  $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VERSION)/asyncio

clean:
	rm -rf $(BUILD) build-asan build-vg build-tsan

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*/*/*.d)
