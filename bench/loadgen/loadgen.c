/*
 * loadgen.c - single-threaded epoll WebSocket (RFC 6455, ws:// only) load generator.
 *
 * Modes:
 *   echo     C connections to /echo, each keeping D messages in flight (pipelined),
 *            S-byte text or binary messages, warmup W s then measure T s.
 *   fanout   N subscribers + 1 publisher on /bcast; server must forward each message to
 *            every OTHER /bcast connection. Publisher keeps <= WIN messages not yet delivered
 *            to all N subscribers (optionally also paced at --rate msg/s). Payload carries
 *            a sequence number and the publish timestamp.
 *   connect  open N connections (bounded concurrency), report conn/s + handshake latency,
 *            hold them idle H s (prints "# HOLD ..." on stdout), then close them all with
 *            a close frame (1000) and wait for the server's close reply.
 *   selftest check the SHA-1/base64/accept implementation and exit.
 *
 * Real-time protocols: in fanout mode, --sub-init TEXT makes every
 * subscriber send TEXT as a text message once open (e.g. a protocol's connect and subscribe
 * commands), --pub-path PATH opens the publisher elsewhere, and --unwrap PREFIX says that each
 * delivery arrives as PREFIX + payload + anything (or exactly SUFFIX, with --unwrap-suffix);
 * messages that don't start with PREFIX (the protocol's replies) are ignored. --alt-port P sends
 * every other subscriber to a second server, for fan-out across nodes. --sub-init-variants N
 * replaces each "{v}" in TEXT by the subscriber's number modulo N, so that subscribers fall into
 * N groups that subscribe differently (say, with N distinct filters, or N channels: a "{v}"
 * in --unwrap then expects each subscriber's deliveries with its own variant).
 *
 * Fallback transports: --transport http_stream makes every subscriber POST TEXT (the connect
 * command) to --path and read the answer, a chunked stream of newline-delimited JSON replies and
 * pushes, as centrifuge-js's HttpStreamTransport does; --transport sse GETs --path?cf_connect=TEXT
 * and reads "data: <json>" events, as its SseTransport does. Each line or event is a message for
 * --unwrap. The publisher stays a WebSocket (--pub-port P puts it on another listener). Such
 * subscribers connect from their own source address in 127.R.0.0/16 (R random per run), because
 * the client closes a stream and keeps its TIME_WAIT: one address would run out of ports.
 *
 * Socket.IO: --socketio makes every subscriber (fanout) and every connection (connect) a Socket.IO 4
 * client over Engine.IO v4's WebSocket transport (default --path /socket.io/?EIO=4&transport=websocket):
 * it waits for the server's open packet "0{...}", joins the default namespace with "40", and once
 * the server's "40{...}" answer arrives sends --sub-init (e.g. 421["join","bench"]); it answers
 * Engine.IO pings "2" with pongs "3", fails on "44" (namespace refused), "41" or "1" (disconnect),
 * and hands every other packet (events "42[...]", acks "43...") to --unwrap. The publisher stays a
 * plain WebSocket (--pub-path, --pub-port).
 *
 * Connect and join: in connect mode, --sub-init TEXT is sent once open (after the namespace's
 * answer with --socketio) and --join-reply STR counts a connection as open only when a message
 * containing STR arrives (the subscribe reply, the join's ack): conn/s and the handshake latency
 * then cover connect + join. In fanout mode, --join-reply makes the publisher wait until every
 * subscriber has had its join reply, so that the readiness probes go to a full room.
 *
 * Held clients: in connect mode with --sub-init (and no --socketio) every connection is a Centrifugo
 * client that answers the server's pings "{}" with "{}", and counts each message after its join
 * reply as a push (those holding --mark apart, with the first and last arrival); --report-every S
 * prints "# STATUS" lines while it connects and holds, and SIGUSR2 ends the hold (or the connect
 * phase). --src-addrs K binds connection i to --src-first + i % K (127.0.0.2 up), so that one
 * process can open more connections to one server port than one address has ephemeral ports.
 *
 * Output: progress/errors on stderr; on stdout one human line starting with "# " and one JSON
 * line starting with "{" (last line). Exit status 0 = ok, 1 = test failed, 2 = usage, 3 = hard deadline.
 *
 * Build: cc -O2 -o loadgen loadgen.c   (no external dependencies)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wsutil.h"

#define RBUF_SZ (256 * 1024)
#define MAX_EVENTS 1024
#define HS_MAX 16384
#define SSE_DATA "data: "
#define SSE_DATA_LEN 6

enum { M_ECHO = 1, M_FANOUT, M_CONNECT, M_STORM };
enum { R_ECHO = 1, R_SUB, R_PUB, R_IDLE, R_STORM };
enum { S_NEW = 0, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSING, S_DONE };
enum { P_CONNECT = 1, P_SYNC, P_RUN, P_DRAIN, P_HOLD, P_CLOSE, P_EXIT };
enum { T_WS = 0, T_HTTP_STREAM, T_SSE };
enum { CK_SIZE = 0, CK_DATA, CK_CRLF };
/* A Socket.IO client's progress: Engine.IO open packet, then the namespace's answer. */
enum { SIO_OPENING = 0, SIO_JOINING, SIO_CONNECTED };
/* What a connect-mode connection keeps of each message while it waits for --join-reply. */
#define JOIN_BUF 8192

/* ------------------------------------------------------------------ config */
static struct {
    int mode;
    const char *host;
    int port;
    const char *path;
    int conns, depth;
    size_t size;
    int binary;
    double duration, warmup, timeout, connect_timeout, hold, rate;
    int nsubs, window, concurrency;
    uint64_t messages;
    int server_pid;
    const char *label;
    int quiet;
    const char *sub_init, *pub_path, *unwrap, *unwrap_suffix;
    int alt_port, alt_port_offset, sub_init_variants, transport, pub_port, pub_port_offset, socketio;
    size_t unwrap_len, unwrap_suffix_len;
    const char *join_reply;
    double min_delay, max_delay, report_every;
    /* connect mode: source addresses, status lines, marked pushes */
    uint32_t src_first; int src_addrs, report_set;
    const char *mark;
} cfg = {
    .host = "127.0.0.1", .port = 0, .path = NULL, .conns = 1, .depth = 1, .size = 32, .binary = 0,
    .duration = 5, .warmup = 1, .timeout = 10, .connect_timeout = 60, .hold = 3, .rate = 0,
    .nsubs = 100, .window = 16, .concurrency = 128, .messages = 0, .server_pid = 0, .label = "", .quiet = 0,
    .min_delay = 0.5, .max_delay = 20, .report_every = 0.1,
};

/* ------------------------------------------------------------------ histogram (log-linear, ~0.8%) */
#define HSUB 128
#define HBUCKETS (HSUB * 58)
typedef struct { uint64_t b[HBUCKETS]; uint64_t n, max, sum; } hist;
static inline int hidx(uint64_t v) {
    if (v < 2 * HSUB) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 7;
    uint64_t top = v >> shift;
    return HSUB + shift * HSUB + (int)(top - HSUB);
}
static inline uint64_t hval(int idx) {
    if (idx < 2 * HSUB) return (uint64_t)idx;
    int shift = (idx - HSUB) / HSUB;
    uint64_t top = (uint64_t)((idx - HSUB) % HSUB + HSUB);
    return (top << shift) + ((1ull << shift) >> 1);
}
static inline void hist_add(hist *h, uint64_t v) {
    h->b[hidx(v)]++; h->n++; h->sum += v;
    if (v > h->max) h->max = v;
}
static double hist_pct_us(const hist *h, double p) {
    if (!h->n) return 0;
    uint64_t target = (uint64_t)(p * (double)h->n);
    if (target < 1) target = 1;
    uint64_t acc = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        acc += h->b[i];
        if (acc >= target) return (double)hval(i) / 1000.0;
    }
    return (double)h->max / 1000.0;
}
static hist h_lat, h_hs;

/* ------------------------------------------------------------------ connection */
typedef struct conn {
    int fd, id;
    uint8_t state, role, want_out, close_sent, close_rcvd, ready;
    char accept[29];
    char *hs; uint32_t hs_len;
    uint8_t *out; size_t out_len, out_off, out_cap;
    /* frame parser */
    uint8_t hdr[14], hdr_len, in_payload, fr_op, fr_fin;
    uint64_t fr_rem;
    uint8_t ctrl[125]; uint8_t ctrl_len;
    uint8_t in_msg, msg_op; uint64_t msg_len; uint8_t head[32 + 256 + SSE_DATA_LEN]; uint16_t head_len;
    /* an HTTP stream (--transport): chunked transfer coding, or the body until EOF */
    uint8_t http, chunked, ck_state, ck_digits, ck_ext;
    uint64_t ck_rem;
    /* Socket.IO (--socketio), and a connect-mode connection's wait for --join-reply */
    uint8_t sio, counted, joined;
    char *jbuf; uint32_t jlen;
    /* echo */
    uint64_t *fifo; uint32_t fq_head, fq_cnt;
    /* fanout subscriber */
    uint64_t next_seq;
    uint64_t t_start;
    /* storm: a client that reconnects after a backoff with full jitter, as the Centrifugo SDKs do */
    uint64_t next_try;
    uint32_t attempts;
    uint8_t connected, retry, gave_up;
} conn;

/* Bytes a "{v}" of --unwrap may grow by (a variant of up to 5 digits), kept in each head. */
#define UNWRAP_SLACK 8
/* --unwrap holds a "{v}" and there are variants: each subscriber expects its own prefix. */
static int g_unwrap_varies;

static int ep = -1;
static conn *conns;
static int nconns_total;
static struct sockaddr_in g_addr;
static uint32_t g_src_base; /* 127.R.0.0: the http subscribers' source addresses, host order */
static uint8_t rbuf[RBUF_SZ];
static uint64_t g_now, g_t0;
static int g_phase;
static uint64_t g_phase_deadline;

/* counters */
static int g_started, g_open, g_failed, g_closed_clean, g_close_timeouts, g_ended;
static uint64_t g_errs, g_mismatch, g_unexpected;
static char g_err[600];
static char g_abort[600];

/* echo state */
static uint8_t *g_payload;
static int g_op;
static uint64_t g_run_start, g_meas_start, g_meas_end, g_inflight;
static uint64_t g_meas_msgs, g_meas_bytes, g_total_msgs;
static int g_meas_started, g_meas_ended;

/* fanout state */
static conn *g_pub;
static int g_ready, g_joined;
static uint64_t g_sent, g_done, g_send_end, g_first_meas, g_last_deliv_t;
static int g_first_meas_set;
static uint32_t *g_dcnt;
static uint64_t g_deliv, g_meas_deliv, g_dups, g_gaps, g_pub_echo, g_probe_sent;
static uint64_t g_last_probe, g_last_probe_deliv;
/* The last probe's deliveries, and the subscribers already ready when it went out (all of them get it). */
static int g_probe_deliv, g_ready_at_probe;
static uint8_t *g_fbuf;

/* connect state */
static uint64_t g_conn_phase_start, g_conn_phase_end;
/* connect mode's held clients: the Centrifugo pings answered, the pushes received after the join
 * (those holding --mark apart, with the times of the first and the last), the clients lost after
 * they were counted, and SIGUSR2 (end the hold now) */
static uint64_t g_pings, g_pushes, g_marked, g_mark_first, g_mark_last, g_status_last;
static int g_lost;
static volatile sig_atomic_t g_end_hold;
static void on_end_hold(int sig) { (void)sig; g_end_hold = 1; }
/* storm */
static int g_storm_connected, g_storm_gave_up, g_storm_pending;
static uint64_t g_storm_connects, g_storm_503, g_storm_111, g_storm_tcp, g_storm_closed, g_storm_timeouts, g_storm_other,
    g_storm_last_report;
static void storm_lost(conn *c, const char *why);
static volatile sig_atomic_t g_storm_blip;
static void on_blip(int sig) { (void)sig; g_storm_blip = 1; }
static uint64_t sec_ns(double s);
static void close_all_start(void);

/* cpu */
static double g_cpu0_client, g_cpu1_client;
static long g_cpu0_server = -1, g_cpu1_server = -1;
static uint64_t g_cpu_t0, g_cpu_t1;

/* ------------------------------------------------------------------ utils */
static uint64_t rng_s;
static inline uint64_t rng64(void) {
    rng_s ^= rng_s >> 12; rng_s ^= rng_s << 25; rng_s ^= rng_s >> 27;
    return rng_s * 0x2545F4914F6CDD1Dull;
}

static void note_err(const char *fmt, ...) {
    char tmp[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    g_errs++;
    if (!g_err[0]) snprintf(g_err, sizeof g_err, "%s", tmp);
    if (g_errs <= 5) fprintf(stderr, "loadgen: %s\n", tmp);
    else if (g_errs == 6) fprintf(stderr, "loadgen: (further errors suppressed)\n");
}

static void do_abort(const char *fmt, ...) {
    if (g_abort[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_abort, sizeof g_abort, fmt, ap);
    va_end(ap);
    fprintf(stderr, "loadgen: ABORT: %s\n", g_abort);
    g_phase = P_EXIT;
}

static double cpu_self(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
static long cpu_server_ticks(void) {
    if (cfg.server_pid <= 0) return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", cfg.server_pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2; /* state */
    unsigned long ut = 0, st = 0;
    /* fields after ')' : 3=state ... 14=utime 15=stime */
    int field = 3;
    char *tok = strtok(p, " ");
    while (tok) {
        if (field == 14) ut = strtoul(tok, NULL, 10);
        if (field == 15) { st = strtoul(tok, NULL, 10); break; }
        field++;
        tok = strtok(NULL, " ");
    }
    return (long)(ut + st);
}
static void cpu_mark(int which) {
    if (which == 0) { g_cpu0_client = cpu_self(); g_cpu0_server = cpu_server_ticks(); g_cpu_t0 = now_ns(); }
    else { g_cpu1_client = cpu_self(); g_cpu1_server = cpu_server_ticks(); g_cpu_t1 = now_ns(); }
}

static void set_events(conn *c, int out) {
    struct epoll_event ev;
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = (uint8_t)out;
}

static void conn_end(conn *c) {
    if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; }
    c->state = S_DONE;
    g_ended++;
    free(c->out); c->out = NULL; c->out_cap = c->out_len = c->out_off = 0;
    free(c->hs); c->hs = NULL;
    free(c->jbuf); c->jbuf = NULL;
}

static const char *role_name(int r) {
    return r == R_ECHO ? "echo" : r == R_SUB ? "subscriber" : r == R_PUB ? "publisher" : "idle";
}

static void conn_fail(conn *c, const char *fmt, ...) {
    char tmp[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (cfg.mode == M_STORM) { storm_lost(c, tmp); return; }
    int was_open = c->state >= S_OPEN;
    note_err("conn #%d (%s, %s): %s", c->id, role_name(c->role), was_open ? "after upgrade" : "before upgrade", tmp);
    if (!c->counted) g_failed++;
    else if (cfg.mode == M_CONNECT) g_lost++;
    if (c->role == R_ECHO && c->fq_cnt) { g_inflight -= c->fq_cnt; c->fq_cnt = 0; }
    conn_end(c);
    if (cfg.mode == M_FANOUT && was_open && (g_phase == P_SYNC || g_phase == P_RUN || g_phase == P_DRAIN))
        do_abort("fanout connection lost during the test: %s", tmp);
}

/* ------------------------------------------------------------------ output */
static int out_reserve(conn *c, size_t need) {
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
    if (c->out_len + need <= c->out_cap) return 0;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off; c->out_off = 0;
    }
    if (c->out_len + need <= c->out_cap) return 0;
    size_t nc = c->out_cap ? c->out_cap : 1024;
    while (nc < c->out_len + need) nc *= 2;
    uint8_t *p = realloc(c->out, nc);
    if (!p) { fprintf(stderr, "loadgen: out of memory\n"); exit(1); }
    c->out = p; c->out_cap = nc;
    return 0;
}

static void queue_frame(conn *c, int op, const uint8_t *pl, size_t len) {
    out_reserve(c, len + 14);
    uint8_t *h = c->out + c->out_len;
    size_t hl;
    h[0] = (uint8_t)(0x80 | op);
    if (len < 126) { h[1] = (uint8_t)(0x80 | len); hl = 2; }
    else if (len < 65536) { h[1] = 0x80 | 126; h[2] = (uint8_t)(len >> 8); h[3] = (uint8_t)len; hl = 4; }
    else { h[1] = 0x80 | 127; for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i)); hl = 10; }
    uint32_t mk = (uint32_t)rng64();
    memcpy(h + hl, &mk, 4);
    ws_mask_copy(h + hl + 4, pl, len, h + hl, 0);
    c->out_len += hl + 4 + len;
}

static int flush_out(conn *c) {
    if (c->fd < 0) return -1;
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) { c->out_off += (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) set_events(c, 1);
            return 0;
        }
        conn_fail(c, "send: %s", w < 0 ? strerror(errno) : "returned 0");
        return -1;
    }
    c->out_off = c->out_len = 0;
    if (c->want_out) set_events(c, 0);
    /* A held client writes a pong every ping interval: no buffer kept between them. */
    if (cfg.mode == M_CONNECT) { free(c->out); c->out = NULL; c->out_cap = 0; }
    return 0;
}

static void send_close(conn *c, int code) {
    if (c->close_sent || c->fd < 0) return;
    uint8_t pl[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    queue_frame(c, 8, pl, 2);
    c->close_sent = 1;
    if (c->state == S_OPEN) c->state = S_CLOSING;
    flush_out(c);
}

/* ------------------------------------------------------------------ connect + handshake */
/* A text of subscriber c (--sub-init, --unwrap): each "{v}" becomes its variant, its number
 * modulo --sub-init-variants. Returns the length written to out (at most cap - 1). */
static size_t variant_text(const char *text, const conn *c, char *out, size_t cap) {
    if (cfg.sub_init_variants <= 0) {
        size_t n = strlen(text);
        if (n > cap - 1) n = cap - 1;
        memcpy(out, text, n);
        return n;
    }
    char digits[16];
    size_t n = 0;
    int dl = snprintf(digits, sizeof digits, "%d", c->id % cfg.sub_init_variants);
    for (const char *p = text; *p && n + (size_t)dl < cap - 1;) {
        if (strncmp(p, "{v}", 3) == 0) { memcpy(out + n, digits, (size_t)dl); n += (size_t)dl; p += 3; }
        else out[n++] = *p++;
    }
    return n;
}

static void queue_bytes(conn *c, const void *p, size_t n) {
    out_reserve(c, n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* A fallback transport's request: the connect command is its body (http_stream) or its
 * cf_connect query parameter (sse), as centrifuge-js sends them. */
static void send_stream_request(conn *c) {
    static const char hexd[] = "0123456789ABCDEF";
    char body[8192], req[8192 * 3 + 512];
    size_t bl = cfg.sub_init ? variant_text(cfg.sub_init, c, body, sizeof body) : 0;
    int n;
    if (cfg.transport == T_HTTP_STREAM) {
        n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                     "Content-Length: %zu\r\nUser-Agent: ws-bench-loadgen\r\n\r\n",
                     cfg.path, cfg.host, cfg.port, bl);
        queue_bytes(c, req, (size_t)n);
        queue_bytes(c, body, bl);
    } else {
        size_t q = 0;
        for (size_t i = 0; i < bl; i++) {
            unsigned char ch = (unsigned char)body[i];
            int plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                        ch == '-' || ch == '_' || ch == '.' || ch == '~';
            if (plain) req[q++] = (char)ch;
            else { req[q++] = '%'; req[q++] = hexd[ch >> 4]; req[q++] = hexd[ch & 15]; }
        }
        char head[512 + 64];
        n = snprintf(head, sizeof head, "GET %s?cf_connect=", cfg.path);
        queue_bytes(c, head, (size_t)n);
        queue_bytes(c, req, q);
        n = snprintf(head, sizeof head,
                     " HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nUser-Agent: ws-bench-loadgen\r\n\r\n",
                     cfg.host, cfg.port);
        queue_bytes(c, head, (size_t)n);
    }
    c->state = S_HANDSHAKE;
    flush_out(c);
}

static void send_handshake(conn *c) {
    if (c->http) { send_stream_request(c); return; }
    uint8_t rnd[16];
    uint64_t a = rng64(), b = rng64();
    memcpy(rnd, &a, 8); memcpy(rnd + 8, &b, 8);
    char key[32];
    base64_encode(rnd, 16, key);
    ws_accept(key, strlen(key), c->accept);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ws-bench-loadgen\r\n\r\n",
                     c->role == R_PUB && cfg.pub_path ? cfg.pub_path : cfg.path, cfg.host, cfg.port, key);
    out_reserve(c, (size_t)n);
    memcpy(c->out + c->out_len, req, (size_t)n);
    c->out_len += (size_t)n;
    c->state = S_HANDSHAKE;
    flush_out(c);
}

static void start_conn(conn *c) {
    g_started++;
    c->t_start = now_ns();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->fd = -1;
        conn_fail(c, "socket(): %s%s", strerror(errno), errno == EMFILE ? " (raise `ulimit -n`)" : "");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { conn_fail(c, "epoll_ctl: %s", strerror(errno)); return; }
    /* --alt-port: every other subscriber connects to a second server (another node). */
    struct sockaddr_in addr = g_addr;
    if (cfg.alt_port && c->role == R_SUB && (c->id & 1)) addr.sin_port = htons((uint16_t)cfg.alt_port);
    if (cfg.pub_port && c->role == R_PUB) addr.sin_port = htons((uint16_t)cfg.pub_port);
    if (c->http) {
        /* Its own source address: the client keeps the TIME_WAIT of a stream it closes. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(g_src_base | (uint32_t)(c->id + 1));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { conn_fail(c, "bind(source): %s", strerror(errno)); return; }
    } else if (cfg.src_addrs > 0) {
        /* --src-addrs: one source address gives ~28k ports to one server port (the ephemeral
         * range); round-robin over several, the port picked at connect() for the whole 4-tuple. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(cfg.src_first + (uint32_t)(c->id % cfg.src_addrs));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { conn_fail(c, "bind(source): %s", strerror(errno)); return; }
    }
    int r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    if (r == 0) { send_handshake(c); return; }
    if (errno != EINPROGRESS) {
        conn_fail(c, "connect(%s:%d): %s%s", cfg.host, cfg.port, strerror(errno),
                  errno == ECONNREFUSED ? " (is the server running?)" :
                  errno == EADDRNOTAVAIL ? " (out of local ports? wait for TIME_WAIT)" : "");
        return;
    }
    c->state = S_CONNECTING;
}

static void on_open(conn *c);
static void conn_counted(conn *c);
static void send_sub_init(conn *c);

static void feed(conn *c, const uint8_t *p, size_t n);
static void stream_body(conn *c, const uint8_t *p, size_t n);

/* The answer to a fallback transport's request: 200, then a body that never ends by itself. */
static int stream_response(conn *c, size_t hdr_len, int sl) {
    if (c->hs_len < 12 || strncmp(c->hs, "HTTP/1.", 7) != 0 || strncmp(c->hs + 8, " 200", 4) != 0) {
        conn_fail(c, "server refused the stream: \"%.*s\"", sl > 120 ? 120 : sl, c->hs);
        return -1;
    }
    size_t vl;
    const char *v = http_header(c->hs, c->hs + hdr_len, "content-type", &vl);
    const char *want = cfg.transport == T_SSE ? "text/event-stream" : NULL;
    if (want && (!v || !ci_contains(v, vl, want))) {
        conn_fail(c, "stream's Content-Type is \"%.*s\", not %s", v ? (int)(vl > 60 ? 60 : vl) : 0, v ? v : "", want);
        return -1;
    }
    v = http_header(c->hs, c->hs + hdr_len, "transfer-encoding", &vl);
    c->chunked = v && ci_contains(v, vl, "chunked");
    if (!c->chunked && http_header(c->hs, c->hs + hdr_len, "content-length", &vl)) {
        conn_fail(c, "the stream has a Content-Length: a whole response, not a stream");
        return -1;
    }
    return 0;
}

static void on_handshake_data(conn *c, const uint8_t *p, size_t n) {
    if (!c->hs) c->hs = malloc(HS_MAX + 1);
    size_t take = n;
    if (c->hs_len + take > HS_MAX) take = HS_MAX - c->hs_len;
    memcpy(c->hs + c->hs_len, p, take);
    size_t old = c->hs_len;
    c->hs_len += (uint32_t)take;
    c->hs[c->hs_len] = 0;
    char *end = memmem(c->hs, c->hs_len, "\r\n\r\n", 4);
    if (!end) {
        if (c->hs_len >= HS_MAX) conn_fail(c, "handshake response too large (>%d bytes)", HS_MAX);
        return;
    }
    size_t hdr_len = (size_t)(end - c->hs) + 4;
    char *eol = memchr(c->hs, '\r', hdr_len);
    int sl = eol ? (int)(eol - c->hs) : 40;
    if (c->http) {
        if (stream_response(c, hdr_len, sl) < 0) return;
        size_t body_from_p = hdr_len - old;
        free(c->hs); c->hs = NULL; c->hs_len = 0;
        c->state = S_OPEN;
        on_open(c);
        if (c->state != S_DONE && body_from_p < n) stream_body(c, p + body_from_p, n - body_from_p);
        return;
    }
    if (c->hs_len < 12 || strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        conn_fail(c, "server refused upgrade: \"%.*s\"", sl > 120 ? 120 : sl, c->hs);
        return;
    }
    size_t vl;
    const char *v = http_header(c->hs, c->hs + hdr_len, "sec-websocket-accept", &vl);
    if (!v) { conn_fail(c, "101 response lacks Sec-WebSocket-Accept"); return; }
    if (vl != 28 || memcmp(v, c->accept, 28) != 0) {
        conn_fail(c, "bad Sec-WebSocket-Accept: got \"%.*s\" expected \"%s\"", (int)(vl > 60 ? 60 : vl), v, c->accept);
        return;
    }
    v = http_header(c->hs, c->hs + hdr_len, "upgrade", &vl);
    if (!v || !ci_contains(v, vl, "websocket")) { conn_fail(c, "101 response lacks Upgrade: websocket"); return; }
    v = http_header(c->hs, c->hs + hdr_len, "sec-websocket-extensions", &vl);
    if (v && vl) { conn_fail(c, "server negotiated an extension we did not offer: %.*s", (int)vl, v); return; }
    size_t consumed_from_p = hdr_len - old; /* bytes of p that belonged to the headers */
    free(c->hs); c->hs = NULL; c->hs_len = 0;
    c->state = S_OPEN;
    on_open(c);
    if (c->state == S_DONE) return;
    if (consumed_from_p < n) feed(c, p + consumed_from_p, n - consumed_from_p);
}

/* ------------------------------------------------------------------ mode logic */
static inline void hex_put(uint8_t *d, uint64_t v, int digits) {
    static const char hx[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) { d[i] = (uint8_t)hx[v & 15]; v >>= 4; }
}
static inline uint64_t hex_get(const uint8_t *s, int digits, int *bad) {
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        uint8_t ch = s[i];
        int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
        if (d < 0) { *bad = 1; return 0; }
        v = (v << 4) | (uint64_t)d;
    }
    return v;
}

static void echo_send(conn *c) {
    queue_frame(c, g_op, g_payload, cfg.size);
    c->fifo[(c->fq_head + c->fq_cnt) % (uint32_t)cfg.depth] = g_now;
    c->fq_cnt++;
    g_inflight++;
}

static void echo_on_msg(conn *c) {
    if (c->fq_cnt == 0) { g_unexpected++; note_err("conn #%d: unexpected message on /echo (nothing in flight)", c->id); return; }
    uint64_t t0 = c->fifo[c->fq_head];
    c->fq_head = (c->fq_head + 1) % (uint32_t)cfg.depth;
    c->fq_cnt--;
    g_inflight--;
    if (c->msg_op != g_op || c->msg_len != cfg.size || memcmp(c->head, g_payload, c->head_len) != 0) {
        g_mismatch++;
        if (g_mismatch <= 3)
            note_err("conn #%d: echo mismatch (opcode %d len %llu, expected opcode %d len %zu)", c->id, c->msg_op,
                     (unsigned long long)c->msg_len, g_op, cfg.size);
    }
    g_total_msgs++;
    if (g_now >= g_meas_start && g_now < g_meas_end) {
        g_meas_msgs++;
        g_meas_bytes += c->msg_len;
        hist_add(&h_lat, g_now - t0);
    }
    if (g_phase == P_RUN) echo_send(c);
}

static void fan_advance(void) {
    uint32_t W = (uint32_t)cfg.window;
    while (g_done < g_sent && g_dcnt[g_done % W] >= (uint32_t)cfg.nsubs) {
        g_dcnt[g_done % W] = 0;
        g_done++;
    }
}

static void sub_on_msg(conn *c) {
    const uint8_t *head = c->head;
    size_t head_len = c->head_len, msg_len = c->msg_len;
    if (cfg.unwrap) {
        const char *prefix = cfg.unwrap;
        size_t prefix_len = cfg.unwrap_len;
        char own[256];
        if (g_unwrap_varies) {
            prefix_len = variant_text(cfg.unwrap, c, own, sizeof own);
            prefix = own;
        }
        /* A reply of the protocol, not a delivery: not ours to count. */
        if (head_len < prefix_len || memcmp(head, prefix, prefix_len) != 0) return;
        head += prefix_len;
        head_len -= prefix_len;
        /* Without --unwrap-suffix, what follows the payload may vary (a timestamp, say). */
        size_t rest = msg_len >= prefix_len ? msg_len - prefix_len : 0;
        msg_len = cfg.unwrap_suffix ? (rest >= cfg.unwrap_suffix_len ? rest - cfg.unwrap_suffix_len : 0)
                                    : (rest >= cfg.size ? cfg.size : rest);
    }
    if (head_len >= 1 && head[0] == 'P') {
        if (!c->ready) { c->ready = 1; g_ready++; }
        int bad = 0;
        uint64_t probe = head_len >= 9 ? hex_get(head + 1, 8, &bad) : 0;
        if (!bad && probe == g_probe_sent) { g_probe_deliv++; g_last_probe_deliv = g_now; }
        return;
    }
    int bad = 0;
    if (head_len < 25 || head[0] != 'S') bad = 1;
    uint64_t seq = bad ? 0 : hex_get(head + 1, 8, &bad);
    uint64_t ts = bad ? 0 : hex_get(head + 9, 16, &bad);
    if (bad || msg_len != cfg.size) {
        g_mismatch++;
        if (g_mismatch <= 3) note_err("subscriber #%d: unrecognised message (len %llu)", c->id, (unsigned long long)c->msg_len);
        return;
    }
    if (seq != c->next_seq) {
        if (seq < c->next_seq) { g_dups++; if (g_dups <= 3) note_err("subscriber #%d: duplicate/reordered seq %llu", c->id, (unsigned long long)seq); return; }
        g_gaps += seq - c->next_seq;
        if (g_gaps <= 3) note_err("subscriber #%d: missing seq %llu..%llu", c->id, (unsigned long long)c->next_seq, (unsigned long long)seq - 1);
    }
    c->next_seq = seq + 1;
    g_deliv++;
    g_last_deliv_t = g_now;
    if (g_phase >= P_RUN && g_now >= g_meas_start && g_now < g_meas_end) {
        g_meas_deliv++;
        uint64_t st = g_t0 + ts;
        hist_add(&h_lat, g_now > st ? g_now - st : 0);
    }
    if (seq >= g_done && seq < g_sent) {
        if (++g_dcnt[seq % (uint32_t)cfg.window] >= (uint32_t)cfg.nsubs) fan_advance();
    }
}

static void text_frame(conn *c, const char *text) {
    queue_frame(c, 1, (const uint8_t *)text, strlen(text));
    flush_out(c);
}

/* A Socket.IO client's packet (https://socket.io/docs/v4/engine-io-protocol/ and
 * socket-io-protocol/): 1 is reserved for the protocol's own packets (returns 1), 0 hands an event or
 * ack on to the caller. Over the WebSocket transport each frame holds one Engine.IO packet. */
static int sio_packet(conn *c) {
    const uint8_t *h = c->head;
    size_t n = c->head_len;
    if (n == 0 || c->msg_op != 1) { conn_fail(c, "socket.io: empty or binary packet"); return 1; }
    switch (h[0]) {
    case '0': /* Engine.IO open: {"sid":..,"pingInterval":..}; join the default namespace */
        if (c->sio != SIO_OPENING) { conn_fail(c, "socket.io: a second Engine.IO open packet"); return 1; }
        c->sio = SIO_JOINING;
        text_frame(c, "40");
        return 1;
    case '1': conn_fail(c, "socket.io: the server closed the Engine.IO session"); return 1;
    case '2': { /* ping (with its data, "2probe"): answered with a pong carrying the same */
        char pong[40];
        size_t l = n < sizeof pong - 1 ? n : sizeof pong - 1;
        memcpy(pong, h, l);
        pong[0] = '3';
        pong[l] = 0;
        text_frame(c, pong);
        return 1;
    }
    case '3': case '6': return 1; /* pong, noop */
    case '4': break;
    default: conn_fail(c, "socket.io: unknown Engine.IO packet type '%c'", h[0]); return 1;
    }
    /* An Engine.IO message: a Socket.IO packet of the default namespace. */
    if (n < 2) { conn_fail(c, "socket.io: an empty message packet"); return 1; }
    if (h[1] == '0') {
        if (c->sio != SIO_JOINING) { conn_fail(c, "socket.io: a namespace answer nobody asked for"); return 1; }
        c->sio = SIO_CONNECTED;
        if (cfg.sub_init) send_sub_init(c);
        return 1;
    }
    if (h[1] == '4') { conn_fail(c, "socket.io: namespace refused: %.*s", (int)(n > 80 ? 80 : n), (const char *)h); return 1; }
    if (h[1] == '1') { conn_fail(c, "socket.io: the server disconnected the namespace"); return 1; }
    if (c->sio != SIO_CONNECTED) { conn_fail(c, "socket.io: an event before the namespace's answer"); return 1; }
    return 0;
}

/* A message while the connection waits for --join-reply (returns 1): joined once one holds it. */
static int join_wait(conn *c) {
    if (!cfg.join_reply || c->joined) return 0;
    if (c->jbuf && memmem(c->jbuf, c->jlen, cfg.join_reply, strlen(cfg.join_reply))) {
        c->joined = 1;
        free(c->jbuf); c->jbuf = NULL;
        if (c->role == R_IDLE) conn_counted(c);
        else g_joined++;
    }
    return 1;
}

/* ------------------------------------------------------------------ storm */
/* The SDKs' backoff (centrifuge-js backoff(), centrifuge-python _backoff): full jitter,
 * min + random(0, min(max, min * 2^attempt)), at most max. */
static uint64_t storm_backoff(uint32_t attempt) {
    double cap = cfg.min_delay * (double)(1ull << (attempt > 31 ? 31 : attempt));
    if (cap > cfg.max_delay) cap = cfg.max_delay;
    double delay = cfg.min_delay + cap * (double)(rng64() >> 11) / 9007199254740992.0;
    return sec_ns(delay < cfg.max_delay ? delay : cfg.max_delay);
}

/* Give up on a client, as the SDKs do for a terminal code. */
static void storm_give_up(conn *c, const char *why) {
    note_err("storm client #%d refused for good: %s", c->id, why);
    c->gave_up = 1;
    g_storm_gave_up++;
}

/* A client lost its connection or was refused: close it, and retry after the backoff unless
 * the reason is terminal (close codes 3500-3999 and 4500-4999, as the SDKs read them). */
static void storm_lost(conn *c, const char *why) {
    if (c->state == S_DONE) return;
    if (c->connected) { c->connected = 0; g_storm_connected--; }
    else g_storm_pending--;
    int code = 0;
    if (!strncmp(why, "server refused upgrade: ", 24) && strstr(why, "HTTP/1.1 503")) g_storm_503++;
    else if (!strncmp(why, "connect error", 13)) { /* counted by storm_on_msg */ }
    else if (!strncmp(why, "timeout", 7)) g_storm_timeouts++;
    else if (!strncmp(why, "blip", 4)) { /* asked for: SIGUSR1 */ }
    else if (!strncmp(why, "connect(", 8)) g_storm_tcp++;
    else if (sscanf(why, "server sent close frame: code %d", &code) == 1 || strstr(why, "closed")) g_storm_closed++;
    else g_storm_other++;
    if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; }
    free(c->out); c->out = NULL; c->out_cap = c->out_len = c->out_off = 0;
    free(c->hs); c->hs = NULL; c->hs_len = 0;
    c->state = S_DONE;
    if ((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000)) { storm_give_up(c, why); return; }
    c->retry = 1;
    c->next_try = now_ns() + storm_backoff(c->attempts++);
}

/* A reply to the connect command (--sub-init), or a push. */
static void storm_on_msg(conn *c) {
    const char *head = (const char *)c->head;
    size_t len = c->head_len;
    if (c->msg_len == 2 && len == 2 && !memcmp(head, "{}", 2)) { /* the server's ping: pong */
        queue_frame(c, 1, (const uint8_t *)"{}", 2);
        flush_out(c);
        return;
    }
    if (c->connected) return;
    if (memmem(head, len, "\"connect\":", 10)) {
        c->connected = 1;
        c->attempts = 0;
        g_storm_pending--;
        g_storm_connected++;
        g_storm_connects++;
    } else if (memmem(head, len, "\"error\":", 8)) {
        /* Temporary errors are retried after the backoff (centrifuge-js _connectError); 109 refreshes
         * the token first, which a bench token never needs. */
        int temporary = memmem(head, len, "\"temporary\":true", 16) != NULL;
        if (memmem(head, len, "\"code\":111", 10)) g_storm_111++;
        else g_storm_other++;
        if (temporary) { send_close(c, 1000); storm_lost(c, "connect error (temporary)"); }
        else {
            char why[120];
            snprintf(why, sizeof why, "connect error: %.*s", (int)(len > 100 ? 100 : len), head);
            send_close(c, 1000);
            storm_lost(c, why);
            c->retry = 0;
            storm_give_up(c, why);
        }
    }
}

static void storm_report(void) {
    printf("# STORM t=%.3f connected=%d connects=%llu refused_upgrade=%llu refused_connect=%llu tcp_errors=%llu "
           "closed=%llu timeouts=%llu other=%llu gave_up=%d\n",
           (g_now - g_t0) / 1e9, g_storm_connected, (unsigned long long)g_storm_connects, (unsigned long long)g_storm_503,
           (unsigned long long)g_storm_111, (unsigned long long)g_storm_tcp, (unsigned long long)g_storm_closed,
           (unsigned long long)g_storm_timeouts, (unsigned long long)g_storm_other, g_storm_gave_up);
    fflush(stdout);
    g_storm_last_report = g_now;
}

/* Start the clients whose backoff is over, at most --concurrency handshakes at once; drop those
 * not connected --timeout s after they started, as the SDKs' connect timeout does (a SYN or a
 * request lost in a full accept queue); run for --duration, then close them all. */
static void storm_tick(void) {
    if (g_now - g_storm_last_report >= sec_ns(cfg.report_every)) storm_report();
    if (g_now >= g_t0 + sec_ns(cfg.duration)) { close_all_start(); return; }
    uint64_t late = g_now - sec_ns(cfg.timeout);
    if (g_storm_blip) {
        /* A network blip: every connected client loses its connection at once. */
        g_storm_blip = 0;
        for (int i = 0; i < nconns_total; i++)
            if (conns[i].connected) storm_lost(&conns[i], "blip");
    }
    for (int i = 0; i < nconns_total; i++) {
        conn *c = &conns[i];
        if (!c->connected && c->state != S_NEW && c->state != S_DONE && c->t_start < late) storm_lost(c, "timeout");
        if (g_storm_pending >= cfg.concurrency) continue;
        if (c->gave_up || (c->state != S_NEW && !(c->state == S_DONE && c->retry)) || c->next_try > g_now) continue;
        if (c->state == S_DONE) {
            conn keep = *c;
            memset(c, 0, sizeof *c);
            c->fd = -1; c->id = keep.id; c->role = keep.role; c->attempts = keep.attempts;
            c->http = keep.http;
        }
        g_storm_pending++;
        start_conn(c);
    }
}

/* A held client's message (connect mode, Centrifugo protocol): the server's ping "{}" gets its
 * pong; once joined, anything else is a push, counted (and timed when it holds --mark). */
static int held_msg(conn *c) {
    if (c->msg_len == 2 && c->head_len == 2 && !memcmp(c->head, "{}", 2)) {
        queue_frame(c, 1, (const uint8_t *)"{}", 2);
        flush_out(c);
        g_pings++;
        return 1;
    }
    if (!c->joined && cfg.join_reply) return 0;
    g_pushes++;
    if (cfg.mark && memmem(c->head, c->head_len, cfg.mark, strlen(cfg.mark))) {
        if (!g_marked++) g_mark_first = g_now;
        g_mark_last = g_now;
    }
    return 1;
}

static void on_message(conn *c) {
    if (cfg.socketio && c->role != R_PUB && c->role != R_ECHO && sio_packet(c)) return;
    if (c->role == R_IDLE && cfg.sub_init && !cfg.socketio && held_msg(c)) { if (c->jbuf) c->jlen = 0; return; }
    if ((c->role == R_SUB || c->role == R_IDLE) && join_wait(c)) {
        if (c->jbuf) c->jlen = 0;
        return;
    }
    switch (c->role) {
    case R_ECHO: echo_on_msg(c); break;
    case R_SUB: sub_on_msg(c); break;
    case R_STORM: storm_on_msg(c); break;
    case R_PUB:
        g_pub_echo++;
        if (g_pub_echo == 1) note_err("publisher received a message: server echoes /bcast to the sender (contract says: all OTHER connections)");
        break;
    default:
        /* The replies to --sub-init's commands are expected. */
        if (cfg.sub_init) break;
        g_unexpected++;
        if (g_unexpected == 1) note_err("idle conn #%d received an unexpected data message", c->id);
    }
    if (c->jbuf) c->jlen = 0;
}

static void on_control(conn *c) {
    if (c->fr_op == 9) { /* ping -> pong */
        queue_frame(c, 10, c->ctrl, c->ctrl_len);
        flush_out(c);
    } else if (c->fr_op == 8) {
        int code = c->ctrl_len >= 2 ? (c->ctrl[0] << 8 | c->ctrl[1]) : 1005;
        c->close_rcvd = 1;
        if (!c->close_sent) {
            /* server-initiated close: an error during a test */
            char reason[126] = "";
            if (c->ctrl_len > 2) { memcpy(reason, c->ctrl + 2, (size_t)c->ctrl_len - 2); reason[c->ctrl_len - 2] = 0; }
            send_close(c, code == 1005 ? 1000 : code);
            conn_fail(c, "server sent close frame: code %d reason \"%s\"", code, reason);
            return;
        }
        /* reply to our close: wait for EOF (server closes TCP first) */
    }
    /* pong: ignore */
}

/* streaming frame parser; payload is never buffered except the first 32 bytes of each message */
static void feed(conn *c, const uint8_t *p, size_t n) {
    while (n > 0 && c->state != S_DONE) {
        if (!c->in_payload) {
            while (c->hdr_len < 2 && n) { c->hdr[c->hdr_len++] = *p++; n--; }
            if (c->hdr_len < 2) return;
            uint8_t b0 = c->hdr[0], b1 = c->hdr[1];
            size_t l7 = b1 & 0x7f;
            size_t hl = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
            while (c->hdr_len < hl && n) { c->hdr[c->hdr_len++] = *p++; n--; }
            if (c->hdr_len < hl) return;
            c->hdr_len = 0;
            if (b0 & 0x70) { conn_fail(c, "protocol: RSV bits set in server frame (0x%02x)", b0); return; }
            if (b1 & 0x80) { conn_fail(c, "protocol: server frame is masked"); return; }
            uint64_t len = l7;
            if (l7 == 126) len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
            else if (l7 == 127) { len = 0; for (int i = 0; i < 8; i++) len = len << 8 | c->hdr[2 + i]; }
            int op = b0 & 0x0f, fin = b0 >> 7;
            if (op >= 8) {
                if (op > 10) { conn_fail(c, "protocol: unknown control opcode %d", op); return; }
                if (!fin || len > 125) { conn_fail(c, "protocol: bad control frame (fin=%d len=%llu)", fin, (unsigned long long)len); return; }
                c->ctrl_len = 0;
            } else if (op == 0) {
                if (!c->in_msg) { conn_fail(c, "protocol: continuation frame without a started message"); return; }
            } else if (op == 1 || op == 2) {
                if (c->in_msg) { conn_fail(c, "protocol: new data frame inside a fragmented message"); return; }
                c->in_msg = 1; c->msg_op = (uint8_t)op; c->msg_len = 0; c->head_len = 0;
            } else { conn_fail(c, "protocol: unknown opcode %d", op); return; }
            c->fr_op = (uint8_t)op; c->fr_fin = (uint8_t)fin; c->fr_rem = len; c->in_payload = 1;
        }
        size_t take = c->fr_rem < n ? (size_t)c->fr_rem : n;
        if (c->fr_op >= 8) {
            memcpy(c->ctrl + c->ctrl_len, p, take);
            c->ctrl_len += (uint8_t)take;
        } else {
            size_t keep = cfg.mode == M_STORM || cfg.mode == M_CONNECT ? sizeof c->head : 32 + UNWRAP_SLACK + cfg.unwrap_len;
            if (c->head_len < keep) {
                size_t h = keep - c->head_len;
                if (h > take) h = take;
                memcpy(c->head + c->head_len, p, h);
                c->head_len += (uint16_t)h;
            }
            c->msg_len += take;
            if (cfg.join_reply && !c->joined && (c->role == R_IDLE || c->role == R_SUB)) {
                if (!c->jbuf) c->jbuf = malloc(JOIN_BUF);
                size_t j = JOIN_BUF - c->jlen < take ? JOIN_BUF - c->jlen : take;
                memcpy(c->jbuf + c->jlen, p, j);
                c->jlen += (uint32_t)j;
            }
        }
        p += take; n -= take; c->fr_rem -= take;
        if (c->fr_rem == 0) {
            c->in_payload = 0;
            if (c->fr_op >= 8) on_control(c);
            else if (c->fr_fin) { c->in_msg = 0; on_message(c); }
        }
    }
}

/* One line of a stream (its end, '\n', not included): a message, or for SSE an event's field. */
static void stream_line(conn *c) {
    if (cfg.transport == T_SSE) {
        /* Only "data: " lines carry a reply or push; the blank line that ends an event doesn't. */
        if (c->head_len < SSE_DATA_LEN || memcmp(c->head, SSE_DATA, SSE_DATA_LEN) != 0) goto next;
        memmove(c->head, c->head + SSE_DATA_LEN, c->head_len - SSE_DATA_LEN);
        c->head_len -= SSE_DATA_LEN;
        c->msg_len -= SSE_DATA_LEN;
    }
    if (c->msg_len == 0 || (c->msg_len == 1 && c->head[0] == '\r')) goto next;
    c->msg_op = 1;
    on_message(c);
next:
    c->head_len = 0;
    c->msg_len = 0;
}

/* Newline-delimited messages; only the head of each (what --unwrap and the payload need) is kept. */
static void stream_lines(conn *c, const uint8_t *p, size_t n) {
    size_t keep = 32 + UNWRAP_SLACK + cfg.unwrap_len + (cfg.transport == T_SSE ? SSE_DATA_LEN : 0);
    while (n > 0 && c->state != S_DONE) {
        const uint8_t *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (c->head_len < keep) {
            size_t h = keep - c->head_len < take ? keep - c->head_len : take;
            memcpy(c->head + c->head_len, p, h);
            c->head_len += (uint16_t)h;
        }
        c->msg_len += take;
        p += take; n -= take;
        if (nl) { p++; n--; stream_line(c); }
    }
}

/* A stream's body: HTTP/1.1 chunked transfer coding (RFC 9112, section 7.1), or as it comes. */
static void stream_body(conn *c, const uint8_t *p, size_t n) {
    if (!c->chunked) { stream_lines(c, p, n); return; }
    while (n > 0 && c->state != S_DONE) {
        if (c->ck_state == CK_DATA) {
            size_t take = c->ck_rem < n ? (size_t)c->ck_rem : n;
            stream_lines(c, p, take);
            p += take; n -= take; c->ck_rem -= take;
            if (c->ck_rem == 0) c->ck_state = CK_CRLF;
            continue;
        }
        uint8_t ch = *p++;
        n--;
        if (c->ck_state == CK_CRLF) {
            if (ch == '\n') c->ck_state = CK_SIZE;
            else if (ch != '\r') { conn_fail(c, "chunked: no CRLF after a chunk's data"); return; }
            continue;
        }
        /* CK_SIZE: hex digits, maybe ";extensions", then CRLF */
        int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
              : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
        if (ch == '\n') {
            if (!c->ck_digits) { conn_fail(c, "chunked: a chunk without a size"); return; }
            if (c->ck_rem == 0) { conn_fail(c, "server ended the stream (last chunk)"); return; }
            c->ck_state = CK_DATA;
            c->ck_digits = 0;
            c->ck_ext = 0;
        } else if (d >= 0 && !c->ck_ext) {
            if (++c->ck_digits > 15) { conn_fail(c, "chunked: chunk size too large"); return; }
            c->ck_rem = c->ck_rem << 4 | (uint64_t)d;
        } else if (ch == ';') {
            c->ck_ext = 1;
        } else if (ch != '\r' && !c->ck_ext) {
            conn_fail(c, "chunked: bad chunk size byte 0x%02x", ch);
            return;
        }
    }
}

static void on_readable(conn *c) {
    for (int iter = 0; iter < 8 && c->state != S_DONE; iter++) {
        ssize_t r = recv(c->fd, rbuf, RBUF_SZ, 0);
        if (r > 0) {
            g_now = now_ns();
            if (c->state == S_HANDSHAKE) on_handshake_data(c, rbuf, (size_t)r);
            else if (c->http) stream_body(c, rbuf, (size_t)r);
            else feed(c, rbuf, (size_t)r);
            if (c->state != S_DONE && c->out_len > c->out_off && !c->want_out) flush_out(c);
            if ((size_t)r < RBUF_SZ) break;
            continue;
        }
        if (r == 0) {
            if (c->state == S_CLOSING && c->close_sent) {
                if (c->close_rcvd) g_closed_clean++;
                else { g_close_timeouts++; } /* EOF without close reply */
                conn_end(c);
            } else if (c->state == S_HANDSHAKE) {
                conn_fail(c, "server closed the connection during the handshake (%u bytes of response)", c->hs_len);
            } else {
                conn_fail(c, c->http ? "server ended the stream (EOF)" : "server closed the TCP connection without a close frame");
            }
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        conn_fail(c, "recv: %s", strerror(errno));
        return;
    }
}

static void on_event(conn *c, uint32_t evs) {
    if (c->state == S_DONE) return;
    if (c->state == S_CONNECTING) {
        int err = 0; socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            conn_fail(c, "connect(%s:%d): %s%s", cfg.host, cfg.port, strerror(err),
                      err == ECONNREFUSED ? " (is the server running?)" : "");
            return;
        }
        if (evs & (EPOLLOUT | EPOLLIN)) send_handshake(c);
        return;
    }
    if (evs & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    if (c->state != S_DONE && (evs & EPOLLOUT)) flush_out(c);
}

/* The connection is up: counted as open, its handshake (and join) latency recorded. */
static void conn_counted(conn *c) {
    c->counted = 1;
    g_open++;
    hist_add(&h_hs, now_ns() - c->t_start);
}

static void send_sub_init(conn *c) {
    char text[8192];
    queue_frame(c, 1, (const uint8_t *)text, variant_text(cfg.sub_init, c, text, sizeof text));
    flush_out(c);
}

static void on_open(conn *c) {
    /* In connect mode with --join-reply, a connection counts once it has joined. */
    if (!(c->role == R_IDLE && cfg.join_reply)) conn_counted(c);
    if (c->role == R_ECHO) c->fifo = calloc((size_t)cfg.depth, sizeof(uint64_t));
    /* A stream's subscriber sent its connect command with the request; a Socket.IO client
     * sends it once its namespace answers. */
    if ((c->role == R_SUB || c->role == R_IDLE || c->role == R_STORM) && cfg.sub_init && !c->http && !cfg.socketio) send_sub_init(c);
}

/* ------------------------------------------------------------------ phases */
static uint64_t sec_ns(double s) { return (uint64_t)(s * 1e9); }

static void close_all_start(void) {
    g_phase = P_CLOSE;
    g_phase_deadline = now_ns() + sec_ns(cfg.timeout < 5 ? cfg.timeout : 5);
    for (int i = 0; i < nconns_total; i++) {
        conn *c = &conns[i];
        /* A stream has no close handshake: the client ends it by closing the connection. */
        if (c->state == S_OPEN && c->http) { g_closed_clean++; conn_end(c); }
        else if (c->state == S_OPEN) send_close(c, 1000);
        else if (c->state != S_DONE && c->state != S_CLOSING) conn_end(c);
    }
}

static void fan_send_probe(void) {
    memset(g_fbuf, 'x', cfg.size);
    g_fbuf[0] = 'P';
    hex_put(g_fbuf + 1, g_probe_sent + 1, 8); /* probes are numbered from 1 */
    g_probe_deliv = 0;
    g_ready_at_probe = g_ready;
    queue_frame(g_pub, g_op, g_fbuf, cfg.size);
    flush_out(g_pub);
    g_probe_sent++;
    g_last_probe = g_now;
}

static void pub_pump(void) {
    conn *p = g_pub;
    if (g_phase != P_RUN || !p || p->state != S_OPEN) return;
    int n = 0;
    uint32_t W = (uint32_t)cfg.window;
    int stop = 0;
    while (g_sent - g_done < W) {
        if (g_now >= g_send_end || (cfg.messages && g_sent >= cfg.messages)) { stop = 1; break; }
        if (cfg.rate > 0) {
            uint64_t due = (uint64_t)((double)(g_now - g_run_start) * cfg.rate / 1e9) + 1;
            if (g_sent >= due) break;
        }
        if (!g_first_meas_set && g_now >= g_meas_start) { g_first_meas_set = 1; g_first_meas = g_sent; }
        g_fbuf[0] = 'S';
        hex_put(g_fbuf + 1, g_sent, 8);
        hex_put(g_fbuf + 9, g_now - g_t0, 16);
        queue_frame(p, g_op, g_fbuf, cfg.size);
        g_sent++;
        if (++n >= 256) break;
    }
    if (g_now >= g_send_end || (cfg.messages && g_sent >= cfg.messages)) stop = 1;
    if (n) flush_out(p);
    if (stop) {
        g_phase = P_DRAIN;
        g_phase_deadline = g_now + sec_ns(cfg.timeout);
    }
}

/* Connect mode's progress, every --report-every s when given: CLOCK_MONOTONIC seconds (as
 * Python's time.monotonic()) for t and the marked pushes' first and last arrivals. */
static void connect_status(void) {
    printf("# STATUS t=%.6f started=%d open=%d failed=%d lost=%d pings=%llu pushes=%llu marked=%llu mark_first=%.6f "
           "mark_last=%.6f\n",
           g_now / 1e9, g_started, g_open, g_failed, g_lost, (unsigned long long)g_pings, (unsigned long long)g_pushes,
           (unsigned long long)g_marked, g_mark_first / 1e9, g_mark_last / 1e9);
    fflush(stdout);
    g_status_last = g_now;
}

static void tick(void) {
    g_now = now_ns();
    if (cfg.mode == M_STORM && g_phase == P_CONNECT) { storm_tick(); return; }
    if (cfg.mode == M_CONNECT && cfg.report_set && g_now - g_status_last >= sec_ns(cfg.report_every)) connect_status();
    /* SIGUSR2 while still connecting: close what is open and end, as after the hold. */
    if (cfg.mode == M_CONNECT && g_end_hold && g_phase == P_CONNECT) { g_conn_phase_end = g_now; close_all_start(); }
    switch (g_phase) {
    case P_CONNECT: {
        int limit = cfg.mode == M_FANOUT ? cfg.nsubs : nconns_total;
        while (g_started < limit && (g_started - g_open - g_failed) < cfg.concurrency && !g_abort[0])
            start_conn(&conns[g_started]);
        if (g_abort[0]) return;
        int resolved = g_open + g_failed;
        if (cfg.mode != M_CONNECT && g_failed > 0) {
            do_abort("%d connection(s) failed to open: %s", g_failed, g_err);
            return;
        }
        if (cfg.mode == M_FANOUT) {
            /* With --join-reply, the publisher comes once every subscriber has joined. */
            if (g_started == cfg.nsubs && resolved == cfg.nsubs && (!cfg.join_reply || g_joined == cfg.nsubs)) {
                if (!cfg.quiet) fprintf(stderr, "loadgen: %d subscribers connected in %.2f s; connecting publisher\n",
                                        cfg.nsubs, (g_now - g_conn_phase_start) / 1e9);
                start_conn(&conns[cfg.nsubs]);
            } else if (resolved == nconns_total && g_pub->state == S_OPEN) {
                g_phase = P_SYNC;
                g_phase_deadline = g_now + sec_ns(cfg.timeout > 30 ? cfg.timeout : 30);
                fan_send_probe();
            }
        } else if (resolved == nconns_total) {
            g_conn_phase_end = g_now;
            if (g_open == 0) { do_abort("no connection could be opened: %s", g_err); return; }
            if (cfg.mode == M_ECHO) {
                g_phase = P_RUN;
                g_run_start = g_now;
                g_meas_start = g_now + sec_ns(cfg.warmup);
                g_meas_end = g_meas_start + sec_ns(cfg.duration);
                for (int i = 0; i < nconns_total; i++) {
                    conn *c = &conns[i];
                    if (c->state != S_OPEN) continue;
                    for (int d = 0; d < cfg.depth; d++) echo_send(c);
                    flush_out(c);
                }
            } else {
                cpu_mark(1);
                g_phase = P_HOLD;
                g_phase_deadline = g_now + sec_ns(cfg.hold);
                double el = (g_conn_phase_end - g_conn_phase_start) / 1e9;
                printf("# HOLD open=%d failed=%d connect_s=%.3f hold_s=%.1f\n", g_open, g_failed, el, cfg.hold);
                fflush(stdout);
            }
        }
        if (g_phase == P_CONNECT && g_now > g_phase_deadline)
            do_abort("timeout: only %d of %d connections open after %.0f s (%d failed)", g_open, nconns_total,
                     cfg.connect_timeout, g_failed);
        break;
    }
    case P_SYNC:
        if (g_ready >= cfg.nsubs) {
            g_phase = P_RUN;
            g_run_start = g_now;
            g_meas_start = g_now + sec_ns(cfg.warmup);
            g_meas_end = g_send_end = g_meas_start + sec_ns(cfg.duration);
            pub_pump();
        } else if (g_now > g_phase_deadline) {
            do_abort("timeout: only %d of %d subscribers received the readiness probe (server not broadcasting to all?)",
                     g_ready, cfg.nsubs);
        } else if (g_probe_deliv ? g_probe_deliv >= g_ready_at_probe && g_now - g_last_probe_deliv > 50000000ull
                                 : g_now - g_last_probe > 1000000000ull) {
            /* Again once the last probe has reached every subscriber that was ready when it went
             * out and then no other for 50 ms (or reached none in a second: nobody had subscribed
             * yet), so that a server that needs longer than that to send one to all of them is
             * not handed a backlog of probes that it would still be sending in the measured window. */
            fan_send_probe();
        }
        break;
    case P_RUN:
        if (cfg.mode == M_ECHO) {
            if (!g_meas_started && g_now >= g_meas_start) { g_meas_started = 1; cpu_mark(0); }
            if (g_now >= g_meas_end) {
                cpu_mark(1);
                g_phase = P_DRAIN;
                g_phase_deadline = g_now + sec_ns(cfg.timeout);
            }
        } else {
            if (!g_meas_started && g_now >= g_meas_start) { g_meas_started = 1; cpu_mark(0); }
            pub_pump();
        }
        break;
    case P_DRAIN:
        if (cfg.mode == M_ECHO) {
            if (g_inflight == 0) close_all_start();
            else if (g_now > g_phase_deadline) {
                note_err("drain timeout: %llu echo replies still missing after %.0f s", (unsigned long long)g_inflight, cfg.timeout);
                close_all_start();
            }
        } else {
            if (g_meas_started && !g_meas_ended && (g_now >= g_meas_end || g_done >= g_sent)) {
                /* window ends at meas_end, or earlier if -m messages were all delivered before it */
                g_meas_ended = 1;
                if (g_now < g_meas_end) g_meas_end = g_now;
                cpu_mark(1);
            }
            if (g_done >= g_sent) close_all_start();
            else if (g_now > g_phase_deadline) {
                note_err("drain timeout: message %llu not delivered to all subscribers after %.0f s",
                         (unsigned long long)g_done, cfg.timeout);
                close_all_start();
            }
        }
        break;
    case P_HOLD:
        if (g_now >= g_phase_deadline || g_end_hold) close_all_start();
        break;
    case P_CLOSE: {
        int live = nconns_total - g_ended;
        if (cfg.mode == M_STORM) { /* its clients that were cut or refused are done without ending */
            live = 0;
            for (int i = 0; i < nconns_total; i++) live += conns[i].state != S_DONE;
        }
        if (live <= 0) g_phase = P_EXIT;
        else if (g_now > g_phase_deadline) {
            for (int i = 0; i < nconns_total; i++)
                if (conns[i].state != S_DONE) {
                    if (conns[i].close_rcvd) g_closed_clean++; /* got close reply; server did not close TCP */
                    else g_close_timeouts++;
                    conn_end(&conns[i]);
                }
            g_phase = P_EXIT;
        }
        break;
    }
    default: break;
    }
}

/* ------------------------------------------------------------------ reporting */
static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') { putchar('\\'); putchar(ch); }
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static void report(void) {
    int ok = !g_abort[0] && g_errs == 0;
    double client_cpu = -1, server_cpu = -1;
    if (g_cpu_t1 > g_cpu_t0 && g_cpu_t0) {
        double wall = (g_cpu_t1 - g_cpu_t0) / 1e9;
        client_cpu = 100.0 * (g_cpu1_client - g_cpu0_client) / wall;
        if (g_cpu0_server >= 0 && g_cpu1_server >= 0)
            server_cpu = 100.0 * (double)(g_cpu1_server - g_cpu0_server) / (double)sysconf(_SC_CLK_TCK) / wall;
    }
    double p50 = hist_pct_us(&h_lat, 0.50), p90 = hist_pct_us(&h_lat, 0.90), p99 = hist_pct_us(&h_lat, 0.99);
    double lmax = h_lat.max / 1000.0;
    const char *mname = cfg.mode == M_ECHO ? "echo" : cfg.mode == M_FANOUT ? "fanout" : cfg.mode == M_STORM ? "storm" : "connect";
    if (cfg.mode == M_STORM) {
        storm_report();
        ok = !g_abort[0] && g_storm_gave_up == 0;
        printf("# storm %s: %d of %d clients connected at the end, %llu connects, %d refused for good\n", ok ? "ok" : "FAILED",
               g_storm_connected, nconns_total, (unsigned long long)g_storm_connects, g_storm_gave_up);
        printf("{\"mode\":\"storm\",\"ok\":%s,\"label\":", ok ? "true" : "false");
        json_str(cfg.label);
        printf(",\"clients\":%d,\"connected\":%d,\"connects\":%llu,\"refused_upgrade\":%llu,\"refused_connect\":%llu,"
               "\"tcp_errors\":%llu,\"closed\":%llu,\"timeouts\":%llu,\"other\":%llu,\"gave_up\":%d}\n",
               nconns_total, g_storm_connected, (unsigned long long)g_storm_connects, (unsigned long long)g_storm_503,
               (unsigned long long)g_storm_111, (unsigned long long)g_storm_tcp, (unsigned long long)g_storm_closed,
               (unsigned long long)g_storm_timeouts, (unsigned long long)g_storm_other, g_storm_gave_up);
        fflush(stdout);
        exit(ok ? 0 : 1);
    }
    char human[600];
    if (cfg.mode == M_ECHO) {
        double mps = g_meas_msgs / cfg.duration, mbps = g_meas_bytes / cfg.duration / 1e6;
        snprintf(human, sizeof human,
                 "echo %s: %.0f msg/s, %.2f MB/s, rtt p50 %.1f us p99 %.1f us (%d conns x depth %d, %zu B %s, %.1f s)",
                 ok ? "ok" : "FAILED", mps, mbps, p50, p99, g_open, cfg.depth, cfg.size, cfg.binary ? "binary" : "text",
                 cfg.duration);
        printf("# %s\n", human);
        printf("{\"mode\":\"%s\",\"ok\":%s,\"label\":", mname, ok ? "true" : "false");
        json_str(cfg.label);
        printf(",\"conns\":%d,\"open\":%d,\"depth\":%d,\"size\":%zu,\"binary\":%s,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
               "\"msgs\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"lat_p50_us\":%.1f,\"lat_p90_us\":%.1f,"
               "\"lat_p99_us\":%.1f,\"lat_max_us\":%.1f,\"mismatches\":%llu,\"unexpected\":%llu,",
               cfg.conns, g_open, cfg.depth, cfg.size, cfg.binary ? "true" : "false", cfg.warmup, cfg.duration,
               (unsigned long long)g_meas_msgs, mps, mbps, p50, p90, p99, lmax, (unsigned long long)g_mismatch,
               (unsigned long long)g_unexpected);
    } else if (cfg.mode == M_FANOUT) {
        double win = g_meas_started && g_meas_end > g_meas_start ? (g_meas_end - g_meas_start) / 1e9 : 0;
        double dps = win > 0 ? g_meas_deliv / win : 0;
        uint64_t meas_msgs = g_first_meas_set ? g_sent - g_first_meas : 0;
        double mps = dps / cfg.nsubs;
        uint64_t lost = (uint64_t)cfg.nsubs * g_sent > g_deliv ? (uint64_t)cfg.nsubs * g_sent - g_deliv : 0;
        /* A slow server may still be delivering the first window when the measured one ends: its
         * deliveries in the window count all the same. */
        if (!g_first_meas_set && g_meas_deliv == 0 && !g_abort[0]) { ok = 0; if (!g_err[0]) snprintf(g_err, sizeof g_err, "no message published after warmup (raise -m or lower -w)"); }
        if (g_first_meas_set && g_meas_deliv == 0 && !g_abort[0]) { ok = 0; if (!g_err[0]) snprintf(g_err, sizeof g_err, "no delivery inside the measured window (server too slow for -t?)"); }
        snprintf(human, sizeof human,
                 "fanout %s: %.0f deliveries/s (%.1f msg/s x %d subs), latency p50 %.1f us p99 %.1f us, lost %llu (%zu B %s, window %d)",
                 ok ? "ok" : "FAILED", dps, mps, cfg.nsubs, p50, p99, (unsigned long long)lost, cfg.size,
                 cfg.binary ? "binary" : "text", cfg.window);
        printf("# %s\n", human);
        printf("{\"mode\":\"%s\",\"ok\":%s,\"label\":", mname, ok ? "true" : "false");
        json_str(cfg.label);
        printf(",\"subs\":%d,\"size\":%zu,\"binary\":%s,\"window\":%d,\"rate\":%.1f,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
               "\"published\":%llu,\"measured_msgs\":%llu,\"window_s\":%.3f,\"deliveries\":%llu,\"measured_deliveries\":%llu,"
               "\"deliveries_per_s\":%.1f,\"msgs_per_s\":%.2f,\"lat_p50_us\":%.1f,\"lat_p90_us\":%.1f,\"lat_p99_us\":%.1f,"
               "\"lat_max_us\":%.1f,\"lost\":%llu,\"dups\":%llu,\"gaps\":%llu,\"pub_received\":%llu,\"probes\":%llu,"
               "\"connect_s\":%.3f,",
               cfg.nsubs, cfg.size, cfg.binary ? "true" : "false", cfg.window, cfg.rate, cfg.warmup, cfg.duration,
               (unsigned long long)g_sent, (unsigned long long)meas_msgs, win, (unsigned long long)g_deliv,
               (unsigned long long)g_meas_deliv, dps, mps, p50, p90, p99, lmax, (unsigned long long)lost,
               (unsigned long long)g_dups, (unsigned long long)g_gaps, (unsigned long long)g_pub_echo,
               (unsigned long long)g_probe_sent, g_run_start > g_conn_phase_start ? (g_run_start - g_conn_phase_start) / 1e9 : 0.0);
    } else {
        double el = g_conn_phase_end > g_conn_phase_start ? (g_conn_phase_end - g_conn_phase_start) / 1e9 : 0;
        double cps = el > 0 ? g_open / el : 0;
        double h50 = hist_pct_us(&h_hs, 0.5), h99 = hist_pct_us(&h_hs, 0.99);
        if (g_close_timeouts && !g_abort[0]) {
            /* not fatal for measurement, but flagged */
        }
        snprintf(human, sizeof human,
                 "connect %s: %d/%d open, %.0f conn/s, handshake p50 %.1f us p99 %.1f us, closes clean %d / unclean %d",
                 ok ? "ok" : "FAILED", g_open, cfg.nsubs, cps, h50, h99, g_closed_clean, g_close_timeouts);
        printf("# %s\n", human);
        printf("{\"mode\":\"%s\",\"ok\":%s,\"label\":", mname, ok ? "true" : "false");
        json_str(cfg.label);
        printf(",\"conns\":%d,\"concurrency\":%d,\"open\":%d,\"failed\":%d,\"connect_s\":%.3f,\"conns_per_s\":%.1f,"
               "\"hs_p50_us\":%.1f,\"hs_p90_us\":%.1f,\"hs_p99_us\":%.1f,\"hs_max_us\":%.1f,\"hold_s\":%.1f,"
               "\"closes_clean\":%d,\"closes_unclean\":%d,\"lost\":%d,\"pings\":%llu,\"pushes\":%llu,\"marked\":%llu,"
               "\"conn_struct_bytes\":%zu,",
               cfg.nsubs, cfg.concurrency, g_open, g_failed, el, cps, h50, hist_pct_us(&h_hs, 0.9), h99, h_hs.max / 1000.0,
               cfg.hold, g_closed_clean, g_close_timeouts, g_lost, (unsigned long long)g_pings,
               (unsigned long long)g_pushes, (unsigned long long)g_marked, sizeof(conn));
    }
    printf("\"host\":");
    json_str(cfg.host);
    printf(",\"port\":%d,\"transport\":\"%s\",\"socketio\":%s,\"joined\":%s,\"path\":", cfg.port,
           cfg.transport == T_HTTP_STREAM ? "http_stream" : cfg.transport == T_SSE ? "sse" : "ws",
           cfg.socketio ? "true" : "false", cfg.join_reply ? "true" : "false");
    json_str(cfg.path);
    printf(",\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%.1f,\"errors\":%llu,\"error\":", client_cpu, server_cpu,
           (unsigned long long)g_errs);
    json_str(g_abort[0] ? g_abort : g_err);
    printf("}\n");
    fflush(stdout);
    exit(ok ? 0 : 1);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "# FAILED: hard deadline exceeded\n{\"ok\":false,\"error\":\"loadgen hard deadline exceeded\"}\n";
    ssize_t r = write(1, m, sizeof m - 1);
    (void)r;
    _exit(3);
}

/* ------------------------------------------------------------------ main */
static int selftest(void) {
    char acc[29];
    ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
    int ok = strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0;
    uint8_t d[20];
    sha1((const uint8_t *)"abc", 3, d);
    static const uint8_t abc[20] = {0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e,
                                    0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
    ok = ok && memcmp(d, abc, 20) == 0;
    /* 2-block message */
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    static const uint8_t m2d[20] = {0x84, 0x98, 0x3e, 0x44, 0x1c, 0x3b, 0xd2, 0x6e, 0xba, 0xae,
                                    0x4a, 0xa1, 0xf9, 0x51, 0x29, 0xe5, 0xe5, 0x46, 0x70, 0xf1};
    sha1((const uint8_t *)m2, strlen(m2), d);
    ok = ok && memcmp(d, m2d, 20) == 0;
    int hok = 1;
    for (uint64_t v = 1; v < (1ull << 40); v = v * 3 + 1) {
        uint64_t back = hval(hidx(v));
        double rel = back > v ? (double)(back - v) / v : (double)(v - back) / v;
        if (rel > 0.01) hok = 0;
    }
    printf("selftest: accept %s, sha1 %s, histogram %s\n", strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0 ? "ok" : "BAD",
           ok ? "ok" : "BAD", hok ? "ok" : "BAD");
    return ok && hok ? 0 : 1;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen MODE --port P [options]\n"
            "MODE: echo | fanout | connect | storm | selftest\n"
            "common:  --host H (127.0.0.1)  --port P  --path /p (default /echo or /bcast)\n"
            "         -s/--size BYTES (32)  --text | --binary (text)  -w/--warmup S (1)  -t/--duration S (5)\n"
            "         --timeout S (10: drain/close/sync timeout)  --connect-timeout S (60)\n"
            "         -k/--concurrency K (128: max handshakes in flight)  --server-pid PID (report server CPU%%)\n"
            "         --label STR  -q/--quiet\n"
            "echo:    -c/--conns C (1)  -d/--depth D (1)\n"
            "fanout:  -n/--subs N (100)  -W/--window W (16)  -r/--rate MSGS_PER_S (0 = as fast as window allows)\n"
            "         -m/--messages M (0 = until --duration)  (size >= 25)\n"
            "connect: -n N (100)  -H/--hold S (3; SIGUSR2 ends it early)  --report-every S (\"# STATUS\" lines)\n"
            "         with --sub-init and no --socketio, a Centrifugo client: pings \"{}\" answered, pushes counted\n"
            "         --mark STR (the pushes holding STR counted and timed apart)\n"
            "sources: --src-addrs K (connect from K addresses, round-robin)  --src-first A (127.0.0.2)\n"
            "storm:   -n N (100) clients that send --sub-init TEXT (the connect command) once open and reconnect\n"
            "         after a backoff with full jitter when refused, cut, or not connected after --timeout S (10), for\n"
            "         --duration S; SIGUSR1 cuts every connected client at once (a network blip); --min-delay S (0.5)\n"
            "         --max-delay S (20) (centrifuge-js's); -k caps the handshakes in flight; \"# STORM\" status\n"
            "         lines every --report-every S (0.1)\n"
            "real-time fanout: --sub-init TEXT  --sub-init-variants N  --pub-path PATH  --unwrap PREFIX  --unwrap-suffix SUFFIX\n"
            "         --alt-port P (odd-numbered subscribers connect there: a second node)\n"
            "         --alt-port-offset N (the same, at --port + N)\n"
            "         --transport ws | http_stream | sse (ws: the subscribers' transport; TEXT is the connect command)\n"
            "         --pub-port P | --pub-port-offset N (the publisher connects there)\n"
            "         --socketio (subscribers are Socket.IO 4 clients; TEXT is sent once the namespace answers)\n"
            "connect and join: --sub-init TEXT (sent once open)  --join-reply STR (open, or fanout starts, once a message holds STR)\n"
            "         --socketio (Socket.IO 4 clients over Engine.IO v4's WebSocket transport)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "selftest")) return selftest();
    if (!strcmp(mode, "echo")) cfg.mode = M_ECHO;
    else if (!strcmp(mode, "fanout")) cfg.mode = M_FANOUT;
    else if (!strcmp(mode, "connect")) cfg.mode = M_CONNECT;
    else if (!strcmp(mode, "storm")) cfg.mode = M_STORM;
    else { usage(); return 2; }
    static struct option lo[] = {
        {"host", 1, 0, 1}, {"port", 1, 0, 'p'}, {"path", 1, 0, 2}, {"conns", 1, 0, 'c'}, {"depth", 1, 0, 'd'},
        {"size", 1, 0, 's'}, {"text", 0, 0, 3}, {"binary", 0, 0, 4}, {"duration", 1, 0, 't'}, {"warmup", 1, 0, 'w'},
        {"timeout", 1, 0, 5}, {"connect-timeout", 1, 0, 6}, {"subs", 1, 0, 'n'}, {"window", 1, 0, 'W'},
        {"rate", 1, 0, 'r'}, {"messages", 1, 0, 'm'}, {"concurrency", 1, 0, 'k'}, {"hold", 1, 0, 'H'},
        {"server-pid", 1, 0, 7}, {"label", 1, 0, 8}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"sub-init", 1, 0, 9}, {"pub-path", 1, 0, 10}, {"unwrap", 1, 0, 11}, {"unwrap-suffix", 1, 0, 12}, {"alt-port", 1, 0, 13}, {"alt-port-offset", 1, 0, 14}, {"sub-init-variants", 1, 0, 15},
        {"transport", 1, 0, 16}, {"pub-port", 1, 0, 17}, {"pub-port-offset", 1, 0, 18},
        {"socketio", 0, 0, 19}, {"join-reply", 1, 0, 20},
        {"min-delay", 1, 0, 21}, {"max-delay", 1, 0, 22}, {"report-every", 1, 0, 23},
        {"src-first", 1, 0, 24}, {"src-addrs", 1, 0, 25}, {"mark", 1, 0, 26}, {0, 0, 0, 0}};
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "p:c:d:s:t:w:n:W:r:m:k:H:qh", lo, NULL)) != -1) {
        switch (o) {
        case 1: cfg.host = optarg; break;
        case 'p': cfg.port = atoi(optarg); break;
        case 2: cfg.path = optarg; break;
        case 'c': cfg.conns = atoi(optarg); break;
        case 'd': cfg.depth = atoi(optarg); break;
        case 's': cfg.size = (size_t)strtoull(optarg, NULL, 10); break;
        case 3: cfg.binary = 0; break;
        case 4: cfg.binary = 1; break;
        case 't': cfg.duration = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 5: cfg.timeout = atof(optarg); break;
        case 6: cfg.connect_timeout = atof(optarg); break;
        case 'n': cfg.nsubs = atoi(optarg); break;
        case 'W': cfg.window = atoi(optarg); break;
        case 'r': cfg.rate = atof(optarg); break;
        case 'm': cfg.messages = strtoull(optarg, NULL, 10); break;
        case 'k': cfg.concurrency = atoi(optarg); break;
        case 'H': cfg.hold = atof(optarg); break;
        case 7: cfg.server_pid = atoi(optarg); break;
        case 8: cfg.label = optarg; break;
        case 'q': cfg.quiet = 1; break;
        case 9: cfg.sub_init = optarg; break;
        case 10: cfg.pub_path = optarg; break;
        case 11: cfg.unwrap = optarg; cfg.unwrap_len = strlen(optarg); break;
        case 12: cfg.unwrap_suffix = optarg; cfg.unwrap_suffix_len = strlen(optarg); break;
        case 13: cfg.alt_port = atoi(optarg); break;
        case 14: cfg.alt_port_offset = atoi(optarg); break;
        case 15: cfg.sub_init_variants = atoi(optarg); break;
        case 16:
            if (!strcmp(optarg, "ws") || !strcmp(optarg, "websocket")) cfg.transport = T_WS;
            else if (!strcmp(optarg, "http_stream")) cfg.transport = T_HTTP_STREAM;
            else if (!strcmp(optarg, "sse")) cfg.transport = T_SSE;
            else { fprintf(stderr, "loadgen: --transport is ws, http_stream or sse\n"); return 2; }
            break;
        case 17: cfg.pub_port = atoi(optarg); break;
        case 18: cfg.pub_port_offset = atoi(optarg); break;
        case 19: cfg.socketio = 1; break;
        case 20: cfg.join_reply = optarg; break;
        case 21: cfg.min_delay = atof(optarg); break;
        case 22: cfg.max_delay = atof(optarg); break;
        case 23: cfg.report_every = atof(optarg); cfg.report_set = 1; break;
        case 24: {
            struct in_addr a;
            if (inet_pton(AF_INET, optarg, &a) != 1) { fprintf(stderr, "loadgen: --src-first is an IPv4 address\n"); return 2; }
            cfg.src_first = ntohl(a.s_addr);
            break;
        }
        case 25: cfg.src_addrs = atoi(optarg); break;
        case 26: cfg.mark = optarg; break;
        default: usage(); return 2;
        }
    }
    if (cfg.port <= 0 || cfg.port > 65535) { fprintf(stderr, "loadgen: --port is required\n"); usage(); return 2; }
    if (cfg.socketio && cfg.mode == M_ECHO) { fprintf(stderr, "loadgen: --socketio is for fanout's subscribers and connect\n"); return 2; }
    if (cfg.socketio && cfg.transport != T_WS) { fprintf(stderr, "loadgen: --socketio speaks over the WebSocket transport only\n"); return 2; }
    if (cfg.join_reply && (cfg.mode == M_ECHO || !*cfg.join_reply)) {
        fprintf(stderr, "loadgen: --join-reply is a non-empty text, for fanout and connect\n"); return 2;
    }
    if (!cfg.path) cfg.path = cfg.socketio ? "/socket.io/?EIO=4&transport=websocket" : cfg.mode == M_FANOUT ? "/bcast" : "/echo";
    if (cfg.mode == M_STORM && (!cfg.sub_init || cfg.min_delay <= 0 || cfg.max_delay < cfg.min_delay)) {
        fprintf(stderr, "loadgen: storm needs --sub-init and 0 < --min-delay <= --max-delay\n"); return 2;
    }
    if (cfg.conns < 1 || cfg.depth < 1 || cfg.nsubs < 1 || cfg.window < 1 || cfg.concurrency < 1 || cfg.duration <= 0) {
        fprintf(stderr, "loadgen: counts must be >= 1 and duration > 0\n"); return 2;
    }
    if (cfg.mode == M_FANOUT && cfg.size < 25) { fprintf(stderr, "loadgen: fanout needs --size >= 25 (seq + timestamp)\n"); return 2; }
    if (cfg.size > (64u << 20)) { fprintf(stderr, "loadgen: --size too large\n"); return 2; }
    if (cfg.alt_port_offset && !cfg.alt_port) cfg.alt_port = cfg.port + cfg.alt_port_offset;
    if (cfg.pub_port_offset && !cfg.pub_port) cfg.pub_port = cfg.port + cfg.pub_port_offset;
    if (cfg.transport != T_WS && cfg.mode != M_FANOUT) {
        fprintf(stderr, "loadgen: --transport http_stream and sse are for fanout's subscribers\n"); return 2;
    }
    if (cfg.transport != T_WS && cfg.nsubs >= 65535) {
        fprintf(stderr, "loadgen: at most 65534 stream subscribers (one source address each)\n"); return 2;
    }
    if (cfg.src_addrs < 0 || cfg.src_addrs > 65536) { fprintf(stderr, "loadgen: --src-addrs is 0 to 65536\n"); return 2; }
    if (cfg.src_addrs && !cfg.src_first) cfg.src_first = (127u << 24) | 2; /* 127.0.0.2 */
    if (cfg.report_set && cfg.report_every <= 0) { fprintf(stderr, "loadgen: --report-every is > 0\n"); return 2; }
    if (cfg.mark && (cfg.mode != M_CONNECT || !*cfg.mark)) { fprintf(stderr, "loadgen: --mark is a non-empty text, for connect\n"); return 2; }
    if (cfg.unwrap_len > 256 - UNWRAP_SLACK) { fprintf(stderr, "loadgen: --unwrap is at most %d bytes\n", 256 - UNWRAP_SLACK); return 2; }
    g_unwrap_varies = cfg.unwrap && cfg.sub_init_variants > 0 && strstr(cfg.unwrap, "{v}") != NULL;

    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)cfg.port);
    if (inet_pton(AF_INET, cfg.host, &g_addr.sin_addr) != 1) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(cfg.host, NULL, &hints, &res) != 0) { fprintf(stderr, "loadgen: cannot resolve %s\n", cfg.host); return 2; }
        g_addr.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }

    /* fd limit */
    int need_fds = (cfg.mode == M_ECHO ? cfg.conns : cfg.nsubs + 1) + 64;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)need_fds) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)need_fds ? rl.rlim_max : (rlim_t)need_fds;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)need_fds)
            fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE=%llu < %d needed; raise `ulimit -n`\n",
                    (unsigned long long)rl.rlim_cur, need_fds);
    }

    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = now_ns();
    rng_s = seed | 1;
    g_src_base = (127u << 24) | (uint32_t)(1 + rng64() % 254) << 16;
    signal(SIGPIPE, SIG_IGN);
    if (cfg.mode == M_STORM) signal(SIGUSR1, on_blip);
    if (cfg.mode == M_CONNECT) signal(SIGUSR2, on_end_hold);

    g_op = cfg.binary ? 2 : 1;
    g_payload = malloc(cfg.size + 1);
    for (size_t i = 0; i < cfg.size; i++) g_payload[i] = cfg.binary ? (uint8_t)rng64() : (uint8_t)('a' + i % 26);
    g_fbuf = malloc(cfg.size + 1);
    memset(g_fbuf, 'x', cfg.size);

    if (cfg.mode == M_ECHO) nconns_total = cfg.conns;
    else if (cfg.mode == M_FANOUT) nconns_total = cfg.nsubs + 1;
    else nconns_total = cfg.nsubs;
    conns = calloc((size_t)nconns_total, sizeof(conn));
    for (int i = 0; i < nconns_total; i++) {
        conns[i].fd = -1; conns[i].id = i;
        conns[i].role = cfg.mode == M_ECHO ? R_ECHO : cfg.mode == M_CONNECT ? R_IDLE : cfg.mode == M_STORM ? R_STORM
                        : (i < cfg.nsubs ? R_SUB : R_PUB);
        conns[i].http = conns[i].role == R_SUB && cfg.transport != T_WS;
    }
    if (cfg.mode == M_FANOUT) {
        g_pub = &conns[cfg.nsubs];
        g_dcnt = calloc((size_t)cfg.window, sizeof(uint32_t));
    }

    double hard = cfg.connect_timeout + 30 + cfg.warmup + cfg.duration + cfg.hold + 2 * cfg.timeout + 10;
    signal(SIGALRM, on_alarm);
    alarm((unsigned)hard + 1);

    ep = epoll_create1(EPOLL_CLOEXEC);
    g_t0 = g_now = now_ns();
    g_conn_phase_start = g_now;
    g_phase = P_CONNECT;
    g_phase_deadline = g_now + sec_ns(cfg.connect_timeout);
    if (cfg.mode == M_CONNECT) cpu_mark(0);

    struct epoll_event evs[MAX_EVENTS];
    while (g_phase != P_EXIT) {
        tick();
        if (g_phase == P_EXIT) break;
        int to = (g_phase == P_RUN && cfg.rate > 0) ? 1 : (g_phase == P_CONNECT ? 5 : 10);
        int n = epoll_wait(ep, evs, MAX_EVENTS, to);
        if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); break; }
        g_now = now_ns();
        for (int i = 0; i < n; i++) on_event((conn *)evs[i].data.ptr, evs[i].events);
        if (g_phase == P_RUN && cfg.mode == M_FANOUT) pub_pump();
    }
    report();
    return 0;
}
