# station: one non-recursive Makefile.  Modules are found by directory, so a
# new file in station/, station/base/, custody/, transport/ or media/ joins
# the library, a new tests/test_*.c becomes a cmocka binary and a new
# tests/e2e_*.sh joins `make check` without editing this file.
#
#   make            build build/station and the simulators
#   make check      unit suites + end-to-end tests (installs missing deps)
#   make asan       the same suites under AddressSanitizer + UBSan
#   make demo       the self-contained demo
#   make appliance  the bootable appliance image in $(BUILD)/appliance
#   make bench      measurements against the tools a user would otherwise use
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       install missing Debian packages (prints the command if not root)

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
V        ?= 0
# The one version: `station --version` prints it.
VERSION  := 0.15.0

# Project flags stay apart from the user's CFLAGS/LDFLAGS.
WARN      := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wvla -Wpointer-arith -Wcast-qual
STN_CFLAGS := -std=c11 -D_GNU_SOURCE -I. $(WARN) -MMD -MP \
             -fstack-protector-strong -D_FORTIFY_SOURCE=2 -O2 -g
PKGS      := libusb-1.0 sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# mbedTLS 2.28 on Debian ships no pkg-config file.
TLS_LIBS  := -lmbedx509 -lmbedcrypto
# station/base/sha256.c hashes with OpenSSL's libcrypto (SHA-NI; see README).
TLS_LIBS  += -lcrypto
CURSES_CFLAGS := $(shell pkg-config --cflags ncursesw 2>/dev/null)
CURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
SAN_FLAGS :=

ALL_CFLAGS  = $(STN_CFLAGS) $(SAN_FLAGS) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)

LIB_SRCS  := $(sort $(wildcard station/base/*.c station/*.c custody/*.c \
                              transport/*.c media/*.c))
UI_SRCS   := $(sort $(wildcard ui/*.c))
SIM_SRCS  := $(sort $(wildcard transport/sim/*.c))
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz_*.c))

LIB       := $(BUILD)/libstation.a
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
UI_OBJS   := $(UI_SRCS:%.c=$(BUILD)/obj/%.o)
STATION   := $(BUILD)/station
SIMS      := $(SIM_SRCS:transport/sim/%.c=$(BUILD)/%)
TESTS     := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
DEPFILES  := $(LIB_OBJS:.o=.d) $(UI_OBJS:.o=.d) \
             $(SIM_SRCS:%.c=$(BUILD)/obj/%.d) $(TEST_SRCS:%.c=$(BUILD)/obj/%.d)

ifeq ($(V),0)
Q = @
say = @printf '  %-6s %s\n' $(1) $(2);
else
Q =
say =
endif

# Debian 12 packages the build, the tests and the demo need.
DEB_PKGS := build-essential pkg-config libusb-1.0-0-dev libmbedtls-dev \
            libncurses-dev libsqlite3-dev libcmocka-dev openssl lrzsz socat \
            sqlite3 clang tmux libssl-dev dosfstools jq
# USB DFU tests (tests/e2e_usb.sh): a qemu guest with Debian's kernel, a
# static busybox, usbip and dfu-util (the reference DFU host tool).
DEB_PKGS += qemu-system-x86 busybox-static usbip dfu-util cpio
# A real U-Boot (2023.01, qemu_arm64) as the plain YMODEM peer
# (tests/e2e_uboot.sh, tests/bench_uboot.sh).
DEB_PKGS += u-boot-qemu qemu-system-arm
# strace: which directory each fsync reaches (tests/e2e_bundle_durable.sh).
DEB_PKGS += strace
# The appliance image (make appliance, docs/appliance.md): a FAT boot disk
# with syslinux made without root (mtools), an ext4 data disk.
DEB_PKGS += mtools syslinux syslinux-common e2fsprogs

.PHONY: all appliance check check-usb check-appliance asan fuzz bench demo install clean deps test-bins
# Objects of programs and tests are intermediates; keep them.
.SECONDARY:
all: $(STATION) $(SIMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/ui/%.o: ui/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) $(CURSES_CFLAGS) \
		-DSTATION_VERSION='"$(VERSION)"' -c -o $@ $<

$(LIB): $(LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(STATION): $(UI_OBJS) $(LIB)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $(UI_OBJS) $(LIB) \
		$(PKG_LIBS) $(TLS_LIBS) $(CURSES_LIBS) -lutil

$(BUILD)/%: $(BUILD)/obj/transport/sim/%.o $(LIB)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) \
		$(PKG_LIBS) $(TLS_LIBS) -lutil

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) \
		$(PKG_LIBS) $(TLS_LIBS) $(CMOCKA_LIBS) -lutil

test-bins: $(STATION) $(SIMS) $(TESTS)

check: deps check-usb check-appliance
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)$(MAKE) --no-print-directory $(FUZZERS)
	$(Q)STATION_USB_CHECKED=1 STATION_APPLIANCE_CHECKED=1 BUILD=$(BUILD) tests/run.sh

# USB DFU against a real kernel USB stack: boots Debian's kernel (downloaded
# once, cached outside the tree) under qemu with the DFU simulator.  Exit 77
# (a tool or the kernel package cannot be had) is a skip, not a failure.
check-usb: deps
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)rc=0; BUILD=$(BUILD) bash tests/e2e_usb.sh || rc=$$?; \
		[ $$rc -eq 0 ] || [ $$rc -eq 77 ]

# The appliance image (dist/appliance/mkimage.sh) booted three times under
# qemu TCG: console, serial unit, hot-plugged sticks, a power cut.  Exit 77
# (qemu or the kernel package cannot be had) is a skip, not a failure.
check-appliance: deps
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)rc=0; BUILD=$(BUILD) bash tests/e2e_appliance.sh || rc=$$?; \
		[ $$rc -eq 0 ] || [ $$rc -eq 77 ]

# A separate build tree so sanitised objects never mix with release ones.
asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan \
		SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		STN_CFLAGS="$(filter-out -D_FORTIFY_SOURCE=2 -O2,$(STN_CFLAGS)) -O1" test-bins
	$(Q)BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

# libFuzzer targets (clang): tests/fuzz_NAME.c with seeds in tests/corpus/NAME.
# `make fuzz` runs each for FUZZ_SECONDS; `make check` runs a short smoke
# (tests/e2e_fuzz.sh).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -I.
FUZZERS      := $(FUZZ_SRCS:tests/fuzz_%.c=build-fuzz/fuzz_%)
# Fuzzers are built from the whole library, so a new parser anywhere needs
# only its tests/fuzz_NAME.c and seeds.
FUZZ_LIB_SRCS := $(LIB_SRCS)

build-fuzz/fuzz_%: tests/fuzz_%.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$@)$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $^ \
		$(PKG_LIBS) $(TLS_LIBS) -lutil

fuzz: deps $(FUZZERS)
	$(Q)for f in $(FUZZERS); do n=$${f#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
		echo "fuzz $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=70000 build-fuzz/corpus-$$n tests/corpus/$$n || exit 1; done

# The text UI on a self-contained demo (tests/demo_setup.sh builds it).
demo: deps all
	$(Q)$(STATION) demo

bench: deps all
	$(Q)BUILD=$(BUILD) tests/bench.sh

# The appliance: a bootable x86-64 image from Debian 12 packages and this
# tree's station (dist/appliance/mkimage.sh, docs/appliance.md).  Exit 77
# (the kernel package cannot be had) fails it too, with the reason.
appliance: deps all
	$(Q)BUILD=$(BUILD) bash dist/appliance/mkimage.sh $(BUILD)/appliance

# Debian's layout (usrmerge): udev rules and units under PREFIX/lib, man
# pages gzipped, docs and examples under share/doc.  Needs no root with
# DESTDIR; tests/e2e_install.sh installs into a temporary root.
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DOCDIR   ?= $(PREFIX)/share/doc/station
UDEVDIR  ?= $(PREFIX)/lib/udev/rules.d
UNITDIR  ?= $(PREFIX)/lib/systemd/system
COMPDIR  ?= $(PREFIX)/share/bash-completion/completions
DOCS     := $(sort $(wildcard docs/*.md))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PREFIX)/libexec/station \
		$(DESTDIR)$(PREFIX)/share/station $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR)/docs \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(UDEVDIR) \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPDIR)
	install -m 0755 $(STATION) $(DESTDIR)$(BINDIR)/station
	install -m 0644 tests/demo_setup.sh tests/pki.sh $(DESTDIR)$(PREFIX)/share/station/
	for s in $(SIMS); do install -m 0755 $$s $(DESTDIR)$(PREFIX)/libexec/station/ || exit 1; done
	gzip -9nc man/station.1 >$(DESTDIR)$(MANDIR)/man1/station.1.gz
	gzip -9nc man/station.conf.5 >$(DESTDIR)$(MANDIR)/man5/station.conf.5.gz
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/docs/
	install -m 0644 dist/station.conf.example $(DESTDIR)$(DOCDIR)/examples/station.conf
	install -m 0644 dist/71-station-media.rules $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 dist/60-station.rules $(DESTDIR)$(UDEVDIR)/
	sed 's|@BINDIR@|$(BINDIR)|g' dist/station.service.in >$(DESTDIR)$(UNITDIR)/station.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/station.service
	install -m 0644 dist/station.bash-completion $(DESTDIR)$(COMPDIR)/station

clean:
	rm -rf build build-asan build-fuzz

deps:
	$(Q)missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "deps: installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
		else \
			echo "deps: missing Debian packages; run:"; \
			echo "  sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

-include $(DEPFILES)
