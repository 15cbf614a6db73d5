/* Open-loop (paced) load for POST /v1/check-in on 127.0.0.1.
 *
 * Request i is due at start + i / rate, whether or not earlier answers came back; it
 * goes out on the first idle keep-alive connection, and its latency is counted from the
 * instant it was due (so time spent waiting for a free connection counts: no
 * coordinated omission). One thread, epoll, HTTP/1.1 keep-alive.
 *
 * Usage: paced PORT RATE SECONDS CONNECTIONS CREDENTIALS BODY
 * CREDENTIALS: one "device_id.secret" a line, used in turn. Prints one JSON line.
 * Built by bench/paced_load.py with cc -O2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    int busy;
    double due;
    char *out;
    size_t out_len, out_off;
    char in[8192];
    size_t in_len;
} Conn;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (fread(buf, 1, n, f) != (size_t)n) { perror(path); exit(2); }
    buf[n] = 0;
    fclose(f);
    *len = n;
    return buf;
}

static int open_conn(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        perror("connect");
        exit(2);
    }
    return fd;
}

/* Bytes of a complete response at the start of buf (0: not complete yet); *status set. */
static size_t response_length(const char *buf, size_t len, int *status) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = end - buf + 4;
    *status = atoi(buf + 9);
    size_t body = 0;
    const char *p = buf;
    while (p < end) {
        const char *eol = memmem(p, end - p + 2, "\r\n", 2);
        if (!eol) break;
        if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0) body = strtoul(p + 15, NULL, 10);
        p = eol + 2;
    }
    return len >= head + body ? head + body : 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: paced PORT RATE SECONDS CONNECTIONS CREDENTIALS BODY\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    int nconn = atoi(argv[4]);
    size_t cred_len, body_len;
    char *creds = read_file(argv[5], &cred_len);
    char *body = read_file(argv[6], &body_len);
    size_t ncred = 0;
    for (size_t i = 0; i < cred_len; i++) if (creds[i] == '\n') ncred++;
    char **cred = malloc(sizeof(char *) * (ncred + 1));
    size_t k = 0;
    for (char *line = strtok(creds, "\n"); line; line = strtok(NULL, "\n")) cred[k++] = line;
    ncred = k;
    long total = (long)(rate * seconds);
    double *lat = malloc(sizeof(double) * (total + 1));
    long done = 0, bad = 0, sent = 0, next = 0, cursor = random() % ncred;
    Conn *conns = calloc(nconn, sizeof(Conn));
    int ep = epoll_create1(0);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = open_conn(port);
        conns[i].out = malloc(4096 + body_len);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    int *idle = malloc(sizeof(int) * nconn), nidle = 0;
    for (int i = 0; i < nconn; i++) idle[nidle++] = i;
    double start = now_s() + 0.05, stop = start + seconds, give_up = stop + 10;
    struct epoll_event events[256];
    while (done < total) {
        double t = now_s();
        if (t > give_up) break;
        /* Hand every request now due to an idle connection (oldest first). */
        while (next < total && start + next / rate <= t && nidle > 0) {
            Conn *c = &conns[idle[--nidle]];
            cursor = (cursor + 1) % ncred;
            c->out_len = snprintf(c->out, 4096,
                                  "POST /v1/check-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %zu\r\n\r\n",
                                  cred[cursor], body_len);
            memcpy(c->out + c->out_len, body, body_len);
            c->out_len += body_len;
            c->out_off = 0;
            c->busy = 1;
            c->due = start + next / rate;
            next++;
            sent++;
            ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
            if (w > 0) c->out_off = w;
        }
        int timeout = 1;
        if (next < total && nidle > 0) {
            double wait = start + next / rate - now_s();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000);
        }
        int n = epoll_wait(ep, events, 256, timeout);
        for (int e = 0; e < n; e++) {
            Conn *c = &conns[events[e].data.u32];
            if (c->busy && c->out_off < c->out_len) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w > 0) c->out_off += w;
            }
            for (;;) {
                ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
                if (r <= 0) break;
                c->in_len += r;
                int status = 0;
                size_t whole = response_length(c->in, c->in_len, &status);
                if (whole && c->busy) {
                    lat[done++] = now_s() - c->due;
                    if (status != 200) bad++;
                    memmove(c->in, c->in + whole, c->in_len - whole);
                    c->in_len -= whole;
                    c->busy = 0;
                    idle[nidle++] = (int)(c - conns);
                }
                if (c->in_len == sizeof c->in) { fprintf(stderr, "response too large\n"); return 2; }
            }
        }
    }
    double elapsed = now_s() - start;
    qsort(lat, done, sizeof(double), cmp_double);
#define PCT(p) (done ? lat[(long)((done - 1) * (p))] * 1000 : -1.0)
    printf("{\"rate\": %.1f, \"seconds\": %.3f, \"scheduled\": %ld, \"sent\": %ld, \"answered\": %ld,"
           " \"achieved_rps\": %.1f, \"non_200\": %ld, \"p50_ms\": %.3f, \"p90_ms\": %.3f,"
           " \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f}\n",
           rate, seconds, total, sent, done, done / (elapsed > seconds ? elapsed : seconds), bad,
           PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), PCT(1.0));
    return 0;
}
