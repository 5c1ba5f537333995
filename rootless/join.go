package rootless

// The C half: it runs before the Go runtime, while the process has one
// thread, which setns(CLONE_NEWUSER) requires.

/*
#cgo CFLAGS: -Wall
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void cairn_join_fail(const char *pid, const char *what)
{
	fprintf(stderr, "cairn: join the user namespace of pause process %s: %s: %s\n", pid, what, strerror(errno));
	exit(125);
}

__attribute__((constructor)) static void cairn_rootless(void)
{
	if (getenv("_CAIRN_PAUSE") != NULL) {
		// The pause process: it holds the namespaces until it is killed.
		for (;;)
			pause();
	}
	const char *pid = getenv("_CAIRN_JOIN");
	if (pid == NULL || *pid == '\0')
		return;
	char path[64], cwd[PATH_MAX];
	// Joining a mount namespace moves the process to its root: the working
	// directory is taken back by name (the namespace mirrors the host's).
	if (getcwd(cwd, sizeof cwd) == NULL)
		cwd[0] = '\0';
	snprintf(path, sizeof path, "/proc/%s/ns/user", pid);
	int user = open(path, O_RDONLY | O_CLOEXEC);
	if (user < 0)
		cairn_join_fail(pid, "open its user namespace");
	snprintf(path, sizeof path, "/proc/%s/ns/mnt", pid);
	int mnt = open(path, O_RDONLY | O_CLOEXEC);
	if (mnt < 0)
		cairn_join_fail(pid, "open its mount namespace");
	if (setns(user, CLONE_NEWUSER) < 0)
		cairn_join_fail(pid, "setns user");
	if (setns(mnt, CLONE_NEWNS) < 0)
		cairn_join_fail(pid, "setns mnt");
	close(user);
	close(mnt);
	if (cwd[0] != '\0' && chdir(cwd) < 0)
		cairn_join_fail(pid, "chdir back to the working directory");
}
*/
import "C"
