/*
 * spam: the training command of bogofilter's word list (see spam.h). Each
 * message is one `bogofilter -n|-s|-N|-S [-d DIR]` child with the message
 * on its stdin: a FILE is opened before the child drops to the account,
 * so root may train from files the account cannot read. The word list's
 * folder is made for the account when root creates it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "spam.h"

#define SPAM_ACCOUNT	"indimail"	/* what indimaild drops to by default */
#define SPAM_PROGRAM	"bogofilter"
#define DIR_MODE	0750

struct train {
	const char	*flag;		/* -n -s -N -S */
	const char	*dir, *user;
	const struct passwd *pw;	/* NULL: run as we are */
};

static int
usage(void)
{
	fprintf(stderr, "usage: indimail spam train ham|spam [--undo] "
	    "[--dir DIR] [--user NAME] [FILE...] (< message)\n");
	return EX_USAGE;
}

/* The option flag: -n ham, -s spam; -N and -S take them back. */
static const char *
train_flag(const char *what, int undo)
{
	if (strcmp(what, "ham") == 0)
		return undo ? "-N" : "-n";
	if (strcmp(what, "spam") == 0)
		return undo ? "-S" : "-s";
	return NULL;
}

/* As root: the account, and the word list folder made for it. */
static int
as_account(struct train *t)
{
	if (geteuid() != 0)
		return 0;
	if ((t->pw = getpwnam(t->user)) == NULL) {
		fprintf(stderr, "indimail: no account '%s' (--user)\n", t->user);
		return EX_NOUSER;
	}
	if (t->dir && mkdir(t->dir, DIR_MODE) == 0 &&
	    chown(t->dir, t->pw->pw_uid, t->pw->pw_gid) < 0) {
		fprintf(stderr, "indimail: chown %s: %s\n", t->dir,
		    strerror(errno));
		return EX_CANTCREAT;
	}
	return 0;
}

/* In the child: stdin from fd, the account's ids, then bogofilter. */
static void
child(const struct train *t, int fd)
{
	const char *argv[] = { SPAM_PROGRAM, t->flag, t->dir ? "-d" : NULL,
	    t->dir, NULL };

	if (fd >= 0 && dup2(fd, STDIN_FILENO) < 0)
		_exit(EX_OSERR);
	if (t->pw && (setgroups(0, NULL) < 0 || setgid(t->pw->pw_gid) < 0 ||
	    setuid(t->pw->pw_uid) < 0)) {
		fprintf(stderr, "indimail: cannot become %s: %s\n", t->user,
		    strerror(errno));
		_exit(EX_OSERR);
	}
	execvp(SPAM_PROGRAM, (char *const *)argv);
	fprintf(stderr, "indimail: cannot run %s: %s\n", SPAM_PROGRAM,
	    strerror(errno));
	_exit(EX_UNAVAILABLE);
}

/* One message (fd, or stdin when -1) through bogofilter: 0 or a status. */
static int
train_one(const struct train *t, int fd, const char *name)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		fprintf(stderr, "indimail: fork: %s\n", strerror(errno));
		return EX_OSERR;
	}
	if (pid == 0)
		child(t, fd);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "indimail: bogofilter failed on %s\n", name);
		return EX_SOFTWARE;
	}
	return 0;
}

static int
train_files(const struct train *t, char **files, int n)
{
	int rc = 0;

	if (n == 0)
		return train_one(t, -1, "stdin");
	for (int i = 0; i < n && rc == 0; i++) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			fprintf(stderr, "indimail: %s: %s\n", files[i],
			    strerror(errno));
			return EX_NOINPUT;
		}
		rc = train_one(t, fd, files[i]);
		close(fd);
	}
	return rc;
}

int
spam_main(int argc, char **argv)
{
	struct train t = { .user = SPAM_ACCOUNT };
	int undo = 0, i, rc;

	if (argc < 3 || strcmp(argv[1], "train") != 0)
		return usage();
	for (i = 3; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--undo") == 0)
			undo = 1;
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			t.dir = argv[++i];
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			t.user = argv[++i];
		else
			return usage();
	}
	if ((t.flag = train_flag(argv[2], undo)) == NULL)
		return usage();
	if ((rc = as_account(&t)) != 0)
		return rc;
	return train_files(&t, argv + i, argc - i);
}
