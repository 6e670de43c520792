# Loyalty stream processor — build, test, demo, bench.
#
#   make deps        install the Debian packages everything needs (root)
#   make             build libloyalty (common/) and every processor
#   make test        unit + component tests, then the same under ASan+UBSan
#   make demo        devbroker + redis + processors + sample traffic + summary
#   make bench       throughput and memory figures ("bench: name=value")
#
# Objects go to $(BUILD) (build/ by default, build-asan/ with SAN=1), so a
# sanitizer build never mixes with a normal one.

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else
BUILD ?= build
SANFLAGS :=
OPT := -O2 -g
endif

CC ?= cc
PKGS := rdkafka avro-c libcurl hiredis jansson libmicrohttpd libcrypto nlopt
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is compiled against but loaded at run time, only when a schema
# registry is configured (avro_codec.c): not linked.
PKG_LIBS := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wno-format-nonliteral -Wshadow -Wvla
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -Icommon -I$(BUILD)/gen $(PKG_CFLAGS)
LDFLAGS := $(SANFLAGS)
LDLIBS := $(PKG_LIBS) -lm -lpthread -ldl

DEBIAN_PACKAGES := build-essential pkg-config librdkafka-dev libavro-dev \
  libcurl4-openssl-dev libhiredis-dev libjansson-dev libmicrohttpd-dev \
  libssl-dev libcmocka-dev libnlopt-dev redis-server redis-tools jq procps curl \
  clang-format

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(patsubst common/%.c,$(BUILD)/common/%.o,$(COMMON_SRC)) $(BUILD)/gen/schemas_embed.o
LIB := $(BUILD)/libloyalty.a

PROCESSORS := $(notdir $(patsubst %/,%,$(wildcard processors/*/)))
BINS := $(addprefix $(BUILD)/bin/,$(PROCESSORS))

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# C programs that component tests run against real servers.
COMPONENT_SRC := $(wildcard tests/component/*.c)
COMPONENT_BINS := $(patsubst tests/component/%.c,$(BUILD)/tests/component/%,$(COMPONENT_SRC))

SCHEMAS := $(sort $(wildcard schemas/*.avsc))

.PHONY: all deps test test-unit test-component test-asan demo bench format \
        format-check clean help
.DEFAULT_GOAL := all

all: $(LIB) $(BINS) $(UNIT_BINS) $(COMPONENT_BINS)

help:
	@sed -n '2,10p' Makefile | sed 's/^# \{0,1\}//'

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEBIAN_PACKAGES)

# schemas/*.avsc are compiled into the library so a binary never depends on
# where it is run from; schemas/ stays the single source of truth.
$(BUILD)/gen/schemas_embed.c: $(SCHEMAS) Makefile
	@mkdir -p $(dir $@)
	@{ echo '/* generated from the schemas folder by the Makefile; do not edit */'; \
	   echo '#include <stddef.h>'; \
	   echo '#include "schemas_embed.h"'; \
	   echo 'const struct lp_embedded_schema lp_embedded_schemas[] = {'; \
	   for f in $(SCHEMAS); do \
	     printf '  {"%s", ' "$$(basename $$f .avsc)"; \
	     sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; \
	     echo '},'; \
	   done; \
	   echo '  {NULL, NULL}};'; } > $@

$(BUILD)/gen/schemas_embed.o: $(BUILD)/gen/schemas_embed.c common/schemas_embed.h
	$(CC) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(BUILD)/common/%.o: common/%.c $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

# These call HTTP APIs with libcurl, so they link it: the executor (the
# platforms), the bridge (BigCommerce order fetches, Shopify order look-ups),
# loyaltyctl (the importers) and the sandbox (its webhook sender).
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null)
$(BUILD)/bin/executor $(BUILD)/bin/bridge $(BUILD)/bin/loyaltyctl $(BUILD)/bin/sandbox: LDLIBS += $(CURL_LIBS)

# One binary per processors/<name>/ folder; every .c in it is linked.
.SECONDEXPANSION:
$(BUILD)/bin/%: $$(wildcard processors/%/*.c) $$(wildcard processors/%/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iprocessors/$* -o $@ $(filter %.c,$^) $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $$(wildcard processors/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iprocessors -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/tests/component/%: tests/component/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) $(CMOCKA_LIBS)

test: all
	@tests/run-all.sh

test-unit: all
	@tests/run-unit.sh $(BUILD)

test-component: all
	@tests/run-component.sh $(BUILD)

test-asan:
	@$(MAKE) --no-print-directory SAN=1 all
	@tests/run-unit.sh build-asan
	@tests/run-component.sh build-asan

demo: all
	@tests/demo.sh $(BUILD)

bench: all
	@tests/bench.sh $(BUILD)

format:
	clang-format -i common/*.[ch] processors/*/*.[ch] tests/unit/*.[ch] tests/component/*.c

format-check:
	clang-format --dry-run --Werror common/*.[ch] processors/*/*.[ch] tests/unit/*.[ch] tests/component/*.c

clean:
	rm -rf build build-asan
