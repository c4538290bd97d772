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
# One name per build directory: a BUILD given as an absolute path inside
# the tree (as spec/install_spec.lua passes it) is made relative, so that
# its objects are the targets their dependency files (.d) name. Built
# once under /work/x/build/obj/a.o and once under build/obj/a.o, an
# object's .d named only one of the two, and the other missed the headers
# it depends on (a changed struct left an object of the old layout).
override BUILD := $(patsubst $(CURDIR)/%,%,$(abspath $(BUILD)))
LUA_VERSION ?= 5.4
VERSION = 0.1.0

# gcc's C headers (libc6-dev) are only a Recommends, which apt-get skips
# with --no-install-recommends; redis-server serves examples_io_spec.lua.
PKGS = gcc libc6-dev pkg-config lua5.4 liblua5.4-dev libuv1-dev lua-busted \
  libreadline-dev luarocks redis-server libsdl2-dev $(BATTERY_PKGS) \
  $(PEER_PKGS)
# the batteries' libraries, and the real peers their specs talk to
BATTERY_PKGS = libssl-dev libhttp-parser-dev libhiredis-dev lua-cjson \
  zlib1g-dev
PEER_PKGS = openssl curl python3 python3-aiohttp redis-tools tinyproxy
CHECK_PKGS = valgrind
BENCH_PKGS = python3 python3-uvloop lua-luv lua-cqueues nodejs python3-redis wrk

# recursively expanded: pkg-config runs only once the packages exist
LUA_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PC))
LUA_LIBS = $(shell $(PKG_CONFIG) --libs $(LUA_PC))
# The CLI links the static archive of the same Lua (Debian's
# liblua5.4-dev ships liblua5.4.a), as lua(1) upstream does, and exports
# the Lua API (-rdynamic) to the C modules scripts require (lua-cjson, luv...,
# which resolve lua_* from the program). Its calls into Lua, dozens per
# await, then skip the shared library's PLT and position-independent
# code: w2, w3 and w5 run 20 % faster. Without the archive: the shared
# library, as every other program here uses.
LUA_A = $(shell $(PKG_CONFIG) --variable=libdir $(LUA_PC))/lib$(LUA_PC).a
CLI_LUA_LIBS ?= $(if $(wildcard $(LUA_A)),-rdynamic -ldl,$(LUA_LIBS))
# The archive is linked whole and first: every lua_* a module may need is
# there, and the interpreter's code sits at the same addresses whatever
# changes in ours (linked after it, a change of luaio's code moved it by
# its size, and w2 ran 4-6 % slower or faster with no instruction more).
comma := ,
CLI_LUA_FIRST ?= $(if $(wildcard $(LUA_A)),-Wl$(comma)--whole-archive \
  $(LUA_A) -Wl$(comma)--no-whole-archive)
UV_CFLAGS = $(shell $(PKG_CONFIG) --cflags libuv)
UV_LIBS = $(shell $(PKG_CONFIG) --libs libuv)

# -fno-plt: every call into liblua and libuv goes through the GOT
# directly instead of a PLT stub (the hot paths make dozens per await)
OPT ?= -O2 -g -fno-plt
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

# The core (asyncio.core: libuv and Lua only) is one C module built from
# the layers below; each battery with a library of its own is a module of
# its own, asyncio._NAME from bindings/DIR/, linked with LIBS:
#   BATTERY_NAME_DIR, BATTERY_NAME_CFLAGS, BATTERY_NAME_LIBS.
CORE_LAYERS = core sync threads io
BINDINGS_SRC = $(foreach d,$(CORE_LAYERS),$(wildcard bindings/$(d)/*.c))
BINDINGS_OBJ = $(BINDINGS_SRC:%.c=$(BUILD)/obj/%.o)

BATTERIES_ALL = ssl http redis
BATTERY_ssl_DIR = tls
BATTERY_ssl_CFLAGS = $(shell $(PKG_CONFIG) --cflags openssl)
BATTERY_ssl_LIBS = $(shell $(PKG_CONFIG) --libs openssl)
BATTERY_http_DIR = http
BATTERY_http_CFLAGS =
BATTERY_http_LIBS = -lhttp_parser -lz $(shell $(PKG_CONFIG) --libs libcrypto)
BATTERY_redis_DIR = redis
BATTERY_redis_CFLAGS = $(shell $(PKG_CONFIG) --cflags hiredis)
BATTERY_redis_LIBS = $(shell $(PKG_CONFIG) --libs hiredis)
# only the batteries whose folder holds C sources yet
BATTERIES = $(foreach b,$(BATTERIES_ALL),\
  $(if $(wildcard bindings/$(BATTERY_$(b)_DIR)/*.c),$(b)))
battery_src = $(wildcard bindings/$(BATTERY_$(1)_DIR)/*.c)
battery_obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(call battery_src,$(1)))
BATTERY_OBJ = $(foreach b,$(BATTERIES),$(call battery_obj,$(b)))
BATTERY_MODULES = $(foreach b,$(BATTERIES),$(BUILD)/asyncio/_$(b).so)
BATTERY_LIBS = $(foreach b,$(BATTERIES),$(BATTERY_$(b)_LIBS))

HOST_OBJ = $(BUILD)/obj/host/luaio.o $(BUILD)/obj/host/pool.o $(BUILD)/obj/gen/luaio_sources.o
LUA_SRC = $(shell find lua/asyncio -name '*.lua' | sort)
# lua/asyncio/http/init.lua -> asyncio.http, lua/asyncio/fs.lua -> asyncio.fs
lua_module = $(patsubst %.init,%,$(subst /,.,$(patsubst lua/%.lua,%,$(1))))
CTEST_SRC = $(wildcard host/test/*.c)
CTEST_BIN = $(CTEST_SRC:host/test/%.c=$(BUILD)/test/%)

MODULE = $(BUILD)/asyncio/core.so
LIB = $(BUILD)/libluaio.a
CLI = $(BUILD)/luaio
# the shared library: libluaio.so.MAJOR is its soname
SOMAJOR = 0
SONAME = libluaio.so.$(SOMAJOR)
SOLIB = $(BUILD)/libluaio.so.$(VERSION)

.PHONY: sdl-game-skipped all run test test-c test-spec check check-asan check-valgrind \
  install-lua rock check-tsan check-alloc check-fuzz fuzz bench install \
  uninstall clean deps

EMBED_BIN = $(BUILD)/examples/embed/game
# the SDL2 game (examples/embed/sdl_game.c) is built only where SDL2 is
# installed (libsdl2-dev, in PKGS); spec/embed_sdl_spec.lua fails without it
SDL_GAME = $(BUILD)/examples/embed/sdl_game
HAVE_SDL2 := $(shell $(PKG_CONFIG) --exists sdl2 2>/dev/null && echo yes)
ifeq ($(HAVE_SDL2),yes)
SDL_TARGET = $(SDL_GAME)
else
SDL_TARGET = sdl-game-skipped
endif

all: $(CLI) $(MODULE) $(BATTERY_MODULES) $(LIB) $(SOLIB) $(CTEST_BIN) \
  $(EMBED_BIN) $(SDL_TARGET) $(BUILD)/tools/allocfail

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  CC      $<" || true
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# a battery's objects get its library's flags
define battery_rules
$(call battery_obj,$(1)): ALL_CFLAGS += -DAIO_BATTERY $(BATTERY_$(1)_CFLAGS)
$(BUILD)/asyncio/_$(1).so: $(call battery_obj,$(1))
	@mkdir -p $$(dir $$@)
	@test -n "$(Q)" && echo "  LD      $$@" || true
	$(Q)$(CC) -shared -o $$@ $$^ $(LDFLAGS) $(BATTERY_$(1)_LIBS)
endef
$(foreach b,$(BATTERIES),$(eval $(call battery_rules,$(b))))

# the CLI and libluaio register every battery built (package.preload)
$(BUILD)/gen/luaio_batteries.h: $(MAKEFILE_LIST) bindings $(wildcard bindings/*/)
	@mkdir -p $(dir $@)
	$(Q)printf '/* generated by the Makefile: do not edit */\n' > $@.tmp
	$(Q)for b in $(BATTERIES); do \
	  printf 'LUAIO_BATTERY(asyncio__%s, "asyncio._%s")\n' $$b $$b; \
	done >> $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/gen/luaio_sources.c: $(LUA_SRC) tools/embed.lua
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  EMBED   lua/asyncio" || true
	$(Q)$(LUA) tools/embed.lua $@ \
	  $(foreach f,$(LUA_SRC),$(call lua_module,$(f))=$(f))

$(BUILD)/obj/host/luaio.o: $(BUILD)/gen/luaio_sources.c \
  $(BUILD)/gen/luaio_batteries.h

$(MODULE): $(BINDINGS_OBJ)
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) -shared -o $@ $^ $(LDFLAGS) $(UV_LIBS)

$(SOLIB): $(BINDINGS_OBJ) $(BATTERY_OBJ) $(HOST_OBJ)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDFLAGS) \
	  $(BATTERY_LIBS) $(LUA_LIBS) $(UV_LIBS) -lm -lpthread
	$(Q)ln -sf libluaio.so.$(VERSION) $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(BUILD)/libluaio.so

$(LIB): $(BINDINGS_OBJ) $(BATTERY_OBJ) $(HOST_OBJ)
	@test -n "$(Q)" && echo "  AR      $@" || true
	$(Q)rm -f $@ && ar rcs $@ $^

# SHIM_OBJ: objects a checking build links into its programs (check-tsan)
SHIM_OBJ ?=

$(CLI): $(BUILD)/obj/host/main.o $(LIB) $(SHIM_OBJ)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) -o $@ $(CLI_LUA_FIRST) $< $(SHIM_OBJ) $(LIB) $(LDFLAGS) \
	  $(BATTERY_LIBS) $(CLI_LUA_LIBS) $(UV_LIBS) -lreadline -lm

$(BUILD)/test/%: host/test/%.c $(LIB) $(SHIM_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(SHIM_OBJ) $(LIB) $(LDFLAGS) \
	  $(BATTERY_LIBS) $(LUA_LIBS) $(UV_LIBS) -lm -lpthread

# the allocation-failure runner (tools/alloc/allocfail.c)
ALLOCFAIL = $(BUILD)/tools/allocfail
$(ALLOCFAIL): tools/alloc/allocfail.c $(LIB)
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(BATTERY_LIBS) \
	  $(LUA_LIBS) $(UV_LIBS) -lm -lpthread

$(EMBED_BIN): examples/embed/game.c $(LIB) $(SHIM_OBJ)
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(SHIM_OBJ) $(LIB) $(LDFLAGS) \
	  $(BATTERY_LIBS) $(LUA_LIBS) $(UV_LIBS) -lm -lpthread

$(SDL_GAME): examples/embed/sdl_game.c $(LIB)
	@mkdir -p $(dir $@)
	@test -n "$(Q)" && echo "  LD      $@" || true
	$(Q)$(CC) $(ALL_CFLAGS) $(shell $(PKG_CONFIG) --cflags sdl2) -o $@ $< \
	  $(LIB) $(LDFLAGS) $(BATTERY_LIBS) $(LUA_LIBS) $(UV_LIBS) \
	  $(shell $(PKG_CONFIG) --libs sdl2) -lm -lpthread

sdl-game-skipped:
	@echo "  SKIP    $(SDL_GAME): SDL2 not found (pkg-config sdl2);" \
	  "make test as root installs libsdl2-dev"

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
	$(Q)$(MAKE) --no-print-directory check-asan check-alloc check-fuzz \
	  check-valgrind check-tsan

# The checking builds give every Lua block to the system allocator
# (LUAIO_SYSTEM_ALLOC, host/pool.c), where the checkers see each one.
ASAN_BUILD = BUILD=build-asan LDFLAGS="-fsanitize=address,undefined" \
  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -DLUAIO_SYSTEM_ALLOC"
check-asan:
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LUAIO_LUA_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(MAKE) --no-print-directory $(ASAN_BUILD) test-c test-spec

# Allocation-failure testing: every allocation of each script failed in
# turn, in an ASan+UBSan build whose LeakSanitizer checks every run
# (docs/reliability.md). ALLOC_SCRIPTS picks the scripts.
ALLOC_SCRIPTS ?= $(filter-out tools/alloc/harness.lua,\
  $(wildcard tools/alloc/*.lua))
check-alloc:
	$(Q)$(MAKE) --no-print-directory $(ASAN_BUILD) build-asan/tools/allocfail
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  build-asan/tools/allocfail $(ALLOC_SCRIPTS)

# Fuzzing with libFuzzer (Debian's clang): each target is a Lua file of
# tools/fuzz/ run by tools/fuzz/driver.c over its corpus in
# tools/fuzz/corpus/NAME/, in a clang ASan+UBSan build whose library is
# instrumented for coverage. `make fuzz` runs each target FUZZ_TIME
# seconds (new inputs go to the corpus: commit the interesting ones),
# with the dictionary tools/fuzz/NAME.dict when there is one;
# check-fuzz is the bounded smoke run of `make check`.
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_TARGETS = $(basename $(notdir $(wildcard tools/fuzz/*.lua)))
FUZZ_BUILD = BUILD=build-fuzz CC=$(FUZZ_CC) \
  OPT="-O1 -g -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer \
  -fno-sanitize-recover=all" \
  LDFLAGS="-fsanitize=address,undefined"
build-fuzz/tools/fuzz: tools/fuzz/driver.c build-fuzz/libluaio.a
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(ALL_CFLAGS) -fsanitize=address,undefined,fuzzer \
	  -o $@ $< build-fuzz/libluaio.a $(BATTERY_LIBS) $(LUA_LIBS) \
	  $(UV_LIBS) -lm -lpthread
fuzz:
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BUILD) build-fuzz/libluaio.a
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BUILD) build-fuzz/tools/fuzz
	$(Q)for t in $(FUZZ_TARGETS); do echo "  FUZZ    $$t ($(FUZZ_TIME) s)"; \
	  mkdir -p tools/fuzz/corpus/$$t build-fuzz/crashes build-fuzz/new/$$t; \
	  LUAIO_FUZZ_TARGET=tools/fuzz/$$t.lua build-fuzz/tools/fuzz \
	    -max_total_time=$(FUZZ_TIME) -print_final_stats=0 \
	    -artifact_prefix=build-fuzz/crashes/$$t- $(FUZZ_ARGS) \
	    $$(test -f tools/fuzz/$$t.dict && echo -dict=tools/fuzz/$$t.dict) \
	    $(if $(FUZZ_SCRATCH),build-fuzz/new/$$t) tools/fuzz/corpus/$$t \
	    > build-fuzz/$$t.log 2>&1 || { tail -40 build-fuzz/$$t.log; \
	    exit 1; }; grep -E '^#[0-9]+[[:space:]]+DONE' build-fuzz/$$t.log || true; done
# the smoke run: 15 s per target, the corpus left as committed
check-fuzz:
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_TIME=15 \
	  FUZZ_ARGS="-max_len=512" FUZZ_SCRATCH=1

# valgrind follows the child processes the specs start (luaio, lua5.4,
# the shells and `env` that start them); the peers and small tools are
# not ours and run natively, and so does tools/allocfail (its thousands
# of forked runs are checked under ASan by check-alloc), and the embedding
# examples (their specs time frames; embed_spec and embed_sdl_spec run
# their own valgrind on game and sdl_game under LUAIO_VALGRIND). A child with an error exits 99,
# which its spec sees as a failure.
VALGRIND_SKIP_LIST = *python* *redis-server *redis-cli *openssl *curl \
  *wrk *node *nodejs */sleep */cat */true */false */pwd */kill */mkdir */rm \
  */sha256sum */mktemp */timeout */echo */printf */test */id */ls */head \
  */tail */wc */grep */sed */stat */dd */cp */mv */touch */chmod */ln \
  */readlink */uname */date */tr */sort */pkg-config */cc */gcc */make \
  */luarocks */busted */allocfail *valgrind* */examples/embed/*
# shells that only exec a tool the spec then signals (a valgrind'd shell
# can miss a signal sent while it execs)
VALGRIND_SKIP_ARGS = *exec sleep*
empty :=
space := $(empty) $(empty)
comma := ,
VALGRIND_SKIP = $(subst $(space),$(comma),$(strip $(VALGRIND_SKIP_LIST)))
VALGRIND = valgrind --error-exitcode=99 --child-silent-after-fork=yes \
  --suppressions=$(CURDIR)/tools/valgrind.supp \
  --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --quiet --trace-children=yes \
  --trace-children-skip='$(VALGRIND_SKIP)' \
  --trace-children-skip-by-arg='$(VALGRIND_SKIP_ARGS)'
check-valgrind:
	$(Q)LUAIO_VALGRIND=1 $(MAKE) --no-print-directory BUILD=build-vg \
	  OPT="-O0 -g -DLUAIO_SYSTEM_ALLOC" CLI_WRAP="$(VALGRIND)" test-c test-spec

# ThreadSanitizer: the C tests and the specs that use threads: executors,
# loop threads, channels, and libuv's thread pool (asyncio.fs, DNS), the
# batteries included (thread_worker_redis in examples_workers_spec).
# tools/tsan/longjmp_chk.c is linked into the programs: it routes the
# __longjmp_chk of Debian's fortified liblua5.4, which TSan does not
# intercept, to longjmp, which it does (docs/reliability.md). Stock
# lua5.4 (regressions_spec) gets the TSan runtime preloaded.
TSAN_SPECS = $(wildcard spec/thread*_spec.lua spec/executor_spec.lua \
  spec/channel_spec.lua spec/transfer_spec.lua spec/embed_spec.lua \
  spec/examples_threads_spec.lua spec/examples_workers_spec.lua \
  spec/fs_spec.lua spec/fs_file_spec.lua spec/dns_spec.lua \
  spec/regressions_spec.lua)
check-tsan:
	$(Q)TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  LUAIO_LUA_PRELOAD="$$($(CC) -print-file-name=libtsan.so)" \
	  $(MAKE) --no-print-directory BUILD=build-tsan \
	  OPT="-O1 -g -fsanitize=thread -DLUAIO_SYSTEM_ALLOC" LDFLAGS="-fsanitize=thread" \
	  SHIM_OBJ=build-tsan/obj/tools/tsan/longjmp_chk.o \
	  test-c test-spec BUSTED_ARGS="$(TSAN_SPECS)"

bench: deps
	$(Q)tools/deps.sh $(BENCH_PKGS)
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run.sh $(CLI)

# What luarocks builds (luaio-VERSION.rockspec): the modules and the CLI.
rock: $(CLI) $(MODULE) $(BATTERY_MODULES)

# Installs everything below $(DESTDIR)$(PREFIX); `uninstall` removes it.
LIBDIR = $(PREFIX)/lib
LUA_CDIR = $(LIBDIR)/lua/$(LUA_VERSION)
LUA_LDIR = $(PREFIX)/share/lua/$(LUA_VERSION)
MANDIR = $(PREFIX)/share/man
DOCDIR = $(PREFIX)/share/doc/luaio
DOCS = $(wildcard docs/*.md)
D = $(DESTDIR)

install: all install-lua
	install -d $(D)$(PREFIX)/bin $(D)$(LIBDIR)/pkgconfig \
	  $(D)$(PREFIX)/include $(D)$(MANDIR)/man1 $(D)$(DOCDIR)
	install -m 755 $(CLI) $(D)$(PREFIX)/bin/luaio
	install -m 755 tools/luaio-busted $(D)$(PREFIX)/bin/luaio-busted
	install -m 644 $(LIB) $(D)$(LIBDIR)/libluaio.a
	install -m 755 $(SOLIB) $(D)$(LIBDIR)/libluaio.so.$(VERSION)
	ln -sf libluaio.so.$(VERSION) $(D)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(D)$(LIBDIR)/libluaio.so
	install -m 644 host/luaio.h $(D)$(PREFIX)/include/luaio.h
	install -m 644 docs/luaio.1 $(D)$(MANDIR)/man1/luaio.1
	install -m 644 $(DOCS) $(D)$(DOCDIR)/
	# the README sits next to the docs there: its docs/ links lose docs/
	sed -e 's|](docs/|](|g' README.md > $(D)$(DOCDIR)/README.md
	chmod 644 $(D)$(DOCDIR)/README.md
	install -d $(D)$(DOCDIR)/img
	install -m 644 docs/img/*.png $(D)$(DOCDIR)/img/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@LIBS@|$(strip $(BATTERY_LIBS))|' luaio.pc.in \
	  > $(D)$(LIBDIR)/pkgconfig/luaio.pc

# The Lua half alone: the C modules and the Lua sources (luarocks calls it
# with its own LUA_CDIR and LUA_LDIR, and BINDIR for the CLI).
install-lua: $(MODULE) $(BATTERY_MODULES) $(CLI)
	install -d $(D)$(LUA_CDIR)/asyncio
	install -m 755 $(MODULE) $(BATTERY_MODULES) $(D)$(LUA_CDIR)/asyncio/
	for f in $(LUA_SRC); do \
	  install -D -m 644 $$f $(D)$(LUA_LDIR)/$${f#lua/}; \
	done
	$(if $(BINDIR),install -d $(D)$(BINDIR) && \
	  install -m 755 $(CLI) $(D)$(BINDIR)/luaio && \
	  install -m 755 tools/luaio-busted $(D)$(BINDIR)/luaio-busted)

uninstall:
	rm -f $(D)$(PREFIX)/bin/luaio $(D)$(PREFIX)/bin/luaio-busted \
	  $(D)$(LIBDIR)/libluaio.a $(D)$(LIBDIR)/libluaio.so \
	  $(D)$(LIBDIR)/$(SONAME) $(D)$(LIBDIR)/libluaio.so.$(VERSION) \
	  $(D)$(PREFIX)/include/luaio.h $(D)$(LIBDIR)/pkgconfig/luaio.pc \
	  $(D)$(MANDIR)/man1/luaio.1
	rm -rf $(D)$(LUA_CDIR)/asyncio $(D)$(LUA_LDIR)/asyncio $(D)$(DOCDIR)

clean:
	rm -rf $(BUILD) build-asan build-vg build-tsan build-rock build-fuzz

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*/*/*.d \
  $(BUILD)/obj/*/*/*/*.d)
