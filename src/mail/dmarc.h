/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * dmarc: DMARC's evaluation (RFC 7489) once the policy record is found,
 * with no DNS and no state: the RFC5322.From domain of a message (GMime
 * reads the address list), the Organizational Domain (libpsl over the
 * system's Public Suffix List), a record read by libopendmarc, SPF and
 * DKIM alignment, the policy (p or sp) and the disposition after pct.
 * Discovery (which _dmarc name to ask, what a DNS error means) is the
 * caller's: src/lua/lua_dmarc.c asks the loop's resolver.
 */
#ifndef INDIMAIL_DMARC_H
#define INDIMAIL_DMARC_H

#include <stddef.h>

#define DMARC_DOMAIN_MAX	256	/* a domain name and its NUL */
#define DMARC_DKIM_MAX		8	/* signatures one evaluation reads */

enum dmarc_result {
	DMARC_RESULT_NONE, DMARC_RESULT_PASS, DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR, DMARC_RESULT_PERMERROR,
};

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

/* What dmarc_from_domain found in the From: fields (RFC 7489 6.6.1). */
enum dmarc_from {
	DMARC_FROM_ONE,		/* one field, its addresses in one domain */
	DMARC_FROM_ABSENT,	/* no field, or no domain in it */
	DMARC_FROM_MULTIPLE,	/* several fields, or several domains */
};

/* One authenticated identifier: SPF's domain or a signature's d=. */
struct dmarc_auth {
	const char	*domain;	/* NULL: none */
	int		 pass;
};

struct dmarc_input {
	const char	*from_domain;	/* lower case, A-labels */
	const char	*record;	/* the one v=DMARC1 TXT record */
	int		 from_org;	/* it was found at the Organizational
					 * Domain, not at from_domain */
	struct dmarc_auth spf;
	struct dmarc_auth dkim[DMARC_DKIM_MAX];
	size_t		 ndkim;
	unsigned	 draw;		/* 0..99: pct's sample (6.6.4) */
};

struct dmarc_outcome {
	enum dmarc_result result;	/* PASS, FAIL or PERMERROR here */
	enum dmarc_policy policy;	/* p, or sp for a subdomain */
	enum dmarc_policy disposition;	/* policy after pct, or NONE */
	enum dmarc_policy p, sp;
	int		 spf_aligned, dkim_aligned;
	int		 adkim_strict, aspf_strict;
	int		 pct;
	int		 sp_used;
	const char	*dkim_domain;	/* the aligned passing d=, or NULL */
	char		 rua[512];	/* the rua= URIs, comma-separated */
	char		 reason[128];	/* PERMERROR: what was wrong */
};

/* Loads the Public Suffix List and starts GMime (once per process; the
 * other calls do it on first use). */
void	dmarc_init(void);
/*
 * The From: domain of the message msg[0..len) (LF line ends) into
 * dom[DMARC_DOMAIN_MAX], lower case, IDNs as A-labels.
 */
enum dmarc_from dmarc_from_domain(const char *msg, size_t len, char *dom);
/* 1 if the TXT string is a DMARC record: "v" *WSP "=" *WSP "DMARC1". */
int	dmarc_is_record(const char *txt, size_t len);
/*
 * domain's Organizational Domain into org[DMARC_DOMAIN_MAX]; 0, or -1
 * when it has none (domain is itself a public suffix, or no list).
 */
int	dmarc_org_domain(const char *domain, char *org);
/* 1 if a and b are aligned, strict (equal) or relaxed (same org). */
int	dmarc_aligned(const char *a, const char *b, int strict);
/* Evaluates in against its record. */
void	dmarc_evaluate(const struct dmarc_input *in, struct dmarc_outcome *out);
const char *dmarc_result_name(enum dmarc_result);
const char *dmarc_policy_name(enum dmarc_policy);

#endif
