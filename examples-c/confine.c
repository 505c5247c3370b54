/*
 * confine: what passt-standalone gives up once its instance is set up.
 *
 * Theory of operation
 * -------------------
 * By the time we get here, everything that needs a privilege or a file is
 * done: the instance exists (UNIX socket listening, or the guest's fd
 * adopted, or the tap opened inside the namespace and configured), the pid
 * file is written, the log file or syslog connection is open. What the
 * daemon does from then on is move bytes between fds it holds and
 * ordinary unprivileged sockets it opens. So it gives up the rest, in this
 * order (each step needs what the previous one leaves):
 *
 *  1. Bounding set cleared (PR_CAPBSET_DROP, every capability the kernel
 *     knows), while we still have CAP_SETPCAP: only when started as root or
 *     holding that capability; otherwise it is left as inherited, which is
 *     harmless once step 4 and the filter (no execve) are in place.
 *  2. Started as root: setgroups(0), setgid(), setuid() to --runas or
 *     "nobody", then checked: real, effective and saved ids all changed, no
 *     supplementary groups, and setuid(0) fails.
 *  3. Capabilities: ambient set cleared, then capset() with empty
 *     effective, permitted and inheritable sets; checked with capget().
 *  4. PR_SET_NO_NEW_PRIVS: nothing this process could still exec (it
 *     cannot, see 5) would gain privileges from set-id bits or file
 *     capabilities; also what lets an unprivileged process install 5.
 *  5. A seccomp BPF filter (hand-written, no libseccomp): the architecture
 *     is checked first (another ABI's numbers mean other calls, e.g. x32
 *     on x86_64), then an allow-list, some calls with their arguments
 *     checked. Anything else kills the whole process (SECCOMP_RET_KILL_PROCESS,
 *     as passt): a daemon that tries a call it never makes is compromised
 *     or broken, and a loud death (SIGSYS, visible in the exit status and
 *     the audit log) is better than an error path nobody tested. One
 *     exception: socket(AF_UNIX) fails with EACCES instead, because glibc's
 *     syslog() reconnects that way after the system logger restarts; the
 *     daemon must not die of that, it only loses syslog.
 *
 * The allow-list, and why each call is there, is in docs/security.md; keep
 * the two in step. Calls were found by reading the library's wrappers
 * (src/sys/) and this program, then checked with strace -f over the test
 * suite's daemon runs.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "confine.h"

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp filter: only x86_64 and aarch64 are supported (add the audit arch and check the list)"
#endif

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp filter: argument offsets assume little-endian"
#endif

/* x32 system calls carry this bit in their number on x86_64. */
#define X32_SYSCALL_BIT 0x40000000u

/* Room for the whole filter; emit() refuses to go past it. */
#define FILTER_MAX 256

struct filter {
	struct sock_filter insn[FILTER_MAX];
	size_t n;
	bool overflow;
};

/* Offsets into struct seccomp_data. Arguments are 64 bits; every argument
 * we check is an int or unsigned int in the kernel's prototype (socket's
 * domain, type and protocol; ioctl's and fcntl's cmd; tgkill's tgid), which
 * the kernel truncates to 32 bits, so the low half is the whole value. */
#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
#define OFF_ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))

#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_KILL SECCOMP_RET_KILL_PROCESS
#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

/* Allowed with any arguments; the reason for each is in docs/security.md. */
static const int plain_allowed[] = {
	/* guest frames, host sockets, log lines, the readiness pipe */
	__NR_read, __NR_write, __NR_readv, __NR_writev,
	__NR_recvfrom, __NR_recvmsg, __NR_recvmmsg,
	__NR_sendto, __NR_sendmsg, __NR_sendmmsg,
	/* flows: new sockets (socket() itself is checked below) */
	__NR_connect, __NR_bind, __NR_listen, __NR_accept4,
	__NR_getsockname, __NR_getpeername,
	__NR_setsockopt, __NR_getsockopt, __NR_shutdown, __NR_close,
	/* the loop */
#ifdef __NR_epoll_wait
	__NR_epoll_wait,
#endif
	__NR_epoll_pwait, __NR_epoll_ctl, __NR_ppoll, __NR_sched_yield,
	__NR_clock_gettime, __NR_gettimeofday, __NR_restart_syscall,
	/* memory */
	__NR_brk, __NR_mmap, __NR_munmap, __NR_mremap, __NR_madvise,
	/* locks, hash seeds, logging, signals, exit */
	__NR_futex, __NR_getrandom, __NR_getpid, __NR_gettid,
	__NR_rt_sigreturn, __NR_rt_sigprocmask,
	__NR_exit, __NR_exit_group,
	/* removing the socket and pid files at exit */
#ifdef __NR_unlink
	__NR_unlink,
#endif
	__NR_unlinkat,
};

static void emit(struct filter *f, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (f->n >= FILTER_MAX) {
		f->overflow = true;
		return;
	}
	f->insn[f->n++] = (struct sock_filter){ .code = code, .jt = jt, .jf = jf, .k = k };
}

static void load(struct filter *f, uint32_t offset)
{
	emit(f, BPF_LD | BPF_W | BPF_ABS, offset, 0, 0);
}

static void ret(struct filter *f, uint32_t action)
{
	emit(f, BPF_RET | BPF_K, action, 0, 0);
}

/* Goes on when argument `arg` (low 32 bits, ANDed with `mask`) is one of
 * `values`; otherwise the call gets `fail`. */
static void require_arg_in(struct filter *f, int arg, uint32_t mask,
			   const uint32_t *values, size_t n, uint32_t fail)
{
	size_t i;

	load(f, OFF_ARG_LO(arg));
	if (mask != UINT32_MAX)
		emit(f, BPF_ALU | BPF_AND | BPF_K, mask, 0, 0);
	/* A match jumps over the remaining comparisons and the RET. */
	for (i = 0; i < n; i++)
		emit(f, BPF_JMP | BPF_JEQ | BPF_K, values[i], (uint8_t)(n - i), 0);
	ret(f, fail);
}

/* A block for one system call whose arguments are checked: starts with
 * "not this call? jump past the block" (patched by block_end), which leaves
 * the accumulator holding the call number for what follows; every path
 * inside ends in a RET. */
static size_t block_begin(struct filter *f, uint32_t nr)
{
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 0);
	return f->n - 1;
}

static void block_end(struct filter *f, size_t start)
{
	size_t skip;

	ret(f, RET_ALLOW);
	skip = f->n - start - 1;
	if (skip > UINT8_MAX)
		f->overflow = true;
	else if (!f->overflow)
		f->insn[start].jf = (uint8_t)skip;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void build_filter(struct filter *f)
{
	static const uint32_t families[] = { AF_INET, AF_INET6 };
	static const uint32_t types[] = { SOCK_STREAM, SOCK_DGRAM };
	static const uint32_t protocols[] = { 0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6 };
	/* SIOCINQ and SIOCOUTQ (TCP queue sizes), under their other names. */
	static const uint32_t ioctls[] = { FIONREAD, TIOCOUTQ };
	static const uint32_t fcntls[] = { F_GETFD, F_SETFD, F_GETFL, F_SETFL };
	uint32_t self[1] = { (uint32_t)getpid() };
	size_t i, b;

	f->n = 0;
	f->overflow = false;

	load(f, OFF_ARCH);
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0);
	ret(f, RET_KILL);
	load(f, OFF_NR);
#if defined(__x86_64__)
	emit(f, BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
	ret(f, RET_KILL);
#endif

	for (i = 0; i < ARRAY_LEN(plain_allowed); i++) {
		emit(f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)plain_allowed[i], 0, 1);
		ret(f, RET_ALLOW);
	}

	/* socket(): IPv4/IPv6 stream or datagram sockets for TCP, UDP and
	 * ICMP echo ("ping") sockets only: no raw, packet or netlink sockets.
	 * AF_UNIX: EACCES, not death (see the top comment). */
	b = block_begin(f, __NR_socket);
	load(f, OFF_ARG_LO(0));
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1);
	ret(f, RET_ERRNO(EACCES));
	require_arg_in(f, 0, UINT32_MAX, families, ARRAY_LEN(families), RET_KILL);
	/* The type carries SOCK_NONBLOCK/SOCK_CLOEXEC above its low 4 bits. */
	require_arg_in(f, 1, 0xf, types, ARRAY_LEN(types), RET_KILL);
	require_arg_in(f, 2, UINT32_MAX, protocols, ARRAY_LEN(protocols), RET_KILL);
	block_end(f, b);

	b = block_begin(f, __NR_ioctl);
	require_arg_in(f, 1, UINT32_MAX, ioctls, ARRAY_LEN(ioctls), RET_KILL);
	block_end(f, b);

	b = block_begin(f, __NR_fcntl);
	require_arg_in(f, 1, UINT32_MAX, fcntls, ARRAY_LEN(fcntls), RET_KILL);
	block_end(f, b);

	/* abort() signals itself with tgkill(getpid(), gettid(), SIGABRT):
	 * allowed towards this process only. */
	b = block_begin(f, __NR_tgkill);
	require_arg_in(f, 0, UINT32_MAX, self, 1, RET_KILL);
	block_end(f, b);

	ret(f, RET_KILL);
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

/* Every capability the kernel knows, out of the bounding set. EPERM (no
 * CAP_SETPCAP) is returned to the caller, which may tolerate it. */
static int drop_bounding_set(void)
{
	int cap;

	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return -1;
	return 0;
}

static int change_ids(const struct confinement *c, char *err, size_t errlen)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (setgroups(0, NULL) < 0)
		FAIL("setgroups: %s", strerror(errno));
	if (setgid(c->gid) < 0)
		FAIL("setgid(%u): %s", (unsigned)c->gid, strerror(errno));
	if (setuid(c->uid) < 0)
		FAIL("setuid(%u): %s", (unsigned)c->uid, strerror(errno));

	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
		FAIL("getresuid/getresgid: %s", strerror(errno));
	if (ruid != c->uid || euid != c->uid || suid != c->uid)
		FAIL("uids are %u/%u/%u after setuid(%u)", (unsigned)ruid, (unsigned)euid,
		     (unsigned)suid, (unsigned)c->uid);
	if (rgid != c->gid || egid != c->gid || sgid != c->gid)
		FAIL("gids are %u/%u/%u after setgid(%u)", (unsigned)rgid, (unsigned)egid,
		     (unsigned)sgid, (unsigned)c->gid);
	if (getgroups(0, NULL) != 0)
		FAIL("supplementary groups left after setgroups(0)");
	if (c->uid != 0 && setuid(0) == 0)
		FAIL("could become root again after setuid(%u)", (unsigned)c->uid);
	return 0;
}

static int drop_capabilities(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	size_t i;

	/* EINVAL: a kernel without ambient capabilities (before 4.3). */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		FAIL("clearing ambient capabilities: %s", strerror(errno));

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		FAIL("capset: %s", strerror(errno));

	hdr = (struct __user_cap_header_struct){ .version = _LINUX_CAPABILITY_VERSION_3 };
	if (syscall(SYS_capget, &hdr, data) < 0)
		FAIL("capget: %s", strerror(errno));
	for (i = 0; i < ARRAY_LEN(data); i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			FAIL("capabilities left after capset()");
	return 0;
}

int confine_privileges(const struct confinement *c, char *err, size_t errlen)
{
	/* Before setuid(), which takes CAP_SETPCAP away. Without it (not
	 * root, or a root without it), the bounding set stays: see the top
	 * comment. */
	if (drop_bounding_set() < 0 && errno != EPERM)
		FAIL("clearing the capability bounding set: %s", strerror(errno));
	if (c->change_ids && change_ids(c, err, errlen) < 0)
		return -1;
	if (drop_capabilities(err, errlen) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		FAIL("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		FAIL("no_new_privs not set");
	return 0;
}

int confine_syscalls(const struct confinement *c, char *err, size_t errlen)
{
	static struct filter f;
	struct sock_fprog prog;

	if (!c->seccomp)
		return 0;
	build_filter(&f);
	if (f.overflow)
		FAIL("seccomp filter too long (raise FILTER_MAX)");
	prog = (struct sock_fprog){ .len = (unsigned short)f.n, .filter = f.insn };
	/* TSYNC: every thread, should the library ever have one by now. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
		FAIL("installing the seccomp filter: %s", strerror(errno));
	return (int)f.n;
}

static const char *const selftests[] = {
	"execve", "ptrace", "packet-socket", "raw-socket", "open", "unix-socket",
#if defined(__x86_64__)
	"i386-getpid", "x32-getpid",
#endif
};

#if defined(__x86_64__)
/* getpid() through the 32-bit ABI (int 0x80, i386 number 20): the filter
 * sees AUDIT_ARCH_I386. */
static long i386_getpid(void)
{
	long r = 20;

	__asm__ volatile("int $0x80" : "+a"(r) : : "memory");
	return r;
}
#endif

bool confine_selftest_known(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(selftests); i++)
		if (!strcmp(name, selftests[i]))
			return true;
	return false;
}

void confine_selftest(const char *name, char *result, size_t resultlen)
{
	long r = -1;

	errno = 0;
	if (!strcmp(name, "execve")) {
		char *const argv[] = { (char *)"true", NULL };
		char *const envp[] = { NULL };

		r = execve("/bin/true", argv, envp);
	} else if (!strcmp(name, "ptrace")) {
		r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	} else if (!strcmp(name, "packet-socket")) {
		r = socket(AF_PACKET, SOCK_RAW, htons(0x0003 /* ETH_P_ALL */));
	} else if (!strcmp(name, "raw-socket")) {
		r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	} else if (!strcmp(name, "open")) {
		r = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	} else if (!strcmp(name, "unix-socket")) {
		r = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
#if defined(__x86_64__)
	} else if (!strcmp(name, "i386-getpid")) {
		r = i386_getpid();
		if (r < 0) {
			errno = (int)-r;
			r = -1;
		}
	} else if (!strcmp(name, "x32-getpid")) {
		/* getpid's number with the x32 bit (ENOSYS where x32 is off). */
		r = syscall(X32_SYSCALL_BIT | __NR_getpid);
#endif
	}
	snprintf(result, resultlen, "%s returned %ld (%s)", name, r,
		 r < 0 ? strerror(errno) : "success");
	if (r >= 0 && (strstr(name, "socket") || !strcmp(name, "open")))
		close((int)r);
}
