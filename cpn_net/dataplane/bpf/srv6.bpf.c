// SPDX-License-Identifier: GPL-2.0
/*
 * cpn_net's SRv6 data plane in eBPF, for kernels built without seg6 (CONFIG_IPV6_SEG6_LWTUNNEL).
 *
 * Two tc (clsact) programs per router interface, with the Linux stack doing the forwarding
 * around them (hop limit, ICMPv6 errors, neighbours, IOAM transit, policy routing):
 *
 * cpn_sid   (ingress): the local SIDs (RFC 8986 §4): End, End.X, End.DX6, End.DT6 and
 *           End.B6.Encaps. End and End.X rewrite the destination and decrement Segments
 *           Left; End.DX6 / End.DT6 pop the outer IPv6 header (and its SRH); End.B6.Encaps
 *           advances the SRH and pushes a new outer header with the bound list. The
 *           behaviour's choice of neighbour or table is handed to Linux policy routing as
 *           skb->mark (an `ip -6 rule fwmark M lookup T` the driver installs). Hosts may not
 *           address the delivering SIDs (End.DX6, End.DT6, End.B6.Encaps) once the SR domain
 *           boundary is on.
 * cpn_encap (egress): H.Encaps / H.Encaps.Red (RFC 8986 §5). A policy route is a plain
 *           kernel route towards the first segment's neighbour whose metric names the policy:
 *           the program asks the FIB which route the stack used (bpf_fib_lookup with the
 *           packet's input interface, addresses, ports and mark gives the same rules, tables
 *           and route) and pushes that route's prebuilt outer IPv6 header and SRH.
 *
 * Maps (pinned per router by bpftool; written from Python by cpn_net's eBPF driver):
 *   cpn_sids     hash   in6 address -> struct sid_entry
 *   cpn_encaps   hash   u32 (route metric, or a binding SID's key) -> struct encap_entry
 *   cpn_prefixes lpm    destination prefixes of policy routes (the egress pre-filter)
 *   cpn_hosts    hash   host addresses, for the SR domain boundary
 *   cpn_config   array  [0] = struct config
 *   cpn_stats    percpu array of u64 counters (enum stat)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SEGS 16
#define MAX_HDR (40 + 8 + 16 * MAX_SEGS)
#define MAX_PASSES 4 /* local SIDs one packet may visit at one router */

#define NEXTHDR_HOP 0
#define NEXTHDR_TCP 6
#define NEXTHDR_UDP 17
#define NEXTHDR_IPV6 41
#define NEXTHDR_ROUTING 43
#define NEXTHDR_SCTP 132
#define SRH_TYPE 4

#define FIB_LOOKUP_MARK (1U << 5) /* BPF_FIB_LOOKUP_MARK, Linux 6.10 */

enum action { ACT_END = 1, ACT_END_X = 2, ACT_END_DX6 = 3, ACT_END_DT6 = 4, ACT_END_B6_ENCAPS = 5 };
#define SID_DELIVERING 1 /* hosts may not address it when the boundary is on */

enum stat {
	STAT_END, STAT_END_X, STAT_END_DX6, STAT_END_DT6, STAT_END_B6, STAT_ENCAP,
	STAT_DROP_NO_SRH, STAT_DROP_SL, STAT_DROP_PROTO, STAT_DROP_BOUNDARY, STAT_DROP_ERROR,
	STAT_FIB_MISS, STAT_MAX,
};

struct sid_entry {
	__u8 action;
	__u8 flags;
	__u16 pad;
	__u32 mark;   /* skb->mark for the driver's fwmark rule (0: main table) */
	__u32 encap;  /* End.B6.Encaps: key of the bound list in cpn_encaps */
};

struct encap_entry {
	__u16 len;    /* bytes of hdr in use: outer IPv6 header + SRH */
	__u16 pad;
	__u32 pad2;
	__u8 hdr[MAX_HDR]; /* outer IPv6 header (payload length = SRH only) + SRH */
};

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct config {
	__u32 boundary; /* 1: drop host packets to delivering SIDs */
};

/* struct bpf_fib_lookup as of Linux 6.10, with the mark input (older uapi headers lack it) */
struct fib_params {
	__u8 family;
	__u8 l4_protocol;
	__be16 sport;
	__be16 dport;
	__u16 tot_len;
	__u32 ifindex;
	union {
		__be32 flowinfo;
		__u32 rt_metric;
	};
	__u32 src[4];
	__u32 dst[4];
	__u32 tbid;
	__u32 mark;
	__u8 pad[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in6_addr);
	__type(value, struct sid_entry);
} cpn_sids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct encap_entry);
} cpn_encaps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} cpn_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct in6_addr);
	__type(value, __u8);
} cpn_hosts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} cpn_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cpn_stats SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *value = bpf_map_lookup_elem(&cpn_stats, &what);

	if (value)
		*value += 1;
}

static __always_inline int drop(__u32 why)
{
	count(why);
	return TC_ACT_SHOT;
}

#define ETH_OFF sizeof(struct ethhdr)
#define IP6_OFF(field) (ETH_OFF + __builtin_offsetof(struct ipv6hdr, field))

/* Where the SRH starts (0: none) and which header follows the fixed IPv6 header and its
 * hop-by-hop options. */
struct layout {
	__u32 srh;       /* offset of the SRH, 0 if absent */
	__u32 after;     /* offset of what follows the SRH (or the last extension parsed) */
	__u8 nexthdr;    /* protocol at `after` */
	__u8 sl;         /* Segments Left */
	__u8 last_entry;
};

static __always_inline int parse(struct __sk_buff *skb, struct layout *l)
{
	__u8 nexthdr;
	__u32 off = ETH_OFF + sizeof(struct ipv6hdr);
	__u8 ext[8];

	if (bpf_skb_load_bytes(skb, IP6_OFF(nexthdr), &nexthdr, 1) < 0)
		return -1;
	l->srh = 0;
	if (nexthdr == NEXTHDR_HOP) {
		if (bpf_skb_load_bytes(skb, off, ext, 2) < 0)
			return -1;
		nexthdr = ext[0];
		off += ((__u32)ext[1] + 1) * 8;
	}
	if (nexthdr == NEXTHDR_ROUTING) {
		if (bpf_skb_load_bytes(skb, off, ext, 8) < 0)
			return -1;
		if (ext[2] == SRH_TYPE) {
			l->srh = off;
			l->sl = ext[3];
			l->last_entry = ext[4];
			nexthdr = ext[0];
			off += ((__u32)ext[1] + 1) * 8;
		}
	}
	l->after = off;
	l->nexthdr = nexthdr;
	return 0;
}

/* End's header operation (RFC 8986 §4.1): Segments Left - 1, destination = the new active
 * segment. */
static __always_inline int advance(struct __sk_buff *skb, struct layout *l)
{
	struct in6_addr next;
	__u8 sl;

	if (!l->srh)
		return drop(STAT_DROP_NO_SRH);
	if (l->sl == 0 || l->sl - 1 > l->last_entry)
		return drop(STAT_DROP_SL);
	sl = l->sl - 1;
	if (bpf_skb_load_bytes(skb, l->srh + 8 + (__u32)sl * 16, &next, sizeof(next)) < 0)
		return drop(STAT_DROP_ERROR);
	if (bpf_skb_store_bytes(skb, l->srh + 3, &sl, 1, 0) < 0 ||
	    bpf_skb_store_bytes(skb, IP6_OFF(daddr), &next, sizeof(next), 0) < 0)
		return drop(STAT_DROP_ERROR);
	l->sl = sl;
	return TC_ACT_OK;
}

/* Pop the outer IPv6 header and its extension headers (End.DX6, End.DT6). */
static __always_inline int decapsulate(struct __sk_buff *skb, struct layout *l)
{
	if (l->srh && l->sl != 0)
		return drop(STAT_DROP_SL);
	if (l->nexthdr != NEXTHDR_IPV6)
		return drop(STAT_DROP_PROTO);
	if (bpf_skb_adjust_room(skb, -(__s32)(l->after - ETH_OFF), BPF_ADJ_ROOM_MAC, 0) < 0)
		return drop(STAT_DROP_ERROR);
	return TC_ACT_OK;
}

/* Push e's outer IPv6 header and SRH in front of the IPv6 packet (H.Encaps, End.B6.Encaps).
 * The traffic class, flow label and hop limit come from the inner header, as Linux's seg6 does
 * (seg6_do_srh_encap). */
static __always_inline int encapsulate(struct __sk_buff *skb, struct encap_entry *e)
{
	__u64 len = e->len;
	__u32 first;
	__u16 inner_len, payload;
	__u8 hop_limit;

	/* Two checks kept apart, so that clang does not fold them into one range test on a
	 * copy of len: the verifier must see the register the helpers get bounded. */
	asm volatile("" : "+r"(len));
	if (len > MAX_HDR)
		return drop(STAT_DROP_ERROR);
	asm volatile("" : "+r"(len));
	if (len < sizeof(struct ipv6hdr))
		return drop(STAT_DROP_ERROR);
	if (bpf_skb_load_bytes(skb, ETH_OFF, &first, 4) < 0 ||
	    bpf_skb_load_bytes(skb, IP6_OFF(payload_len), &inner_len, 2) < 0 ||
	    bpf_skb_load_bytes(skb, IP6_OFF(hop_limit), &hop_limit, 1) < 0)
		return drop(STAT_DROP_ERROR);
	/* outer payload = inner header + inner payload + SRH = inner payload + len */
	payload = bpf_htons(bpf_ntohs(inner_len) + len);
	if (bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) < 0)
		return drop(STAT_DROP_ERROR);
	if (bpf_skb_store_bytes(skb, ETH_OFF, e->hdr, len, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_OFF, &first, 4, 0) < 0 ||
	    bpf_skb_store_bytes(skb, IP6_OFF(payload_len), &payload, 2, 0) < 0 ||
	    bpf_skb_store_bytes(skb, IP6_OFF(hop_limit), &hop_limit, 1, 0) < 0)
		return drop(STAT_DROP_ERROR);
	return TC_ACT_OK;
}

static __always_inline int is_ipv6(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IPV6);
}

SEC("tc")
int cpn_sid(struct __sk_buff *skb)
{
	struct in6_addr daddr, saddr;
	struct layout l = {};
	struct sid_entry *sid;
	struct encap_entry *e;
	struct config *cfg;
	__u32 zero = 0;
	int pass, rc;

	if (!is_ipv6(skb))
		return TC_ACT_OK;
	for (pass = 0; pass < MAX_PASSES; pass++) {
		if (bpf_skb_load_bytes(skb, IP6_OFF(daddr), &daddr, sizeof(daddr)) < 0)
			return TC_ACT_OK;
		sid = bpf_map_lookup_elem(&cpn_sids, &daddr);
		if (!sid)
			return TC_ACT_OK;
		if (sid->flags & SID_DELIVERING) {
			cfg = bpf_map_lookup_elem(&cpn_config, &zero);
			if (cfg && cfg->boundary &&
			    bpf_skb_load_bytes(skb, IP6_OFF(saddr), &saddr, sizeof(saddr)) == 0 &&
			    bpf_map_lookup_elem(&cpn_hosts, &saddr))
				return drop(STAT_DROP_BOUNDARY);
		}
		if (parse(skb, &l) < 0)
			return drop(STAT_DROP_ERROR);
		switch (sid->action) {
		case ACT_END:
		case ACT_END_X:
			rc = advance(skb, &l);
			if (rc != TC_ACT_OK)
				return rc;
			count(sid->action == ACT_END ? STAT_END : STAT_END_X);
			if (sid->mark)
				skb->mark = sid->mark;
			break;
		case ACT_END_DX6:
		case ACT_END_DT6:
			rc = decapsulate(skb, &l);
			if (rc != TC_ACT_OK)
				return rc;
			count(sid->action == ACT_END_DX6 ? STAT_END_DX6 : STAT_END_DT6);
			skb->mark = sid->mark;
			break;
		case ACT_END_B6_ENCAPS:
			rc = advance(skb, &l);
			if (rc != TC_ACT_OK)
				return rc;
			e = bpf_map_lookup_elem(&cpn_encaps, &sid->encap);
			if (!e)
				return drop(STAT_DROP_ERROR);
			rc = encapsulate(skb, e);
			if (rc != TC_ACT_OK)
				return rc;
			count(STAT_END_B6);
			break;
		default:
			return drop(STAT_DROP_ERROR);
		}
	}
	return TC_ACT_OK;
}

SEC("tc")
int cpn_encap(struct __sk_buff *skb)
{
	struct fib_params p = {};
	struct lpm_key key = {.prefixlen = 128};
	struct encap_entry *e;
	__u8 nexthdr;
	__u32 first;
	__be16 ports[2];
	int rc;

	if (!is_ipv6(skb))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, IP6_OFF(daddr), key.addr, 16) < 0)
		return TC_ACT_OK;
	if (!bpf_map_lookup_elem(&cpn_prefixes, &key))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_OFF, &first, 4) < 0 ||
	    bpf_skb_load_bytes(skb, IP6_OFF(nexthdr), &nexthdr, 1) < 0 ||
	    bpf_skb_load_bytes(skb, IP6_OFF(saddr), p.src, 16) < 0 ||
	    bpf_skb_load_bytes(skb, IP6_OFF(daddr), p.dst, 16) < 0)
		return TC_ACT_OK;
	p.family = 10; /* AF_INET6 */
	p.l4_protocol = nexthdr;
	if (nexthdr == NEXTHDR_TCP || nexthdr == NEXTHDR_UDP || nexthdr == NEXTHDR_SCTP) {
		if (bpf_skb_load_bytes(skb, ETH_OFF + sizeof(struct ipv6hdr), ports, 4) == 0) {
			p.sport = ports[0];
			p.dport = ports[1];
		}
	}
	p.tot_len = sizeof(struct ipv6hdr); /* no MTU verdict: the stack made it already */
	p.ifindex = skb->ingress_ifindex ? skb->ingress_ifindex : 1; /* locally sent: as from lo */
	p.flowinfo = first & bpf_htonl(0x0FFFFFFF);
	p.mark = skb->mark;
	rc = bpf_fib_lookup(skb, (struct bpf_fib_lookup *)&p, sizeof(p),
			    FIB_LOOKUP_MARK | BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(STAT_FIB_MISS);
		return TC_ACT_OK;
	}
	e = bpf_map_lookup_elem(&cpn_encaps, &p.rt_metric);
	if (!e)
		return TC_ACT_OK;
	rc = encapsulate(skb, e);
	if (rc != TC_ACT_OK)
		return rc;
	count(STAT_ENCAP);
	/* Send it again through this interface's egress: the qdisc (HTB of links and slices) measured
	 * the packet before this hook ran, without the outer header, and would let a shaped link
	 * carry 4 % more than its rate. Redirected, the packet is measured anew; this program passes
	 * it on the second pass (its destination is a SID), and nftables' egress hook skips it. */
	return bpf_redirect(skb->ifindex, 0);
}

char _license[] SEC("license") = "GPL";
