/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * spf_get: how libspf2 gets a domain's SPF record from us (the get_spf
 * of our DNS layer, which libspf2's SPF_server_get_record hands over to,
 * for the first record and for every include: and redirect=). Its steps
 * are libspf2's, plus one: the record is read strictly (spf_record.h)
 * before libspf2 compiles it. Private to spf.c.
 */
#ifndef INDIMAIL_SPF_GET_H
#define INDIMAIL_SPF_GET_H

#include "spf_dns.h"

/*
 * SPF_dns_get_spf_t: the compiled record of spf_request->cur_dom into
 * *recp, or an error with spf_response's result set as libspf2 sets it
 * (none, temperror, permerror). A record RFC 7208 calls a syntax error is
 * a permerror, its reason kept in the check's spf_dns_ctx (refused).
 */
SPF_errcode_t spf_get_record(SPF_server_t *, SPF_request_t *,
	    SPF_response_t *, SPF_record_t **recp);

#endif
