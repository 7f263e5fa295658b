/*
 * fuzz_control: the selection of a queue manager control request
 * (src/queue/queue_select.c: "ALL from=a older=60 <ids>"), as it comes
 * off <queue.path>/qmgr.sock after the command's name. Invariants: parse
 * either fails with an error text and nothing owned, or every id is a
 * well-formed queue id, values are printable, older is in range; the
 * filters written back parse to the same selection; match never crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/queue/queue_select.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
roundtrip(const struct queue_select *s)
{
	struct queue_select again;
	struct buf f = BUF_INIT, err = BUF_INIT;

	queue_select_filters(s, &f);
	check(queue_select_parse(buf_cstr(&f), &again, &err) == 0);
	check(again.all == s->all && again.older == s->older);
	check(same(again.from, s->from) && same(again.to, s->to) &&
	    same(again.domain, s->domain));
	queue_select_free(&again);
	buf_free(&f);
	buf_free(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = strndup((const char *)data, size);
	char *rcpts[] = { "a@example.test", "b@x.test" };
	unsigned char st[] = { 0, 2 };
	struct envelope e = { .sender = "s@example.test", .rcpts = rcpts,
	    .nrcpts = 2 };
	struct queue_select s;
	struct buf err = BUF_INIT;

	if (queue_select_parse(line, &s, &err) < 0) {
		check(err.len > 0 && s.from == NULL && s.nids == 0);
	} else {
		check(s.nids <= QUEUE_SELECT_IDS_MAX);
		for (size_t i = 0; i < s.nids; i++)
			check(strlen(s.ids[i]) == ENVELOPE_ID_LEN);
		check(s.older >= 0 && s.older <= QUEUE_SELECT_AGE_MAX);
		roundtrip(&s);
		(void)queue_select_match(&s, &e, st, 2, 100);
		(void)queue_select_match(&s, &e, NULL, 2, 0);
		queue_select_free(&s);
	}
	buf_free(&err);
	free(line);
	return 0;
}
