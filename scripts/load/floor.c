/*
 * The floor of the load runs: the least a SIP server on this machine can spend per datagram.
 * Not part of imspec and not a SIP server: a single-threaded UDP responder that answers each
 * request with the fewest operations that still satisfy SIPp's scenarios (INVITE, BYE,
 * MESSAGE and OPTIONS get a 200 OK built by copying Via, From, To, Call-ID and CSeq; ACK gets
 * nothing). No parsing beyond finding those lines, no state, no timers, no allocation per
 * message. scripts/load/run.sh (`floor`) builds it with cc and runs SIPp's dialog and MESSAGE
 * scenarios against it at the rates of the im-server runs, so that the server CPU per
 * datagram the machine itself costs (the kernel's loopback path, the wake-ups) can be told
 * apart from what im-server adds. See docs/performance.md ("The floor").
 *
 *   floor PORT [epoll|blocking]
 *   floor PORT refused N
 *
 * epoll (default): the loop of an event-driven server, as im-server's and most others are:
 * a non-blocking socket, epoll_wait, then recvmmsg until the socket is empty, answers sent
 * with one sendmmsg per batch. blocking: one blocking recvfrom and one sendto per datagram,
 * the cheapest loop there is for one socket. refused: N non-blocking TCP connects to PORT on
 * 127.0.0.1, where nothing listens, each waited for with epoll and its error read, as an
 * event loop does for an MSRP connect the peer refuses (the group scenario's members answer
 * with an MSRP path nobody serves); prints the CPU (user + system) per connect and exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAXDG 65536
#define MAXOUT 4096

static char inbuf[BATCH][MAXDG];
static char outbuf[BATCH][MAXOUT];

/* The line of `msg` (length n) that starts with `name` (case as SIPp writes it), without its
 * CRLF; NULL when absent. */
static const char *line(const char *msg, size_t n, const char *name, size_t *len) {
    size_t k = strlen(name);
    const char *end = msg + n, *p = msg;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        size_t l = (size_t)(e - p);
        if (l && p[l - 1] == '\r')
            l--;
        if (l == 0)
            return NULL; /* the blank line: end of the headers */
        if (l >= k && strncasecmp(p, name, k) == 0) {
            *len = l;
            return p;
        }
        p = e + 1;
    }
    return NULL;
}

static size_t put(char *o, size_t at, const char *s, size_t n) {
    if (at + n > MAXOUT)
        return MAXOUT + 1;
    memcpy(o + at, s, n);
    return at + n;
}

/* The answer to the request in `in` (n bytes) into `out`; 0 when none is due. */
static size_t answer(const char *in, size_t n, char *out, unsigned port) {
    static const char *copied[] = {"Via:", "From:", "To:", "Call-ID:", "CSeq:"};
    size_t at = 0, l;
    if (n < 4 || memcmp(in, "SIP/", 4) == 0 || memcmp(in, "ACK ", 4) == 0)
        return 0;
    at = put(out, at, "SIP/2.0 200 OK\r\n", 16);
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        const char *h = line(in, n, copied[i], &l);
        if (!h)
            return 0;
        at = put(out, at, h, l);
        /* A To without a tag gets one: the dialog's. */
        if (i == 2 && !memmem(h, l, ";tag=", 5))
            at = put(out, at, ";tag=floor", 10);
        at = put(out, at, "\r\n", 2);
    }
    char tail[160];
    int t = snprintf(tail, sizeof tail,
                     "Contact: <sip:floor@127.0.0.1:%u>\r\n"
                     "Allow: INVITE, ACK, BYE, OPTIONS, MESSAGE\r\n"
                     "Content-Length: 0\r\n\r\n",
                     port);
    at = put(out, at, tail, (size_t)t);
    return at > MAXOUT ? 0 : at;
}

static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static int refused(unsigned port, long n) {
    int ep = epoll_create1(0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long seen = 0;
    double c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0 && errno == EINPROGRESS) {
            struct epoll_event ev = {.events = EPOLLOUT, .data.fd = s}, got;
            epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
            epoll_wait(ep, &got, 1, 1000);
            epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
        }
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
        seen += err == ECONNREFUSED;
        close(s);
    }
    double c1 = cpu_s();
    printf("%ld connects, %ld refused, %.2f us CPU per connect\n", n, seen, 1e6 * (c1 - c0) / (double)n);
    return seen == n ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor PORT [epoll|blocking|refused N]\n");
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]);
    if (argc > 3 && strcmp(argv[2], "refused") == 0)
        return refused(port, atol(argv[3]));
    int blocking = argc > 2 && strcmp(argv[2], "blocking") == 0;
    int fd = socket(AF_INET, SOCK_DGRAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bind");
        return 1;
    }
    static struct sockaddr_in from[BATCH];
    static struct iovec iin[BATCH], iout[BATCH];
    static struct mmsghdr min[BATCH], mout[BATCH];
    if (blocking) {
        for (;;) {
            socklen_t fl = sizeof from[0];
            ssize_t n = recvfrom(fd, inbuf[0], MAXDG, 0, (struct sockaddr *)&from[0], &fl);
            if (n <= 0)
                continue;
            size_t o = answer(inbuf[0], (size_t)n, outbuf[0], port);
            if (o)
                sendto(fd, outbuf[0], o, 0, (struct sockaddr *)&from[0], fl);
        }
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    for (;;) {
        struct epoll_event got;
        if (epoll_wait(ep, &got, 1, -1) < 0 && errno != EINTR)
            return 1;
        for (;;) {
            for (int i = 0; i < BATCH; i++) {
                iin[i] = (struct iovec){inbuf[i], MAXDG};
                min[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                                 .msg_namelen = sizeof from[i],
                                                 .msg_iov = &iin[i],
                                                 .msg_iovlen = 1};
            }
            int got_n = recvmmsg(fd, min, BATCH, 0, NULL);
            if (got_n <= 0)
                break;
            int out_n = 0;
            for (int i = 0; i < got_n; i++) {
                size_t o = answer(inbuf[i], min[i].msg_len, outbuf[out_n], port);
                if (!o)
                    continue;
                iout[out_n] = (struct iovec){outbuf[out_n], o};
                mout[out_n].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                                      .msg_namelen = min[i].msg_hdr.msg_namelen,
                                                      .msg_iov = &iout[out_n],
                                                      .msg_iovlen = 1};
                out_n++;
            }
            if (out_n)
                sendmmsg(fd, mout, (unsigned)out_n, 0);
            if (got_n < BATCH)
                break;
        }
    }
}
