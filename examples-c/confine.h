/*
 * confine: what passt-standalone gives up once its instance is set up.
 * See confine.c for the steps and their order, docs/security.md for why.
 */

#ifndef PASST_STANDALONE_CONFINE_H
#define PASST_STANDALONE_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct confinement {
	bool change_ids; /* started as root: become uid/gid below */
	uid_t uid;
	gid_t gid;
	bool seccomp;    /* install the system call filter (off: --no-seccomp) */
};

/*
 * Step 1, while stderr still reaches the caller: user and group (when
 * `change_ids`), supplementary groups, capabilities (effective, permitted,
 * inheritable, ambient, and the bounding set where we may), no new
 * privileges. Each result is checked. Returns 0, or -1 with a message in
 * `err`.
 */
int confine_privileges(const struct confinement *c, char *err, size_t errlen);

/*
 * Step 2, the very last thing before the loop: the seccomp filter
 * (a no-op when !c->seccomp). Needs confine_privileges() first (no new
 * privileges). Returns the number of BPF instructions installed (0 if
 * none), or -1 with a message in `err`.
 */
int confine_syscalls(const struct confinement *c, char *err, size_t errlen);

/*
 * --seccomp-selftest NAME: makes one system call that the filter refuses
 * and reports what happened, for tests and for users who want to see the
 * filter work. Names: "execve", "ptrace", "packet-socket", "raw-socket",
 * "open", "unix-socket" (refused with EACCES rather than killed: see
 * confine.c); on x86_64 also "i386-getpid" and "x32-getpid" (an allowed
 * call through another ABI: the architecture check). Returns false for an
 * unknown NAME. If the call returns
 * (filter off, or "unix-socket"), `result` gets a one-line description.
 */
bool confine_selftest_known(const char *name);
void confine_selftest(const char *name, char *result, size_t resultlen);

#endif
