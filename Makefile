# indimail — build, run, test, fuzz, bench.
# `make run` and `make test` are the only two commands a new machine needs.

.DEFAULT_GOAL := all
CC      ?= cc
PKGS    := lua5.4 libuv libcares openssl sqlite3 libxcrypt libmariadb jansson libpsl gmime-3.0
# the admin HTTP API's server
PKGS    += libmicrohttpd
BUILD   := build
BIN     := bin
SAN     ?= 0
# the paths compiled in. The tree's build (make run, make test)
# has the tree's; `make install` builds again in build/install with the
# FHS ones (INSTALL_BUILD=1 below).
COMPILED_LUA_DIR ?= $(CURDIR)/lua
COMPILED_CONFIG  ?= $(CURDIR)/etc/indimail.lua

CFLAGS  ?= -O2 -g
CFLAGS  += -DINDIMAIL_LUA_DIR=\"$(COMPILED_LUA_DIR)\" -DINDIMAIL_CONFIG=\"$(COMPILED_CONFIG)\" \
           -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lm -pthread \
           -l:liblua5.4-rex-pcre2.so.0 -lspf2 -lopendkim -lopendmarc -lresolv
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=address,undefined
BUILD   := build/san
BIN     := build/san/bin
export ASAN_OPTIONS := detect_leaks=0:abort_on_error=0
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
endif
# ---- install paths (FHS), the version, sd_notify --------------
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/indimail
MANDIR     ?= $(PREFIX)/share/man
SYSTEMD_UNIT_DIR ?= /lib/systemd/system
INDIMAIL_VERSION := $(shell cat VERSION)
PKGS    += libsystemd
CFLAGS  += -DINDIMAIL_VERSION=\"$(INDIMAIL_VERSION)\"
ifeq ($(INSTALL_BUILD),1)
BUILD   := build/install
BIN     := build/install/bin
COMPILED_LUA_DIR := $(DATADIR)/lua
COMPILED_CONFIG  := $(SYSCONFDIR)/indimail/indimail.lua
INDIMAIL_SUBMIT_SOCKET := $(LOCALSTATEDIR)/spool/indimail/public/submit.sock
# no path of the tree in an installed binary (debug info, __FILE__)
CFLAGS  += -ffile-prefix-map=$(CURDIR)=.
endif
export INDIMAIL_BIN_DIR := $(CURDIR)/$(BIN)

DEB_BUILD := gcc make pkg-config liblua5.4-dev lua5.4 libuv1-dev libssl-dev \
             libmariadb-dev libspf2-dev libopendkim-dev libc-ares-dev libsqlite3-dev openssl \
             libgmime-3.0-dev libcrypt-dev lua-rex-pcre2 libjansson-dev \
             libopendmarc-dev libpsl-dev publicsuffix
# the admin HTTP API's server
DEB_BUILD += libmicrohttpd-dev
# sd_notify (Type=notify), and what `make deb` needs (only it).
DEB_BUILD += libsystemd-dev
DEB_PKG   := build-essential dpkg-dev debhelper fakeroot
# lua5.4 first: lua-busted alone pulls in lua5.2 (the specs never use the
# `lua` alternative anyway: tools/run-tests runs busted under lua5.4).
DEB_TEST  := lua5.4 lua-busted lua-socket tinycdb swaks libnet-ssleay-perl python3 \
             python3-spf python3-dnslib python3-yaml python3-dkim python3-nacl \
             dnsmasq-base procps postfix openssl iproute2 time \
             dovecot-imapd dovecot-pop3d dovecot-sqlite dovecot-mysql sqlite3 \
             mariadb-server mariadb-client clamav-daemon bogofilter rspamd
# tests/integration/man_spec.lua renders man/ with man -l and lints it with mandoc
DEB_TEST  += man-db groff-base mandoc
# curl: admin_api_spec talks plain HTTP with it (beside Python urllib)
DEB_TEST  += curl
# systemd-analyze (tests/integration/systemd_unit_spec.lua)
DEB_TEST  += systemd
DEB_FUZZ  := clang libclang-rt-14-dev
# What the README's first-message commands need (swaks -tls: Net::SSLeay).
DEB_RUN   := swaks libnet-ssleay-perl

LIB_SRCS  := $(filter-out src/daemon/main.c src/cli/%.c, $(wildcard src/*/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
PURE_SRCS := src/lib/buf.c src/lib/xalloc.c src/lib/diag.c src/lib/log.c src/lib/base64.c \
             src/lib/siphash.c \
             src/mail/address.c \
             src/mail/header.c \
             src/smtp/smtp_parse.c src/smtp/smtp_data.c src/deliver/smtp_reply.c \
             src/smtp/smtp_sasl_parse.c src/lib/sasl_scram.c src/lib/sasl_cram.c

# bin/sendmail reads no configuration: it links only what it uses, GMime
# for MIME, and has the local submission socket compiled in (an installed
# build sets INDIMAIL_SUBMIT_SOCKET=/var/spool/indimail/public/submit.sock).
INDIMAIL_SUBMIT_SOCKET ?= $(CURDIR)/queue/public/submit.sock
SENDMAIL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/cli/sendmail*.c))
SENDMAIL_LIBS := $(addprefix $(BUILD)/src/,lib/buf.o lib/xalloc.o lib/diag.o lib/log.o mail/address.o smtp/smtp_parse.o)
$(SENDMAIL_OBJS): CFLAGS += -DINDIMAIL_SUBMIT_SOCKET=\"$(INDIMAIL_SUBMIT_SOCKET)\" \
                            $(shell pkg-config --cflags gmime-3.0 2>/dev/null)
# -V shows the socket; sendmail in sbin runs indimail from bin;
# the version file and libsystemd's version (it has no call for it).
$(BUILD)/src/lib/buildinfo.o: CFLAGS += -DINDIMAIL_SUBMIT_SOCKET=\"$(INDIMAIL_SUBMIT_SOCKET)\" \
    -DLIBSYSTEMD_VERSION=\"$(shell pkg-config --modversion libsystemd 2>/dev/null)\"
$(BUILD)/src/lib/buildinfo.o $(BUILD)/src/daemon/main.o $(BUILD)/src/cli/indimail.o: VERSION
ifeq ($(INSTALL_BUILD),1)
$(SENDMAIL_OBJS): CFLAGS += -DINDIMAIL_CLI=\"$(BINDIR)/indimail\"
endif

.PHONY: all deps test-deps run-deps run test fuzz fuzz-deps lint clean setup bench
.PHONY: install install-files deb deb-test

all: deps $(BIN)/indimaild $(BIN)/indimail $(BIN)/sendmail $(BIN)/mailq \
     $(BIN)/newaliases build/indimail_test.so build/indimail_counter.so \
     build/indimail_spf.so build/indimail_metrics.so build/indimail_batch.so

# Installs the Debian packages that are missing (sudo only when not root).
deps:
	@./tools/need-packages $(DEB_BUILD)

# The fuzz smoke pass is part of `make test`, so clang comes with it; the
# account is what the integration specs drop to when run as root.
test-deps: deps
	@./tools/need-packages $(DEB_TEST) $(DEB_FUZZ)
	@./tools/ensure-account

run-deps: deps
	@./tools/need-packages $(DEB_RUN)

fuzz-deps:
	@./tools/need-packages $(DEB_FUZZ)

# deps first, even under make -j (the headers may not be installed yet)
$(BUILD)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BIN)/indimaild: $(BUILD)/src/daemon/main.o $(LIB_OBJS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ADMIN_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/cli/admin*.c src/cli/queue_tool*.c) src/cli/control.c src/cli/spam.c $(wildcard src/cli/stats*.c) $(wildcard src/cli/config_*.c))
$(BIN)/indimail: $(BUILD)/src/cli/indimail.o $(ADMIN_OBJS) $(LIB_OBJS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/sendmail: $(SENDMAIL_OBJS) $(SENDMAIL_LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs gmime-3.0 2>/dev/null)

# mailq (sendmail -bp) and newaliases (sendmail -bi): the same program.
$(BIN)/mailq $(BIN)/newaliases: $(BIN)/sendmail
	ln -sf sendmail $@

# Lua module exposing the pure parsers to the unit specs (never sanitized:
# it is loaded into the stock lua5.4 interpreter).
build/indimail_test.so: tests/helpers/testmod.c $(PURE_SRCS) src/mail/authres.c src/lua/lua_authres.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -fPIC -shared \
	    $(shell pkg-config --cflags lua5.4) -o $@ $^ -lcrypto

# The shared counters (src/lib/counter.c) for tests/unit/counter_spec.lua,
# whose children fork and count on one table.
COUNTER_SRCS := src/lib/counter.c src/lib/shm.c src/lib/siphash.c src/lib/xalloc.c src/lib/diag.c src/lib/log.c src/lib/buf.c
build/indimail_counter.so: tests/helpers/testmod_counter.c $(COUNTER_SRCS) | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -fPIC -shared \
	    $(shell pkg-config --cflags lua5.4) -o $@ $^ -pthread

# the shared metrics registry (src/lib/metrics.c) and the
# MTA's families (src/mail/mail_metrics.c) for tests/unit/metrics_spec.lua.
METRICS_SRCS := src/lib/metrics.c src/mail/mail_metrics.c src/lib/batch.c src/lib/fsutil.c \
                src/lib/shm.c src/lib/siphash.c src/lib/xalloc.c src/lib/diag.c src/lib/log.c src/lib/buf.c
build/indimail_metrics.so: tests/helpers/testmod_metrics.c $(METRICS_SRCS) src/lib/metrics.h \
                           src/mail/mail_metrics.h | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -fPIC -shared \
	    $(shell pkg-config --cflags lua5.4 libuv) -o $@ $(filter %.c,$^) \
	    $(shell pkg-config --libs libuv) -pthread

# the group commit's batcher (src/lib/batch.c, which observes its batch
# sizes in the metrics registry) for tests/unit/batch_spec.lua.
build/indimail_batch.so: tests/helpers/testmod_batch.c $(METRICS_SRCS) src/lib/batch.h | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -fPIC -shared \
	    $(shell pkg-config --cflags lua5.4 libuv) -o $@ $(filter %.c,$^) \
	    $(shell pkg-config --libs libuv) -pthread

# spf_check (src/net/spf.c) for tests/integration/spf_conformance_spec.lua,
# which runs the RFC 7208 suite through it with any client address.
SPF_SRCS := src/net/spf.c src/net/spf_dns.c src/net/spf_wire.c src/net/spf_get.c \
            src/net/spf_record.c src/net/spf_record_rewrite.c src/lib/buf.c \
            src/lib/xalloc.c src/lib/diag.c src/lib/log.c
build/indimail_spf.so: tests/helpers/testmod_spf.c $(SPF_SRCS) | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -fPIC -shared \
	    $(shell pkg-config --cflags lua5.4) -o $@ $^ -lspf2 -lresolv -pthread

setup: run-deps all
	@./tools/setup-runtime

run: setup
	@./tools/banner
	exec $(BIN)/indimaild -c etc/indimail.lua

test: test-deps all
	@./tools/run-tests

fuzz: fuzz-deps
	@$(MAKE) -C fuzz run SECONDS=$${SECONDS_PER_TARGET:-60}

lint:
	cppcheck --quiet --enable=warning,performance,portability \
	    --error-exitcode=1 -I src src

clean:
	rm -rf build bin fuzz/build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# indimaild vs Postfix on loopback (bench/run; method in docs/benchmarks.md).
bench: all
	@./tools/need-packages postfix hyperfine python3 dnsmasq-base mariadb-server bogofilter && ./bench/run

# ---- make install, make deb, make deb-test ----------------------
# `make install [PREFIX=/usr] [DESTDIR=...]`: builds in build/install with
# the FHS paths compiled in, then installs (docs/operations.md, "Installing").
# Owners and modes of the spool, state and log folders are the package's
# postinst's (debian/indimail.postinst); by hand, see that file.
install: deps
	@$(MAKE) --no-print-directory INSTALL_BUILD=1 install-files

# A site's configuration is never overwritten: a file already there stays.
install_conf = f=$(DESTDIR)$(SYSCONFDIR)/indimail/$(2); [ -e $$f ] || install -m 0644 $(1) $$f
INSTALL_DIRS := $(SBINDIR) $(BINDIR) $(DATADIR)/lua/policies $(DATADIR)/lua/stdlib \
    $(SYSCONFDIR)/indimail/control $(SYSTEMD_UNIT_DIR) $(PREFIX)/lib \
    $(LOCALSTATEDIR)/spool/indimail $(LOCALSTATEDIR)/lib/indimail $(LOCALSTATEDIR)/log/indimail \
    $(addprefix $(MANDIR)/man,1 5 7 8)
install-files: $(BIN)/indimaild $(BIN)/indimail $(BIN)/sendmail
	install -d $(addprefix $(DESTDIR),$(INSTALL_DIRS))
	install -m 0755 $(BIN)/indimaild $(BIN)/sendmail $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(BIN)/indimail $(DESTDIR)$(BINDIR)/
	ln -sf ../sbin/sendmail $(DESTDIR)$(BINDIR)/mailq
	ln -sf ../sbin/sendmail $(DESTDIR)$(BINDIR)/newaliases
	ln -sf ../sbin/sendmail $(DESTDIR)$(PREFIX)/lib/sendmail
	install -m 0644 lua/policies/*.lua $(DESTDIR)$(DATADIR)/lua/policies/
	install -m 0644 lua/stdlib/*.lua $(DESTDIR)$(DATADIR)/lua/stdlib/
	$(foreach s,1 5 7 8,install -m 0644 man/*.$(s) $(DESTDIR)$(MANDIR)/man$(s)/;)
	$(call install_conf,etc/indimail.production.lua,indimail.lua)
	$(call install_conf,etc/policies.lua,policies.lua)
	$(foreach f,$(notdir $(wildcard etc/control/*)),$(call install_conf,etc/control/$(f),control/$(f));)
	sed -e 's|/usr/sbin/|$(SBINDIR)/|g' -e 's|/etc/indimail/|$(SYSCONFDIR)/indimail/|g' \
	    etc/systemd/indimail.service >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/indimail.service

# build/deb/indimail_VERSION_ARCH.deb (dpkg-buildpackage, debian/; every
# file it writes stays in build/deb, none in the parent folder).
deb: deps
	@./tools/need-packages $(DEB_PKG)
	@mkdir -p build/deb
	dpkg-buildpackage -us -uc -b --buildinfo-option=-ubuild/deb \
	    --changes-option=-ubuild/deb --buildinfo-file=build/deb/indimail.buildinfo \
	    --changes-file=build/deb/indimail.changes
	@ls build/deb/*.deb

# Builds the package, installs it, runs it and delivers a message: in a
# fresh Debian root with ../shared/tools/fresh-debian-test (as root).
deb-test:
	tests/package/deb_install_test
