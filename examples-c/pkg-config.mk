# Builds the examples against an INSTALLED libpasst, found with pkg-config
# the way any program using the library would (`make install` first):
#
#     make -C examples-c -f pkg-config.mk PKG_CONFIG_PATH=/usr/local/lib/pkgconfig
#
# which amounts to
#     cc  epoll-loop.c -o epoll-loop $(pkg-config --cflags --libs passt)
#     g++ -std=c++17 frames-cxx.cpp -o frames-cxx $(pkg-config --cflags --libs passt)
#
# plus a run path to pkg-config's libdir, so that they run when that is not
# a directory the dynamic loader searches anyway (RPATH= to leave it out).
#
# Variables: PKG_CONFIG_PATH, PKG_CONFIG (pkg-config), BUILDDIR (this
# directory), RPATH, CC, CXX, CFLAGS, CXXFLAGS, LDFLAGS.
# Targets: all (default), clean.

PKG_CONFIG ?= pkg-config
export PKG_CONFIG_PATH
BUILDDIR ?= .
B := $(BUILDDIR)

CFLAGS ?= -O2 -g
CXXFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Werror
# Evaluated by the shell in each recipe, after PKG_CONFIG_PATH is exported.
PASST_FLAGS = $$($(PKG_CONFIG) --cflags --libs passt)
RPATH ?= $$($(PKG_CONFIG) --variable=libdir passt)
RPATH_FLAG = $(if $(RPATH),-Wl$(,)-rpath$(,)$(RPATH))
, := ,

PROGRAMS = $(B)/epoll-loop $(B)/frames-cxx

.PHONY: all clean

all: $(PROGRAMS)

$(B)/epoll-loop: epoll-loop.c
	@mkdir -p $(B)
	@$(PKG_CONFIG) --exists --print-errors passt
	$(CC) -std=c11 $(WARNINGS) -D_GNU_SOURCE $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PASST_FLAGS) $(RPATH_FLAG)

$(B)/frames-cxx: frames-cxx.cpp
	@mkdir -p $(B)
	@$(PKG_CONFIG) --exists --print-errors passt
	$(CXX) -std=c++17 $(WARNINGS) $(CPPFLAGS) $(CXXFLAGS) $(LDFLAGS) -o $@ $< $(PASST_FLAGS) $(RPATH_FLAG)

clean:
	rm -f $(PROGRAMS)
