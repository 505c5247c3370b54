# Builds and installs libpasst, its header, pkg-config file and programs.
#
#     make                                   cargo build --release, then the C programs
#     make install PREFIX=/usr/local         the same, then copies (DESTDIR= for staging)
#     make install-strip PREFIX=...          install, without debugging symbols
#     make uninstall PREFIX=/usr/local       removes what install copied
#
# Installed:
#     $(libdir)/libpasst.so.0                the library (its soname)
#     $(libdir)/libpasst.so                  symlink to it, for -lpasst
#     $(includedir)/passt.h
#     $(libdir)/pkgconfig/passt.pc           from passt.pc.in: prefix, version
#     $(bindir)/passt-standalone             the daemon (examples-c/)
#     $(bindir)/qrap                         starts QEMU on a daemon's socket
#
# Then: cc prog.c $$(pkg-config --cflags --libs passt)
# (PKG_CONFIG_PATH=$(libdir)/pkgconfig when that is not a standard place).
#
# `install-only` copies what is already built and never runs cargo: the
# tests use it (a cargo inside `cargo test` would wait for the build lock
# the outer one holds). It needs `$(LIB)` to exist.
#
# The installed passt-standalone finds the library through a run path of
# $$ORIGIN/../lib (relocatable; RPATH= to leave it out). The C programs
# are built into $(BUILDDIR) in the installed layout (bin/, lib/), so they
# also run from there.
#
# Variables: PREFIX (/usr/local), DESTDIR, bindir, libdir, includedir,
# pkgconfigdir, INSTALL_STRIP, CARGO (cargo), CARGO_TARGET_DIR (target), LIBPASST_DIR
# (where libpasst.so is: $(CARGO_TARGET_DIR)/release), BUILDDIR
# ($(LIBPASST_DIR)/make), RPATH, CC, CFLAGS, CPPFLAGS, LDFLAGS.

PREFIX ?= /usr/local
bindir ?= $(PREFIX)/bin
libdir ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
pkgconfigdir ?= $(libdir)/pkgconfig

CARGO ?= cargo
CARGO_TARGET_DIR ?= target
LIBPASST_DIR ?= $(abspath $(CARGO_TARGET_DIR))/release
RELEASE := $(abspath $(LIBPASST_DIR))
LIB := $(RELEASE)/libpasst.so
BUILDDIR ?= $(RELEASE)/make
B := $(abspath $(BUILDDIR))

# The crate's version, for passt.pc: the first `version = "..."` line of
# Cargo.toml, which is the [package] one.
VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)

CFLAGS ?= -O2 -g
RPATH ?= $$ORIGIN/../lib
PROGRAM_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE
PROGRAM_LDFLAGS = -L$(RELEASE) $(if $(RPATH),-Wl$(,)-rpath$(,)'$(RPATH)')
, := ,

INSTALL ?= install
# -s strips the installed library and programs (install-strip sets it).
INSTALL_STRIP ?=

.PHONY: all library programs examples install install-only install-strip uninstall clean

all: library
	$(MAKE) programs examples

# cargo decides whether anything needs rebuilding.
library:
	$(CARGO) build --release

$(LIB):
	@echo "$(LIB) is missing: run 'make' (or 'cargo build --release') first" >&2
	@exit 1

programs: $(B)/bin/passt-standalone $(B)/bin/qrap $(B)/lib/libpasst.so.0

# The development builds of examples-c/ and qrap/, in their own directories.
examples: $(LIB)
	$(MAKE) -C examples-c LIBDIR=$(RELEASE)
	$(MAKE) -C qrap

$(B)/lib/libpasst.so.0: $(LIB)
	@mkdir -p $(@D)
	ln -sf $(LIB) $@

$(B)/bin/passt-standalone: examples-c/passt-standalone.c examples-c/confine.c examples-c/confine.h include/passt.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Iinclude $(CFLAGS) $(PROGRAM_CFLAGS) $(LDFLAGS) $(PROGRAM_LDFLAGS) \
		-o $@ examples-c/passt-standalone.c examples-c/confine.c -lpasst

$(B)/bin/qrap: qrap/qrap.c
	$(MAKE) -C qrap BUILDDIR=$(B)/bin

install: library
	$(MAKE) install-only

install-strip: library
	$(MAKE) install-only INSTALL_STRIP=-s

install-only: programs
	$(INSTALL) -d $(DESTDIR)$(bindir) $(DESTDIR)$(libdir) $(DESTDIR)$(includedir) $(DESTDIR)$(pkgconfigdir)
	$(INSTALL) -m 0755 $(INSTALL_STRIP) $(LIB) $(DESTDIR)$(libdir)/libpasst.so.0
	ln -sf libpasst.so.0 $(DESTDIR)$(libdir)/libpasst.so
	$(INSTALL) -m 0644 include/passt.h $(DESTDIR)$(includedir)/passt.h
	sed -e 's|@prefix@|$(PREFIX)|g' -e 's|@libdir@|$(libdir)|g' \
	    -e 's|@includedir@|$(includedir)|g' -e 's|@version@|$(VERSION)|g' \
	    passt.pc.in > $(DESTDIR)$(pkgconfigdir)/passt.pc
	chmod 0644 $(DESTDIR)$(pkgconfigdir)/passt.pc
	$(INSTALL) -m 0755 $(INSTALL_STRIP) $(B)/bin/passt-standalone $(B)/bin/qrap $(DESTDIR)$(bindir)/

uninstall:
	rm -f $(DESTDIR)$(libdir)/libpasst.so.0 $(DESTDIR)$(libdir)/libpasst.so \
	      $(DESTDIR)$(includedir)/passt.h $(DESTDIR)$(pkgconfigdir)/passt.pc \
	      $(DESTDIR)$(bindir)/passt-standalone $(DESTDIR)$(bindir)/qrap

# Not cargo's target directory: `cargo clean` is for that.
clean:
	rm -rf $(B)
	$(MAKE) -C examples-c clean
	$(MAKE) -C qrap clean
