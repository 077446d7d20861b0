/*
 * The native link element: a drop-in replacement for `python -m cpn_net.emulation.wire`.
 *
 * Same command line (--a IF --b IF --control PATH --delay-ms --jitter-ms --loss-pct --seed),
 * same control socket (Unix datagram, JSON {"op": "stats"|"set"|"reset"}), same reply shape and
 * counter names, same semantics:
 *
 *   - delay: every frame waits delay_ms; with jitter_ms > 0 the wait is drawn uniformly from
 *     [delay - jitter, delay + jitter], clamped at 0;
 *   - order: frames leave in arrival order: due = max(arrival + drawn delay, previous due);
 *   - loss: Bernoulli per frame with probability loss_pct / 100 from a seeded generator
 *     (splitmix64), loss drawn before jitter, as the Python element does;
 *   - down: every frame received is dropped and counted apart (dropped_down);
 *   - dropped_c0 / dropped_c1: drops per alternate-marking colour (DSCP 0x20 / 0x21 of IPv6).
 *
 * Timing. Arrival is the kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME),
 * converted to CLOCK_MONOTONIC with an offset sampled at each receive batch, so the time the
 * frame waited in the socket before this process read it is part of its delay, not added to
 * it. Frames wait in one FIFO ring per direction; one loop sleeps until the earliest due time
 * and sends every due frame with sendmmsg. A frame is only handed to sendmmsg once the
 * monotonic clock has passed its due time, so none leaves early; `early` counts any that
 * would (it must stay 0). Lateness (time after sendmmsg returned minus due) is counted against
 * 1 and 5 ms, as the Python element does, and the worst lateness is kept in late_max_us;
 * late_read_over_1ms counts the frames already over 1 ms past due when this process read them
 * (the kernel delivered them late: softirq work deferred under load), so late_over_1ms minus
 * it is the lateness the element itself added.
 *
 * Sleeping. With no frame waiting, or the next departure further than a window away, the loop
 * waits in epoll for the packet sockets and the control socket. Otherwise it does not wake for
 * arriving frames: it sleeps
 * (clock_nanosleep, TIMER_ABSTIME on CLOCK_MONOTONIC: no slack under SCHED_FIFO, 1 ns under
 * nice) until the next departure and reads the sockets at least once per window (the
 * configured delay minus jitter and a 0.2 ms margin, at most 1 ms; control requests wait for
 * that read too). A frame keeps its kernel arrival time, so reading it later changes nothing
 * as long as it is read before it is due, and a steady flow costs one wake-up per departure
 * instead of two per frame, and one read per many frames. When the delay minus jitter is under
 * the margin (delay 0), frames are read as they come (epoll_pwait2 with a nanosecond timeout).
 *
 * Optional --spin-us N wakes N microseconds before every due time and busy-waits the rest (off
 * by default: an idle timer wake-up is a few microseconds late here, and a frame woken for
 * takes the frames that fell due meanwhile along in one sendmmsg; spinning each frame out
 * exactly cost 50 % more CPU at 220k packets/s).
 *
 * Scheduling: SCHED_FIFO priority 10 (--rt P to change, --rt 0 for nice -10 only), because
 * with two CPU-bound processes on this 2-core machine a nice -10 task still waited up to 4-12 ms
 * for the CPU after its timer fired (p99 0.5-4 ms), a SCHED_FIFO one under 1 ms (p99 < 25 us). It falls back to
 * nice -10 (as the Python element) while flooded: busy 50 ms without sleeping, or more than
 * half of a 100 ms window; it takes SCHED_FIFO again once under a quarter. So a flooded
 * element shares its core fairly instead of starving the machine.
 *
 * Build: python -m cpn_net.emulation.native.build (gcc -O2, output in build/native/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef SO_TIMESTAMPNS
#define SO_TIMESTAMPNS 35
#endif

#define BATCH 64                 /* frames per recvmmsg / sendmmsg */
#define RX_BATCHES_PER_WAKE 8    /* then look at the timer again */
#define FRAME_MAX 65536          /* a receive buffer: jumbo frames (9000 + headers) and more */
#define SOCKET_BUFFER (8 << 20)
#define QUEUE_MAX_FRAMES (1u << 20)
#define DEFAULT_QUEUE_MB 256
#define CONTROL_MAX 65536
#define NS_PER_S 1000000000LL
#define LATENESS_EWMA_GAIN 0.05
#define DEFAULT_RT_PRIORITY 10
#define RT_FLOOD_NS (50 * 1000000LL)   /* busy this long without a sleep: leave SCHED_FIFO at once */
#define RT_WINDOW_NS (100 * 1000000LL) /* busy fraction measured over windows this long: */
#define RT_MAX_BUSY 0.5                /* above it, leave SCHED_FIFO (nice -10 shares the core fairly) */
#define RT_RESUME_BUSY 0.25            /* below it, take SCHED_FIFO again */
#define SLEPT_NS 2000                  /* a wait this long blocked (a context switch): a sleep */
#define MAX_DELAY_S 1e6                /* delays are clamped here (int64 nanoseconds) */
#define RX_MARGIN_NS 200000            /* read deferred frames at least this long before they are due */
#define RX_DEFER_MAX_NS 1000000        /* and never leave them in the socket longer than this */
#define ELEMENT_NICE (-10)

/* ------------------------------------------------------------------ counters */
/* Names and order as the Python element's new_counters(), then the native element's own. */
#define COUNTERS(X) \
	X(received) X(forwarded) X(dropped_loss) X(dropped_down) X(send_errors) X(receive_errors) \
	X(dropped_c0) X(dropped_c1) X(late_over_1ms) X(late_over_5ms) X(early) X(dropped_queue) \
	X(late_max_us) X(late_read_over_1ms)

struct counters {
#define FIELD(name) uint64_t name;
	COUNTERS(FIELD)
#undef FIELD
};

static const char *DIRECTION_NAMES[2] = {"ab", "ba"};

struct settings {
	double delay_ms, jitter_ms, loss_pct;
	int down;
};

struct frame {
	int64_t due_ns;
	uint32_t len;
	uint8_t *data;
};

struct queue {
	struct frame *ring;
	uint32_t cap, head, count;  /* cap: a power of two */
	uint64_t bytes, max_bytes;
	int64_t last_due_ns;
};

struct element {
	int fd[2];              /* packet sockets: side a, side b */
	char intf[2][IF_NAMESIZE];
	int control, epoll;
	const char *control_path;
	struct settings settings;
	struct counters counters[2];   /* [0] = ab (a -> b), [1] = ba */
	struct queue queue[2];         /* [0] frames going out of b, [1] out of a */
	uint64_t rng;
	double lateness_ns;     /* EWMA of how late a timed sleep wakes us */
	int64_t clock_offset_ns;  /* CLOCK_REALTIME - CLOCK_MONOTONIC at the last receive */
	int64_t spin_ns;
	int rt_priority;        /* 0: nice -10 only */
	int rt_active;
	int64_t slept_at_ns;    /* when the loop last woke from a real sleep */
	int64_t window_start_ns, window_slept_ns;  /* busy fraction of the current window */
	uint64_t rt_demotions;
};

static volatile sig_atomic_t stopping;

/* ------------------------------------------------------------------ clocks */
static inline int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static inline int64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* ------------------------------------------------------------------ random */
static inline uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static inline double uniform01(uint64_t *state)  /* [0, 1) with 53 random bits */
{
	return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------------ frames */
/* Alternate-marking colour of an Ethernet frame carrying IPv6: 0, 1, or -1 (not monitored). */
static inline int colour_of_frame(const uint8_t *f, uint32_t len)
{
	if (len < 16 || f[12] != 0x86 || f[13] != 0xdd)
		return -1;
	unsigned traffic_class = ((f[14] & 0x0f) << 4) | (f[15] >> 4);
	unsigned dscp = traffic_class >> 2;
	if (!(dscp & 0x20))
		return -1;
	return dscp & 1;
}

static inline void count_colour_drop(struct counters *c, const uint8_t *f, uint32_t len)
{
	int colour = colour_of_frame(f, len);
	if (colour == 0)
		c->dropped_c0++;
	else if (colour == 1)
		c->dropped_c1++;
}

/* ------------------------------------------------------------------ queues */
static int queue_push(struct queue *q, const uint8_t *data, uint32_t len, int64_t due_ns)
{
	if (q->count == q->cap) {
		if (q->cap >= QUEUE_MAX_FRAMES)
			return -1;
		uint32_t cap = q->cap ? q->cap * 2 : 1024;
		struct frame *ring = malloc(sizeof(*ring) * cap);
		if (!ring)
			return -1;
		for (uint32_t i = 0; i < q->count; i++)
			ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
		free(q->ring);
		q->ring = ring;
		q->cap = cap;
		q->head = 0;
	}
	if (q->bytes + len > q->max_bytes)
		return -1;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -1;
	memcpy(copy, data, len);
	struct frame *slot = &q->ring[(q->head + q->count) & (q->cap - 1)];
	slot->due_ns = due_ns;
	slot->len = len;
	slot->data = copy;
	q->count++;
	q->bytes += len;
	return 0;
}

static inline struct frame *queue_at(struct queue *q, uint32_t i)
{
	return &q->ring[(q->head + i) & (q->cap - 1)];
}

static inline void queue_pop(struct queue *q)
{
	struct frame *f = queue_at(q, 0);
	q->bytes -= f->len;
	free(f->data);
	f->data = NULL;
	q->head = (q->head + 1) & (q->cap - 1);
	q->count--;
}

/* ------------------------------------------------------------------ decisions */
static void enqueue(struct element *e, int dir, const uint8_t *frame, uint32_t len, int64_t arrival_ns,
		    int64_t read_ns)
{
	struct counters *c = &e->counters[dir];
	struct queue *q = &e->queue[dir];
	const struct settings *s = &e->settings;
	c->received++;
	if (s->down) {
		c->dropped_down++;
		count_colour_drop(c, frame, len);
		return;
	}
	if (s->loss_pct > 0 && uniform01(&e->rng) * 100.0 < s->loss_pct) {
		c->dropped_loss++;
		count_colour_drop(c, frame, len);
		return;
	}
	double delay_s = s->delay_ms < MAX_DELAY_S * 1000.0 ? s->delay_ms / 1000.0 : MAX_DELAY_S;
	if (s->jitter_ms > 0) {
		double jitter_s = s->jitter_ms / 1000.0;
		delay_s += -jitter_s + 2.0 * jitter_s * uniform01(&e->rng);  /* random.uniform(-j, j) */
		if (delay_s < 0)
			delay_s = 0;
		if (delay_s > 2 * MAX_DELAY_S)
			delay_s = 2 * MAX_DELAY_S;
	}
	int64_t due = arrival_ns + (int64_t)llround(delay_s * 1e9);
	if (due < q->last_due_ns)
		due = q->last_due_ns;  /* never overtake the frame before */
	if (read_ns - due > 1000000)
		c->late_read_over_1ms++;  /* reached this process too late already (the kernel held it) */
	if (queue_push(q, frame, len, due) < 0) {
		c->dropped_queue++;
		count_colour_drop(c, frame, len);
		return;
	}
	q->last_due_ns = due;
}

/* ------------------------------------------------------------------ sending */
static void count_departure(struct counters *c, int64_t late_ns)
{
	c->forwarded++;
	if (late_ns > 1000000)
		c->late_over_1ms++;
	if (late_ns > 5000000)
		c->late_over_5ms++;
	if (late_ns > 0 && (uint64_t)(late_ns / 1000) > c->late_max_us)
		c->late_max_us = (uint64_t)(late_ns / 1000);
}

/* Send every frame of direction `dir` that is due at `now`; returns how many left the queue. */
static int transmit_direction(struct element *e, int dir, int64_t now)
{
	static struct mmsghdr msgs[BATCH];
	static struct iovec iov[BATCH];
	struct queue *q = &e->queue[dir];
	struct counters *c = &e->counters[dir];
	int out_fd = e->fd[dir == 0 ? 1 : 0];
	int total = 0;
	while (q->count) {
		uint32_t k = 0;
		while (k < q->count && k < BATCH && queue_at(q, k)->due_ns <= now) {
			struct frame *f = queue_at(q, k);
			iov[k].iov_base = f->data;
			iov[k].iov_len = f->len;
			memset(&msgs[k], 0, sizeof(msgs[k]));
			msgs[k].msg_hdr.msg_iov = &iov[k];
			msgs[k].msg_hdr.msg_iovlen = 1;
			k++;
		}
		if (!k)
			break;
		uint32_t off = 0;
		while (off < k) {
			int64_t before = mono_ns();
			for (uint32_t i = off; i < k; i++)
				if (queue_at(q, i - off)->due_ns > before)
					c->early++;  /* cannot happen: selected with due <= now <= before */
			int r = sendmmsg(out_fd, msgs + off, k - off, MSG_DONTWAIT);
			int64_t after = mono_ns();
			if (r < 0) {
				if (errno == EINTR)
					continue;
				/* ENOBUFS (egress qdisc full: a tail drop), ENETDOWN, EAGAIN: the frame is lost */
				c->send_errors++;
				queue_pop(q);
				off++;
				total++;
				continue;
			}
			if (r == 0)
				break;
			for (int i = 0; i < r; i++) {
				count_departure(c, after - queue_at(q, 0)->due_ns);
				queue_pop(q);
			}
			off += r;
			total += r;
		}
		if (k < BATCH)
			break;
		now = mono_ns();
	}
	return total;
}

static void transmit_due_at(struct element *e, int64_t now)
{
	for (int dir = 0; dir < 2; dir++)
		if (e->queue[dir].count && e->queue[dir].ring[e->queue[dir].head].due_ns <= now)
			transmit_direction(e, dir, now);
}

static void transmit_due(struct element *e)
{
	transmit_due_at(e, mono_ns());
}

/* ------------------------------------------------------------------ receiving */
static uint8_t *rx_buffers[BATCH];
static struct mmsghdr rx_msgs[BATCH];
static struct iovec rx_iov[BATCH];
static char rx_control[BATCH][CMSG_SPACE(sizeof(struct timespec)) + 64];

static void receive_setup(void)
{
	for (int i = 0; i < BATCH; i++) {
		rx_buffers[i] = malloc(FRAME_MAX);
		if (!rx_buffers[i]) {
			fprintf(stderr, "wire: out of memory\n");
			exit(1);
		}
		rx_iov[i].iov_base = rx_buffers[i];
		rx_iov[i].iov_len = FRAME_MAX;
		memset(&rx_msgs[i], 0, sizeof(rx_msgs[i]));
		rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
		rx_msgs[i].msg_hdr.msg_iovlen = 1;
		rx_msgs[i].msg_hdr.msg_control = rx_control[i];
		rx_msgs[i].msg_hdr.msg_controllen = sizeof(rx_control[i]);
	}
}

static void receive(struct element *e, int side)
{
	int dir = side;  /* frames read on side a go a -> b (direction 0) */
	struct counters *c = &e->counters[dir];
	for (int batch = 0; batch < RX_BATCHES_PER_WAKE; batch++) {
		int n = recvmmsg(e->fd[side], rx_msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->receive_errors++;  /* ENETDOWN while the link is down */
			return;
		}
		/* CLOCK_REALTIME - CLOCK_MONOTONIC, sampled now (between two monotonic readings) */
		int64_t m1 = mono_ns(), rt = clock_ns(CLOCK_REALTIME), m2 = mono_ns();
		int64_t offset = rt - (m1 + (m2 - m1) / 2);
		/* The offset only moves when the realtime clock is stepped. A stamp taken before a step
		 * cannot be converted with the offset after it: this batch is timed from now (read
		 * time >= arrival, so never early). */
		int stepped = e->clock_offset_ns && llabs(offset - e->clock_offset_ns) > 100000;
		e->clock_offset_ns = offset;
		for (int i = 0; i < n; i++) {
			struct msghdr *h = &rx_msgs[i].msg_hdr;
			if (h->msg_flags & MSG_TRUNC) {
				c->received++;
				c->receive_errors++;  /* larger than FRAME_MAX: cannot be forwarded whole */
				continue;
			}
			int64_t arrival = m2;
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm && !stepped; cm = CMSG_NXTHDR(h, cm)) {
				if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
					struct timespec ts;
					memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
					int64_t a = ts.tv_sec * NS_PER_S + ts.tv_nsec - offset;
					if (a <= m2 && a > m2 - 10 * NS_PER_S)  /* else a clock step: now */
						arrival = a;
				}
			}
			enqueue(e, dir, rx_buffers[i], rx_msgs[i].msg_len, arrival, m2);
		}
		for (int i = 0; i < n; i++) {  /* what recvmmsg changed, for the next call */
			rx_msgs[i].msg_hdr.msg_controllen = sizeof(rx_control[i]);
			rx_msgs[i].msg_hdr.msg_flags = 0;
		}
		transmit_due(e);
		if (n < BATCH)
			return;
	}
}

/* ------------------------------------------------------------------ JSON output */
struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < b->cap - b->len) {
			b->len += n;
			return;
		}
		size_t cap = (b->cap + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return;
		b->p = p;
		b->cap = cap;
	}
}

/* A double as Python's repr writes a float (shortest round trip, ".0" for integral values). */
static void put_float(struct buf *b, double v)
{
	char text[40];
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(text, sizeof(text), "%.*g", precision, v);
		if (strtod(text, NULL) == v)
			break;
	}
	if (!strpbrk(text, ".eEn"))  /* n: nan, inf */
		strcat(text, ".0");
	put(b, "%s", text);
}

static void put_json_string(struct buf *b, const char *s)
{
	put(b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			put(b, "\\%c", ch);
		else if (ch < 0x20)
			put(b, "\\u%04x", ch);
		else
			put(b, "%c", ch);
	}
	put(b, "\"");
}

static void put_settings(struct buf *b, const struct settings *s)
{
	put(b, "{\"delay_ms\": ");
	put_float(b, s->delay_ms);
	put(b, ", \"jitter_ms\": ");
	put_float(b, s->jitter_ms);
	put(b, ", \"loss_pct\": ");
	put_float(b, s->loss_pct);
	put(b, ", \"down\": %s}", s->down ? "true" : "false");
}

static void put_socket_stats(struct buf *b, int fd)
{
	struct tpacket_stats st = {0};
	socklen_t len = sizeof(st);
	getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len);  /* resets them: replies carry deltas */
	put(b, "{\"packets\": %u, \"drops\": %u}", st.tp_packets, st.tp_drops);
}

static void put_reply(struct buf *b, struct element *e)
{
	put(b, "{\"ok\": true, \"settings\": ");
	put_settings(b, &e->settings);
	put(b, ", \"counters\": {");
	for (int d = 0; d < 2; d++) {
		struct counters *c = &e->counters[d];
		const char *sep = "";
		put(b, "%s\"%s\": {", d ? ", " : "", DIRECTION_NAMES[d]);
#define PUT_COUNTER(name) put(b, "%s\"" #name "\": %llu", sep, (unsigned long long)c->name); sep = ", ";
		COUNTERS(PUT_COUNTER)
#undef PUT_COUNTER
		put(b, "}");
	}
	put(b, "}, \"queued\": %u, \"wakeup_lateness_us\": ", e->queue[0].count + e->queue[1].count);
	put_float(b, round(e->lateness_ns / 100.0) / 10.0);
	put(b, ", \"kernel\": {\"a\": ");
	put_socket_stats(b, e->fd[0]);
	put(b, ", \"b\": ");
	put_socket_stats(b, e->fd[1]);
	put(b, "}, \"element\": \"native\", \"scheduling\": {\"policy\": \"%s\", \"rt_priority\": %d, "
	    "\"rt_demotions\": %llu}}", e->rt_active ? "fifo" : "nice", e->rt_priority,
	    (unsigned long long)e->rt_demotions);
}

static void put_error(struct buf *b, const char *message)
{
	put(b, "{\"ok\": false, \"error\": ");
	put_json_string(b, message);
	put(b, "}");
}

/* ------------------------------------------------------------------ JSON input */
/* Enough JSON for the control requests: one object whose values are numbers, strings,
 * true / false / null (nested values are parsed and rejected by the checks below). */
enum jtype { J_NONE, J_NULL, J_BOOL, J_NUMBER, J_STRING, J_OTHER };

struct jvalue {
	enum jtype type;
	int boolean;
	double number;
	char text[256];     /* a string's value, or a number's / other value's Python repr */
};

struct jparser {
	const char *s, *end;
	char error[512];
};

static void skip_ws(struct jparser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static int parse_value(struct jparser *p, struct jvalue *v, int depth);

static int parse_string(struct jparser *p, char *out, size_t cap)
{
	size_t n = 0;
	if (p->s >= p->end || *p->s != '"')
		return -1;
	p->s++;
	while (p->s < p->end && *p->s != '"') {
		unsigned ch = (unsigned char)*p->s++;
		if (ch == '\\') {
			if (p->s >= p->end)
				return -1;
			char esc = *p->s++;
			switch (esc) {
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			case 'r': ch = '\r'; break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'u':
				if (p->end - p->s < 4)
					return -1;
				ch = (unsigned)strtoul((char[]){p->s[0], p->s[1], p->s[2], p->s[3], 0}, NULL, 16);
				p->s += 4;
				if (ch > 0x7f)
					ch = '?';
				break;
			default: ch = (unsigned char)esc;
			}
		}
		if (n + 1 < cap)
			out[n++] = (char)ch;
	}
	if (p->s >= p->end)
		return -1;
	p->s++;
	out[n] = 0;
	return 0;
}

static int parse_value(struct jparser *p, struct jvalue *v, int depth)
{
	skip_ws(p);
	memset(v, 0, sizeof(*v));
	if (p->s >= p->end || depth > 32)
		return -1;
	char ch = *p->s;
	if (ch == '"') {
		v->type = J_STRING;
		return parse_string(p, v->text, sizeof(v->text));
	}
	if (ch == '{' || ch == '[') {
		char close = ch == '{' ? '}' : ']';
		const char *start = p->s;
		v->type = J_OTHER;
		p->s++;
		skip_ws(p);
		if (p->s < p->end && *p->s == close) {
			p->s++;
			snprintf(v->text, sizeof(v->text), ch == '{' ? "{}" : "[]");
			return 0;
		}
		for (;;) {
			struct jvalue inner;
			if (ch == '{') {
				char key[256];
				skip_ws(p);
				if (parse_string(p, key, sizeof(key)) < 0)
					return -1;
				skip_ws(p);
				if (p->s >= p->end || *p->s++ != ':')
					return -1;
			}
			if (parse_value(p, &inner, depth + 1) < 0)
				return -1;
			skip_ws(p);
			if (p->s < p->end && *p->s == ',') {
				p->s++;
				continue;
			}
			if (p->s < p->end && *p->s == close) {
				p->s++;
				/* the value as written (Python would print its repr) */
				snprintf(v->text, sizeof(v->text), "%.*s", (int)(p->s - start), start);
				return 0;
			}
			return -1;
		}
	}
	static const struct { const char *word; enum jtype type; int boolean; const char *repr; double number; } words[] = {
		{"true", J_BOOL, 1, "True", 0}, {"false", J_BOOL, 0, "False", 0}, {"null", J_NULL, 0, "None", 0},
		{"NaN", J_NUMBER, 0, "nan", NAN}, {"Infinity", J_NUMBER, 0, "inf", INFINITY},
		{"-Infinity", J_NUMBER, 0, "-inf", -INFINITY},
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);
		if ((size_t)(p->end - p->s) >= n && !memcmp(p->s, words[i].word, n)) {
			p->s += n;
			v->type = words[i].type;
			v->boolean = words[i].boolean;
			v->number = words[i].number;
			snprintf(v->text, sizeof(v->text), "%s", words[i].repr);
			return 0;
		}
	}
	if (ch == '-' || (ch >= '0' && ch <= '9')) {
		const char *start = p->s;
		int integral = 1;
		while (p->s < p->end && strchr("+-0123456789.eE", *p->s)) {
			if (strchr(".eE", *p->s))
				integral = 0;
			p->s++;
		}
		size_t n = (size_t)(p->s - start);
		if (n >= sizeof(v->text))
			return -1;
		char number[256];
		memcpy(number, start, n);
		number[n] = 0;
		char *rest;
		v->number = strtod(number, &rest);
		if (*rest)
			return -1;
		v->type = J_NUMBER;
		if (integral) {
			snprintf(v->text, sizeof(v->text), "%s", number);
		} else {
			struct buf b = {0};
			put_float(&b, v->number);
			snprintf(v->text, sizeof(v->text), "%s", b.p ? b.p : number);
			free(b.p);
		}
		return 0;
	}
	return -1;
}

static const char *SETTABLE[] = {"delay_ms", "jitter_ms", "loss_pct", "down"};

/* A number setting from a request: 0 applied or absent (None), -1 with p->error set. */
static int number_setting(struct jparser *p, const char *name, const struct jvalue *v, double *out)
{
	if (v->type == J_NONE || v->type == J_NULL)
		return 0;
	if (v->type != J_NUMBER || !isfinite(v->number)) {
		if (v->type == J_STRING)
			snprintf(p->error, sizeof(p->error), "%s='%s' must be a finite number", name, v->text);
		else
			snprintf(p->error, sizeof(p->error), "%s=%s must be a finite number", name, v->text);
		return -1;
	}
	*out = v->number;
	return 0;
}

static int validate(char *error, size_t cap, const struct settings *s, const char *const repr[3])
{
	if (!(s->delay_ms >= 0)) {
		snprintf(error, cap, "delay_ms=%s must be >= 0", repr[0]);
		return -1;
	}
	if (!(s->jitter_ms >= 0)) {
		snprintf(error, cap, "jitter_ms=%s must be >= 0", repr[1]);
		return -1;
	}
	if (!(s->loss_pct >= 0 && s->loss_pct <= 100)) {
		snprintf(error, cap, "loss_pct=%s must be within 0..100", repr[2]);
		return -1;
	}
	return 0;
}

/* Handle one control request; the reply is written to `out`. */
static void handle_request(struct element *e, const char *data, size_t len, struct buf *out)
{
	struct jparser p = {data, data + len, {0}};
	skip_ws(&p);
	if (p.s >= p.end) {
		put_error(out, "Expecting value: line 1 column 1 (char 0)");
		return;
	}
	if (*p.s != '{') {
		struct jvalue v;
		if (parse_value(&p, &v, 0) < 0) {
			put_error(out, "Expecting value: line 1 column 1 (char 0)");
			return;
		}
		char message[512];
		snprintf(message, sizeof(message), "request %s must be a JSON object such as {\"op\": \"stats\"}",
			 v.text);
		if (v.type == J_STRING)
			snprintf(message, sizeof(message), "request '%s' must be a JSON object such as {\"op\": \"stats\"}",
				 v.text);
		put_error(out, message);
		return;
	}
	p.s++;
	struct jvalue op = {0}, values[4] = {{0}};
	char unknown[256] = "";
	skip_ws(&p);
	if (p.s < p.end && *p.s == '}') {
		p.s++;
	} else {
		for (;;) {
			char key[256];
			struct jvalue v;
			skip_ws(&p);
			if (parse_string(&p, key, sizeof(key)) < 0)
				goto malformed;
			skip_ws(&p);
			if (p.s >= p.end || *p.s++ != ':')
				goto malformed;
			if (parse_value(&p, &v, 1) < 0)
				goto malformed;
			int known = 0;
			if (!strcmp(key, "op")) {
				op = v;
				known = 1;
			}
			for (int i = 0; i < 4; i++)
				if (!strcmp(key, SETTABLE[i])) {
					values[i] = v;
					known = 1;
				}
			if (!known && (!unknown[0] || strcmp(key, unknown) < 0))
				snprintf(unknown, sizeof(unknown), "%s", key);  /* the first in sorted order */
			skip_ws(&p);
			if (p.s < p.end && *p.s == ',') {
				p.s++;
				continue;
			}
			if (p.s < p.end && *p.s == '}') {
				p.s++;
				break;
			}
			goto malformed;
		}
	}
	skip_ws(&p);
	if (p.s != p.end)
		goto malformed;

	char message[512];
	if (op.type == J_STRING && !strcmp(op.text, "set")) {
		if (unknown[0]) {
			snprintf(message, sizeof(message), "set: unknown key '%s'; known keys are delay_ms, jitter_ms, loss_pct, down",
				 unknown);
			put_error(out, message);
			return;
		}
		struct settings s = e->settings;
		if (number_setting(&p, "delay_ms", &values[0], &s.delay_ms) < 0
		    || number_setting(&p, "jitter_ms", &values[1], &s.jitter_ms) < 0
		    || number_setting(&p, "loss_pct", &values[2], &s.loss_pct) < 0) {
			put_error(out, p.error);
			return;
		}
		const struct jvalue *down = &values[3];
		if (down->type == J_BOOL) {
			s.down = down->boolean;
		} else if (down->type != J_NONE && down->type != J_NULL) {
			if (down->type == J_STRING)
				snprintf(message, sizeof(message), "down='%s' must be true or false", down->text);
			else
				snprintf(message, sizeof(message), "down=%s must be true or false", down->text);
			put_error(out, message);
			return;
		}
		const char *repr[3] = {values[0].text, values[1].text, values[2].text};
		if (validate(message, sizeof(message), &s, repr) < 0) {
			put_error(out, message);
			return;
		}
		e->settings = s;
	} else if (op.type == J_STRING && !strcmp(op.text, "reset")) {
		memset(e->counters, 0, sizeof(e->counters));
	} else if (!(op.type == J_STRING && !strcmp(op.text, "stats"))) {
		if (op.type == J_STRING)
			snprintf(message, sizeof(message), "op='%s' must be one of stats, set, reset", op.text);
		else
			snprintf(message, sizeof(message), "op=%s must be one of stats, set, reset",
				 op.type == J_NONE ? "None" : op.text);
		put_error(out, message);
		return;
	}
	put_reply(out, e);
	return;
malformed:
	put_error(out, "Expecting value: request is not valid JSON");
}

static void serve_control(struct element *e)
{
	static char data[CONTROL_MAX];
	for (;;) {
		struct sockaddr_un peer;
		socklen_t peer_len = sizeof(peer);
		ssize_t n = recvfrom(e->control, data, sizeof(data), MSG_DONTWAIT, (struct sockaddr *)&peer, &peer_len);
		if (n < 0)
			return;
		struct buf out = {0};
		handle_request(e, data, (size_t)n, &out);
		if (peer_len > sizeof(sa_family_t) && out.p)
			sendto(e->control, out.p, out.len, MSG_DONTWAIT, (struct sockaddr *)&peer, peer_len);
		free(out.p);
	}
}

/* ------------------------------------------------------------------ setup */
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "wire: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static int packet_socket(const char *intf)
{
	/* protocol 0 until bound: a socket made with ETH_P_ALL would see every interface's frames */
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket(AF_PACKET): %s (needs root / CAP_NET_RAW)", strerror(errno));
	int one = 1, size = SOCKET_BUFFER;
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
		die("PACKET_IGNORE_OUTGOING on %s: %s", intf, strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0)
		die("SO_TIMESTAMPNS on %s: %s", intf, strerror(errno));
	unsigned index = if_nametoindex(intf);
	if (!index)
		die("no interface %s: %s", intf, strerror(errno));
	struct sockaddr_ll addr = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)index};
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("bind to %s: %s", intf, strerror(errno));
	return fd;
}

static int control_socket(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		die("control path %s is longer than %zu bytes", path, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("control socket %s: %s", path, strerror(errno));
	int size = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return fd;
}

static void on_signal(int signum)
{
	(void)signum;
	stopping = 1;
}

static void set_realtime(struct element *e, int on)
{
	if (!e->rt_priority || on == e->rt_active)
		return;
	struct sched_param param = {.sched_priority = on ? e->rt_priority : 0};
	if (sched_setscheduler(0, on ? SCHED_FIFO : SCHED_OTHER, &param) == 0) {
		e->rt_active = on;
		if (!on)
			setpriority(PRIO_PROCESS, 0, ELEMENT_NICE);
	}
}

static double parse_double(const char *option, const char *text)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (end == text || *end)
		die("argument --%s: invalid float value: '%s'", option, text);
	return v;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: wire --a A --b B --control CONTROL [--delay-ms DELAY_MS] [--jitter-ms JITTER_MS]\n"
		    "            [--loss-pct LOSS_PCT] [--seed SEED] [--spin-us US] [--rt PRIORITY] [--queue-mb MB]\n"
		    "The native link element: delay, jitter, random loss and link-down for one WAN link.\n");
}

/* ------------------------------------------------------------------ main loop */
static int64_t next_due(struct element *e)
{
	int64_t next = 0;
	for (int dir = 0; dir < 2; dir++)
		if (e->queue[dir].count) {
			int64_t due = queue_at(&e->queue[dir], 0)->due_ns;
			if (!next || due < next)
				next = due;
		}
	return next;
}

/* Longest the loop may sleep without watching the packet sockets: frames keep their kernel
 * arrival time, so reading them late costs nothing as long as it is before they are due. */
static int64_t rx_defer_ns(const struct element *e)
{
	double min_delay_ns = (e->settings.delay_ms - e->settings.jitter_ms) * 1e6;
	if (!(min_delay_ns > RX_MARGIN_NS))
		return 0;  /* delay 0 (or jitter as large as the delay): no deferring */
	if (min_delay_ns >= RX_DEFER_MAX_NS + RX_MARGIN_NS)
		return RX_DEFER_MAX_NS;
	return (int64_t)min_delay_ns - RX_MARGIN_NS;
}

/* SCHED_FIFO while the element is mostly asleep; nice -10 while it is flooded. */
static void police_realtime(struct element *e, int64_t now)
{
	if (!e->rt_priority)
		return;
	if (e->rt_active && now - e->slept_at_ns > RT_FLOOD_NS) {
		set_realtime(e, 0);
		e->rt_demotions++;
	}
	if (now - e->window_start_ns >= RT_WINDOW_NS) {
		double busy = 1.0 - (double)e->window_slept_ns / (double)(now - e->window_start_ns);
		if (e->rt_active && busy > RT_MAX_BUSY) {
			set_realtime(e, 0);
			e->rt_demotions++;
		} else if (!e->rt_active && busy < RT_RESUME_BUSY) {
			set_realtime(e, 1);
		}
		e->window_start_ns = now;
		e->window_slept_ns = 0;
	}
}

static void run(struct element *e)
{
	struct epoll_event events[8];
	int64_t rx_read_ns = 0;  /* when the packet sockets were last read in deferred mode */
	while (!stopping) {
		int64_t now = mono_ns();
		transmit_due_at(e, now);
		int64_t due = next_due(e);
		if (due && e->spin_ns) {
			if (due - mono_ns() <= e->spin_ns) {
				while (mono_ns() < due)
					__builtin_ia32_pause();
				continue;
			}
			due -= e->spin_ns;  /* --spin-us: wake this much early, spin the rest */
		}
		police_realtime(e, now);
		/* The next departure is within `window` and no frame arriving now can be due before the
		 * window ends: sleep without watching the sockets and read them at least once per
		 * window, at a departure wake-up (one wake-up per departure, not two per frame; one read
		 * per many frames). Control requests wait for that read too (at most 1 ms). Departures
		 * further apart (a sparse flow): wake for arrivals as they come, no extra wake-ups. */
		int64_t window = rx_defer_ns(e);
		int defer = due && window > 0 && due - now <= window;
		int64_t wake = due;
		int n = 0;
		if (defer) {
			if (!rx_read_ns)
				rx_read_ns = now;
			if (rx_read_ns + window < wake)
				wake = rx_read_ns + window;
			/* an absolute sleep: never early; no slack under SCHED_FIFO, 1 ns under nice */
			struct timespec at = {wake / NS_PER_S, wake % NS_PER_S};
			if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
				continue;
		} else {
			rx_read_ns = 0;
			/* a relative timeout, taken from when the kernel reads it: never early. No slack
			 * under SCHED_FIFO, timeout / 1000 under nice (20 us for a 20 ms sleep). */
			struct timespec timeout, *wait = NULL;
			if (wake) {
				int64_t left = wake - mono_ns();
				if (left < 0)
					left = 0;
				timeout.tv_sec = left / NS_PER_S;
				timeout.tv_nsec = left % NS_PER_S;
				wait = &timeout;
			}
			n = epoll_pwait2(e->epoll, events, 8, wait, NULL);
			if (n < 0)
				continue;  /* EINTR: a signal; the loop condition decides */
		}
		int64_t woke = mono_ns();
		if (woke - now >= SLEPT_NS) {
			e->slept_at_ns = woke;
			e->window_slept_ns += woke - now;
		}
		if (n == 0 && wake) {  /* a timed wake-up: learn how late the kernel woke us */
			double late = (double)(woke - wake);
			late = late < 0 ? 0 : late > 500000 ? 500000 : late;
			e->lateness_ns += LATENESS_EWMA_GAIN * (late - e->lateness_ns);
		}
		if (defer && woke - rx_read_ns >= window / 2) {
			transmit_due_at(e, woke);  /* departures first: reading can take a while */
			/* which packet sockets hold frames (and is there a control request)? */
			struct timespec zero = {0, 0};
			int ready = epoll_pwait2(e->epoll, events, 8, &zero, NULL);
			n = ready < 0 ? 0 : ready;
			rx_read_ns = woke;
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == e->fd[0])
				receive(e, 0);
			else if (fd == e->fd[1])
				receive(e, 1);
			else if (fd == e->control)
				serve_control(e);
		}
	}
}

int main(int argc, char **argv)
{
	static struct element element;
	struct element *e = &element;
	const char *a = NULL, *b = NULL, *control = NULL;
	long long seed = 1;
	double queue_mb = DEFAULT_QUEUE_MB;
	e->settings = (struct settings){0, 0, 0, 0};
	e->rt_priority = DEFAULT_RT_PRIORITY;
	static const struct option options[] = {
		{"a", required_argument, 0, 'a'}, {"b", required_argument, 0, 'b'},
		{"control", required_argument, 0, 'c'}, {"delay-ms", required_argument, 0, 'd'},
		{"jitter-ms", required_argument, 0, 'j'}, {"loss-pct", required_argument, 0, 'l'},
		{"seed", required_argument, 0, 's'}, {"spin-us", required_argument, 0, 'S'},
		{"rt", required_argument, 0, 'r'}, {"queue-mb", required_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	const char *repr[3] = {"", "", ""};
	int opt;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'a': a = optarg; break;
		case 'b': b = optarg; break;
		case 'c': control = optarg; break;
		case 'd': e->settings.delay_ms = parse_double("delay-ms", optarg); repr[0] = optarg; break;
		case 'j': e->settings.jitter_ms = parse_double("jitter-ms", optarg); repr[1] = optarg; break;
		case 'l': e->settings.loss_pct = parse_double("loss-pct", optarg); repr[2] = optarg; break;
		case 's': {
			char *end;
			seed = strtoll(optarg, &end, 10);
			if (end == optarg || *end)
				die("argument --seed: invalid int value: '%s'", optarg);
			break;
		}
		case 'S': e->spin_ns = (int64_t)(parse_double("spin-us", optarg) * 1000); break;
		case 'r': e->rt_priority = atoi(optarg); break;
		case 'q': queue_mb = parse_double("queue-mb", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!a || !b || !control || optind != argc) {
		usage(stderr);
		fprintf(stderr, "wire: error: the following arguments are required: --a, --b, --control\n");
		return 2;
	}
	char error[512];
	const struct settings *s = &e->settings;
	if (!isfinite(s->delay_ms) || !isfinite(s->jitter_ms) || !isfinite(s->loss_pct))
		die("settings must be finite numbers");
	if (validate(error, sizeof(error), s, repr) < 0)
		die("%s", error);
	if (e->spin_ns < 0 || e->spin_ns > 1000000)
		die("--spin-us must be within 0..1000");
	if (e->rt_priority < 0 || e->rt_priority > 99)
		die("--rt must be a SCHED_FIFO priority within 1..99 (0: nice -10 only)");

	uint64_t rng = (uint64_t)seed;
	e->rng = splitmix64(&rng);
	for (int dir = 0; dir < 2; dir++)
		e->queue[dir].max_bytes = (uint64_t)(queue_mb * 1048576.0);
	receive_setup();
	setpriority(PRIO_PROCESS, 0, ELEMENT_NICE);  /* fails without root: the default priority */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	e->fd[0] = packet_socket(a);
	e->fd[1] = packet_socket(b);
	snprintf(e->intf[0], IF_NAMESIZE, "%s", a);
	snprintf(e->intf[1], IF_NAMESIZE, "%s", b);
	e->control_path = control;
	e->control = control_socket(control);
	e->epoll = epoll_create1(EPOLL_CLOEXEC);
	if (e->epoll < 0)
		die("epoll: %s", strerror(errno));
	int fds[3] = {e->control, e->fd[0], e->fd[1]};
	for (int i = 0; i < 3; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
		if (epoll_ctl(e->epoll, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}
	struct sigaction sa = {.sa_handler = on_signal};  /* no SA_RESTART: epoll_wait returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	e->slept_at_ns = e->window_start_ns = mono_ns();
	set_realtime(e, 1);
	printf("ready\n");
	fflush(stdout);
	run(e);
	unlink(control);
	return 0;
}
