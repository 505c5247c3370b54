// frames-cxx: libpasst from C++17 through a small RAII wrapper, with the
// in-process "frames" attachment a VMM with its own virtio-net device
// model would use: this program plays the guest's NIC, handing frames in
// with passt_frame_input() and taking the replies from the output callback.
//
// It checks, against the real library and real host sockets:
//   1. ARP: "who has 10.0.2.2?" is answered with the library's MAC;
//   2. DHCP: a DISCOVER gets an OFFER of 10.0.2.15/24, router 10.0.2.2;
//   3. UDP: a datagram to the gateway's address arrives on a socket this
//      program bound on the host's 127.0.0.1 (the gateway address leads to
//      the host's loopback), and the answer comes back as a frame.
// Exit status 0 when all hold, 1 otherwise.
//
// Build: g++ -std=c++17 frames-cxx.cpp $(pkg-config --cflags --libs passt)

#include <passt.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace passt_cxx {

using Frame = std::vector<uint8_t>;

struct Error : std::runtime_error {
	using std::runtime_error::runtime_error;
};

inline uint64_t now_ns()
{
	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Owns a passt_config; set() throws with the library's reason.
class Config {
public:
	Config() : c_(passt_config_new(), passt_config_free)
	{
		if (!c_)
			throw Error("passt_config_new: out of memory");
	}

	Config &set(const char *key, const char *value = "")
	{
		if (passt_config_set(c_.get(), key, value) < 0)
			throw Error(passt_config_error(c_.get()));
		return *this;
	}

	const passt_config *get() const { return c_.get(); }

private:
	std::unique_ptr<passt_config, void (*)(passt_config *)> c_;
};

// Owns a passt instance. The output callback points at this object, so it
// neither copies nor moves.
class Instance {
public:
	using FrameHandler = std::function<void(const uint8_t *, size_t)>;

	explicit Instance(const Config &c) : p_(nullptr, passt_free)
	{
		char err[256] = "";
		p_.reset(passt_new(c.get(), err, sizeof(err)));
		if (!p_)
			throw Error(std::string("passt_new: ") + err);
	}
	Instance(const Instance &) = delete;
	Instance &operator=(const Instance &) = delete;

	int fd() const { return passt_fd(p_.get()); }

	// Host->guest frames go to `handler` (frames attachment only).
	void on_frame(FrameHandler handler)
	{
		handler_ = std::move(handler);
		check(passt_set_frame_output(p_.get(), &Instance::output, this), "passt_set_frame_output");
	}

	// A guest->host frame; replies may reach the handler before it returns.
	void input(const Frame &f) { check(passt_frame_input(p_.get(), f.data(), f.size(), now_ns()), "passt_frame_input"); }

	// Does what is ready; returns the poll timeout: -1 or milliseconds.
	int process()
	{
		int timeout = passt_process(p_.get(), now_ns());
		if (timeout < -1)
			throw Error(std::string("passt_process: ") + passt_last_error(p_.get()));
		return timeout;
	}

private:
	void check(int rc, const char *what) const
	{
		if (rc < 0)
			throw Error(std::string(what) + ": " + passt_last_error(p_.get()));
	}

	// No exception may cross back into the library.
	static size_t output(void *userdata, const iovec *frames, size_t n) noexcept
	{
		auto *self = static_cast<Instance *>(userdata);
		try {
			for (size_t i = 0; i < n; i++)
				self->handler_(static_cast<const uint8_t *>(frames[i].iov_base), frames[i].iov_len);
		} catch (...) {
			return 0;	// counted as dropped by the library
		}
		return n;
	}

	std::unique_ptr<passt, void (*)(passt *)> p_;
	FrameHandler handler_;
};

} // namespace passt_cxx

using passt_cxx::Frame;

namespace {

const std::array<uint8_t, 6> guest_mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
const std::array<uint8_t, 6> our_mac{0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc};
const std::array<uint8_t, 4> guest_ip{10, 0, 2, 15};
const std::array<uint8_t, 4> gateway_ip{10, 0, 2, 2};
constexpr uint16_t guest_udp_port = 40000;

int failures = 0;

void expect(bool ok, const std::string &what)
{
	std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what.c_str());
	if (!ok)
		failures++;
}

// Big-endian field access.
uint16_t be16(const uint8_t *p) { return uint16_t(p[0] << 8 | p[1]); }
void put16(Frame &f, size_t at, uint16_t v)
{
	f[at] = uint8_t(v >> 8);
	f[at + 1] = uint8_t(v);
}
template <size_t N> void put(Frame &f, size_t at, const std::array<uint8_t, N> &bytes)
{
	std::memcpy(&f[at], bytes.data(), N);
}

// The Internet checksum (RFC 1071) of `len` bytes plus a starting sum.
uint16_t checksum(const uint8_t *p, size_t len, uint32_t sum = 0)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += be16(p + i);
	if (len & 1)
		sum += uint32_t(p[len - 1]) << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return uint16_t(~sum);
}

constexpr size_t ETH = 14, IP = 20, UDP = 8;

// Ethernet + IPv4 + UDP around `payload`, checksums filled in.
Frame udp_frame(const std::array<uint8_t, 6> &dst_mac, const std::array<uint8_t, 4> &src,
		const std::array<uint8_t, 4> &dst, uint16_t sport, uint16_t dport, const Frame &payload)
{
	Frame f(ETH + IP + UDP + payload.size());
	put(f, 0, dst_mac);
	put(f, 6, guest_mac);
	put16(f, 12, 0x0800);
	uint8_t *ip = &f[ETH];
	ip[0] = 0x45;
	put16(f, ETH + 2, uint16_t(IP + UDP + payload.size()));
	ip[8] = 64;	// TTL
	ip[9] = 17;	// UDP
	put(f, ETH + 12, src);
	put(f, ETH + 16, dst);
	put16(f, ETH + 10, checksum(ip, IP));
	put16(f, ETH + IP, sport);
	put16(f, ETH + IP + 2, dport);
	put16(f, ETH + IP + 4, uint16_t(UDP + payload.size()));
	std::memcpy(&f[ETH + IP + UDP], payload.data(), payload.size());
	// Pseudo-header: addresses, protocol, UDP length.
	uint32_t pseudo = be16(&src[0]) + be16(&src[2]) + be16(&dst[0]) + be16(&dst[2]) + 17 + UDP + payload.size();
	uint16_t sum = checksum(&f[ETH + IP], UDP + payload.size(), pseudo);
	put16(f, ETH + IP + 6, sum ? sum : 0xffff);
	return f;
}

Frame arp_request()
{
	Frame f(42);
	std::memset(f.data(), 0xff, 6);
	put(f, 6, guest_mac);
	put16(f, 12, 0x0806);
	const std::array<uint8_t, 8> hdr{0, 1, 8, 0, 6, 4, 0, 1};	// Ethernet/IPv4, request
	put(f, 14, hdr);
	put(f, 22, guest_mac);
	put(f, 28, guest_ip);
	put(f, 38, gateway_ip);
	return f;
}

constexpr uint32_t dhcp_xid = 0x1234abcd;

Frame dhcp_discover()
{
	Frame bootp(236);	// fixed BOOTP fields; the magic cookie follows
	bootp[0] = 1;	// BOOTREQUEST
	bootp[1] = 1;	// Ethernet
	bootp[2] = 6;
	for (int i = 0; i < 4; i++)
		bootp[4 + i] = uint8_t(dhcp_xid >> (24 - 8 * i));
	bootp[10] = 0x80;	// broadcast flag
	std::memcpy(&bootp[28], guest_mac.data(), 6);
	const uint8_t cookie_and_options[] = {99, 130, 83, 99, 53, 1, 1, 55, 3, 1, 3, 6, 255};
	bootp.insert(bootp.end(), std::begin(cookie_and_options), std::end(cookie_and_options));
	return udp_frame({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 0}, {255, 255, 255, 255}, 68, 67, bootp);
}

bool is_ipv4_udp(const Frame &f)
{
	return f.size() >= ETH + IP + UDP && be16(&f[12]) == 0x0800 && (f[ETH] >> 4) == 4 && f[ETH + 9] == 17;
}

// Payload of a UDP/IPv4 frame, header length from the IHL field.
Frame udp_payload(const Frame &f, uint16_t &sport, uint16_t &dport)
{
	size_t ihl = size_t(f[ETH] & 0xf) * 4;
	size_t udp = ETH + ihl;
	if (f.size() < udp + UDP)
		return {};
	sport = be16(&f[udp]);
	dport = be16(&f[udp + 2]);
	size_t len = be16(&f[udp + 4]);
	if (len < UDP || udp + len > f.size())
		return {};
	return Frame(f.begin() + long(udp + UDP), f.begin() + long(udp + len));
}

void check_arp(passt_cxx::Instance &inst, std::vector<Frame> &out)
{
	out.clear();
	inst.input(arp_request());
	inst.process();
	for (const Frame &f : out) {
		if (f.size() < 42 || be16(&f[12]) != 0x0806)
			continue;
		expect(be16(&f[20]) == 2, "ARP: a reply");
		expect(std::memcmp(&f[22], our_mac.data(), 6) == 0, "ARP: 10.0.2.2 is at our MAC");
		expect(std::memcmp(&f[28], gateway_ip.data(), 4) == 0, "ARP: sender is the gateway");
		expect(std::memcmp(&f[0], guest_mac.data(), 6) == 0 && std::memcmp(&f[32], guest_mac.data(), 6) == 0,
		       "ARP: sent to the guest");
		return;
	}
	expect(false, "ARP: a reply among " + std::to_string(out.size()) + " frames");
}

void check_dhcp(passt_cxx::Instance &inst, std::vector<Frame> &out)
{
	out.clear();
	inst.input(dhcp_discover());
	inst.process();
	for (const Frame &f : out) {
		uint16_t sport = 0, dport = 0;
		if (!is_ipv4_udp(f))
			continue;
		Frame b = udp_payload(f, sport, dport);
		if (sport != 67 || dport != 68 || b.size() < 240)
			continue;
		uint32_t xid = uint32_t(b[4]) << 24 | uint32_t(b[5]) << 16 | uint32_t(b[6]) << 8 | b[7];
		expect(b[0] == 2 && xid == dhcp_xid, "DHCP: a BOOTREPLY to our transaction");
		expect(std::memcmp(&b[16], guest_ip.data(), 4) == 0, "DHCP: offers 10.0.2.15");
		int type = -1;
		std::array<uint8_t, 4> router{}, mask{};
		for (size_t i = 240; i < b.size() && b[i] != 255;) {	// options
			if (b[i] == 0) {
				i++;
				continue;
			}
			if (i + 2 > b.size() || i + 2 + b[i + 1] > b.size())
				break;
			uint8_t code = b[i], len = b[i + 1];
			const uint8_t *v = &b[i + 2];
			if (code == 53 && len == 1)
				type = v[0];
			if (code == 3 && len >= 4)
				std::memcpy(router.data(), v, 4);
			if (code == 1 && len == 4)
				std::memcpy(mask.data(), v, 4);
			i += 2 + len;
		}
		expect(type == 2, "DHCP: message type OFFER (got " + std::to_string(type) + ")");
		expect(router == gateway_ip, "DHCP: router 10.0.2.2");
		expect(mask == (std::array<uint8_t, 4>{255, 255, 255, 0}), "DHCP: netmask 255.255.255.0");
		return;
	}
	expect(false, "DHCP: an answer among " + std::to_string(out.size()) + " frames");
}

// A UDP socket on the host's 127.0.0.1, closed on scope exit.
struct UdpSocket {
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	uint16_t port = 0;

	UdpSocket()
	{
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(a);
		if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) < 0 ||
		    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) < 0)
			throw passt_cxx::Error(std::string("UDP socket: ") + std::strerror(errno));
		port = ntohs(a.sin_port);
	}
	~UdpSocket() { close(fd); }
	UdpSocket(const UdpSocket &) = delete;
	UdpSocket &operator=(const UdpSocket &) = delete;
};

void check_udp(passt_cxx::Instance &inst, std::vector<Frame> &out)
{
	UdpSocket host;
	const Frame ping{'p', 'i', 'n', 'g'}, pong{'p', 'o', 'n', 'g'};
	out.clear();
	inst.input(udp_frame(our_mac, guest_ip, gateway_ip, guest_udp_port, host.port, ping));

	bool host_got_ping = false, guest_got_pong = false;
	const uint64_t give_up = passt_cxx::now_ns() + 5000000000u;
	int timeout = inst.process();
	while (!guest_got_pong && passt_cxx::now_ns() < give_up) {
		pollfd fds[2] = {{inst.fd(), POLLIN, 0}, {host.fd, POLLIN, 0}};
		// The library's deadline, capped so that the give-up check runs.
		poll(fds, 2, timeout < 0 || timeout > 100 ? 100 : timeout);
		if (fds[1].revents & POLLIN) {
			uint8_t buf[64];
			sockaddr_in from{};
			socklen_t len = sizeof(from);
			ssize_t n = recvfrom(host.fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr *>(&from), &len);
			if (n == 4 && std::memcmp(buf, "ping", 4) == 0) {
				host_got_ping = true;
				sendto(host.fd, pong.data(), pong.size(), 0, reinterpret_cast<sockaddr *>(&from), len);
			}
		}
		timeout = inst.process();
		for (const Frame &f : out) {
			uint16_t sport = 0, dport = 0;
			if (is_ipv4_udp(f) && udp_payload(f, sport, dport) == pong && sport == host.port &&
			    dport == guest_udp_port && std::memcmp(&f[ETH + 12], gateway_ip.data(), 4) == 0 &&
			    std::memcmp(&f[ETH + 16], guest_ip.data(), 4) == 0)
				guest_got_pong = true;
		}
	}
	expect(host_got_ping, "UDP: the guest's datagram reached 127.0.0.1:" + std::to_string(host.port));
	expect(guest_got_pong, "UDP: the answer came back from 10.0.2.2 as a frame");
}

} // namespace

int main()
{
	try {
		passt_cxx::Config config;
		config.set("frames").set("address", "10.0.2.15").set("netmask", "24").set("gateway", "10.0.2.2");
		config.set("mac-addr", "02:00:00:aa:bb:cc");
		passt_cxx::Instance inst(config);

		std::vector<Frame> out;
		inst.on_frame([&out](const uint8_t *data, size_t len) { out.emplace_back(data, data + len); });

		std::printf("frames-cxx: libpasst %s\n", passt_version());
		check_arp(inst, out);
		check_dhcp(inst, out);
		check_udp(inst, out);
	} catch (const std::exception &e) {
		std::printf("FAIL: %s\n", e.what());
		return 1;
	}
	std::printf("frames-cxx: %s\n", failures ? "FAILED" : "all checks passed");
	return failures ? 1 : 0;
}
