/*
 * passt-standalone: a passt-compatible daemon on top of libpasst.
 *
 * Theory of operation
 * -------------------
 * The library does the networking; this program is what makes it a daemon
 * that the tools which start passt today (libvirt, QEMU's -netdev passt,
 * people typing "passt") can start unchanged:
 *
 *  1. passt's command line is parsed by the library itself
 *     (passt_config_parse_args), so options and their error messages are the
 *     library's; process-level options (-f, -d, -q, -l, -P, --runas, -h,
 *     --version) are read back with passt_config_get().
 *  2. Inherited fds above stderr are closed, but the one given with -F (a
 *     caller's pipe held open by the daemon would block the caller).
 *     Without -s/-F/--netns, the first free /tmp/passt_N.socket (N = 1..100)
 *     is chosen: free means absent, or a stale socket file nobody listens on
 *     (removed).
 *  3. Without -f we detach *before* creating the instance: fork, setsid,
 *     fork again. The grandchild creates the instance (so the socket is bound
 *     and listening), writes the pid file, drops privileges, points stdio at
 *     /dev/null and only then writes one byte into a pipe; the original
 *     process waits for that byte and exits 0, or 1 if the pipe closes
 *     without it. Callers may therefore connect as soon as we exit 0, and no
 *     library state (epoll set, sockets) is ever duplicated by fork().
 *  4. Once the instance exists we confine ourselves (confine.c,
 *     docs/security.md): started as root, we become --runas USER[:GROUP],
 *     or "nobody" (the socket file and the pid file are handed to that user
 *     first so that it can still remove them at exit); every capability is
 *     dropped and no new privileges can be gained; then, the very last
 *     thing before the loop, a seccomp filter allows only the system calls
 *     the loop makes (--no-seccomp leaves it out, for debugging).
 *  5. The loop: passt_process(now) returns the time to the next deadline;
 *     ppoll() waits on passt_fd() for that long, with SIGTERM/SIGINT blocked
 *     everywhere except inside ppoll() (so a signal can never be missed
 *     between the check of the flag and the wait); in a flood of small
 *     datagrams to the guest a short nap comes first (COALESCE_NAP_NS),
 *     and -d logs at exit how many waits and naps there were. The clock
 *     is read twice per wake-up: on waking (the `now` of the call) and
 *     after the call (how long it worked, and when the wait starts).
 *  6. SIGTERM/SIGINT: passt_free() (which removes the socket file), pid file
 *     removed, exit 0. With --one-off, the guest going away ends us with
 *     status 0 as well; any other fatal error with status 1.
 *
 * Three options are ours, not passt's, and taken out of the command line
 * before the library parses it (anywhere before a "--"): --no-seccomp,
 * --seccomp-selftest NAME (makes one refused call once confined; see
 * confine.h) and --busy-poll USEC (see struct busy_poll).
 *
 * Logging: -l FILE appends timestamped lines; otherwise stderr while in the
 * foreground, syslog once detached. -d raises the level to debug, -q lowers
 * it to warnings. Library messages arrive through passt_config_set_log().
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "passt.h"
#include "confine.h"

#define PROG "passt-standalone"

/* Default socket paths, as passt: /tmp/passt_1.socket ... _100. */
#define SOCKET_PATH_FMT "/tmp/passt_%d.socket"
#define SOCKET_PATH_MAX_INDEX 100

/* syslog levels as used by the library's log callback. */
#define LEVEL_ERR 3
#define LEVEL_WARNING 4
#define LEVEL_INFO 6
#define LEVEL_DEBUG 7

/* Where log lines go. One per process: this program runs one instance. */
struct logger {
	int max_level;
	int file_fd;  /* -l FILE, or -1 */
	bool syslog;  /* detached without -l */
};

static struct logger logger = { .max_level = LEVEL_INFO, .file_fd = -1, .syslog = false };

/* What must be undone when we exit, normally or not. */
static struct {
	struct passt *instance;
	const char *pid_path;
	bool pid_created; /* we created the pid file: ours to remove */
	int ready_fd;     /* write end of the readiness pipe while detaching */
} state = { .ready_fd = -1 };

/* Set by the SIGTERM/SIGINT handler: the signal number. */
static volatile sig_atomic_t stop_signal;

static const char *level_name(int level)
{
	switch (level) {
	case 0: case 1: case 2: case LEVEL_ERR: return "error";
	case LEVEL_WARNING: return "warning";
	case 5: return "notice";
	case LEVEL_INFO: return "info";
	case LEVEL_DEBUG: return "debug";
	default: return "trace";
	}
}

/* Appends one timestamped line with a single write(), so that lines from
 * several processes sharing the file (O_APPEND) do not interleave. */
static void log_to_file(int fd, int level, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32] = "";
	char line[4096];
	int len;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (localtime_r(&ts.tv_sec, &tm))
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	len = snprintf(line, sizeof(line), "%s.%06ld %s: %s\n", stamp,
		       ts.tv_nsec / 1000, level_name(level), msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line)) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}
	if (write(fd, line, (size_t)len) < 0) {
		/* Nowhere left to report it. */
	}
}

static void log_line(struct logger *lg, int level, const char *msg)
{
	if (level > lg->max_level)
		return;
	if (lg->file_fd >= 0)
		log_to_file(lg->file_fd, level, msg);
	else if (lg->syslog)
		syslog(level > LEVEL_DEBUG ? LOG_DEBUG : (level < 0 ? LOG_ERR : level), "%s", msg);
	else
		fprintf(stderr, "%s\n", msg);
}

/* The library's log callback: userdata is our logger. */
static void library_log(void *userdata, int level, const char *msg)
{
	log_line(userdata, level, msg);
}

static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line(&logger, level, msg);
}

/* Undoes what we set up; safe to call more than once. */
static void cleanup(void)
{
	if (state.instance) {
		passt_free(state.instance); /* removes the socket file */
		state.instance = NULL;
	}
	if (state.pid_path && state.pid_created && unlink(state.pid_path) < 0 && errno != ENOENT)
		say(LEVEL_WARNING, "cannot remove pid file %s: %s", state.pid_path, strerror(errno));
	state.pid_path = NULL;
}

/* Reports a fatal error on stderr (the caller of a starting daemon reads
 * it there) and in the log, cleans up and exits 1. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (logger.file_fd >= 0 || logger.syslog)
		log_line(&logger, LEVEL_ERR, msg);
	fprintf(stderr, PROG ": %s\n", msg);
	cleanup();
	exit(1);
}

static void usage(FILE *out)
{
	fprintf(out,
"Usage: " PROG " [OPTION]...\n"
"User-mode networking for a QEMU guest, passt-compatible, on libpasst.\n"
"\n"
"Process:\n"
"  -f, --foreground          stay in the foreground, log to stderr\n"
"  -d, --debug               log debug messages too\n"
"  -q, --quiet               log warnings and errors only\n"
"  -l, --log-file FILE       append log lines to FILE (default: stderr in\n"
"                            the foreground, syslog once detached)\n"
"  -P, --pid FILE            write the daemon's pid to FILE (removed at exit)\n"
"      --runas UID[:GID]     user (and group) to run as, names or numbers,\n"
"                            when started as root (default: nobody)\n"
"      --no-seccomp          no system call filter (debugging only; see\n"
"                            docs/security.md)\n"
"      --busy-poll USEC      after traffic, poll for up to USEC microseconds\n"
"                            before sleeping (adaptive; default 200, 0: off):\n"
"                            lower latency for some CPU\n"
"      --seccomp-selftest NAME  once confined, make the refused call NAME\n"
"                            (execve, ptrace, packet-socket, raw-socket,\n"
"                            open, unix-socket; x86_64: i386-getpid,\n"
"                            x32-getpid) and report what happened\n"
"  -1, --one-off             exit when the guest disconnects\n"
"  -h, --help                show this text and exit\n"
"      --version             show the version and exit\n"
"\n"
"Guest attachment (one of):\n"
"  -s, --socket PATH         listen on the UNIX domain socket PATH (default:\n"
"                            the first free /tmp/passt_N.socket, N = 1..100)\n"
"      --socket-mode MODE    permissions of the socket file (octal, 0600)\n"
"  -F, --fd N                use the already connected socket on fd N\n"
"      --netns PATH          tap device in the network namespace at PATH\n"
"      --ns-ifname NAME      its name (default: tap0)\n"
"      --config-net          configure its address, routes and MTU\n"
"  -p, --pcap FILE           capture every frame, both ways, to FILE (pcap)\n"
"\n"
"Addresses given to the guest (default: the host's):\n"
"  -m, --mtu MTU             MTU (68..65520, default 65520)\n"
"  -a, --address ADDR        IPv4 or IPv6 address\n"
"  -n, --netmask MASK        IPv4 prefix length or netmask\n"
"  -M, --mac-addr MAC        our MAC address, towards the guest\n"
"  -g, --gateway ADDR        IPv4 or IPv6 default gateway\n"
"  -i, --interface NAME      host interface for addresses and routes\n"
"  -o, --outbound ADDR       source address of outbound connections\n"
"  -D, --dns ADDR            DNS server for the guest (repeatable; none)\n"
"      --dns-forward ADDR    guest-visible address forwarded to host DNS\n"
"  -S, --search LIST         DNS search domains (repeatable; none)\n"
"      --map-host-loopback ADDR  guest address mapped to host loopback\n"
"      --map-guest-addr ADDR guest-visible address mapped to the host's\n"
"      --no-map-gw           do not map the gateway to host loopback\n"
"  -4, --ipv4-only           IPv4 only\n"
"  -6, --ipv6-only           IPv6 only\n"
"\n"
"Protocols and services:\n"
"  -t, --tcp-ports SPEC      forward TCP ports from the host to the guest:\n"
"                            none, all, or [ADDR/]PORT[-LAST][:GUEST],...\n"
"                            with ~PORT exclusions (repeatable)\n"
"  -u, --udp-ports SPEC      the same for UDP\n"
"      --no-tcp, --no-udp, --no-icmp   disable that protocol\n"
"      --no-dhcp, --no-ndp, --no-dhcpv6, --no-ra   disable that service\n"
"      --no-dhcp-dns         do not send DNS servers by DHCP/DHCPv6/RA\n"
"      --no-dhcp-search      do not send search domains by DHCP/DHCPv6/RA\n"
"      --freebind            bind forwarded ports to non-local addresses\n"
"      --max-flows N         limit on concurrent flows (default 8192)\n"
"\n"
"Then start QEMU with:\n"
"  -netdev stream,id=s,server=off,addr.type=unix,addr.path=PATH\n"
"  -device virtio-net-pci,netdev=s\n"
"or through qrap: qrap 5 qemu-system-x86_64 ...\n");
}

/* Whether flag `key` is set ("" or a true word; see passt_config_set). */
static bool opt_flag(struct passt_config *c, const char *key)
{
	const char *v = passt_config_get(c, key);

	return v && strcmp(v, "no") && strcmp(v, "0") && strcmp(v, "false") && strcmp(v, "off");
}

/* A copy of option `key`'s value, or NULL: passt_config_get's result only
 * lives until the next call on the configuration. */
static char *opt_string(struct passt_config *c, const char *key)
{
	const char *v = passt_config_get(c, key);
	char *copy;

	if (!v)
		return NULL;
	copy = strdup(v);
	if (!copy)
		die("out of memory");
	return copy;
}

/* Parses a decimal id; false unless the whole string is one. */
static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !errno && !*end && *out < (unsigned long)UINT32_MAX;
}

/* Resolves --runas USER[:GROUP] (names or numbers). Without a group: the
 * user's primary group, or the number itself for unknown numeric users. */
static void resolve_runas(const char *spec, uid_t *uid, gid_t *gid)
{
	char *user = strdup(spec), *group;
	unsigned long id;
	struct passwd *pw;

	if (!user)
		die("out of memory");
	group = strchr(user, ':');
	if (group)
		*group++ = '\0';

	if (parse_id(user, &id)) {
		*uid = (uid_t)id;
		pw = getpwuid(*uid);
		*gid = pw ? pw->pw_gid : (gid_t)id;
	} else {
		pw = getpwnam(user);
		if (!pw)
			die("invalid value '%s' for 'runas': no user '%s'", spec, user);
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}

	if (group) {
		if (parse_id(group, &id)) {
			*gid = (gid_t)id;
		} else {
			struct group *gr = getgrnam(group);

			if (!gr)
				die("invalid value '%s' for 'runas': no group '%s'", spec, group);
			*gid = gr->gr_gid;
		}
	}
	free(user);
}

/* passt's default when started as root without --runas. */
static void resolve_nobody(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam("nobody");

	*uid = pw ? pw->pw_uid : 65534;
	*gid = pw ? pw->pw_gid : 65534;
}

/* Our own options (see the top comment), taken out of argv in place;
 * returns the new argc. */
/* Whether argv[*i] is option --NAME with a value, as "--NAME=VALUE" or
 * "--NAME VALUE" (then *i moves past the value); stores the value. */
static bool take_value(const char *name, int argc, char **argv, int *i, const char **value)
{
	const char *a = argv[*i];
	size_t len = strlen(name);

	if (strncmp(a, "--", 2) || strncmp(a + 2, name, len))
		return false;
	if (a[2 + len] == '=') {
		*value = a + 3 + len;
		return true;
	}
	if (a[2 + len])
		return false;
	if (*i + 1 >= argc)
		die("option '--%s' needs a value", name);
	*value = argv[++*i];
	return true;
}

static int take_own_options(int argc, char **argv, bool *no_seccomp, const char **selftest,
			    const char **busy_poll)
{
	int i, out = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(a, "--no-seccomp")) {
			*no_seccomp = true;
		} else if (take_value("seccomp-selftest", argc, argv, &i, selftest) ||
			   take_value("busy-poll", argc, argv, &i, busy_poll)) {
			continue;
		} else {
			argv[out++] = argv[i];
		}
	}
	argv[out] = NULL;
	if (*selftest && !confine_selftest_known(*selftest))
		die("invalid value '%s' for 'seccomp-selftest'", *selftest);
	return out;
}

enum socket_probe {
	PROBE_ABSENT,  /* no such file: free */
	PROBE_STALE,   /* a socket file nobody listens on: free once removed */
	PROBE_LIVE,    /* someone accepts connections there */
	PROBE_OTHER,   /* not a socket, or we cannot tell: leave it alone */
};

static enum socket_probe probe_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	enum socket_probe result;
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return PROBE_OTHER;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? PROBE_ABSENT : PROBE_OTHER;
	/* connect() to a regular file also fails with ECONNREFUSED: only a
	 * socket file may be called stale and removed. */
	if (!S_ISSOCK(st.st_mode))
		return PROBE_OTHER;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return PROBE_OTHER;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		result = PROBE_LIVE;
	else
		result = errno == ECONNREFUSED ? PROBE_STALE : PROBE_OTHER;
	close(fd);
	return result;
}

/* Removes a stale socket file at `path`, so that binding there works. */
static void remove_if_stale(const char *path)
{
	if (probe_socket(path) != PROBE_STALE)
		return;
	if (unlink(path) == 0)
		say(LEVEL_DEBUG, "removed stale socket file %s", path);
}

/* The first free default socket path (see the top comment), or dies. */
static char *choose_socket_path(void)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int i;

	for (i = 1; i <= SOCKET_PATH_MAX_INDEX; i++) {
		snprintf(path, sizeof(path), SOCKET_PATH_FMT, i);
		switch (probe_socket(path)) {
		case PROBE_ABSENT:
			break;
		case PROBE_STALE:
			if (unlink(path) < 0)
				continue;
			say(LEVEL_DEBUG, "removed stale socket file %s", path);
			break;
		case PROBE_LIVE:
		case PROBE_OTHER:
			continue;
		}
		say(LEVEL_DEBUG, "socket path: %s", path);
		return strdup(path);
	}
	die("no free socket path (tried " SOCKET_PATH_FMT " .. " SOCKET_PATH_FMT ")",
	    1, SOCKET_PATH_MAX_INDEX);
}

/* Opens the pid file early, as the user we start as, so that a bad path is
 * reported before anything else happens; it is written once we know the
 * daemon's pid. An existing file is reused but, not being ours, never
 * removed on failure. */
static int open_pid_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd >= 0)
		state.pid_created = true;
	else if (errno == EEXIST)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("cannot open pid file '%s': %s", path, strerror(errno));
	state.pid_path = path;
	return fd;
}

static void write_pid_file(int fd)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)len) != len)
		die("cannot write pid file '%s': %s", state.pid_path, strerror(errno));
	close(fd);
	state.pid_created = true; /* it holds our pid now: ours to remove */
}

static void print_socket_hint(const char *path)
{
	fprintf(stderr,
		PROG ": listening on UNIX domain socket %s\n"
		"\n"
		"Start QEMU (7.2 or later) with:\n"
		"    qemu-system-x86_64 ... -netdev stream,id=s,server=off,addr.type=unix,addr.path=%s"
		" -device virtio-net-pci,netdev=s\n"
		"or, with any QEMU, through qrap (PASST_SOCKET=%s if not the first socket):\n"
		"    qrap 5 qemu-system-x86_64 ...\n"
		"\n",
		path, path, path);
}

/* Detaches from the terminal and the caller (see the top comment, step 3).
 * Returns in the grandchild only, which must call signal_ready() once the
 * daemon is in place. */
static void detach(void)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0) {
		/* The caller's process: exit 0 once the daemon says it is ready.
		 * Signals were blocked for the daemon's sake: not ours. */
		sigset_t all;
		ssize_t n;
		char byte;

		sigfillset(&all);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		close(pipefd[1]);
		do
			n = read(pipefd[0], &byte, 1);
		while (n < 0 && errno == EINTR);
		waitpid(pid, NULL, 0);
		_exit(n == 1 ? 0 : 1);
	}

	close(pipefd[0]);
	if (setsid() < 0) {
		fprintf(stderr, PROG ": setsid: %s\n", strerror(errno));
		_exit(1);
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
		_exit(1);
	}
	if (pid > 0)
		_exit(0); /* the grandchild can never regain a terminal */
	state.ready_fd = pipefd[1];
}

/* Points stdin, stdout and stderr at /dev/null, except `keep_fd` (an
 * attached guest socket given as one of them: --fd 0). */
static void redirect_stdio(int keep_fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int fd;

	if (null < 0)
		die("cannot open /dev/null: %s", strerror(errno));
	for (fd = 0; fd <= 2; fd++)
		if (fd != keep_fd && dup2(null, fd) < 0)
			die("dup2: %s", strerror(errno));
	close(null);
}

static void signal_ready(void)
{
	if (write(state.ready_fd, "1", 1) != 1) {
		/* The caller is gone: nobody left to tell. */
	}
	close(state.ready_fd);
	state.ready_fd = -1;
}

/* Closes every inherited fd above stderr but the guest's (--fd): a caller's
 * pipe kept open by the daemon would make the caller wait forever. */
static void close_inherited_fds(int keep_fd)
{
	if (keep_fd > 3)
		close_range(3, (unsigned)keep_fd - 1, 0);
	close_range(keep_fd >= 3 ? (unsigned)keep_fd + 1 : 3, ~0U, 0);
}

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

/* Installs the handlers and blocks SIGTERM/SIGINT; `waitmask` receives the
 * mask to use inside ppoll(), where they are unblocked. */
static void setup_signals(sigset_t *waitmask)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigset_t stop;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stop, waitmask) < 0)
		die("sigprocmask: %s", strerror(errno));
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
}

static uint64_t timespec_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return timespec_ns(&ts);
}

/* Busy polling. Waking a sleeping process costs tens of microseconds (an
 * idle CPU to wake, in a virtual machine an exit to the hypervisor), and a
 * request/response round trip through us wakes us twice: most of its time.
 * So after handling events we poll, without sleeping, for a while before
 * we block. The window adapts as KVM's halt polling does, by how long each
 * wait lasted in all: longer than the maximum, the window halves (down to
 * nothing); longer than the window but within the maximum, it doubles
 * (from BUSY_POLL_MIN_NS): polling that long would have caught the event.
 * Idle or sparse traffic thus ends up with no polling; a chatty peer gets
 * it. Nor do we poll in a bulk transfer: not after a long call (half the
 * maximum or more), nor once BUSY_POLL_BULK_BYTES of frames went through
 * since we last slept, nor while frames went through at
 * BUSY_POLL_BULK_BYTES per BUSY_POLL_RATE_NS or more over the last such
 * period: a transfer's wake-ups alternate between batches and lone ACKs
 * (a window that opened too little to send), and polling after each lone
 * ACK took a whole CPU in the gaps of a paced transfer, a fifth more CPU
 * per byte in a window-limited one. There the queues absorb the wake-up,
 * and the CPU is better left to the guest and the peers (polling between
 * the batches of a transfer cost up to a quarter more CPU per byte, for
 * no more throughput). A chatty peer still gets polling between its
 * sleeps: one sleep per hundred 1-byte round trips or so costs it
 * nothing. */
#define BUSY_POLL_DEFAULT_US 200
#define BUSY_POLL_MAX_US 10000
#define BUSY_POLL_MIN_NS 10000u
/* Far above a round trip's frames (1-byte request/response: ~70 bytes a
 * frame, a connection setup and teardown: under 1 KiB) and below one
 * batch of a bulk transfer (tens of full-sized frames). */
#define BUSY_POLL_BULK_BYTES 16384u
/* The period over which the rate of frames is measured: well above the gap
 * between a transfer's batches (tens to hundreds of microseconds), short
 * enough that round trips right after a transfer are polled for again.
 * The rate it sets, 16 MB/s, is four times what 20,000 1-byte round trips
 * a second move (about 200 bytes of frames each) and an eighth of a
 * 1 Gbit/s transfer. */
#define BUSY_POLL_RATE_NS 1000000u

/* Coalescing. In a flood of small datagrams to the guest, each wake-up
 * finds a few of them, and delivering them at once keeps the guest's
 * reader behind: on a machine with fewer CPUs than busy tasks (sender,
 * us, the guest's side, its reader) most were dropped at the reader's
 * full socket after costing us, the guest side and its kernel a copy
 * each. So in a bulk transfer, after a wake-up that moved a batch of
 * small frames mostly to the guest (COALESCE_MIN_BYTES to
 * COALESCE_MAX_BYTES, more out than in), we nap for COALESCE_NAP_NS
 * before waiting: the datagrams pile up in our host sockets, the next
 * wake-up takes a larger batch, and a flood's excess is dropped there,
 * in the sender's context, before anyone copied it. Not after lone ACKs
 * or window updates (under COALESCE_MIN_BYTES), nor full-sized TCP
 * frames (a batch of them is over COALESCE_MAX_BYTES), nor frames mostly
 * from the guest: a TCP transfer is clocked by those, and napping there
 * cost throughput. Measured in socket mode, 1400-byte UDP datagrams host
 * to guest: 0.8 -> 1.2 Gbit/s received, a fifth rather than a third of
 * them dropped at the guest's socket, half the CPU per byte; in tap mode
 * an eighth of the waits; TCP and round trips unchanged. --busy-poll 0,
 * which leaves out the measurements this needs, leaves it out too. */
#define COALESCE_NAP_NS 100000
#define COALESCE_MIN_BYTES 8192u
#define COALESCE_MAX_BYTES 65536u

struct busy_poll {
	uint64_t max_ns;          /* 0: off */
	uint64_t window_ns;       /* the current window, up to max_ns */
	uint64_t last_work_ns;    /* how long the last passt_process() took */
	uint64_t last_in;         /* frame bytes it took from the guest */
	uint64_t last_out;        /* and handed to the guest */
	uint64_t bytes_in;        /* frame bytes moved so far, from the guest */
	uint64_t bytes_out;       /* and to the guest */
	uint64_t bytes_at_sleep;  /* busy_poll_bytes() when we last slept */
	uint64_t rate_at_ns;      /* start of the current rate period */
	uint64_t bytes_at_rate;   /* busy_poll_bytes() at that start */
	bool bulk_rate;           /* the last full period was at a bulk rate */
	uint64_t waits;           /* ppoll() waits for events (for the exit log) */
	uint64_t naps;            /* coalescing naps (for the exit log) */
};

/* Notes what the passt_process() call from `start` to `end` did. */
static void busy_poll_note_work(struct busy_poll *b, const struct passt *p, uint64_t start, uint64_t end)
{
	struct passt_stats st = { 0 };

	b->last_work_ns = end - start;
	if (b->max_ns && passt_stats(p, &st, sizeof(st)) >= 0) {
		b->last_in = st.bytes_in - b->bytes_in;
		b->last_out = st.bytes_out - b->bytes_out;
		b->bytes_in = st.bytes_in;
		b->bytes_out = st.bytes_out;
	}
}

/* Frame bytes moved so far, both ways. */
static uint64_t busy_poll_bytes(const struct busy_poll *b)
{
	return b->bytes_in + b->bytes_out;
}

/* Whether we are in a bulk transfer at `now`. */
static bool busy_poll_in_bulk(struct busy_poll *b, uint64_t now)
{
	uint64_t elapsed = now - b->rate_at_ns;

	if (elapsed >= BUSY_POLL_RATE_NS) {
		/* moved / elapsed >= BULK_BYTES / RATE_NS, without division
		 * (and no overflow: a period over a second, after a long
		 * sleep, is not bulk whatever moved). */
		uint64_t moved = busy_poll_bytes(b) - b->bytes_at_rate;

		b->bulk_rate = elapsed < 1000u * BUSY_POLL_RATE_NS &&
			       moved * BUSY_POLL_RATE_NS >= (uint64_t)BUSY_POLL_BULK_BYTES * elapsed;
		b->rate_at_ns = now;
		b->bytes_at_rate = busy_poll_bytes(b);
	}
	return b->bulk_rate || b->last_work_ns >= b->max_ns / 2 ||
	       busy_poll_bytes(b) - b->bytes_at_sleep >= BUSY_POLL_BULK_BYTES;
}

/* Whether to nap before waiting at `now` (see COALESCE_NAP_NS). */
static bool coalesce_nap_due(struct busy_poll *b, uint64_t now)
{
	return b->last_out >= COALESCE_MIN_BYTES && b->last_out < COALESCE_MAX_BYTES &&
	       b->last_out > b->last_in && busy_poll_in_bulk(b, now);
}

static uint64_t parse_busy_poll(const char *arg)
{
	char *end;
	unsigned long us;

	if (!arg)
		return BUSY_POLL_DEFAULT_US * 1000u;
	errno = 0;
	us = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || us > BUSY_POLL_MAX_US)
		die("invalid value '%s' for 'busy-poll': a number of microseconds from 0 to %d",
		    arg, BUSY_POLL_MAX_US);
	return (uint64_t)us * 1000u;
}

/* Adapts the window to a wait that lasted `waited_ns` in all. */
static void busy_poll_adapt(struct busy_poll *b, uint64_t waited_ns)
{
	if (waited_ns <= b->window_ns)
		return; /* caught by polling */
	if (waited_ns > b->max_ns) {
		b->window_ns /= 2;
		if (b->window_ns < BUSY_POLL_MIN_NS)
			b->window_ns = 0;
	} else {
		b->window_ns = b->window_ns ? b->window_ns * 2 : BUSY_POLL_MIN_NS;
		if (b->window_ns > b->max_ns)
			b->window_ns = b->max_ns;
	}
}

/* Waits from `start` until the library's fd is ready, a signal arrives or
 * `timeout` (NULL: none) passed: polls first for the current window, then
 * sleeps. Returns what ppoll() returned; `*woke` is when it did. */
static int wait_for_events(struct busy_poll *b, struct pollfd *pfd, const struct timespec *timeout,
			   const sigset_t *waitmask, uint64_t start, uint64_t *woke)
{
	static const struct timespec zero;
	uint64_t now = start, limit = UINT64_MAX;
	struct timespec left;
	int rc;

	if (timeout)
		limit = start + timespec_ns(timeout);
	if (b->window_ns && limit > start && !busy_poll_in_bulk(b, start)) {
		uint64_t until = start + b->window_ns;

		do {
			rc = ppoll(pfd, 1, &zero, waitmask);
			if (rc != 0 || stop_signal) {
				*woke = monotonic_ns();
				return rc;
			}
			/* Polling must not take the CPU from a task that could
			 * use it (a busy guest or peer on a loaded machine):
			 * free unless one is waiting for this CPU. */
			sched_yield();
			now = monotonic_ns();
		} while (now < until && now < limit);
		if (timeout) {
			uint64_t rest = limit > now ? limit - now : 0;

			left.tv_sec = (time_t)(rest / 1000000000u);
			left.tv_nsec = (long)(rest % 1000000000u);
			timeout = &left;
		}
	}
	if (b->max_ns && coalesce_nap_due(b, now)) {
		/* ppoll() with no fds: nanosleep() is not in the seccomp
		 * filter, and a signal must end the nap as it ends a wait. */
		static const struct timespec nap = { .tv_nsec = COALESCE_NAP_NS };

		b->naps++;
		rc = ppoll(NULL, 0, &nap, waitmask);
		if (stop_signal) {
			*woke = monotonic_ns();
			return rc;
		}
	}
	b->bytes_at_sleep = busy_poll_bytes(b);
	b->waits++;
	rc = ppoll(pfd, 1, timeout, waitmask);
	*woke = monotonic_ns();
	if (rc > 0 && b->max_ns)
		busy_poll_adapt(b, *woke - start);
	return rc;
}

/* A passt_process() call at least this long was a batch of work (frames
 * and datagrams delivered), not a timer or a lone packet. */
#define YIELD_AFTER_WORK_NS 10000u

/* The event loop; returns the exit status.
 *
 * After a batch of work we yield the CPU before the next call: what we just
 * delivered woke its reader (an application's socket, the guest's), and
 * when that reader shares our CPU, letting it drain its queue before we
 * fill it further is what keeps a flood from being forwarded only to be
 * dropped at a full socket buffer. With no task waiting for this CPU the
 * yield returns at once (well under a microsecond); over time the
 * scheduler's fairness is unchanged. passt_process() does one bounded
 * round per call, so this happens every batch. */
static int run(struct passt *p, const sigset_t *waitmask, uint64_t busy_poll_ns)
{
	struct pollfd pfd = { .fd = passt_fd(p), .events = POLLIN };
	struct busy_poll busy = { .max_ns = busy_poll_ns, .window_ns = busy_poll_ns };
	uint64_t now = monotonic_ns();

	for (;;) {
		struct timespec timeout, *timeout_p = NULL;
		int next = passt_process(p, now);
		uint64_t done = monotonic_ns();

		busy_poll_note_work(&busy, p, now, done);
		if (busy.last_work_ns >= YIELD_AFTER_WORK_NS)
			sched_yield();

		if (next == -PASST_ERROR_GUEST_GONE) {
			say(LEVEL_INFO, "guest disconnected, exiting (--one-off)");
			return 0;
		}
		if (next < -1) {
			say(LEVEL_ERR, "stopping: %s", passt_last_error(p));
			return 1;
		}
		if (next >= 0) {
			timeout.tv_sec = next / 1000;
			timeout.tv_nsec = (long)(next % 1000) * 1000000L;
			timeout_p = &timeout;
		}

		if (wait_for_events(&busy, &pfd, timeout_p, waitmask, done, &now) < 0 && errno != EINTR) {
			say(LEVEL_ERR, "poll: %s", strerror(errno));
			return 1;
		}
		if (stop_signal) {
			say(LEVEL_INFO, "%s received, exiting",
			    stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
			say(LEVEL_DEBUG, "waited for events %llu times, napped %llu times",
			    (unsigned long long)busy.waits, (unsigned long long)busy.naps);
			return 0;
		}
		if (pfd.revents & POLLNVAL) {
			say(LEVEL_ERR, "the library's fd %d is not open", pfd.fd);
			return 1;
		}
	}
}

int main(int argc, char **argv)
{
	struct passt_config *cfg = passt_config_new();
	char *socket_path, *pid_path, *log_path, *runas, *fd_opt;
	struct confinement conf = { .seccomp = true };
	bool foreground, quiet, no_seccomp = false;
	const char *selftest = NULL, *busy_poll_arg = NULL;
	uint64_t busy_poll_ns;
	sigset_t waitmask;
	char err[512];
	int pid_fd = -1, guest_fd = -1, status, filter_len;
	mode_t old_umask;

	if (!cfg)
		die("out of memory");
	argc = take_own_options(argc, argv, &no_seccomp, &selftest, &busy_poll_arg);
	busy_poll_ns = parse_busy_poll(busy_poll_arg);
	conf.seccomp = !no_seccomp;
	if (passt_config_parse_args(cfg, argc, (const char *const *)argv) < 0) {
		fprintf(stderr, PROG ": %s\nTry '" PROG " --help' for more information.\n",
			passt_config_error(cfg));
		return 1;
	}
	if (opt_flag(cfg, "help")) {
		usage(stdout);
		return 0;
	}
	if (opt_flag(cfg, "version")) {
		printf(PROG " %s\n", passt_version());
		return 0;
	}

	foreground = opt_flag(cfg, "foreground");
	quiet = opt_flag(cfg, "quiet");
	socket_path = opt_string(cfg, "socket");
	pid_path = opt_string(cfg, "pid");
	log_path = opt_string(cfg, "log-file");
	runas = opt_string(cfg, "runas");
	fd_opt = opt_string(cfg, "fd");

	/* -d wins over -q: QEMU passes --quiet, a user may add --debug. */
	logger.max_level = opt_flag(cfg, "debug") ? LEVEL_DEBUG : quiet ? LEVEL_WARNING : LEVEL_INFO;
	if (opt_flag(cfg, "frames"))
		die("'frames' is for programs embedding the library, not for " PROG);

	if (fd_opt) {
		guest_fd = atoi(fd_opt); /* validated by the library */
		if (fcntl(guest_fd, F_GETFD) < 0)
			die("invalid value '%s' for 'fd': not an open file descriptor", fd_opt);
	}
	close_inherited_fds(guest_fd);

	if (log_path) {
		logger.file_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (logger.file_fd < 0)
			die("cannot open log file '%s': %s", log_path, strerror(errno));
	}
	if (passt_config_set_log(cfg, library_log, &logger, logger.max_level) < 0)
		die("cannot set the log callback: %s", passt_config_error(cfg));

	/* Resolved even when unused, so that a typo is always reported. */
	if (runas)
		resolve_runas(runas, &conf.uid, &conf.gid);
	if (geteuid() == 0) {
		if (!runas)
			resolve_nobody(&conf.uid, &conf.gid);
		conf.change_ids = true;
	} else if (runas) {
		say(LEVEL_DEBUG, "--runas %s ignored: not running as root", runas);
	}

	if (pid_path)
		pid_fd = open_pid_file(pid_path);

	if (socket_path) {
		remove_if_stale(socket_path);
	} else if (!fd_opt && !passt_config_get(cfg, "netns")) {
		socket_path = choose_socket_path();
		if (!socket_path)
			die("out of memory");
		if (passt_config_set(cfg, "socket", socket_path) < 0)
			die("%s", passt_config_error(cfg));
	}

	setup_signals(&waitmask);
	if (!foreground)
		detach();

	/* Files the library creates (the socket, a capture file) are ours
	 * alone from the start: the socket's --socket-mode is applied only
	 * after bind(), and a capture holds the guest's traffic. */
	old_umask = umask(077);
	state.instance = passt_new(cfg, err, sizeof(err));
	umask(old_umask);
	if (!state.instance)
		die("%s", err);
	passt_config_free(cfg);
	cfg = NULL;
	say(LEVEL_INFO, PROG " %s started, pid %ld", passt_version(), (long)getpid());

	if (socket_path && !quiet)
		print_socket_hint(socket_path);

	if (pid_fd >= 0) {
		/* Handed to the user we become, so that it can remove it. */
		if (conf.change_ids && fchown(pid_fd, conf.uid, conf.gid) < 0)
			say(LEVEL_WARNING, "cannot chown pid file %s: %s", pid_path, strerror(errno));
		write_pid_file(pid_fd);
	}
	/* Likewise for the socket file, which passt_free() removes. */
	if (conf.change_ids && socket_path && chown(socket_path, conf.uid, conf.gid) < 0)
		say(LEVEL_WARNING, "cannot chown %s: %s", socket_path, strerror(errno));

	/* Confinement, step 1: ids, capabilities, no new privileges. Failures
	 * still reach the caller on stderr. */
	if (confine_privileges(&conf, err, sizeof(err)) < 0)
		die("%s", err);

	if (!foreground) {
		if (logger.file_fd < 0) {
			openlog(PROG, LOG_PID | LOG_NDELAY, LOG_DAEMON);
			logger.syslog = true;
		}
		redirect_stdio(guest_fd);
	}

	/* Confinement, step 2: the system call filter. Whatever opens files
	 * has to happen before: localtime_r() (log lines) reads the time zone
	 * file once, so that is done now. */
	tzset();
	/* A panic the library catches prints a message; with these set, Rust
	 * would also open files to symbolise a backtrace, which the filter
	 * forbids: the daemon would die of it instead. */
	if (conf.seccomp) {
		unsetenv("RUST_BACKTRACE");
		unsetenv("RUST_LIB_BACKTRACE");
	}
	conf.uid = getuid(); /* for the message below: no getuid() once filtered */
	conf.gid = getgid();
	filter_len = confine_syscalls(&conf, err, sizeof(err));
	if (filter_len < 0)
		die("%s", err); /* detached: in the log only; the caller sees 1 */
	say(LEVEL_DEBUG, "confined: uid %u, gid %u, no capabilities, no new privileges, %s (%d BPF instructions)",
	    (unsigned)conf.uid, (unsigned)conf.gid,
	    filter_len ? "seccomp filter installed" : "NO seccomp filter (--no-seccomp)", filter_len);
	if (!filter_len)
		say(LEVEL_WARNING, "running without a system call filter (--no-seccomp)");

	if (!foreground)
		signal_ready();

	if (selftest) {
		char result[256];

		confine_selftest(selftest, result, sizeof(result));
		say(LEVEL_WARNING, "seccomp self-test: %s", result);
		cleanup();
		return 0;
	}

	status = run(state.instance, &waitmask, busy_poll_ns);
	cleanup();
	free(socket_path);
	free(log_path);
	free(runas);
	free(fd_opt);
	/* pid_path stays referenced by state until cleanup() has run. */
	free(pid_path);
	return status;
}
