/*
 * admin_dkim: `indimail dkim keygen DOMAIN [--selector S] [--algorithm
 * rsa|ed25519] [--bits N] [--dir D] [--group G]`. Makes a DKIM key pair
 * with OpenSSL's EVP API, writes the private key as PEM (PKCS#8) to
 * D/DOMAIN.S.key with mode 0600 (never over an existing file; with
 * --group, the folder and the key go to group G, the key 0640, so the
 * account that loads the configuration reads it) and prints the TXT record
 * to publish (RFC 6376 3.6.1; Ed25519's p= is the raw key, RFC 8463 4.2)
 * and the dkim.keys entry for the configuration. Rotation with two
 * selectors: docs/policies/dkim.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../lib/base64.h"
#include "../lib/buf.h"
#include "../mail/address.h"
#include "admin.h"

#define RSA_BITS_DEFAULT	2048
#define RSA_BITS_MIN		1024	/* RFC 8301 3.2 */
#define RSA_BITS_MAX		8192
#define TXT_STRING_MAX		255	/* one character-string (RFC 1035) */
#define KEY_DIR_DEFAULT		"etc/dkim"

struct keygen {
	const char	*domain, *selector, *dir, *group;
	int		 ed25519, bits;
	char		 sel_default[16];
};

static int
keygen_usage(void)
{
	fprintf(stderr, "usage: indimail dkim keygen DOMAIN [--selector S] "
	    "[--algorithm rsa|ed25519] [--bits 2048] [--dir etc/dkim] "
	    "[--group indimail]\n");
	return 2;
}

/* A selector made of the year and month, as s202612. */
static void
default_selector(struct keygen *k)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(k->sel_default, sizeof(k->sel_default), "s%Y%m", &tm);
	k->selector = k->sel_default;
}

static int
parse_args(int argc, char **argv, struct keygen *k)
{
	static const struct option o[] = {
	    { "selector", required_argument, NULL, 's' },
	    { "algorithm", required_argument, NULL, 'a' },
	    { "bits", required_argument, NULL, 'b' },
	    { "dir", required_argument, NULL, 'd' },
	    { "group", required_argument, NULL, 'g' }, { NULL, 0, NULL, 0 } };
	int ch;

	memset(k, 0, sizeof(*k));
	k->bits = RSA_BITS_DEFAULT;
	k->dir = KEY_DIR_DEFAULT;
	default_selector(k);
	optind = 0;	/* GNU: start afresh (main parsed its own) */
	while ((ch = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (ch == 's')
			k->selector = optarg;
		else if (ch == 'a' && (strcmp(optarg, "rsa") == 0 ||
		    strcmp(optarg, "ed25519") == 0))
			k->ed25519 = optarg[0] == 'e';
		else if (ch == 'b')
			k->bits = atoi(optarg);
		else if (ch == 'd')
			k->dir = optarg;
		else if (ch == 'g')
			k->group = optarg;
		else
			return -1;
	}
	if (optind + 1 != argc)
		return -1;
	k->domain = argv[optind];
	return 0;
}

static const char *
check_args(const struct keygen *k)
{
	if (!address_valid_domain(k->domain, strlen(k->domain)))
		return "DOMAIN is not a domain name";
	if (!address_valid_domain(k->selector, strlen(k->selector)) ||
	    strchr(k->selector, '.'))
		return "the selector must be one DNS label, as s2026";
	if (!k->ed25519 && (k->bits < RSA_BITS_MIN || k->bits > RSA_BITS_MAX))
		return "--bits must be 1024 to 8192 (2048 is the norm)";
	return NULL;
}

/* p=: the public key, base64 (RSA: SubjectPublicKeyInfo; Ed25519: raw). */
static int
public_key_b64(EVP_PKEY *pk, int ed25519, struct buf *out)
{
	unsigned char raw[64], *der = NULL;
	size_t rawlen = sizeof(raw);
	int n;

	if (ed25519) {
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1)
			return -1;
		base64_encode((const char *)raw, rawlen, out);
		return 0;
	}
	if ((n = i2d_PUBKEY(pk, &der)) <= 0)
		return -1;
	base64_encode((const char *)der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}

/* Writes the private key to path, 0600, refusing an existing file. */
static int
write_key(EVP_PKEY *pk, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f;
	int ok;

	if (fd < 0) {
		fprintf(stderr, "indimail: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
	if (fclose(f) != 0 || !ok) {
		fprintf(stderr, "indimail: %s: could not write the key\n", path);
		unlink(path);
		return -1;
	}
	return 0;
}

/* The TXT record, split in strings of at most 255 bytes. */
static void
print_record(const struct keygen *k, struct buf *p)
{
	struct buf rec = BUF_INIT;

	buf_printf(&rec, "v=DKIM1; k=%s; p=%s", k->ed25519 ? "ed25519" : "rsa",
	    buf_cstr(p));
	printf("%s._domainkey.%s. IN TXT (", k->selector, k->domain);
	for (size_t i = 0; i < rec.len; i += TXT_STRING_MAX)
		printf(" \"%.*s\"", (int)(rec.len - i < TXT_STRING_MAX ?
		    rec.len - i : TXT_STRING_MAX), rec.data + i);
	printf(" )\n");
	buf_free(&rec);
}

/* --group: the folder and the key to group g, the key 0640. */
static int
give_group(const struct keygen *k, const char *path)
{
	struct group *g;

	if (k->group == NULL)
		return 0;
	if ((g = getgrnam(k->group)) == NULL) {
		fprintf(stderr, "indimail: no group %s\n", k->group);
		return -1;
	}
	if (chown(k->dir, (uid_t)-1, g->gr_gid) < 0 ||
	    chown(path, (uid_t)-1, g->gr_gid) < 0 || chmod(path, 0640) < 0) {
		fprintf(stderr, "indimail: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
print_config(const struct keygen *k, const char *path)
{
	printf("-- dkim = { keys = { [\"%s\"] = { selector = \"%s\", "
	    "key_file = \"%s\", algorithm = \"%s\" } } }\n", k->domain,
	    k->selector, path, k->ed25519 ? "ed25519-sha256" : "rsa-sha256");
}

static int
keygen(const struct keygen *k)
{
	EVP_PKEY *pk = k->ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)k->bits);
	struct buf path = BUF_INIT, p = BUF_INIT;
	int rc = 1;

	if (pk == NULL) {
		fprintf(stderr, "indimail: key generation failed\n");
		return 1;
	}
	buf_printf(&path, "%s/%s.%s.key", k->dir, k->domain, k->selector);
	mkdir(k->dir, 0750);	/* may exist */
	if (public_key_b64(pk, k->ed25519, &p) == 0 &&
	    write_key(pk, buf_cstr(&path)) == 0 &&
	    give_group(k, buf_cstr(&path)) == 0) {
		print_record(k, &p);
		print_config(k, buf_cstr(&path));
		rc = 0;
	}
	EVP_PKEY_free(pk);
	buf_free(&path);
	buf_free(&p);
	return rc;
}

int
admin_dkim_main(int argc, char **argv)
{
	struct keygen k;
	const char *why;

	if (argc < 2 || strcmp(argv[1], "keygen") != 0)
		return keygen_usage();
	if (parse_args(argc - 1, argv + 1, &k) < 0)
		return keygen_usage();
	if ((why = check_args(&k)) != NULL) {
		fprintf(stderr, "indimail: dkim keygen: %s\n", why);
		return 2;
	}
	return keygen(&k);
}
