/*
 * spam: `indimail spam train ham|spam [--undo] [--dir DIR] [--user NAME]
 * [FILE...]`: registers messages (the files, or stdin) in bogofilter's
 * word list (docs/policies/spam.md). Run as root, bogofilter runs as the
 * account (default indimail), so the word list stays the daemon's.
 */
#ifndef INDIMAIL_SPAM_H
#define INDIMAIL_SPAM_H

/* argv[0] is "spam". Returns the exit status (sysexits(3) values). */
int	spam_main(int argc, char **argv);

#endif
