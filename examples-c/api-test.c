/*
 * api-test: exercises libpasst's C API from C, as a host program would.
 *
 * Every check prints what failed (file, line, expression, details) and the
 * program exits 1 if any failed, 0 otherwise (2: usage).
 *
 *   api-test           configuration, errors, NULL handling: what works
 *                      without the engine.
 *   api-test --live    also creates instances: two "frames" instances
 *                      answering an ARP request each through their own
 *                      output callback, and a "socket" instance in a
 *                      temporary directory (socket file present while the
 *                      instance lives, gone after passt_free()); batched
 *                      input, statistics, output back-pressure with
 *                      passt_frame_output_ready(), events, a TCP port
 *                      forwarded at run time on 127.0.0.1 (a connection
 *                      becomes a SYN to the guest; refused once removed),
 *                      and the panic boundary (passt_debug_inject_panic:
 *                      the instance is disabled, this program goes on).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "passt.h"

static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "api-test: %s:%d: check failed: %s: ", \
				__FILE__, __LINE__, #cond);                    \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			failures++;                                            \
		}                                                              \
	} while (0)

static bool contains(const char *haystack, const char *needle)
{
	return haystack && strstr(haystack, needle);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts log lines, to show the callback can be installed and is typed right. */
static void count_log(void *userdata, int level, const char *msg)
{
	(void)level;
	(void)msg;
	++*(int *)userdata;
}

static void test_version(void)
{
	const char *v = passt_version();

	CHECK(v && *v, "passt_version() is empty");
	CHECK(v == passt_version(), "passt_version() is not a static string");
}

static void test_null_handling(void)
{
	char err[64] = "untouched";
	char tiny[8];

	passt_free(NULL);
	passt_config_free(NULL);
	passt_set_log(NULL, NULL, NULL, 6);

	CHECK(passt_fd(NULL) == -1, "passt_fd(NULL) = %d", passt_fd(NULL));
	/* Not -PASST_ERROR_NULL: that is -1, "no deadline". */
	CHECK(passt_process(NULL, now_ns()) == -PASST_ERROR_INVALID, "passt_process(NULL)");
	CHECK(passt_last_error(NULL) != NULL, "passt_last_error(NULL) is NULL");
	CHECK(passt_config_error(NULL) != NULL, "passt_config_error(NULL) is NULL");
	CHECK(passt_config_set(NULL, "mtu", "1500") == -PASST_ERROR_NULL, "passt_config_set(NULL)");
	CHECK(passt_config_get(NULL, "mtu") == NULL, "passt_config_get(NULL)");
	CHECK(passt_config_parse_args(NULL, 0, NULL) == -PASST_ERROR_NULL, "parse_args(NULL)");
	CHECK(passt_config_set_log(NULL, count_log, NULL, 7) == -PASST_ERROR_NULL, "set_log(NULL)");
	CHECK(passt_set_frame_output(NULL, NULL, NULL) == -PASST_ERROR_NULL, "set_frame_output(NULL)");
	CHECK(passt_frame_input(NULL, "x", 1, 0) == -PASST_ERROR_NULL, "frame_input(NULL)");
	CHECK(passt_frames_input(NULL, NULL, 0, 0) == -PASST_ERROR_NULL, "frames_input(NULL)");
	CHECK(passt_frame_output_ready(NULL) == -PASST_ERROR_NULL, "frame_output_ready(NULL)");
	CHECK(passt_forward_add(NULL, "tcp", "1") == -PASST_ERROR_NULL, "forward_add(NULL)");
	CHECK(passt_forward_remove(NULL, "tcp", "1") == -PASST_ERROR_NULL, "forward_remove(NULL)");
	CHECK(passt_stats(NULL, NULL, 0) == -PASST_ERROR_NULL, "stats(NULL)");
	CHECK(passt_set_event_callback(NULL, NULL, NULL) == -PASST_ERROR_NULL, "set_event_callback(NULL)");
	CHECK(passt_debug_inject_panic(NULL) == -PASST_ERROR_NULL, "debug_inject_panic(NULL)");
	CHECK(passt_drop_name(PASST_DROP_TX_FULL) && strcmp(passt_drop_name(PASST_DROP_TX_FULL), "tx-full") == 0,
	      "drop name of PASST_DROP_TX_FULL: %s", passt_drop_name(PASST_DROP_TX_FULL));
	CHECK(passt_drop_name(PASST_DROP_SLOTS) == NULL && passt_drop_name(-1) == NULL, "unknown drop names");

	CHECK(passt_new(NULL, err, sizeof(err)) == NULL, "passt_new(NULL) made an instance");
	CHECK(*err && strcmp(err, "untouched"), "passt_new(NULL) gave no reason");

	/* The reason is truncated to the buffer and always NUL-terminated. */
	memset(tiny, 'x', sizeof(tiny));
	CHECK(passt_new(NULL, tiny, sizeof(tiny)) == NULL, "passt_new(NULL)");
	CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL, "reason not NUL-terminated");
	CHECK(strlen(tiny) == sizeof(tiny) - 1, "reason not truncated: '%s'", tiny);
	CHECK(passt_new(NULL, NULL, 0) == NULL, "passt_new(NULL, NULL, 0)");
}

/* Each invalid key or value is refused, and the message names both. */
static void test_config_errors(void)
{
	static const struct { const char *key, *value; } bad[] = {
		{ "mtu", "70000" },
		{ "mtu", "abc" },
		{ "address", "1.2.3" },
		{ "netmask", "33" },
		{ "mac-addr", "01:00:5e:00:00:01" },
		{ "gateway", "gw" },
		{ "dns", "999.1.1.1" },
		{ "search", "a..b" },
		{ "tcp-ports", "0" },
		{ "udp-ports", "9-1" },
		{ "fd", "-3" },
		{ "socket-mode", "999" },
		{ "max-flows", "0" },
		{ "foreground", "maybe" },
	};
	struct passt_config *c = passt_config_new();
	size_t i;
	int rc;

	CHECK(c != NULL, "passt_config_new() returned NULL");
	if (!c)
		return;
	CHECK(passt_config_error(c) && !*passt_config_error(c), "error before any failure: '%s'",
	      passt_config_error(c));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = passt_config_set(c, bad[i].key, bad[i].value);
		CHECK(rc == -PASST_ERROR_INVALID, "%s=%s: returned %d", bad[i].key, bad[i].value, rc);
		CHECK(contains(passt_config_error(c), bad[i].key) &&
		      contains(passt_config_error(c), bad[i].value),
		      "%s=%s: message '%s'", bad[i].key, bad[i].value, passt_config_error(c));
	}

	rc = passt_config_set(c, "no-such-option", "1");
	CHECK(rc == -PASST_ERROR_INVALID, "unknown key accepted: %d", rc);
	CHECK(contains(passt_config_error(c), "no-such-option"), "message '%s'", passt_config_error(c));

	rc = passt_config_set(c, "mtu", NULL);
	CHECK(rc < 0, "mtu without a value accepted");
	CHECK(contains(passt_config_error(c), "mtu"), "message '%s'", passt_config_error(c));

	/* A refused value leaves the previous one in place. */
	CHECK(passt_config_set(c, "mtu", "1500") == 0, "mtu 1500 refused: %s", passt_config_error(c));
	CHECK(passt_config_set(c, "mtu", "70000") < 0, "mtu 70000 accepted");
	CHECK(contains(passt_config_get(c, "mtu"), "1500"), "mtu after a refused set: %s",
	      passt_config_get(c, "mtu"));
	passt_config_free(c);
}

static void test_config_get(void)
{
	struct passt_config *c = passt_config_new();

	if (!c) {
		CHECK(c != NULL, "passt_config_new() returned NULL");
		return;
	}
	CHECK(passt_config_get(c, "socket") == NULL, "unset key not NULL");
	CHECK(passt_config_set(c, "socket", "/run/x/passt.sock") == 0, "%s", passt_config_error(c));
	CHECK(contains(passt_config_get(c, "socket"), "/run/x/passt.sock") &&
	      strcmp(passt_config_get(c, "socket"), "/run/x/passt.sock") == 0,
	      "socket: %s", passt_config_get(c, "socket"));

	CHECK(passt_config_set(c, "foreground", NULL) == 0, "%s", passt_config_error(c));
	CHECK(passt_config_get(c, "foreground") && !*passt_config_get(c, "foreground"),
	      "a set flag reads back as \"\"");
	CHECK(passt_config_set(c, "ipv4-only", "") == 0, "%s", passt_config_error(c));
	CHECK(passt_config_get(c, "ipv4-only") != NULL, "ipv4-only not set");

	/* Repeatable options accumulate; get returns the last one. */
	CHECK(passt_config_set(c, "dns", "192.0.2.53") == 0, "%s", passt_config_error(c));
	CHECK(passt_config_set(c, "dns", "2001:db8::53") == 0, "%s", passt_config_error(c));
	CHECK(contains(passt_config_get(c, "dns"), "2001:db8::53"), "dns: %s", passt_config_get(c, "dns"));

	/* Process-level options are stored for the daemon. */
	CHECK(passt_config_set(c, "pid", "/run/passt.pid") == 0, "%s", passt_config_error(c));
	CHECK(contains(passt_config_get(c, "pid"), "/run/passt.pid"), "pid: %s", passt_config_get(c, "pid"));
	passt_config_free(c);
}

static void test_parse_args(void)
{
	const char *const good[] = { "passt", "-f", "--mtu", "1500", "-a", "10.0.2.15",
				     "--netmask=24", "-t", "8080", "-1", "-P", "/tmp/p.pid",
				     "--runas", "nobody" };
	const char *const unknown[] = { "passt", "--bogus-option" };
	const char *const missing[] = { "passt", "--socket" };
	const char *const bad_value[] = { "passt", "-m", "20" };
	struct passt_config *c = passt_config_new();
	int rc;

	if (!c) {
		CHECK(c != NULL, "passt_config_new() returned NULL");
		return;
	}
	rc = passt_config_parse_args(c, sizeof(good) / sizeof(good[0]), good);
	CHECK(rc == 0, "good command line refused: %s", passt_config_error(c));
	CHECK(passt_config_get(c, "foreground") != NULL, "-f not stored");
	CHECK(contains(passt_config_get(c, "mtu"), "1500"), "mtu: %s", passt_config_get(c, "mtu"));
	CHECK(contains(passt_config_get(c, "netmask"), "24"), "netmask: %s", passt_config_get(c, "netmask"));
	CHECK(contains(passt_config_get(c, "tcp-ports"), "8080"), "tcp-ports");
	CHECK(passt_config_get(c, "one-off") != NULL, "-1 not stored");
	CHECK(contains(passt_config_get(c, "pid"), "/tmp/p.pid"), "pid");
	CHECK(contains(passt_config_get(c, "runas"), "nobody"), "runas");
	CHECK(passt_config_get(c, "debug") == NULL, "debug set without -d");

	rc = passt_config_parse_args(c, 2, unknown);
	CHECK(rc < 0, "unknown option accepted");
	CHECK(contains(passt_config_error(c), "--bogus-option"), "message '%s'", passt_config_error(c));
	rc = passt_config_parse_args(c, 2, missing);
	CHECK(rc < 0, "missing value accepted");
	CHECK(contains(passt_config_error(c), "socket"), "message '%s'", passt_config_error(c));
	rc = passt_config_parse_args(c, 3, bad_value);
	CHECK(rc < 0, "mtu 20 accepted");
	CHECK(contains(passt_config_error(c), "mtu") && contains(passt_config_error(c), "20"),
	      "message '%s'", passt_config_error(c));
	passt_config_free(c);
}

/* passt_new refuses bad combinations with a reason naming them. */
static void test_new_refusals(void)
{
	static const struct {
		const char *what;
		const char *keys[3][2];
		const char *reason;
	} cases[] = {
		{ "no attachment", { { "mtu", "1500" } }, "socket" },
		{ "two attachments", { { "socket", "/tmp/api-test-never.sock" }, { "frames", "" } },
		  "more than one" },
		{ "v4 and v6 only", { { "frames", "" }, { "ipv4-only", "" }, { "ipv6-only", "" } },
		  "ipv4-only" },
	};
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct passt_config *c = passt_config_new();
		struct passt *p;
		char err[256] = "";
		int logged = 0;

		if (!c) {
			CHECK(c != NULL, "passt_config_new() returned NULL");
			return;
		}
		CHECK(passt_config_set_log(c, count_log, &logged, 7) == 0, "set_log");
		for (k = 0; k < 3 && cases[i].keys[k][0]; k++)
			CHECK(passt_config_set(c, cases[i].keys[k][0], cases[i].keys[k][1]) == 0,
			      "%s: %s", cases[i].what, passt_config_error(c));
		p = passt_new(c, err, sizeof(err));
		CHECK(p == NULL, "%s: an instance was created", cases[i].what);
		CHECK(contains(err, cases[i].reason), "%s: reason '%s' lacks '%s'", cases[i].what,
		      err, cases[i].reason);
		passt_free(p);
		passt_config_free(c);
	}
}

/* ---- Live part: needs the engine. ---------------------------------------- */

#define MAX_FRAMES 16
#define MAX_FRAME_LEN 2048

/* Frames an instance handed to its output callback. */
struct frame_sink {
	const char *name;
	size_t count;
	size_t len[MAX_FRAMES];
	unsigned char data[MAX_FRAMES][MAX_FRAME_LEN];
};

static size_t collect_frames(void *userdata, const struct iovec *frames, size_t n)
{
	struct frame_sink *sink = userdata;
	size_t i;

	for (i = 0; i < n && sink->count < MAX_FRAMES; i++) {
		size_t len = frames[i].iov_len < MAX_FRAME_LEN ? frames[i].iov_len : MAX_FRAME_LEN;

		memcpy(sink->data[sink->count], frames[i].iov_base, len);
		sink->len[sink->count++] = len;
	}
	return n;
}

static const unsigned char guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const unsigned char guest_ip[4] = { 10, 0, 2, 15 };
static const unsigned char gateway_ip[4] = { 10, 0, 2, 2 };

/* An ARP request from the guest: who has 10.0.2.2? Tell 10.0.2.15. */
static size_t build_arp_request(unsigned char *f)
{
	static const unsigned char arp_hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };

	memset(f, 0xff, 6);                   /* Ethernet destination: broadcast */
	memcpy(f + 6, guest_mac, 6);          /* source */
	f[12] = 0x08; f[13] = 0x06;           /* ARP */
	memcpy(f + 14, arp_hdr, 8);           /* Ethernet/IPv4, request */
	memcpy(f + 22, guest_mac, 6);         /* sender MAC */
	memcpy(f + 28, guest_ip, 4);          /* sender IP */
	memset(f + 32, 0, 6);                 /* target MAC: unknown */
	memcpy(f + 38, gateway_ip, 4);        /* target IP */
	return 42;
}

/* The ARP reply among the frames received, checked field by field. */
static void check_arp_reply(const struct frame_sink *sink, const unsigned char our_mac[6])
{
	size_t i;

	for (i = 0; i < sink->count; i++) {
		const unsigned char *f = sink->data[i];

		if (sink->len[i] < 42 || f[12] != 0x08 || f[13] != 0x06)
			continue;
		CHECK(memcmp(f, guest_mac, 6) == 0, "%s: reply not sent to the guest's MAC", sink->name);
		CHECK(memcmp(f + 6, our_mac, 6) == 0, "%s: reply not from our MAC", sink->name);
		CHECK(f[14] == 0 && f[15] == 1 && f[16] == 8 && f[17] == 0 && f[18] == 6 && f[19] == 4,
		      "%s: not an Ethernet/IPv4 ARP header", sink->name);
		CHECK(f[20] == 0 && f[21] == 2, "%s: operation %d, not a reply", sink->name, f[20] << 8 | f[21]);
		CHECK(memcmp(f + 22, our_mac, 6) == 0, "%s: sender MAC", sink->name);
		CHECK(memcmp(f + 28, gateway_ip, 4) == 0, "%s: sender IP", sink->name);
		CHECK(memcmp(f + 32, guest_mac, 6) == 0, "%s: target MAC", sink->name);
		CHECK(memcmp(f + 38, guest_ip, 4) == 0, "%s: target IP", sink->name);
		return;
	}
	CHECK(false, "%s: no ARP reply among %zu frames", sink->name, sink->count);
}

static struct passt *new_frames_instance(const char *our_mac)
{
	static const char *const keys[][2] = {
		{ "frames", "" }, { "address", "10.0.2.15" }, { "netmask", "24" },
		{ "gateway", "10.0.2.2" },
	};
	struct passt_config *c = passt_config_new();
	struct passt *p;
	char err[256] = "";
	size_t i;

	if (!c)
		return NULL;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK(passt_config_set(c, keys[i][0], keys[i][1]) == 0, "%s", passt_config_error(c));
	CHECK(passt_config_set(c, "mac-addr", our_mac) == 0, "%s", passt_config_error(c));
	p = passt_new(c, err, sizeof(err));
	CHECK(p != NULL, "frames instance: %s", err);
	passt_config_free(c);
	return p;
}

static void test_live_frames(void)
{
	static const unsigned char mac_a[6] = { 0x02, 0, 0, 0, 0, 0x0a };
	static const unsigned char mac_b[6] = { 0x02, 0, 0, 0, 0, 0x0b };
	static struct frame_sink sink_a = { .name = "instance A" }, sink_b = { .name = "instance B" };
	struct passt *a = new_frames_instance("02:00:00:00:00:0a");
	struct passt *b = new_frames_instance("02:00:00:00:00:0b");
	unsigned char frame[64];
	size_t len = build_arp_request(frame);
	int rc;

	if (!a || !b)
		goto out;
	CHECK(passt_set_frame_output(a, collect_frames, &sink_a) == 0, "%s", passt_last_error(a));
	CHECK(passt_set_frame_output(b, collect_frames, &sink_b) == 0, "%s", passt_last_error(b));

	rc = passt_frame_input(a, frame, len, now_ns());
	CHECK(rc == 0, "frame_input A: %d %s", rc, passt_last_error(a));
	CHECK(passt_process(a, now_ns()) >= -1, "process A: %s", passt_last_error(a));
	check_arp_reply(&sink_a, mac_a);

	/* B answered nothing yet: instances do not share state. */
	CHECK(passt_process(b, now_ns()) >= -1, "process B: %s", passt_last_error(b));
	for (size_t i = 0; i < sink_b.count; i++)
		CHECK(!(sink_b.len[i] >= 42 && sink_b.data[i][12] == 8 && sink_b.data[i][13] == 6),
		      "B sent an ARP frame before it got a request");

	rc = passt_frame_input(b, frame, len, now_ns());
	CHECK(rc == 0, "frame_input B: %d %s", rc, passt_last_error(b));
	CHECK(passt_process(b, now_ns()) >= -1, "process B: %s", passt_last_error(b));
	check_arp_reply(&sink_b, mac_b);

	/* Malformed frames are dropped, not errors. */
	CHECK(passt_frame_input(a, frame, 13, now_ns()) == 0, "truncated frame: %s", passt_last_error(a));
out:
	passt_free(a);
	passt_free(b);
}

static void test_live_socket(void)
{
	char dir[] = "/tmp/api-test.XXXXXX";
	char path[128];
	struct passt_config *c;
	struct passt *p;
	struct stat st;
	char err[256] = "";
	int fd, rc;

	if (!mkdtemp(dir)) {
		CHECK(false, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/passt.sock", dir);
	c = passt_config_new();
	if (!c)
		goto out;
	CHECK(passt_config_set(c, "socket", path) == 0, "%s", passt_config_error(c));
	p = passt_new(c, err, sizeof(err));
	passt_config_free(c);
	CHECK(p != NULL, "socket instance: %s", err);
	if (!p)
		goto out;

	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "no socket file at %s", path);
	fd = passt_fd(p);
	CHECK(fd >= 0, "passt_fd = %d", fd);
	rc = passt_process(p, now_ns());
	CHECK(rc >= -1, "passt_process = %d: %s", rc, passt_last_error(p));
	CHECK(passt_set_frame_output(p, collect_frames, NULL) == -PASST_ERROR_UNSUPPORTED,
	      "frame output on a socket instance");
	CHECK(passt_frame_input(p, "0123456789abcdef", 16, now_ns()) == -PASST_ERROR_UNSUPPORTED,
	      "frame input on a socket instance");
	passt_free(p);
	CHECK(stat(path, &st) < 0 && errno == ENOENT, "socket file left behind at %s", path);
out:
	unlink(path);
	rmdir(dir);
}

/* Output gate for the back-pressure test: takes nothing while closed. */
struct gated_sink {
	bool open;
	size_t refused;
	struct frame_sink frames;
};

static size_t gated_frames(void *userdata, const struct iovec *frames, size_t n)
{
	struct gated_sink *g = userdata;

	if (!g->open) {
		g->refused++;
		return 0;
	}
	return collect_frames(&g->frames, frames, n);
}

static void count_event(void *userdata, const struct passt_event *ev)
{
	int *counts = userdata;

	if (ev->size >= sizeof(*ev) && ev->kind > 0 && ev->kind < 8)
		counts[ev->kind]++;
}

static bool fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

/* Batches, statistics, back-pressure, events. */
static void test_live_stats_and_backpressure(void)
{
	static struct gated_sink g = { .open = false, .frames = { .name = "gated" } };
	struct passt *p = new_frames_instance("02:00:00:00:00:0c");
	struct passt_stats st;
	unsigned char frame[64];
	size_t len = build_arp_request(frame);
	struct iovec iov[3];
	int events[8] = { 0 };
	size_t bytes;
	int rc, i, arps;

	if (!p)
		return;
	CHECK(passt_set_event_callback(p, count_event, events) == 0, "%s", passt_last_error(p));
	CHECK(passt_set_frame_output(p, gated_frames, &g) == 0, "%s", passt_last_error(p));
	CHECK(events[PASST_EVENT_KIND_GUEST_CONNECTED] == 1, "guest-connected events: %d",
	      events[PASST_EVENT_KIND_GUEST_CONNECTED]);
	for (i = 0; i < 3; i++) {
		iov[i].iov_base = frame;
		iov[i].iov_len = len;
	}
	rc = passt_frames_input(p, iov, 3, now_ns());
	CHECK(rc == 3, "frames_input: %d %s", rc, passt_last_error(p));
	CHECK(g.refused > 0 && g.frames.count == 0, "the closed gate took frames");
	/* Held back, and polled for since we never said we are ready. */
	rc = passt_process(p, now_ns());
	CHECK(rc == 1, "process with frames held back: %d", rc);

	g.open = true;
	CHECK(passt_frame_output_ready(p) == 0, "frame_output_ready");
	CHECK(fd_readable(passt_fd(p)), "passt_fd not readable after frame_output_ready");
	rc = passt_process(p, now_ns());
	CHECK(rc >= -1, "process: %d %s", rc, passt_last_error(p));
	for (i = 0, arps = 0, bytes = 0; i < (int)g.frames.count; i++) {
		bytes += g.frames.len[i];
		arps += g.frames.len[i] >= 42 && g.frames.data[i][12] == 8 && g.frames.data[i][13] == 6;
	}
	/* With IPv6 on the host, a router advertisement greets the guest too. */
	CHECK(arps == 3, "%d ARP replies after ready, not 3", arps);
	check_arp_reply(&g.frames, (const unsigned char[6]){ 0x02, 0, 0, 0, 0, 0x0c });

	memset(&st, 0, sizeof(st));
	rc = passt_stats(p, &st, sizeof(st));
	CHECK(rc == (int)sizeof(st) && st.size == sizeof(st), "stats: %d, size %llu", rc,
	      (unsigned long long)st.size);
	CHECK(st.frames_in == 3 && st.frames_out == g.frames.count, "frames in %llu out %llu (taken %zu)",
	      (unsigned long long)st.frames_in, (unsigned long long)st.frames_out, g.frames.count);
	CHECK(st.bytes_out == bytes, "bytes out %llu, taken %zu", (unsigned long long)st.bytes_out, bytes);
	CHECK(st.guest_connects == 1, "guest connects %llu", (unsigned long long)st.guest_connects);
	passt_frame_input(p, frame, 5, now_ns());
	passt_stats(p, &st, sizeof(st));
	CHECK(st.drops[PASST_DROP_TRUNCATED] == 1, "truncated drops %llu",
	      (unsigned long long)st.drops[PASST_DROP_TRUNCATED]);
	passt_free(p);
}

/* Collects TCP SYNs to the guest. */
static size_t count_syns(void *userdata, const struct iovec *frames, size_t n)
{
	int *syns = userdata;
	size_t i;

	for (i = 0; i < n; i++) {
		const unsigned char *f = frames[i].iov_base;

		/* IPv4, TCP, flags SYN without ACK, to guest port 8080 */
		if (frames[i].iov_len >= 54 && f[12] == 8 && f[13] == 0 && f[23] == 6 &&
		    f[36] == 0x1f && f[37] == 0x90 && (f[47] & 0x12) == 0x02)
			++*syns;
	}
	return n;
}

static int free_loopback_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &alen) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static int connect_loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_STREAM, 0), rc;

	if (s < 0)
		return -errno;
	rc = connect(s, (struct sockaddr *)&a, sizeof(a));
	if (rc < 0) {
		rc = -errno;
		close(s);
		return rc;
	}
	return s;
}

/* A TCP forward added at run time: a connection becomes a SYN to the guest. */
static void test_live_forward(void)
{
	struct passt *p = new_frames_instance("02:00:00:00:00:0d");
	char spec[64];
	int port = free_loopback_port(), syns = 0, s, rc, i;

	if (!p || port < 0) {
		CHECK(port >= 0, "no free loopback port");
		passt_free(p);
		return;
	}
	CHECK(passt_set_frame_output(p, count_syns, &syns) == 0, "%s", passt_last_error(p));
	CHECK(passt_forward_add(p, "sctp", "1") == -PASST_ERROR_INVALID, "protocol sctp accepted");
	CHECK(contains(passt_last_error(p), "sctp"), "message '%s'", passt_last_error(p));
	CHECK(passt_forward_add(p, "tcp", "70000") == -PASST_ERROR_INVALID, "port 70000 accepted");
	CHECK(contains(passt_last_error(p), "70000"), "message '%s'", passt_last_error(p));
	CHECK(passt_forward_remove(p, "udp", "127.0.0.1/9") == -PASST_ERROR_INVALID, "removed a forward never added");
	CHECK(contains(passt_last_error(p), "no forwarded port"), "message '%s'", passt_last_error(p));

	snprintf(spec, sizeof(spec), "127.0.0.1/%d:8080", port);
	rc = passt_forward_add(p, "tcp", spec);
	CHECK(rc == 1, "forward_add %s: %d %s", spec, rc, passt_last_error(p));
	CHECK(passt_forward_add(p, "tcp", spec) == -PASST_ERROR_INVALID, "the same forward twice");
	s = connect_loopback(port);
	CHECK(s >= 0, "connect to the forwarded port: %s", strerror(-s));
	for (i = 0; i < 100 && !syns; i++) {
		struct pollfd pfd = { .fd = passt_fd(p), .events = POLLIN };

		poll(&pfd, 1, 10);
		passt_process(p, now_ns());
	}
	CHECK(syns == 1, "%d SYNs to the guest for one connection", syns);
	if (s >= 0)
		close(s);

	snprintf(spec, sizeof(spec), "127.0.0.1/%d", port);
	rc = passt_forward_remove(p, "tcp", spec);
	CHECK(rc == 1, "forward_remove %s: %d %s", spec, rc, passt_last_error(p));
	s = connect_loopback(port);
	CHECK(s == -ECONNREFUSED, "connect after remove: %s", s < 0 ? strerror(-s) : "connected");
	if (s >= 0)
		close(s);
	passt_free(p);
}

/* An internal error disables one instance; the host program goes on. */
static void test_live_panic(void)
{
	struct passt *p = new_frames_instance("02:00:00:00:00:0e");
	struct passt *q;
	struct passt_stats st;
	unsigned char frame[64];
	size_t len = build_arp_request(frame);
	int rc;

	if (!p)
		return;
	CHECK(passt_debug_inject_panic(p) == 0, "%s", passt_last_error(p));
	rc = passt_process(p, now_ns());
	CHECK(rc == -PASST_ERROR_PANIC, "process after an injected panic: %d", rc);
	CHECK(passt_process(p, now_ns()) == -PASST_ERROR_PANIC, "later process");
	CHECK(passt_frame_input(p, frame, len, now_ns()) == -PASST_ERROR_PANIC, "later frame_input");
	CHECK(passt_stats(p, &st, sizeof(st)) == -PASST_ERROR_PANIC, "later stats");
	CHECK(contains(passt_last_error(p), "panic"), "last error '%s'", passt_last_error(p));
	passt_free(p);

	/* Still alive, and able to make a working instance. */
	q = new_frames_instance("02:00:00:00:00:0f");
	if (!q)
		return;
	CHECK(passt_process(q, now_ns()) >= -1, "a new instance after a panic: %s", passt_last_error(q));
	passt_free(q);
}

int main(int argc, char **argv)
{
	bool live = argc == 2 && strcmp(argv[1], "--live") == 0;

	if (argc > 2 || (argc == 2 && !live)) {
		fprintf(stderr, "Usage: %s [--live]\n", argv[0]);
		return 2;
	}

	test_version();
	test_null_handling();
	test_config_errors();
	test_config_get();
	test_parse_args();
	test_new_refusals();
	if (live) {
		test_live_frames();
		test_live_socket();
		test_live_stats_and_backpressure();
		test_live_forward();
		test_live_panic();
	}

	if (failures) {
		fprintf(stderr, "api-test: %d check(s) failed\n", failures);
		return 1;
	}
	printf("api-test: all checks passed%s\n", live ? " (live)" : "");
	return 0;
}
