/* Fixed-rate load, for latency free of coordinated omission: request i is
 * due at start + i / RATE whatever became of the requests before it, and its
 * latency runs from that due time to the last byte of its answer. A stall of
 * the server thus counts for every request it holds up, where a closed-loop
 * client (wrk) would wait through it and time only what it sends afterwards.
 * Debian has no wrk2, and its h2load (nghttp2-client) times a request from
 * when it is sent, not from when it was due.
 *
 *   bench-pace PATH HEADERS_FILE RATE SECONDS WARMUP_S PORT KEY BODY_FILE [PORT KEY BODY_FILE]...
 *
 * Each target (PORT KEY BODY_FILE) gets POSTs of its body to 127.0.0.1:PORT
 * over CONNS keep-alive HTTP/1.1 connections opened beforehand and taken in
 * turn; a request due while all are busy waits for one, and that wait is part
 * of its latency. With several targets, time is cut into slices of SLICE_S
 * that go to each in turn, each slice at RATE: load that comes and goes on a
 * shared machine then falls on all of them alike, as it would not over
 * consecutive runs. Every target gets WARMUP_S seconds of slices that are not
 * counted, then SECONDS that are.
 *
 * Prints one JSON line per target, in order, shaped like post.lua's, plus the
 * rate, the requests done warm-up included (requests_total, for CPU per
 * request) and how many counted requests found every connection busy
 * (waited). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define DRAIN_NS (5 * NS) /* answers may come this long after the last due time */
#define SLICE_S 0.1
#define CONNS 32

enum { E_CONNECT, E_READ, E_WRITE, E_STATUS, E_TIMEOUT, E_KINDS };

typedef struct target target;

typedef struct {
    target *t;
    int fd;
    long req; /* request in flight, -1 when idle */
    size_t sent;
    char *in;
    size_t in_len, in_cap;
} conn;

struct target {
    int port;
    char *request;
    size_t request_len;
    conn conns[CONNS];
    int turn;
    long *queue; /* requests due and not yet sent */
    long head, tail, waited_upto;
    long done, nlat, waited, errors[E_KINDS];
    int64_t *lat;
};

static int ep;
static double rate;
static int64_t start;
static long per_slice, ntargets, total, skip;
static target *targets;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t due(long i)
{
    return start + (int64_t)((double)i * NS / rate);
}

static target *target_of(long i)
{
    return &targets[i / per_slice % ntargets];
}

static void die(const char *what)
{
    fprintf(stderr, "bench-pace: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *alloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p) {
        die("memory");
    }
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        die(path);
    }
    data = alloc(n + 1);
    if (fread(data, 1, n, f) != (size_t)n) {
        die(path);
    }
    fclose(f);
    *len = n;
    return data;
}

/* The request as wrk.format builds it in post.lua: Host, the headers of the
 * file (one "name: value" a line), the key, Content-Length, the body. */
static void build_request(target *t, const char *path, const char *headers_file, const char *key,
                          const char *body_file)
{
    size_t body_len, headers_len, cap, n = 0;
    char *body = slurp(body_file, &body_len), *headers = slurp(headers_file, &headers_len);
    char *line, *save = NULL;
    cap = body_len + 2 * headers_len + strlen(path) + strlen(key) + 256;
    t->request = alloc(cap);
    n += snprintf(t->request + n, cap - n, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", path,
                  t->port);
    for (line = strtok_r(headers, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strchr(line, ':')) {
            n += snprintf(t->request + n, cap - n, "%s\r\n", line);
        }
    }
    n += snprintf(t->request + n, cap - n, "x-api-key: %s\r\nContent-Length: %zu\r\n\r\n", key,
                  body_len);
    memcpy(t->request + n, body, body_len);
    t->request_len = n + body_len;
    free(body);
    free(headers);
}

static void watch(conn *c, int op, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, op, c->fd, &ev);
}

static int open_conn(conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->t->port)};
    int one = 1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->req = -1;
    c->in_len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -1;
    }
    /* Blocking connect: on loopback it completes at once. */
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    watch(c, EPOLL_CTL_ADD, 0);
    return 0;
}

static void reopen(conn *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
    }
    open_conn(c); /* on failure fd stays -1: retried when a request needs it */
}

/* error: an E_ kind, or -1 for a 2xx answer */
static void finish(conn *c, int error)
{
    target *t = c->t;
    long k = c->req;
    c->req = -1;
    t->done++;
    if (k < skip) {
        return;
    }
    if (error >= 0) {
        t->errors[error]++;
    } else {
        t->lat[t->nlat++] = now_ns() - due(k);
    }
}

static void send_more(conn *c)
{
    target *t = c->t;
    while (c->sent < t->request_len) {
        ssize_t w = send(c->fd, t->request + c->sent, t->request_len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(c, EPOLL_CTL_MOD, 1);
            return;
        }
        if (w < 0) {
            finish(c, E_WRITE);
            reopen(c);
            return;
        }
        c->sent += w;
    }
    watch(c, EPOLL_CTL_MOD, 0);
}

static void start_request(conn *c, long k)
{
    int failed = c->fd < 0 && open_conn(c) != 0;
    c->req = k;
    if (failed) {
        finish(c, E_CONNECT);
        return;
    }
    c->sent = 0;
    c->in_len = 0;
    send_more(c);
}

/* Length of the complete answer at the start of p, 0 while incomplete, -1 if
 * it cannot be read; *status and *close_after from its head. */
static long answer_length(const char *p, size_t n, int *status, int *close_after)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4), *line, *eol;
    size_t head, pos;
    long length = -1;
    int chunked = 0;
    if (!end) {
        return 0;
    }
    head = end - p + 4;
    if (head < 14 || strncmp(p, "HTTP/1.", 7) != 0) {
        return -1;
    }
    *status = atoi(p + 9);
    *close_after = p[7] == '0';
    for (line = strchr(p, '\n') + 1; line < end; line = eol + 1) {
        eol = strchr(line, '\n');
        if (strncasecmp(line, "content-length:", 15) == 0) {
            length = strtol(line + 15, NULL, 10);
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            chunked = memmem(line, eol - line, "chunked", 7) != NULL;
        } else if (strncasecmp(line, "connection:", 11) == 0) {
            *close_after = memmem(line, eol - line, "close", 5) != NULL;
        }
    }
    if (!chunked) {
        if (length < 0) {
            return -1;
        }
        return n >= head + (size_t)length ? (long)head + length : 0;
    }
    for (pos = head;;) {
        long size;
        eol = memmem(p + pos, n - pos, "\r\n", 2);
        if (!eol) {
            return 0;
        }
        size = strtol(p + pos, NULL, 16);
        pos = eol - p + 2;
        if (size == 0) { /* then trailers up to an empty line */
            end = memmem(p + pos - 2, n - pos + 2, "\r\n\r\n", 4);
            return end ? end - p + 4 : 0;
        }
        if (size < 0) {
            return -1;
        }
        if (n < pos + (size_t)size + 2) {
            return 0;
        }
        pos += (size_t)size + 2;
    }
}

static void on_readable(conn *c)
{
    long length;
    int status = 0, close_after = 0;
    for (;;) {
        ssize_t r;
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap * 2 + 65536;
            c->in = realloc(c->in, c->in_cap + 1);
            if (!c->in) {
                die("memory");
            }
        }
        r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += r;
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        /* closed: after a keep-alive timeout when idle, else a failure */
        if (c->req >= 0) {
            finish(c, E_READ);
        }
        reopen(c);
        return;
    }
    if (c->req < 0) {
        reopen(c); /* nothing was asked */
        return;
    }
    c->in[c->in_len] = '\0';
    length = answer_length(c->in, c->in_len, &status, &close_after);
    if (length == 0) {
        return;
    }
    if (length < 0) {
        finish(c, E_READ);
        reopen(c);
        return;
    }
    finish(c, status >= 200 && status < 300 ? -1 : E_STATUS);
    /* An answer before the whole body went out leaves the connection unusable. */
    if (close_after || (size_t)length != c->in_len || c->sent < c->t->request_len) {
        reopen(c);
    }
    c->in_len = 0;
}

/* Due requests go to idle connections, taken in turn so that none sits idle
 * into the server's keep-alive timeout; those left over wait. */
static void dispatch(target *t)
{
    int i;
    long k;
    for (i = 0; i < CONNS && t->head < t->tail; i++) {
        conn *c = &t->conns[(t->turn + i) % CONNS];
        if (c->req < 0) {
            start_request(c, t->queue[t->head++]);
            t->turn = (t->turn + i + 1) % CONNS;
            i = -1;
        }
    }
    for (k = t->head > t->waited_upto ? t->head : t->waited_upto; k < t->tail; k++) {
        t->waited += t->queue[k] >= skip;
    }
    if (t->tail > t->waited_upto) {
        t->waited_upto = t->tail;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile, in ms. */
static double pct(const target *t, long p)
{
    return t->nlat ? t->lat[(p * t->nlat + 99) / 100 - 1] / 1e6 : 0.0;
}

static void report(target *t, double seconds)
{
    long timeout = 0, k;
    int i;
    /* Counted requests still unsent or unanswered timed out. */
    for (k = t->head; k < t->tail; k++) {
        timeout += t->queue[k] >= skip;
    }
    for (i = 0; i < CONNS; i++) {
        timeout += t->conns[i].req >= skip;
    }
    qsort(t->lat, t->nlat, sizeof(*t->lat), cmp_i64);
    printf("{\"rate\":%.1f,\"port\":%d,\"requests\":%ld,\"requests_total\":%ld,"
           "\"duration_s\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f,\"waited\":%ld,\"errors\":{\"connect\":%ld,\"read\":%ld,"
           "\"write\":%ld,\"status\":%ld,\"timeout\":%ld}}\n",
           rate, t->port, t->nlat, t->done, seconds, t->nlat / seconds, pct(t, 50), pct(t, 90),
           pct(t, 99), t->nlat ? t->lat[t->nlat - 1] / 1e6 : 0.0, t->waited, t->errors[E_CONNECT],
           t->errors[E_READ], t->errors[E_WRITE], t->errors[E_STATUS], timeout);
}

int main(int argc, char **argv)
{
    struct epoll_event evs[64];
    double seconds, warmup;
    long next_due = 0, warm_rounds, rounds, per_target, k;
    int tfd, fd, i;

    if (argc < 9 || (argc - 6) % 3 != 0) {
        fprintf(stderr,
                "usage: %s PATH HEADERS_FILE RATE SECONDS WARMUP_S PORT KEY BODY_FILE "
                "[PORT KEY BODY_FILE]...\n",
                argv[0]);
        return 2;
    }
    rate = atof(argv[3]);
    seconds = atof(argv[4]);
    warmup = atof(argv[5]);
    if (rate <= 0 || seconds <= 0 || warmup < 0) {
        fprintf(stderr, "bench-pace: bad arguments\n");
        return 2;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ep < 0 || tfd < 0) {
        die("setup");
    }
    evs[0] = (struct epoll_event){.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &evs[0]);

    /* Whole rounds of slices: each target gets as many slices as the others. */
    ntargets = (argc - 6) / 3;
    per_slice = (long)(rate * SLICE_S + 0.5);
    per_slice = per_slice > 0 ? per_slice : 1;
    warm_rounds = (long)(warmup * rate / per_slice + 0.999);
    skip = warm_rounds * per_slice * ntargets;
    rounds = (long)(seconds * rate / per_slice + 0.5);
    rounds = rounds > 0 ? rounds : 1;
    seconds = (double)rounds * per_slice / rate;
    total = skip + rounds * per_slice * ntargets;
    per_target = total / ntargets;

    targets = alloc(sizeof(*targets) * ntargets);
    for (i = 0; i < ntargets; i++) {
        target *t = &targets[i];
        int j;
        t->port = atoi(argv[6 + 3 * i]);
        if (t->port <= 0) {
            fprintf(stderr, "bench-pace: bad port %s\n", argv[6 + 3 * i]);
            return 2;
        }
        build_request(t, argv[1], argv[2], argv[7 + 3 * i], argv[8 + 3 * i]);
        t->queue = alloc(sizeof(*t->queue) * per_target);
        t->lat = alloc(sizeof(*t->lat) * per_target);
        for (j = 0; j < CONNS; j++) {
            t->conns[j].t = t;
            if (open_conn(&t->conns[j]) != 0) {
                die("connect");
            }
        }
    }

    start = now_ns();
    for (;;) {
        int64_t now = now_ns(), wake;
        struct itimerspec its = {{0, 0}, {0, 0}};
        long done = 0;
        int n;
        while (next_due < total && due(next_due) <= now) {
            target *t = target_of(next_due);
            t->queue[t->tail++] = next_due++;
        }
        for (i = 0; i < ntargets; i++) {
            dispatch(&targets[i]);
            done += targets[i].done;
        }
        if (done == total || now > due(total - 1) + DRAIN_NS) {
            break;
        }
        wake = next_due < total ? due(next_due) : due(total - 1) + DRAIN_NS;
        its.it_value.tv_sec = wake / NS;
        its.it_value.tv_nsec = wake % NS;
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno != EINTR) {
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            uint64_t ticks;
            if (!c) {
                if (read(tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN) {
                    die("timerfd");
                }
                continue;
            }
            fd = c->fd;
            if ((evs[i].events & EPOLLOUT) && c->req >= 0 && c->sent < c->t->request_len) {
                send_more(c);
            }
            /* not when sending failed and put a new connection in its place */
            if (c->fd == fd && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                on_readable(c);
            }
        }
    }
    for (k = 0; k < ntargets; k++) {
        report(&targets[k], seconds);
    }
    return 0;
}
