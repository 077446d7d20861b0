/*
 * A paced UDP sender and a counting receiver for link benchmarks (benchmarks/link_fidelity.py).
 *
 *   udpflood send ADDR PORT RATE_PPS SECONDS SIZE BATCH [TCLASS]
 *       sends SIZE-byte datagrams (payload: sequence number, CLOCK_REALTIME send time in ns)
 *       at RATE_PPS (0: as fast as it can) in sendmmsg batches of BATCH, with IPv6 traffic
 *       class TCLASS (DSCP << 2); prints JSON.
 *   udpflood recv PORT SECONDS DELAY_MS
 *       counts datagrams for SECONDS; one-way delay = kernel receive time (SO_TIMESTAMPNS,
 *       CLOCK_REALTIME: every namespace shares the clock) - send time; compared with DELAY_MS:
 *       `early` (one-way delay below the configured delay: must be 0) and late by > 1 / 5 ms;
 *       prints JSON.
 *   udpflood ping ADDR COUNT INTERVAL_US SIZE
 *       ICMPv6 echo requests (raw socket, SIZE bytes of ICMPv6), one every INTERVAL_US; prints
 *       the round-trip times in microseconds (send: CLOCK_REALTIME just before sendto;
 *       receipt: the reply's SO_TIMESTAMPNS), -1 for a lost one. ping(8) prints 0.1 ms
 *       steps above 10 ms; this gives 1 us, and B's kernel answers, as to ping.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#define NS 1000000000LL
#define MAX_BATCH 256
#define HIST_US 2000000  /* one-way delay histogram: 1 us bins up to 2 s */

static int64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * NS + ts.tv_nsec;
}

static int sender(int argc, char **argv)
{
	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: udpflood send ADDR PORT RATE_PPS SECONDS SIZE BATCH [TCLASS]\n");
		return 2;
	}
	const char *addr = argv[2];
	int port = atoi(argv[3]);
	double rate = atof(argv[4]), seconds = atof(argv[5]);
	int size = atoi(argv[6]), batch = atoi(argv[7]);
	if (size < 16)
		size = 16;
	if (batch < 1)
		batch = 1;
	if (batch > MAX_BATCH)
		batch = MAX_BATCH;
	struct sockaddr_in6 dst = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	if (inet_pton(AF_INET6, addr, &dst.sin6_addr) != 1) {
		fprintf(stderr, "udpflood: bad IPv6 address %s\n", addr);
		return 2;
	}
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	int sndbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
	if (argc == 9) {
		int tclass = atoi(argv[8]);
		setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof(tclass));
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		perror("udpflood: connect");
		return 1;
	}
	static uint8_t payload[MAX_BATCH][9000];
	static struct mmsghdr msgs[MAX_BATCH];
	static struct iovec iov[MAX_BATCH];
	if (size > 9000)
		size = 9000;
	for (int i = 0; i < batch; i++) {
		iov[i].iov_base = payload[i];
		iov[i].iov_len = size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	uint64_t seq = 0, errors = 0, stalled = 0;
	int64_t max_stall = 0;
	int64_t start = now_ns(CLOCK_MONOTONIC), end = start + (int64_t)(seconds * NS);
	for (;;) {
		int64_t now = now_ns(CLOCK_MONOTONIC);
		if (now >= end)
			break;
		if (rate > 0) {
			int64_t target = start + (int64_t)((double)seq / rate * NS);
			if (target > now) {
				struct timespec ts = {target / NS, target % NS};
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			}
		}
		int64_t stamp = now_ns(CLOCK_REALTIME);
		for (int i = 0; i < batch; i++) {
			uint64_t s = seq + i;
			memcpy(payload[i], &s, 8);
			memcpy(payload[i] + 8, &stamp, 8);
		}
		int sent = sendmmsg(fd, msgs, batch, 0);
		int64_t stall = now_ns(CLOCK_REALTIME) - stamp;  /* stamped this long before the call returned */
		if (sent > 0 && stall > 1000000)
			stalled += sent;
		if (stall > max_stall)
			max_stall = stall;
		if (sent < 0) {
			errors++;
			if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR) {
				perror("udpflood: sendmmsg");
				return 1;
			}
			continue;
		}
		seq += sent;
	}
	double elapsed = (double)(now_ns(CLOCK_MONOTONIC) - start) / NS;
	/* stalled: datagrams whose send time was stamped > 1 ms before sendmmsg returned (the sender
	 * lost the CPU in between): their one-way delay includes that wait */
	printf("{\"sent\": %llu, \"seconds\": %.6f, \"pps\": %.1f, \"send_errors\": %llu, "
	       "\"stalled_over_1ms\": %llu, \"max_stall_us\": %.1f}\n",
	       (unsigned long long)seq, elapsed, seq / elapsed, (unsigned long long)errors,
	       (unsigned long long)stalled, max_stall / 1000.0);
	return 0;
}

static int percentile_us(const uint32_t *hist, uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)total), seen = 0;
	for (int i = 0; i < HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return i;
	}
	return HIST_US;
}

static int receiver(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: udpflood recv PORT SECONDS DELAY_MS\n");
		return 2;
	}
	int port = atoi(argv[2]);
	double seconds = atof(argv[3]);
	int64_t delay_ns = (int64_t)(atof(argv[4]) * 1e6);
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	int one = 1, rcvbuf = 32 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	struct sockaddr_in6 local = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		perror("udpflood: bind");
		return 1;
	}
	struct timeval tv = {0, 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	printf("listening\n");
	fflush(stdout);
	uint32_t *hist = calloc(HIST_US + 1, sizeof(uint32_t));
	uint64_t seen_cap = 1 << 20;
	uint8_t *seen = calloc(seen_cap / 8, 1);
	static uint8_t buffers[64][9216];
	static char control[64][256];
	static struct mmsghdr msgs[64];
	static struct iovec iov[64];
	uint64_t received = 0, duplicates = 0, reordered = 0, early = 0, late1 = 0, late5 = 0, max_seq = 0;
	uint64_t socket_drops = 0, unique = 0;
	int64_t min_owd = INT64_MAX, max_owd = 0;
	int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * NS);
	while (now_ns(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < 64; i++) {
			iov[i].iov_base = buffers[i];
			iov[i].iov_len = sizeof(buffers[i]);
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_control = control[i];
			msgs[i].msg_hdr.msg_controllen = sizeof(control[i]);
		}
		int n = recvmmsg(fd, msgs, 64, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_len < 16)
				continue;
			uint64_t seq;
			int64_t sent_ns, rx_ns = now_ns(CLOCK_REALTIME);
			memcpy(&seq, buffers[i], 8);
			memcpy(&sent_ns, buffers[i] + 8, 8);
			struct msghdr *h = &msgs[i].msg_hdr;
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm)) {
				if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
					struct timespec ts;
					memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
					rx_ns = ts.tv_sec * NS + ts.tv_nsec;
				} else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
					uint32_t drops;
					memcpy(&drops, CMSG_DATA(cm), sizeof(drops));
					socket_drops = drops;
				}
			}
			received++;
			while (seq >= seen_cap) {
				uint8_t *bigger = calloc(seen_cap / 4, 1);
				memcpy(bigger, seen, seen_cap / 8);
				free(seen);
				seen = bigger;
				seen_cap *= 2;
			}
			if (seen[seq / 8] & (1 << (seq % 8))) {
				duplicates++;
				continue;
			}
			seen[seq / 8] |= 1 << (seq % 8);
			unique++;
			if (seq < max_seq)
				reordered++;
			else
				max_seq = seq;
			int64_t owd = rx_ns - sent_ns;
			if (owd < delay_ns)
				early++;
			if (owd - delay_ns > 1000000)
				late1++;
			if (owd - delay_ns > 5000000)
				late5++;
			if (owd < min_owd)
				min_owd = owd;
			if (owd > max_owd)
				max_owd = owd;
			int64_t us = owd / 1000;
			hist[us < 0 ? 0 : us > HIST_US ? HIST_US : us]++;
		}
	}
	printf("{\"received\": %llu, \"unique\": %llu, \"duplicates\": %llu, \"reordered\": %llu, "
	       "\"max_seq\": %llu, \"early\": %llu, \"late_over_1ms\": %llu, \"late_over_5ms\": %llu, "
	       "\"receiver_socket_drops\": %llu, \"owd_min_us\": %.1f, \"owd_p50_us\": %d, \"owd_p99_us\": %d, "
	       "\"owd_p999_us\": %d, \"owd_max_us\": %.1f}\n",
	       (unsigned long long)received, (unsigned long long)unique, (unsigned long long)duplicates,
	       (unsigned long long)reordered, (unsigned long long)max_seq, (unsigned long long)early,
	       (unsigned long long)late1, (unsigned long long)late5, (unsigned long long)socket_drops,
	       unique ? min_owd / 1000.0 : 0.0, percentile_us(hist, unique, 0.5), percentile_us(hist, unique, 0.99),
	       percentile_us(hist, unique, 0.999), unique ? max_owd / 1000.0 : 0.0);
	return 0;
}

static int ping(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: udpflood ping ADDR COUNT INTERVAL_US SIZE\n");
		return 2;
	}
	struct sockaddr_in6 dst = {.sin6_family = AF_INET6};
	if (inet_pton(AF_INET6, argv[2], &dst.sin6_addr) != 1) {
		fprintf(stderr, "udpflood: bad IPv6 address %s\n", argv[2]);
		return 2;
	}
	int count = atoi(argv[3]), size = atoi(argv[5]);
	int64_t interval = (int64_t)(atof(argv[4]) * 1000);
	if (size < 24)
		size = 24;
	if (size > 9000)
		size = 9000;
	/* a raw ICMPv6 socket: B's kernel answers, no process there; the kernel fills the checksum */
	int fd = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	if (fd < 0) {
		perror("udpflood: raw ICMPv6 socket (needs root)");
		return 1;
	}
	struct icmp6_filter filter;
	ICMP6_FILTER_SETBLOCKALL(&filter);
	ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
	setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
	int one = 1, rcvbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	uint16_t ident = (uint16_t)getpid();
	int64_t *rtts = malloc(sizeof(int64_t) * (count > 0 ? count : 1));
	for (int i = 0; i < count; i++)
		rtts[i] = -1;
	static uint8_t data[9216], reply[9216];
	char control[256];
	int sent = 0, received = 0;
	int64_t start = now_ns(CLOCK_MONOTONIC), last_send = start;
	for (;;) {
		int64_t now = now_ns(CLOCK_MONOTONIC);
		if (sent < count && now >= start + sent * interval) {
			struct icmp6_hdr *h = (struct icmp6_hdr *)data;
			memset(h, 0, sizeof(*h));
			h->icmp6_type = ICMP6_ECHO_REQUEST;
			h->icmp6_id = htons(ident);
			h->icmp6_seq = htons((uint16_t)sent);
			uint64_t seq = (uint64_t)sent;
			int64_t stamp = now_ns(CLOCK_REALTIME);
			memcpy(data + 8, &seq, 8);
			memcpy(data + 16, &stamp, 8);
			sendto(fd, data, size, 0, (struct sockaddr *)&dst, sizeof(dst));
			sent++;
			last_send = now_ns(CLOCK_MONOTONIC);
			continue;
		}
		if ((sent >= count && now > last_send + 2 * NS) || (sent >= count && received >= count))
			break;
		int64_t wait_ns = sent < count ? start + sent * interval - now : last_send + 2 * NS - now;
		struct timespec ts = {wait_ns / NS, wait_ns % NS};
		struct pollfd pfd = {fd, POLLIN, 0};
		if (ppoll(&pfd, 1, &ts, NULL) <= 0)
			continue;
		for (;;) {
			struct iovec iov = {reply, sizeof(reply)};
			struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
					   .msg_controllen = sizeof(control)};
			ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
			if (n < 0)
				break;
			struct icmp6_hdr *h = (struct icmp6_hdr *)reply;
			if (n < 24 || h->icmp6_type != ICMP6_ECHO_REPLY || ntohs(h->icmp6_id) != ident)
				continue;
			int64_t rx = now_ns(CLOCK_REALTIME);
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
				if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
					struct timespec t;
					memcpy(&t, CMSG_DATA(cm), sizeof(t));
					rx = t.tv_sec * NS + t.tv_nsec;
				}
			uint64_t seq;
			int64_t stamp;
			memcpy(&seq, reply + 8, 8);
			memcpy(&stamp, reply + 16, 8);
			if (seq < (uint64_t)count && rtts[seq] < 0) {
				rtts[seq] = rx - stamp;
				received++;
			}
		}
	}
	printf("{\"sent\": %d, \"rtt_us\": [", sent);
	for (int i = 0; i < count; i++)
		printf("%s%.1f", i ? ", " : "", rtts[i] < 0 ? -1.0 : rtts[i] / 1000.0);
	printf("]}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "send"))
		return sender(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "recv"))
		return receiver(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "ping"))
		return ping(argc, argv);
	fprintf(stderr, "usage: udpflood send ADDR PORT RATE_PPS SECONDS SIZE BATCH [TCLASS] | recv PORT SECONDS DELAY_MS"
		" | ping ADDR COUNT INTERVAL_US SIZE\n");
	return 2;
}
