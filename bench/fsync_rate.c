/*
 * fsync_rate: how many write+fdatasync cycles per second the file system
 * under DIR sustains (bench scenario 7: the durability ceiling).
 * usage: fsync_rate DIR [seconds]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	char path[4096], block[5120];
	double secs = argc > 2 ? atof(argv[2]) : 3, start;
	long n = 0;
	int fd;

	if (argc < 2) {
		fprintf(stderr, "usage: fsync_rate DIR [seconds]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/fsync_rate.%ld", argv[1], (long)getpid());
	memset(block, 'x', sizeof(block));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) {
		perror(path);
		return 1;
	}
	start = now();
	while (now() - start < secs) {
		if (pwrite(fd, block, sizeof(block), 0) < 0 || fdatasync(fd) < 0) {
			perror("fdatasync");
			return 1;
		}
		n++;
	}
	printf("%.0f\n", n / (now() - start));
	close(fd);
	unlink(path);
	return 0;
}
