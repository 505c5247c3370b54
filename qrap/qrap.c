/*
 * qrap: runs QEMU with its network attached to a running passt daemon.
 *
 *     qrap FDNUM QEMU_CMD [QEMU_ARG...]
 *
 * Theory of operation
 * -------------------
 * QEMU older than 7.2 cannot connect to a UNIX domain socket by itself, but
 * it can use an already connected stream socket with "-netdev socket,fd=N",
 * whose framing (each frame preceded by its 32-bit big-endian length) is
 * what passt speaks. So qrap:
 *
 *  1. connects to the daemon: the socket path in $PASST_SOCKET when set,
 *     else the first of /tmp/passt_1.socket .. /tmp/passt_100.socket that
 *     accepts a connection (passt-standalone's default paths);
 *  2. moves the connection to file descriptor FDNUM (3 or more), without
 *     close-on-exec;
 *  3. rewrites QEMU's arguments: every -netdev, -net and -nic option goes
 *     (with its value), "-netdev socket,fd=FDNUM,id=hostnet0" is added; the
 *     first -device with a netdev= property (the guest's NIC, in QEMU's
 *     key=value or JSON syntax) is pointed at hostnet0, any further one is
 *     dropped with a warning since its netdev is gone; without such a
 *     device, "-device MODEL,netdev=hostnet0[,mac=MAC]" is added, MODEL and
 *     MAC taken from an old "-net nic,model=..,macaddr=.." or
 *     "-nic ..,model=..,mac=.." when given (model "virtio" meaning
 *     virtio-net-pci, the default);
 *  4. execs QEMU (searched in $PATH).
 *
 * Options are recognised with one or two leading dashes, as QEMU does;
 * arguments are not otherwise interpreted, so an option value that looks
 * like "-netdev" (say, in -append) would be taken for one.
 *
 * qrap does not use libpasst: it only needs the socket.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROG "qrap"
#define SOCKET_PATH_FMT "/tmp/passt_%d.socket"
#define SOCKET_PATH_MAX_INDEX 100
#define NETDEV_ID "hostnet0"
#define DEFAULT_NIC_MODEL "virtio-net-pci"

static void usage(FILE *out)
{
	fprintf(out,
"Usage: " PROG " FDNUM QEMU_CMD [QEMU_ARG...]\n"
"Connects to a passt daemon's UNIX domain socket, puts the connection on\n"
"file descriptor FDNUM (3 or more) and runs QEMU_CMD with its network\n"
"options replaced by -netdev socket,fd=FDNUM,id=" NETDEV_ID ": existing\n"
"-netdev, -net and -nic options are removed, the guest's NIC (-device with\n"
"netdev=) is attached to " NETDEV_ID ", or a " DEFAULT_NIC_MODEL " NIC is added.\n"
"\n"
"The socket is $PASST_SOCKET when set, else the first of\n"
SOCKET_PATH_FMT " .. " SOCKET_PATH_FMT " that accepts a connection.\n"
"\n"
"Example: " PROG " 5 qemu-system-x86_64 -m 512 -kernel bzImage -nographic\n",
		1, SOCKET_PATH_MAX_INDEX);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t size)
{
	void *p = malloc(size);

	if (!p)
		die("out of memory");
	return p;
}

/* Connects to the UNIX stream socket at `path`: the fd, or -1 and errno. */
static int connect_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, saved;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Step 1: the connection to the daemon, or dies saying where it looked. */
static int connect_daemon(void)
{
	const char *env = getenv("PASST_SOCKET");
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int i, fd;

	if (env && *env) {
		fd = connect_unix(env);
		if (fd < 0)
			die("cannot connect to passt socket %s (from PASST_SOCKET): %s", env,
			    strerror(errno));
		return fd;
	}
	for (i = 1; i <= SOCKET_PATH_MAX_INDEX; i++) {
		snprintf(path, sizeof(path), SOCKET_PATH_FMT, i);
		fd = connect_unix(path);
		if (fd >= 0)
			return fd;
	}
	die("no passt socket found (tried " SOCKET_PATH_FMT " .. " SOCKET_PATH_FMT
	    "; set PASST_SOCKET to choose one)", 1, SOCKET_PATH_MAX_INDEX);
}

/* Step 2: the connection on `fdnum`, inherited by QEMU. */
static void move_to_fd(int fd, int fdnum)
{
	if (fd == fdnum) {
		if (fcntl(fd, F_SETFD, 0) < 0)
			die("fcntl: %s", strerror(errno));
		return;
	}
	if (dup2(fd, fdnum) < 0) /* dup2 clears close-on-exec on fdnum */
		die("cannot use file descriptor %d: %s", fdnum, strerror(errno));
	close(fd);
}

/* ---- Step 3: QEMU's arguments. ------------------------------------------ */

/* QEMU's option name without its one or two dashes, or NULL. */
static const char *option_name(const char *arg)
{
	if (arg[0] != '-' || !arg[1])
		return NULL;
	return arg[1] == '-' ? arg + 2 : arg + 1;
}

/* One property of a "key=value,key=value" string; ",," is a literal comma
 * inside a value, as QEMU has it. Returns false at the end. */
static bool next_prop(const char **cursor, const char **start, size_t *len)
{
	const char *s = *cursor, *p = s;

	if (!*s)
		return false;
	while (*p) {
		if (p[0] == ',' && p[1] == ',') {
			p += 2;
			continue;
		}
		if (*p == ',')
			break;
		p++;
	}
	*start = s;
	*len = (size_t)(p - s);
	*cursor = *p ? p + 1 : p;
	return true;
}

/* Whether the property [start, start+len) is "key=...". */
static bool prop_is(const char *start, size_t len, const char *key)
{
	size_t klen = strlen(key);

	return len > klen && !strncmp(start, key, klen) && start[klen] == '=';
}

/* A copy of property `key`'s value in `props`, or NULL. */
static char *prop_value(const char *props, const char *key)
{
	const char *start;
	size_t len, klen = strlen(key);
	char *v;

	while (next_prop(&props, &start, &len)) {
		if (!prop_is(start, len, key))
			continue;
		v = xmalloc(len - klen);
		memcpy(v, start + klen + 1, len - klen - 1);
		v[len - klen - 1] = '\0';
		return v;
	}
	return NULL;
}

/* Whether the first property (the type or driver) is `name`. */
static bool first_prop_is(const char *props, const char *name)
{
	const char *start;
	size_t len;

	return next_prop(&props, &start, &len) && len == strlen(name) && !strncmp(start, name, len);
}

/* JSON syntax (-device '{"driver":..,"netdev":"id"}'): the span of the
 * netdev id's characters inside the quotes, if there is one. */
static bool json_netdev(const char *value, const char **id, size_t *len)
{
	const char *p = strstr(value, "\"netdev\""), *end;

	if (!p)
		return false;
	p += strlen("\"netdev\"");
	p += strspn(p, " \t\n");
	if (*p++ != ':')
		return false;
	p += strspn(p, " \t\n");
	if (*p++ != '"')
		return false;
	end = strchr(p, '"');
	if (!end)
		return false;
	*id = p;
	*len = (size_t)(end - p);
	return true;
}

static bool is_json(const char *value)
{
	return value[strspn(value, " \t\n")] == '{';
}

/* Whether a -device value attaches to a netdev: then it is a NIC. */
static bool device_has_netdev(const char *value)
{
	const char *start, *props = value;
	size_t len;

	if (is_json(value))
		return json_netdev(value, &start, &len);
	while (next_prop(&props, &start, &len))
		if (prop_is(start, len, "netdev"))
			return true;
	return false;
}

/* The -device value with its netdev pointed at NETDEV_ID (a new string). */
static char *device_with_our_netdev(const char *value)
{
	const char *start, *props = value;
	size_t len, out_len = 0;
	/* Each "netdev=X" (8 bytes or more with its comma) grows by at most
	 * strlen(NETDEV_ID) = 8 bytes: twice the length is always enough. */
	char *out = xmalloc(2 * strlen(value) + sizeof(NETDEV_ID) + 1);

	if (is_json(value) && json_netdev(value, &start, &len)) {
		size_t head = (size_t)(start - value);

		memcpy(out, value, head);
		strcpy(out + head, NETDEV_ID);
		strcat(out, start + len);
		return out;
	}
	while (next_prop(&props, &start, &len)) {
		if (out_len)
			out[out_len++] = ',';
		if (prop_is(start, len, "netdev")) {
			memcpy(out + out_len, "netdev=" NETDEV_ID, strlen("netdev=" NETDEV_ID));
			out_len += strlen("netdev=" NETDEV_ID);
		} else {
			memcpy(out + out_len, start, len);
			out_len += len;
		}
	}
	out[out_len] = '\0';
	return out;
}

/* What an old-style NIC option said about the NIC wanted. */
struct nic_hint {
	char *model;
	char *mac;
};

/* Remembers model and MAC from "-net nic,..." or "-nic TYPE,...". */
static void note_nic_hint(struct nic_hint *hint, const char *opt, const char *value)
{
	char *model, *mac;

	if (!strcmp(opt, "net") && !first_prop_is(value, "nic"))
		return;
	model = prop_value(value, "model");
	mac = prop_value(value, !strcmp(opt, "net") ? "macaddr" : "mac");
	if (model) {
		free(hint->model);
		hint->model = model;
	}
	if (mac) {
		free(hint->mac);
		hint->mac = mac;
	}
}

static char *nic_device(const struct nic_hint *hint)
{
	const char *model = hint->model ? hint->model : DEFAULT_NIC_MODEL;
	char *dev;

	if (!strcmp(model, "virtio"))
		model = DEFAULT_NIC_MODEL;
	if (asprintf(&dev, "%s,netdev=" NETDEV_ID "%s%s", model, hint->mac ? ",mac=" : "",
		     hint->mac ? hint->mac : "") < 0)
		die("out of memory");
	return dev;
}

/* Builds QEMU's argv: `args[0]` is QEMU_CMD, `n` words in all. */
static char **rewrite_args(char **args, int n, int fdnum)
{
	char **out = xmalloc(sizeof(char *) * ((size_t)n + 5));
	struct nic_hint hint = { NULL, NULL };
	bool nic_done = false;
	char *netdev;
	int i, o = 0;

	out[o++] = args[0];
	for (i = 1; i < n; i++) {
		const char *name = option_name(args[i]);
		const char *value = i + 1 < n ? args[i + 1] : NULL;

		if (name && (!strcmp(name, "netdev") || !strcmp(name, "net") || !strcmp(name, "nic"))) {
			if (value) {
				if (strcmp(name, "netdev"))
					note_nic_hint(&hint, name, value);
				i++;
			}
			continue;
		}
		if (name && !strcmp(name, "device") && value && device_has_netdev(value)) {
			i++;
			if (nic_done) {
				fprintf(stderr, PROG ": warning: dropping -device %s: only one NIC "
					"can be attached to passt\n", value);
				continue;
			}
			out[o++] = args[i - 1];
			out[o++] = device_with_our_netdev(value);
			nic_done = true;
			continue;
		}
		out[o++] = args[i];
	}

	if (asprintf(&netdev, "socket,fd=%d,id=" NETDEV_ID, fdnum) < 0)
		die("out of memory");
	out[o++] = "-netdev";
	out[o++] = netdev;
	if (!nic_done) {
		out[o++] = "-device";
		out[o++] = nic_device(&hint);
	}
	out[o] = NULL;
	return out;
}

/* FDNUM: a decimal number, 3 or more (0..2 are QEMU's stdio). */
static int parse_fdnum(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 3 || v > INT_MAX) {
		fprintf(stderr, PROG ": invalid FDNUM '%s': a file descriptor number, 3 or more\n", s);
		usage(stderr);
		exit(1);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	char **qemu_argv;
	int fdnum, fd;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 1;
	}
	fdnum = parse_fdnum(argv[1]);

	fd = connect_daemon();
	move_to_fd(fd, fdnum);
	qemu_argv = rewrite_args(argv + 2, argc - 2, fdnum);

	execvp(qemu_argv[0], qemu_argv);
	die("cannot run %s: %s", qemu_argv[0], strerror(errno));
}
