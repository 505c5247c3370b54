/*
 * frame-pump: carries a network namespace's tap frames over a UNIX stream
 * socket with QEMU's framing (each frame preceded by its length, 4 bytes,
 * big-endian), standing in for QEMU in front of a socket-mode translator
 * (ours or passt). The same pump serves both, so their figures compare.
 *
 *   frame-pump [--listen] SOCKET IFNAME
 *
 * Run it inside the namespace: it creates the tap device IFNAME (no packet
 * information header), connects to SOCKET (waiting up to 10 s for it to
 * appear) and pumps until either side closes. The caller configures the
 * device (address, routes, MTU) with ip(8) once it exists.
 *
 * --listen: creates SOCKET and waits for one connection instead. Two pumps,
 * one listening, join two namespaces' taps into one Ethernet segment, with
 * nothing translating between them: for bulk TCP at MTU 65520 about the
 * best a translator behind this pump can do (bench/run.sh's "wire" path).
 *
 * Tap -> socket: frames read until EAGAIN (or the output buffer is full)
 * go out with one write; what the socket does not take stays buffered and
 * the tap is not read again until it has drained. Socket -> tap: one read
 * of at most QEMU_READ bytes each time the socket is readable, as QEMU
 * reads it (once per turn of its main loop, NET_BUFSIZE bytes); each
 * complete frame goes to the tap, and a partial frame stays at the front
 * of the buffer for the next read.
 *
 * Where it differs from QEMU: QEMU hands the guest's frames to the socket
 * one write each, and takes frames from and gives them to the guest
 * through virtio queues, with no system call; the pump pays a tap read
 * and a tap write per frame instead, and saves some of that back by
 * batching its socket writes. A translator sees the same byte stream
 * either way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (14 + 65535)
#define BUF_SIZE (1 << 20)
/* QEMU's NET_BUFSIZE: what one read of its stream socket takes at most. */
#define QEMU_READ (4096 + 65536)

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int tap_open(const char *name)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		die("/dev/net/tun");
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr))
		die("TUNSETIFF");
	return fd;
}

/* Large buffers and non-blocking, for a connected socket. */
static int pump_socket(int fd)
{
	int size = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int unix_connect(const struct sockaddr_un *a)
{
	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
		if (!connect(fd, (const struct sockaddr *)a, sizeof *a))
			return pump_socket(fd);
		close(fd);
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	die(a->sun_path);
	return -1;
}

static int unix_accept_one(const struct sockaddr_un *a)
{
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		die("socket");
	unlink(a->sun_path);
	if (bind(l, (const struct sockaddr *)a, sizeof *a) || listen(l, 1))
		die(a->sun_path);
	int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		die("accept");
	close(l);
	unlink(a->sun_path);
	return pump_socket(fd);
}

static int unix_socket(const char *path, int listening)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof a.sun_path) {
		fprintf(stderr, "frame-pump: socket path too long\n");
		exit(1);
	}
	strcpy(a.sun_path, path);
	return listening ? unix_accept_one(&a) : unix_connect(&a);
}

static int again(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

int main(int argc, char **argv)
{
	int listening = argc == 4 && !strcmp(argv[1], "--listen");
	if (argc != 3 + listening) {
		fprintf(stderr, "usage: frame-pump [--listen] SOCKET IFNAME\n");
		return 2;
	}
	int tap = tap_open(argv[2 + listening]);
	int sock = unix_socket(argv[1 + listening], listening);
	static uint8_t out[BUF_SIZE], in[BUF_SIZE];
	size_t out_len = 0, out_sent = 0, in_len = 0;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = tap, .events = out_len ? 0 : POLLIN },
			{ .fd = sock, .events = POLLIN | (out_len ? POLLOUT : 0) },
		};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (p[1].revents & (POLLHUP | POLLERR) && !(p[1].revents & POLLIN))
			return 0;

		/* Tap -> socket. */
		if (p[0].revents & POLLIN) {
			while (out_len + 4 + MAX_FRAME <= BUF_SIZE) {
				ssize_t n = read(tap, out + out_len + 4, MAX_FRAME);
				if (n < 0) {
					if (again())
						break;
					die("tap read");
				}
				uint32_t be = htonl((uint32_t)n);
				memcpy(out + out_len, &be, 4);
				out_len += 4 + (size_t)n;
			}
		}
		while (out_sent < out_len) {
			ssize_t n = write(sock, out + out_sent, out_len - out_sent);
			if (n < 0) {
				if (again())
					break;
				if (errno == EPIPE || errno == ECONNRESET)
					return 0;
				die("socket write");
			}
			out_sent += (size_t)n;
		}
		if (out_sent == out_len)
			out_len = out_sent = 0;

		/* Socket -> tap: one read, then the tap's turn again. */
		if (p[1].revents & (POLLIN | POLLHUP)) {
			do {
				ssize_t n = read(sock, in + in_len, QEMU_READ);
				if (n == 0)
					return 0;
				if (n < 0) {
					if (again())
						break;
					if (errno == ECONNRESET)
						return 0;
					die("socket read");
				}
				in_len += (size_t)n;
				size_t at = 0;
				while (in_len - at >= 4) {
					uint32_t be;
					memcpy(&be, in + at, 4);
					size_t len = ntohl(be);
					if (len < 14 || len > MAX_FRAME) {
						fprintf(stderr, "frame-pump: bad frame length %zu\n", len);
						return 1;
					}
					if (in_len - at < 4 + len)
						break;
					/* A full tap queue drops the frame, as a NIC would. */
					if (write(tap, in + at + 4, len) < 0 && !again() && errno != EIO)
						die("tap write");
					at += 4 + len;
				}
				memmove(in, in + at, in_len - at);
				in_len -= at;
			} while (0);
		}
	}
}
