# azl-compose: a plain Makefile driven by pkg-config.
#   make              build/azl-compose
#   make check        unit tests + integration tests
#   make check-asan   the same under AddressSanitizer + UBSan (build-asan/)
#   make check-valgrind  unit + some integration tests under valgrind
#   make demo         signed example repository + lock + fetch of the example
#   make bench        speed figures side by side
# BUILD=dir puts every object elsewhere, so several builds can coexist.

BUILD   ?= build
CC      ?= cc
PKGS    := libsolv libsolvext rpm libcurl yaml-0.1 jansson libarchive libzstd \
           libxml-2.0 openssl sqlite3 zlib libdeflate liblzma ext2fs com_err
# libguestfs: headers only; lib/compose/inspect.c dlopens it on first use.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libguestfs)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
           -Wshadow -Wformat=2 -Ilib -Icmd $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(EXTRA_LDFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread

LIB_SRC  := $(sort $(wildcard lib/*/*.c))
CMD_SRC  := $(sort $(wildcard cmd/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ  := $(CMD_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/azl-compose

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libazl.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/azl-compose: $(CMD_OBJ) $(BUILD)/libazl.a
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(BUILD)/libazl.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h $(BUILD)/libazl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libazl.a $(LDFLAGS) $(LDLIBS)

unit: $(UNIT_BIN)

check: all unit
	AZL_BUILD=$(BUILD) sh tests/run.sh

check-unit: all unit
	AZL_BUILD=$(BUILD) AZL_ONLY=unit sh tests/run.sh

# libguestfs is linked here, not dlopened as in the normal build: ASan's
# interceptors (xdrmem_create, from libtirpc) find the real functions only
# in libraries loaded at start-up, and call NULL otherwise.
check-asan:
	$(MAKE) BUILD=build-asan CC=clang \
	  EXTRA_CFLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined -Wl,--no-as-needed -lguestfs -Wl,--as-needed" check

# make check-valgrind: the unit tests, then the integration tests in
# VALGRIND_TESTS, with every test binary and azl-compose call under
# valgrind (tests/run.sh AZL_WRAP), -O1 in build-valgrind/.  One log per
# command in build-valgrind/valgrind/, forked children included (an open
# fd: a sandboxed child cannot open files outside its root).  A memory
# error fails the test at once (exit 99); leaks are judged afterwards, and
# only for the process valgrind started (its "Command:" line): a forked
# child (no such line in the shared log) that _exit()s still holds its
# parent's memory, which valgrind would call lost.
VALGRIND_TESTS ?= manifest_errors.sh lock.sh build_errors.sh build_oci.sh fetch_http.sh sign_verify.sh
VALGRIND_LOGS  := $(CURDIR)/build-valgrind/valgrind
VALGRIND := valgrind --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite,indirect --errors-for-leak-kinds=none \
	--suppressions=$(CURDIR)/tests/valgrind.supp --log-fd=9 9>>$(VALGRIND_LOGS)/$$$$.log

check-valgrind:
	$(MAKE) BUILD=build-valgrind EXTRA_CFLAGS=-O1 all unit
	rm -rf $(VALGRIND_LOGS) && mkdir -p $(VALGRIND_LOGS)
	AZL_BUILD=build-valgrind AZL_WRAP='$(VALGRIND)' AZL_ONLY=unit sh tests/run.sh
	AZL_BUILD=build-valgrind AZL_WRAP='$(VALGRIND)' AZL_ONLY=integration \
	  AZL_TESTS="$(VALGRIND_TESTS)" sh tests/run.sh
	@awk '{ pid = $$1 } / Command: / { started[FILENAME, pid] = 1 } \
	  /ERROR SUMMARY: [1-9]/ { bad[FILENAME] = 1 } \
	  /(definitely|indirectly) lost: [1-9]/ && (FILENAME, pid) in started { bad[FILENAME] = 1 } \
	  END { for (f in bad) { print f; n++ } exit n > 0 }' $(VALGRIND_LOGS)/*.log || \
	  { echo "valgrind: errors or leaks in the logs above"; exit 1; }

demo: all
	sh examples/demo.sh

bench: all
	AZL_BUILD=$(BUILD) sh bench/run.sh

lint:
	sh tests/lint.sh

clean:
	rm -rf build build-*

.PHONY: all unit check check-unit check-asan check-valgrind demo bench lint clean

# --- fuzzing (tests/fuzz/README.md) ---------------------------------------
#   make fuzz-build   clang libFuzzer targets in $(BUILD_FUZZ)/fuzz/
#   make fuzz         each target for FUZZ_SECONDS, seeded from the fixtures;
#                     fails on any crash, leak, timeout or broken invariant
BUILD_FUZZ   ?= build-fuzz-bin
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

fuzz-build:
	$(MAKE) BUILD=$(BUILD_FUZZ) CC=$(FUZZ_CC) \
	  EXTRA_CFLAGS="-O1 -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
	  EXTRA_LDFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer" fuzz-bins

fuzz-bins: $(FUZZ_BIN)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h tests/fuzz/fuzz_diff.h $(BUILD)/libazl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz -o $@ $< $(BUILD)/libazl.a $(LDFLAGS) $(LDLIBS)

fuzz: all fuzz-build
	AZL_BUILD=$(BUILD) AZL_FUZZ_BUILD=$(BUILD_FUZZ) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  bash tests/fuzz/run.sh

.PHONY: fuzz fuzz-build fuzz-bins

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d)
