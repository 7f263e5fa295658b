/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * buildinfo: what `indimaild -V` and `indimail -V` print: the version
 * (the VERSION file, -DINDIMAIL_VERSION), the compiler, the paths compiled
 * in (an installed build has the FHS ones, the tree's build its own), the
 * sanitizers and the versions of the libraries linked, as run (the shared
 * library's own answer where it has one, else its headers').
 */
#ifndef INDIMAIL_BUILDINFO_H
#define INDIMAIL_BUILDINFO_H

#include <stdio.h>

#ifndef INDIMAIL_VERSION
#define INDIMAIL_VERSION "0.13.0-dev"
#endif

/* The first line: "PROGRAM VERSION". */
void	buildinfo_print_version(FILE *f, const char *program);
/* Everything: the version line, then one "key: value" line each. */
void	buildinfo_print(FILE *f, const char *program);

#endif
