/*
 * frames-bench: the library's frame path without host sockets, through
 * the in-process attachment (passt_frame_input / passt_set_frame_output).
 *
 *   frames-bench [KIND [COUNT]]     KIND: arp, tcp-rst, tcp-rst-64k, all (default)
 *
 * Each kind is a guest frame that the library answers by itself:
 *   arp          an ARP request for the gateway -> an ARP reply
 *   tcp-rst      a 1460-byte TCP data segment (ACK) of no known connection
 *                -> an RST; validates Ethernet, IPv4 and the TCP checksum
 *                over the whole payload, looks the tuple up, builds a frame
 *   tcp-rst-64k  the same with a 65480-byte payload (MTU 65520)
 *
 * For each kind it prints frames per second (wall clock) and checks that
 * every frame got its answer (exit 1 otherwise). Instructions per frame:
 * run under valgrind --tool=callgrind --toggle-collect=passt_frame_input
 * and divide the total by COUNT (bench/run.sh does this).
 */
#include <arpa/inet.h>
#include <passt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

static const uint8_t OUR_MAC[6] = { 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55 };
static const uint8_t GUEST_MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t GUEST_IP[4] = { 10, 0, 2, 15 };
static const uint8_t GW_IP[4] = { 10, 0, 2, 2 };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What came back: frame count and bytes, and the last frame's EtherType
 * and TCP flags (to check the answers are what we expect). */
struct sink {
	uint64_t frames, bytes;
	uint16_t last_type;
	uint8_t last_tcp_flags;
};

static size_t on_frames(void *userdata, const struct iovec *f, size_t n)
{
	struct sink *s = userdata;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *b = f[i].iov_base;
		s->bytes += f[i].iov_len;
		if (f[i].iov_len >= 14)
			s->last_type = (uint16_t)(b[12] << 8 | b[13]);
		if (f[i].iov_len >= 14 + 20 + 14 && s->last_type == 0x0800)
			s->last_tcp_flags = b[14 + 20 + 13];
	}
	s->frames += n;
	return n;
}

static uint32_t sum16(uint32_t acc, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		acc += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		acc += (uint32_t)p[len - 1] << 8;
	return acc;
}

static uint16_t fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static size_t eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, GUEST_MAC, 6);
	put16(f + 12, type);
	return 14;
}

static size_t build_arp(uint8_t *f)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	size_t o = eth(f, bcast, 0x0806);
	uint8_t *a = f + o;
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);
	memcpy(a + 8, GUEST_MAC, 6);
	memcpy(a + 14, GUEST_IP, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, GW_IP, 4);
	return o + 28;
}

/* A TCP ACK with `payload` bytes, from the guest to the gateway. */
static size_t build_tcp(uint8_t *f, size_t payload)
{
	size_t o = eth(f, OUR_MAC, 0x0800);
	uint8_t *ip = f + o, *tcp = ip + 20;
	size_t l4 = 20 + payload;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + l4));
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, GUEST_IP, 4);
	memcpy(ip + 16, GW_IP, 4);
	put16(ip + 10, fold(sum16(0, ip, 20)));
	memset(tcp, 0, 20);
	put16(tcp, 40000);
	put16(tcp + 2, 9);
	put16(tcp + 4, 0x1234);
	put16(tcp + 8, 0x5678);
	tcp[12] = 5 << 4;
	tcp[13] = 0x10; /* ACK */
	put16(tcp + 14, 65535);
	for (size_t i = 0; i < payload; i++)
		tcp[20 + i] = (uint8_t)(i * 7 + 1);
	uint32_t acc = sum16(0, ip + 12, 8) + 6 + (uint32_t)l4;
	put16(tcp + 16, fold(sum16(acc, tcp, l4)));
	return o + 20 + l4;
}

static int run(struct passt *p, struct sink *s, const char *kind, long count)
{
	static uint8_t frame[14 + 65535];
	size_t len;
	uint16_t want_type = 0x0800;
	if (!strcmp(kind, "arp")) {
		len = build_arp(frame);
		want_type = 0x0806;
	} else if (!strcmp(kind, "tcp-rst")) {
		len = build_tcp(frame, 1460);
	} else if (!strcmp(kind, "tcp-rst-64k")) {
		len = build_tcp(frame, 65520 - 40);
	} else {
		fprintf(stderr, "frames-bench: unknown kind %s\n", kind);
		return 2;
	}
	memset(s, 0, sizeof *s);
	uint64_t start = now_ns(), t = start;
	for (long i = 0; i < count; i++) {
		/* One clock read per 256 frames, as a host's loop would per wake-up. */
		if ((i & 255) == 0)
			t = now_ns();
		int rc = passt_frame_input(p, frame, len, t);
		if (rc) {
			fprintf(stderr, "frames-bench: passt_frame_input: %d\n", rc);
			return 1;
		}
	}
	double secs = (double)(now_ns() - start) / 1e9;
	int ok = s->frames == (uint64_t)count && s->last_type == want_type &&
		 (want_type != 0x0800 || (s->last_tcp_flags & 0x04));
	printf("%-12s %9ld frames in, %9llu out, %6.3f s, %10.0f frames/s, %7.1f Gbit/s in%s\n", kind, count,
	       (unsigned long long)s->frames, secs, count / secs, count * (double)len * 8 / secs / 1e9,
	       ok ? "" : "  (WRONG ANSWERS)");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "all";
	long count = argc > 2 ? atol(argv[2]) : 1000000;
	struct passt_config *c = passt_config_new();
	const char *opts[][2] = {
		{ "frames", "" },	  { "ipv4-only", "" },	      { "address", "10.0.2.15" },
		{ "netmask", "24" },	  { "gateway", "10.0.2.2" },  { "mac-addr", "9a:55:9a:55:9a:55" },
		{ "no-dhcp-dns", "" },	  { "no-dhcp-search", "" },
	};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		if (passt_config_set(c, opts[i][0], opts[i][1])) {
			fprintf(stderr, "frames-bench: %s: %s\n", opts[i][0], passt_config_error(c));
			return 2;
		}
	}
	char err[256];
	struct passt *p = passt_new(c, err, sizeof err);
	passt_config_free(c);
	if (!p) {
		fprintf(stderr, "frames-bench: %s\n", err);
		return 2;
	}
	struct sink s;
	if (passt_set_frame_output(p, on_frames, &s)) {
		fprintf(stderr, "frames-bench: passt_set_frame_output failed\n");
		return 2;
	}
	int rc = 0;
	if (!strcmp(kind, "all")) {
		rc |= run(p, &s, "arp", count);
		rc |= run(p, &s, "tcp-rst", count);
		rc |= run(p, &s, "tcp-rst-64k", count / 16);
	} else {
		rc = run(p, &s, kind, count);
	}
	passt_free(p);
	return rc;
}
