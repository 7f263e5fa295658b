/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * mime_text: where text appended to a message's readable parts goes (a
 * disclaimer), found by one pass over the message held in memory with LF
 * line ends: the end of a single-part text/plain body, of the text/plain
 * and text/html parts of a multipart/alternative (before </body> in HTML),
 * of the first part of any other multipart, nested ones included. A
 * multipart/signed or multipart/encrypted message is not touched at all.
 * Nothing is rewritten: callers insert the rendered texts at the offsets
 * (msg_edit_insert), so the MIME structure stays as received.
 */
#ifndef INDIMAIL_MIME_TEXT_H
#define INDIMAIL_MIME_TEXT_H

#include <stddef.h>

#include "../lib/buf.h"

#define MIME_TEXT_POINTS_MAX	8
#define MIME_TEXT_MAX		8192	/* an appended text, bytes */

enum mime_part { MIME_PART_PLAIN, MIME_PART_HTML };
enum mime_where { MIME_AT_END, MIME_BEFORE_DELIMITER, MIME_BEFORE_BODY_TAG };

struct mime_point {
	size_t		 off;		/* insert here */
	enum mime_part	 kind;
	enum mime_where	 where;
	int		 qp;		/* the part is quoted-printable */
};

struct mime_text {
	struct mime_point pt[MIME_TEXT_POINTS_MAX];
	size_t		 n;
	int		 is_signed;	/* signed or encrypted: no point at all */
	size_t		 skipped;	/* text parts it cannot touch (base64...) */
};

#define MIME_DEPTH_MAX		5	/* nesting followed */
#define MIME_BOUNDARY_MAX	200
#define MIME_FILENAME_MAX	255	/* longer names are cut */

/* Content-Transfer-Encoding; the first three are the identity. */
enum mime_cte { MIME_CTE_7BIT, MIME_CTE_8BIT, MIME_CTE_BINARY, MIME_CTE_QP,
	MIME_CTE_BASE64, MIME_CTE_UNKNOWN };

/* What the header of an entity says about its body. */
struct mime_entity {
	char		 type[64];	/* "text/plain", lowercase */
	char		 charset[64];	/* as given, or "" */
	char		 boundary[MIME_BOUNDARY_MAX + 1];
	char		 filename[MIME_FILENAME_MAX + 1];	/* or "" */
	enum mime_cte	 cte;
	int		 qp, opaque;	/* quoted-printable; base64 or unknown */
	int		 sealed;	/* a Content-Type says signed/encrypted */
	int		 from_disposition;	/* filename came from it */
};

/* Content-Type and Content-Transfer-Encoding of the header h[0..n). */
void	mime_entity_read(const char *h, size_t n, struct mime_entity *);
/* Is the line at m[i..e) a delimiter of boundary bd? 2: the closing one. */
int	mime_delimiter(const char *m, size_t i, size_t e, const char *bd,
	    size_t bl);
/* The start of the line after the one at i, or e. */
size_t	mime_next_line(const char *m, size_t i, size_t e);

/* NULL if t[0..n) may be appended (printable ASCII, HT, LF), else why. */
const char *mime_text_check(const char *t, size_t n);
/* The points of the message m[0..len) whose header section is [0..hlen). */
void	mime_text_find(const char *m, size_t len, size_t hlen,
	    struct mime_text *);
/*
 * What to insert at p: text (plain parts) or html (HTML parts; NULL: the
 * text escaped), quoted-printable encoded if the part is, with the line
 * breaks that keep the part's end where it was. Appends to out.
 */
void	mime_text_render(const struct mime_point *p, const char *m, size_t len,
	    const char *text, const char *html, struct buf *out);

#endif
