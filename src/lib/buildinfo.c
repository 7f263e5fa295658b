/*
 * buildinfo: see buildinfo.h. The paths' fallbacks are those of the
 * files that use them (src/daemon/main.c, src/lua/lua_api.c,
 * src/cli/sendmail.c): an installed build always passes them from the
 * Makefile, so these only show in a build by hand.
 */
#include <ares.h>
#include <gmime/gmime.h>
#include <jansson.h>
#include <libpsl.h>
#include <lua.h>
#include <mysql.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <uv.h>
/* libspf2 and libopendkim headers need these first */
#include <netinet/in.h>
#include <sys/types.h>
#include <spf2/spf.h>
#include <opendkim/dkim.h>

#include "buildinfo.h"

#ifndef INDIMAIL_CONFIG
#define INDIMAIL_CONFIG "/etc/indimail/indimail.lua"
#endif
#ifndef INDIMAIL_LUA_DIR
#define INDIMAIL_LUA_DIR "/usr/share/indimail/lua"
#endif
#ifndef INDIMAIL_SUBMIT_SOCKET
#define INDIMAIL_SUBMIT_SOCKET "/var/spool/indimail/public/submit.sock"
#endif
#ifndef INDIMAIL_USER
#define INDIMAIL_USER "indimail"
#endif
#ifndef LIBSYSTEMD_VERSION
#define LIBSYSTEMD_VERSION "unknown"
#endif

#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZERS "address,undefined"
#else
#define SANITIZERS "none"
#endif

#if defined(__OPTIMIZE__)
#define OPTIMIZED "yes"
#else
#define OPTIMIZED "no"
#endif

/* OpenDKIM packs its version as 0xMMmmpp00. */
static void
print_opendkim(FILE *f)
{
	uint32_t v = dkim_libversion();

	fprintf(f, "opendkim: %u.%u.%u\n", (unsigned)(v >> 24),
	    (unsigned)(v >> 16) & 0xff, (unsigned)(v >> 8) & 0xff);
}

static void
print_libraries(FILE *f)
{
	fprintf(f, "libuv: %s\n", uv_version_string());
	fprintf(f, "openssl: %s\n", OpenSSL_version(OPENSSL_VERSION));
	fprintf(f, "lua: %s\n", LUA_RELEASE);
	fprintf(f, "sqlite: %s\n", sqlite3_libversion());
	fprintf(f, "mariadb_client: %s\n", mysql_get_client_info());
	fprintf(f, "c-ares: %s\n", ares_version(NULL));
	fprintf(f, "libspf2: %d.%d.%d\n", SPF_LIB_VERSION_MAJOR,
	    SPF_LIB_VERSION_MINOR, SPF_LIB_VERSION_PATCH);
	print_opendkim(f);
	fprintf(f, "gmime: %u.%u.%u\n", gmime_major_version,
	    gmime_minor_version, gmime_micro_version);
	fprintf(f, "libsystemd: %s\n", LIBSYSTEMD_VERSION);
	fprintf(f, "libmicrohttpd: %s\n", MHD_get_version());
	fprintf(f, "jansson: %s\n", JANSSON_VERSION);
	fprintf(f, "libpsl: %s\n", psl_get_version());
}

void
buildinfo_print_version(FILE *f, const char *program)
{
	fprintf(f, "%s %s\n", program, INDIMAIL_VERSION);
}

void
buildinfo_print(FILE *f, const char *program)
{
	buildinfo_print_version(f, program);
	fprintf(f, "compiler: %s\n", COMPILER);
	fprintf(f, "optimized: %s\n", OPTIMIZED);
	fprintf(f, "sanitizers: %s\n", SANITIZERS);
	fprintf(f, "config: %s\n", INDIMAIL_CONFIG);
	fprintf(f, "lua_dir: %s\n", INDIMAIL_LUA_DIR);
	fprintf(f, "submit_socket: %s\n", INDIMAIL_SUBMIT_SOCKET);
	fprintf(f, "user: %s\n", INDIMAIL_USER);
	print_libraries(f);
}
