/*
 * rr: request/response latency and connection setup rate over TCP, with
 * no interpreter in the loop.
 *
 *   rr server ADDR PORT            serve until killed
 *   rr rr     ADDR PORT SECONDS    1-byte round trips on one connection
 *   rr crr    ADDR PORT SECONDS    connect, 1-byte round trip, close
 *   rr wait   ADDR PORT SECONDS    exit 0 once ADDR:PORT accepts a connection
 *
 * The clients print one number: transactions per second.
 *
 * Protocol: the client sends one byte at a time. 'r' is echoed and the
 * connection stays; 'c' is echoed and the server closes first (so the
 * TIME_WAIT state stays on the server side and a long CRR run does not
 * exhaust the client's ephemeral ports). The server handles one
 * connection at a time, which is all a single client needs; a connection
 * idle for 10 s is dropped so a stray one cannot wedge it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Resolves ADDR PORT (numeric, v4 or v6) into *ss. */
static socklen_t resolve(const char *addr, const char *port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res;
	int rc = getaddrinfo(addr, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "rr: %s %s: %s\n", addr, port, gai_strerror(rc));
		exit(2);
	}
	socklen_t len = res->ai_addrlen;
	memcpy(ss, res->ai_addr, len);
	freeaddrinfo(res);
	return len;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static _Noreturn void serve(const struct sockaddr_storage *ss, socklen_t len)
{
	int l = socket(ss->ss_family, SOCK_STREAM, 0);
	int one = 1;
	if (l < 0)
		die("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (const struct sockaddr *)ss, len) || listen(l, 128))
		die("bind/listen");
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		struct timeval tv = { .tv_sec = 10 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		nodelay(c);
		char b;
		while (read(c, &b, 1) == 1) {
			if (write(c, &b, 1) != 1 || b != 'r')
				break;
		}
		close(c);
	}
}

static int connect_to(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)ss, len)) {
		close(fd);
		return -1;
	}
	nodelay(fd);
	return fd;
}

/* One byte out, one byte back. */
static void round_trip(int fd, char b)
{
	char r;
	if (write(fd, &b, 1) != 1)
		die("write");
	ssize_t n = read(fd, &r, 1);
	if (n != 1) {
		fprintf(stderr, "rr: read: %s\n", n == 0 ? "connection closed" : strerror(errno));
		exit(2);
	}
}

static double run_rr(const struct sockaddr_storage *ss, socklen_t len, double secs)
{
	int fd = connect_to(ss, len);
	if (fd < 0)
		die("connect");
	long n = 0;
	double start = now_s(), end = start + secs, t = start;
	while (t < end) {
		for (int i = 0; i < 64; i++)
			round_trip(fd, 'r');
		n += 64;
		t = now_s();
	}
	close(fd);
	return n / (t - start);
}

static double run_crr(const struct sockaddr_storage *ss, socklen_t len, double secs)
{
	long n = 0;
	double start = now_s(), end = start + secs, t = start;
	while (t < end) {
		for (int i = 0; i < 16; i++) {
			int fd = connect_to(ss, len);
			if (fd < 0)
				die("connect");
			round_trip(fd, 'c');
			char b;
			while (read(fd, &b, 1) > 0)
				; /* the server closes first */
			close(fd);
		}
		n += 16;
		t = now_s();
	}
	return n / (t - start);
}

static int wait_for(const struct sockaddr_storage *ss, socklen_t len, double secs)
{
	double end = now_s() + secs;
	do {
		int fd = connect_to(ss, len);
		if (fd >= 0) {
			round_trip(fd, 'c');
			close(fd);
			return 0;
		}
		usleep(50 * 1000);
	} while (now_s() < end);
	fprintf(stderr, "rr: nothing accepts connections after %.0f s\n", secs);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: rr server|rr|crr|wait ADDR PORT [SECONDS]\n");
		return 2;
	}
	struct sockaddr_storage ss;
	socklen_t len = resolve(argv[2], argv[3], &ss);
	double secs = argc > 4 ? atof(argv[4]) : 5;
	if (!strcmp(argv[1], "server"))
		serve(&ss, len);
	if (!strcmp(argv[1], "wait"))
		return wait_for(&ss, len, secs);
	if (!strcmp(argv[1], "rr"))
		printf("%.0f\n", run_rr(&ss, len, secs));
	else if (!strcmp(argv[1], "crr"))
		printf("%.0f\n", run_crr(&ss, len, secs));
	else {
		fprintf(stderr, "rr: unknown mode %s\n", argv[1]);
		return 2;
	}
	return 0;
}
