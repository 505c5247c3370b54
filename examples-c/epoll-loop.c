/* epoll-loop: libpasst inside a host's own epoll event loop.
 *
 * A VMM or a container runtime already has a loop; the library joins it
 * with one fd and one deadline:
 *
 *   - passt_fd() goes into the epoll set next to the host's own fds (here
 *     a signalfd for SIGINT/SIGTERM and a timerfd ticking once a second);
 *   - passt_process() runs after every wake-up, whatever caused it (early
 *     calls are harmless), and what it returns is the next epoll timeout:
 *         -1    no deadline: wait for the fds only,
 *         >= 0  milliseconds until it must run again at the latest,
 *         < -1  a negated passt_error: the instance cannot go on.
 *
 * Usage: epoll-loop [passt options...], for instance
 *     epoll-loop --socket /tmp/vm.sock -t 2222:22      (QEMU -netdev stream)
 *     epoll-loop --netns /run/netns/guest --config-net  (a namespace's tap)
 *
 * Prints "epoll-loop: ready" once the instance exists, a status line per
 * timer tick, and exits 0 on SIGINT/SIGTERM, 1 when the instance fails,
 * 2 on a bad command line. Build: cc epoll-loop.c $(pkg-config --cflags
 * --libs passt).
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <passt.h>

/* Host's own timer: one status line per tick. */
#define TICK_SECONDS 1

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void log_line(void *userdata, int level, const char *msg)
{
	(void)userdata;
	fprintf(stderr, "passt[%d]: %s\n", level, msg);
}

/* What woke the loop, counted for the status line. */
struct wakeups {
	unsigned long passt_fd, deadline, tick, total;
};

/* A signalfd for SIGINT and SIGTERM (blocked, so they only arrive there). */
static int signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int tick_fd(void)
{
	struct itimerspec every = { .it_interval = { TICK_SECONDS, 0 }, .it_value = { TICK_SECONDS, 0 } };
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	if (fd >= 0 && timerfd_settime(fd, 0, &every, NULL) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int watch(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static struct passt *start(int argc, char **argv)
{
	struct passt_config *c = passt_config_new();
	struct passt *p;
	char err[256];

	if (!c)
		return NULL;
	if (passt_config_parse_args(c, argc, (const char *const *)argv) < 0) {
		fprintf(stderr, "epoll-loop: %s\n", passt_config_error(c));
		passt_config_free(c);
		exit(2);
	}
	passt_config_set_log(c, log_line, NULL, 6);
	p = passt_new(c, err, sizeof(err));
	passt_config_free(c);	/* the instance keeps what it needs */
	if (!p)
		fprintf(stderr, "epoll-loop: %s\n", err);
	return p;
}

int main(int argc, char **argv)
{
	struct wakeups w = { 0 };
	struct epoll_event events[8];
	int epfd, sigfd, tickfd, timeout, status = 1;
	struct passt *p;

	p = start(argc, argv);
	if (!p)
		return 1;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	sigfd = signal_fd();
	tickfd = tick_fd();
	if (epfd < 0 || sigfd < 0 || tickfd < 0 ||
	    watch(epfd, passt_fd(p)) < 0 || watch(epfd, sigfd) < 0 || watch(epfd, tickfd) < 0) {
		perror("epoll-loop: setting up the loop");
		goto out;
	}
	printf("epoll-loop: ready, passt %s, fd %d\n", passt_version(), passt_fd(p));
	fflush(stdout);

	/* The first call may already have work (or a deadline) for us. */
	timeout = passt_process(p, now_ns());
	for (;;) {
		int n, i;

		if (timeout < -1) {
			fprintf(stderr, "epoll-loop: instance stopped (%d): %s\n", timeout, passt_last_error(p));
			goto out;
		}
		n = epoll_wait(epfd, events, 8, timeout);
		if (n < 0 && errno != EINTR) {
			perror("epoll-loop: epoll_wait");
			goto out;
		}
		w.total++;
		if (n == 0)
			w.deadline++;	/* passt's deadline came first */
		for (i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == sigfd) {
				struct signalfd_siginfo si;

				if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					printf("epoll-loop: %s, stopping after %lu wake-ups\n",
					       strsignal((int)si.ssi_signo), w.total);
					status = 0;
					goto out;
				}
			} else if (fd == tickfd) {
				uint64_t expirations;

				if (read(tickfd, &expirations, sizeof(expirations)) > 0)
					w.tick += expirations;
				printf("epoll-loop: tick %lu: wake-ups %lu (passt fd %lu, deadline %lu), "
				       "next passt deadline %d ms\n",
				       w.tick, w.total, w.passt_fd, w.deadline, timeout);
				fflush(stdout);
			} else {
				w.passt_fd++;	/* drained by passt_process() below */
			}
		}
		/* Whatever woke us: an early call costs nothing, a missed
		 * deadline would delay retransmissions and timeouts. */
		timeout = passt_process(p, now_ns());
	}
out:
	passt_free(p);	/* closes every socket, removes the socket file */
	if (tickfd >= 0)
		close(tickfd);
	if (sigfd >= 0)
		close(sigfd);
	if (epfd >= 0)
		close(epfd);
	fflush(stdout);
	return status;
}
