/*
 * spool_id.c: SpoolId generation, text forms, LocalDisk paths and the
 * time-ordered key used by the backends.
 */
#include "spool_id.h"
#include "spool_fork.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* A step back of the wall clock smaller than this borrows timestamps
 * from the future (keeps the clock sequence); a larger one changes the
 * clock sequence instead, so created() stays close to the truth. */
#define BORROW_LIMIT_100NS 10000000ULL /* 1 second */

static const char hexdigits[] = "0123456789abcdef";

/* Generator state, shared by every thread of the process. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned gen_fork;      /* fork generation that seeded the state, + 1; 0 = unseeded */
static uint64_t gen_last_ts;   /* last timestamp handed out */
static uint16_t gen_clock_seq; /* 14 bits */
/* Derivations so far: each takes the next value, whose low 14 bits are
 * the clock sequence and the rest vary the node, so that no two ids this
 * process derives are alike (2^54 of them) and none has new()'s node. */
static uint64_t gen_derive_count;
static uint8_t gen_node[6];
static pthread_once_t gen_fork_once = PTHREAD_ONCE_INIT;

/* Held across fork(), so that a child never inherits gen_lock locked by
 * a thread it does not have. */
static void gen_install_fork_hold(void)
{
    spool_fork_hold_mutex(&gen_lock);
}

/* Takes gen_lock. */
static void gen_lock_take(void)
{
    pthread_once(&gen_fork_once, gen_install_fork_hold);
    pthread_mutex_lock(&gen_lock);
}

/* Fills buf with len random bytes.  Returns 0 or -1. */
static int random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return -1;
            while (len > 0) {
                ssize_t r = read(fd, p, len);
                if (r <= 0) {
                    if (r < 0 && errno == EINTR)
                        continue;
                    close(fd);
                    return -1;
                }
                p += r;
                len -= (size_t)r;
            }
            close(fd);
            return 0;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Seeds the generator on first use and again in a forked child, whose
 * ids must not repeat the parent's.  Called with gen_lock held. */
static int gen_seed_locked(void)
{
    unsigned fork_gen = spool_fork_generation() + 1;
    if (gen_fork == fork_gen)
        return 0;
    uint8_t r[10];
    if (random_bytes(r, sizeof r) != 0)
        return -1;
    memcpy(gen_node, r, 6);
    gen_node[0] |= 0x01; /* multicast bit: not a real MAC (RFC 4122 4.5) */
    gen_clock_seq = (uint16_t)(((r[6] << 8) | r[7]) & 0x3fff);
    gen_derive_count = (uint64_t)(((r[8] << 8) | r[9]) & 0x3fff);
    gen_last_ts = 0;
    gen_fork = fork_gen;
    return 0;
}

int64_t spool_id_now_unix_100ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100;
}

/* Assembles the 16 bytes from a 60-bit timestamp, a 14-bit clock
 * sequence and a node. */
static void id_build(spool_id *out, uint64_t ts, uint16_t clock_seq, const uint8_t node[6])
{
    uint32_t time_low = (uint32_t)(ts & 0xffffffffu);
    uint16_t time_mid = (uint16_t)((ts >> 32) & 0xffff);
    uint16_t time_hi = (uint16_t)(((ts >> 48) & 0x0fff) | 0x1000);
    out->b[0] = (uint8_t)(time_low >> 24);
    out->b[1] = (uint8_t)(time_low >> 16);
    out->b[2] = (uint8_t)(time_low >> 8);
    out->b[3] = (uint8_t)time_low;
    out->b[4] = (uint8_t)(time_mid >> 8);
    out->b[5] = (uint8_t)time_mid;
    out->b[6] = (uint8_t)(time_hi >> 8);
    out->b[7] = (uint8_t)time_hi;
    out->b[8] = (uint8_t)(((clock_seq >> 8) & 0x3f) | 0x80);
    out->b[9] = (uint8_t)clock_seq;
    memcpy(out->b + 10, node, 6);
}

int spool_id_new(spool_id *out)
{
    return spool_id_new_at(out, spool_id_now_unix_100ns());
}

int spool_id_new_at(spool_id *out, int64_t unix_100ns)
{
    uint64_t now = (uint64_t)(unix_100ns + (int64_t)SPOOL_ID_GREGORIAN_OFFSET);
    gen_lock_take();
    if (gen_seed_locked() != 0) {
        pthread_mutex_unlock(&gen_lock);
        return -1;
    }
    uint64_t ts;
    if (now > gen_last_ts) {
        ts = now;
    } else if (gen_last_ts - now < BORROW_LIMIT_100NS) {
        ts = gen_last_ts + 1; /* same tick, or a small step back */
    } else {
        /* The clock stepped far back: a new clock sequence keeps every id
         * distinct from those stamped with the times we are now repeating. */
        gen_clock_seq = (uint16_t)((gen_clock_seq + 1) & 0x3fff);
        ts = now;
    }
    gen_last_ts = ts;
    id_build(out, ts & 0x0fffffffffffffffULL, gen_clock_seq, gen_node);
    pthread_mutex_unlock(&gen_lock);
    return 0;
}

int spool_id_derive_cloned_timestamp(const spool_id *src, spool_id *out)
{
    gen_lock_take();
    if (gen_seed_locked() != 0) {
        pthread_mutex_unlock(&gen_lock);
        return -1;
    }
    uint64_t ts = spool_id_timestamp(src);
    for (;;) {
        uint64_t c = gen_derive_count++;
        uint16_t seq = (uint16_t)(c & 0x3fff);
        /* Node = new()'s node with (c >> 14) + 1 added into its low 40
         * bits: never new()'s own node (so never one of its ids), never
         * twice the same (seq, node) pair; the first byte, with its
         * multicast bit, stays. */
        uint64_t vary = ((c >> 14) + 1) & 0xffffffffffULL;
        uint8_t node[6];
        memcpy(node, gen_node, 6);
        for (int i = 5; i >= 1; i--) {
            node[i] ^= (uint8_t)(vary & 0xff);
            vary >>= 8;
        }
        id_build(out, ts, seq, node);
        if (memcmp(out->b, src->b, SPOOL_ID_BYTES) != 0)
            break;
    }
    pthread_mutex_unlock(&gen_lock);
    return 0;
}

static void hex_bytes(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[b[i] >> 4];
        out[2 * i + 1] = hexdigits[b[i] & 15];
    }
}

void spool_id_format(const spool_id *id, char out[SPOOL_ID_TEXT + 1])
{
    hex_bytes(id->b, SPOOL_ID_BYTES, out);
    out[SPOOL_ID_TEXT] = '\0';
}

void spool_id_format_hyphenated(const spool_id *id, char out[37])
{
    char *p = out;
    for (int i = 0; i < SPOOL_ID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        hex_bytes(id->b + i, 1, p);
        p += 2;
    }
    *p = '\0';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks the version and variant that make the bytes a time-carrying id. */
static int id_check(const uint8_t *b, const char **why)
{
    if ((b[6] >> 4) != 1) {
        *why = "not a version 1 UUID (a spool id must carry its creation time)";
        return -1;
    }
    if ((b[8] & 0xc0) != 0x80) {
        *why = "not an RFC 4122 variant UUID";
        return -1;
    }
    return 0;
}

int spool_id_parse(const char *s, size_t len, spool_id *out, const char **why)
{
    spool_id tmp;
    int hyphenated;
    if (len == 32) {
        hyphenated = 0;
    } else if (len == 36) {
        hyphenated = 1;
    } else {
        *why = "expected 32 hex digits or the hyphenated 8-4-4-4-12 form";
        return -1;
    }
    size_t j = 0;
    for (size_t i = 0; i < len;) {
        if (hyphenated && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-') {
                *why = "expected a hyphen at positions 9, 14, 19 and 24";
                return -1;
            }
            i++;
            continue;
        }
        int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            *why = "not a hexadecimal digit";
            return -1;
        }
        tmp.b[j++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    if (id_check(tmp.b, why) != 0)
        return -1;
    *out = tmp;
    return 0;
}

int spool_id_from_bytes(const void *b, size_t len, spool_id *out, const char **why)
{
    if (len != SPOOL_ID_BYTES) {
        *why = "expected exactly 16 bytes";
        return -1;
    }
    if (id_check(b, why) != 0)
        return -1;
    memcpy(out->b, b, SPOOL_ID_BYTES);
    return 0;
}

uint64_t spool_id_timestamp(const spool_id *id)
{
    const uint8_t *b = id->b;
    uint64_t time_low = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
    uint64_t time_mid = (uint64_t)b[4] << 8 | b[5];
    uint64_t time_hi = ((uint64_t)b[6] << 8 | b[7]) & 0x0fff;
    return time_hi << 48 | time_mid << 32 | time_low;
}

/* created() of the tick t: the same arithmetic, so both agree exactly. */
static double seconds_of_100ns(int64_t t)
{
    return (double)(t / 10000000) + (double)(t % 10000000) / 1e7;
}

int64_t spool_id_unix_100ns(const spool_id *id)
{
    return (int64_t)spool_id_timestamp(id) - (int64_t)SPOOL_ID_GREGORIAN_OFFSET;
}

double spool_id_created(const spool_id *id)
{
    /* Split so the fraction keeps its digits in the double. */
    return seconds_of_100ns(spool_id_unix_100ns(id));
}

int64_t spool_id_unix_100ns_from_seconds(double seconds)
{
    int64_t t = llround(seconds * 1e7);
    /* seconds_of_100ns is non-decreasing: step to the first tick >= seconds. */
    while (seconds_of_100ns(t - 1) >= seconds)
        t--;
    while (seconds_of_100ns(t) < seconds)
        t++;
    return t;
}

void spool_id_path_suffix(const spool_id *id, char out[SPOOL_ID_PATH_SUFFIX + 1])
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        *p++ = '/';
        hex_bytes(id->b + i, 1, p);
        p += 2;
    }
    *p++ = '/';
    hex_bytes(id->b + 4, 12, p);
    p += 24;
    *p = '\0';
}

int spool_id_from_path(const char *path, size_t len, spool_id *out, const char **why)
{
    static const size_t want[5] = {24, 2, 2, 2, 2}; /* from the end */
    char text[SPOOL_ID_TEXT];
    size_t end = len, pos = SPOOL_ID_TEXT;
    for (int c = 0; c < 5; c++) {
        size_t start = end;
        while (start > 0 && path[start - 1] != '/')
            start--;
        if (end - start != want[c]) {
            *why = "expected a path ending in aa/bb/cc/dd/ and 24 hex digits";
            return -1;
        }
        pos -= want[c];
        memcpy(text + pos, path + start, want[c]);
        if (c < 4) {
            if (start == 0) {
                *why = "expected a path ending in aa/bb/cc/dd/ and 24 hex digits";
                return -1;
            }
            end = start - 1;
        }
    }
    return spool_id_parse(text, SPOOL_ID_TEXT, out, why);
}

void spool_id_to_key(const spool_id *id, uint8_t key[SPOOL_ID_BYTES])
{
    uint64_t v = spool_id_timestamp(id) << 4 | (uint64_t)(id->b[6] >> 4);
    for (int i = 7; i >= 0; i--) {
        key[i] = (uint8_t)v;
        v >>= 8;
    }
    memcpy(key + 8, id->b + 8, 8);
}

int spool_id_from_key(const uint8_t *key, size_t len, spool_id *out, const char **why)
{
    if (len != SPOOL_ID_BYTES) {
        *why = "stored key is not 16 bytes";
        return -1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | key[i];
    if ((v & 15) != 1) {
        *why = "stored key is not a version 1 id";
        return -1;
    }
    spool_id tmp;
    uint8_t node[6];
    memcpy(node, key + 10, 6);
    id_build(&tmp, v >> 4, (uint16_t)(((key[8] & 0x3f) << 8) | key[9]), node);
    tmp.b[8] = key[8]; /* keep the variant bits as stored */
    if (id_check(tmp.b, why) != 0)
        return -1;
    *out = tmp;
    return 0;
}

void spool_id_key_floor(int64_t unix_100ns, uint8_t key[SPOOL_ID_BYTES])
{
    int64_t g = unix_100ns + (int64_t)SPOOL_ID_GREGORIAN_OFFSET;
    uint64_t ts = g < 0 ? 0 : (uint64_t)g;
    if (ts > 0x0fffffffffffffffULL)
        ts = 0x0fffffffffffffffULL;
    uint64_t v = ts << 4;
    for (int i = 7; i >= 0; i--) {
        key[i] = (uint8_t)v;
        v >>= 8;
    }
    memset(key + 8, 0, 8);
}

int spool_id_compare(const spool_id *a, const spool_id *b)
{
    uint8_t ka[SPOOL_ID_BYTES], kb[SPOOL_ID_BYTES];
    spool_id_to_key(a, ka);
    spool_id_to_key(b, kb);
    return memcmp(ka, kb, SPOOL_ID_BYTES);
}
