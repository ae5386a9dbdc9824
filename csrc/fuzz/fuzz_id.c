/*
 * fuzz_id.c: libFuzzer target for the SpoolId text, byte, path and key
 * forms (csrc/spool_id.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc \
 *       csrc/fuzz/fuzz_id.c csrc/spool_id.c csrc/spool_fork.c -lpthread
 *   ./a.out -max_len=512 csrc/fuzz/corpus/id      (or tools/reliability/fuzz.sh)
 *
 * Each input is given, as is and as fixed-length slices, to
 * spool_id_parse, spool_id_from_bytes, spool_id_from_path and
 * spool_id_from_key.  Every slice is copied into a buffer of exactly its
 * length (never NUL-terminated), so AddressSanitizer reports any read
 * past `len`.  The checks:
 *
 *   - each function accepts exactly what an independent model of the
 *     format accepts (below), and every rejection sets a non-empty message;
 *   - a simple (32-digit) input parses to an id whose format is the input
 *     in lower case; a hyphenated one formats back hyphenated likewise;
 *   - parsing ignores case;
 *   - for every accepted id: parse(format(id)) == id,
 *     parse(format_hyphenated(id)) == id, from_path(path_suffix(id)) == id
 *     (with and without a directory before it), from_key(to_key(id)) == id,
 *     from_bytes(bytes(id)) == id, and the id is a version 1, RFC 4122
 *     variant UUID;
 *   - an accepted key is exactly to_key of the id it gives;
 *   - key order agrees with spool_id_compare.
 *
 * A failed check prints what was wrong and aborts: libFuzzer saves the
 * input as a crash artifact.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_id.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_id: invariant violated at %s:%d: ", __FILE__, __LINE__);             \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* An exact-size heap copy of data[0..len): a read past len is a heap
 * overflow that ASan reports.  (malloc(0) may return NULL: 1 byte then,
 * still never read.) */
static uint8_t *copy_exact(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (p == NULL)
        abort();
    if (len)
        memcpy(p, data, len);
    return p;
}

/* ------------------------------------------------------------ models
 * An independent statement of what each function accepts, written from
 * the header's contract rather than from spool_id.c. */

static int model_hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Whether 16 bytes are a version 1, RFC 4122 variant UUID. */
static int model_v1(const uint8_t b[16])
{
    return (b[6] & 0xf0) == 0x10 && (b[8] & 0xc0) == 0x80;
}

/* The bytes that the text s[0..len) denotes, if it is the simple or the
 * hyphenated form of a v1 UUID. */
static int model_parse(const uint8_t *s, size_t len, uint8_t out[16])
{
    uint8_t digits[32];
    size_t nd = 0;
    if (len == 32) {
        for (size_t i = 0; i < 32; i++)
            digits[nd++] = s[i];
    } else if (len == 36) {
        for (size_t i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (s[i] != '-')
                    return 0;
            } else {
                digits[nd++] = s[i];
            }
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < 16; i++) {
        int hi = model_hex(digits[2 * i]), lo = model_hex(digits[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return model_v1(out);
}

/* A path is accepted when its last five '/'-separated components are
 * 2, 2, 2, 2 and 24 characters long (anything may come before the
 * first of them, which may also start the path) and their concatenation
 * parses. */
static int model_path(const uint8_t *p, size_t len, uint8_t out[16])
{
    static const size_t width[5] = {2, 2, 2, 2, 24};
    size_t total = 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 24;
    if (len < total)
        return 0;
    size_t at = len - total;
    if (at > 0 && p[at - 1] != '/')
        return 0;
    uint8_t text[32];
    size_t nt = 0;
    for (int c = 0; c < 5; c++) {
        for (size_t k = 0; k < width[c]; k++) {
            if (p[at] == '/')
                return 0;
            text[nt++] = p[at++];
        }
        if (c < 4) {
            if (p[at] != '/')
                return 0;
            at++;
        }
    }
    return model_parse(text, 32, out);
}

/* The id that a 16-byte key denotes: bytes 0-7 are the 60-bit timestamp
 * and the version nibble, big-endian; bytes 8-15 are stored as is. */
static int model_key(const uint8_t *k, size_t len, uint8_t out[16])
{
    if (len != 16)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | k[i];
    if ((v & 0xf) != 1)
        return 0;
    uint64_t ts = v >> 4;
    uint32_t time_low = (uint32_t)ts;
    uint16_t time_mid = (uint16_t)(ts >> 32);
    uint16_t time_hi = (uint16_t)((ts >> 48) & 0x0fff);
    out[0] = (uint8_t)(time_low >> 24);
    out[1] = (uint8_t)(time_low >> 16);
    out[2] = (uint8_t)(time_low >> 8);
    out[3] = (uint8_t)time_low;
    out[4] = (uint8_t)(time_mid >> 8);
    out[5] = (uint8_t)time_mid;
    out[6] = (uint8_t)(0x10 | (time_hi >> 8));
    out[7] = (uint8_t)time_hi;
    memcpy(out + 8, k + 8, 8);
    return model_v1(out);
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* ------------------------------------------------------------ checks */

static void check_rejection(int rc, const char *why, const char *fn, size_t len)
{
    if (rc != -1)
        FAIL("%s(len %zu) returned %d, expected 0 or -1", fn, len, rc);
    if (why == NULL || why[0] == '\0')
        FAIL("%s(len %zu) rejected its input without a message", fn, len);
}

static void same_id(const spool_id *a, const spool_id *b, const char *what)
{
    if (memcmp(a->b, b->b, SPOOL_ID_BYTES) != 0) {
        char ta[SPOOL_ID_TEXT + 1], tb[SPOOL_ID_TEXT + 1];
        spool_id_format(a, ta);
        spool_id_format(b, tb);
        FAIL("%s: %s != %s", what, ta, tb);
    }
}

/* Every round trip an accepted id must survive. */
static void check_id(const spool_id *id)
{
    const char *why;
    spool_id back;
    int rc;

    if (!model_v1(id->b))
        FAIL("an accepted id is not a version 1, RFC 4122 variant UUID");

    /* Simple form: 32 lowercase hex digits, parses back. */
    char text[SPOOL_ID_TEXT + 1];
    memset(text, 0x7f, sizeof text);
    spool_id_format(id, text);
    if (text[SPOOL_ID_TEXT] != '\0' || strlen(text) != SPOOL_ID_TEXT)
        FAIL("format: not 32 characters and a NUL");
    for (int i = 0; i < SPOOL_ID_TEXT; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            FAIL("format: '%s' is not lowercase hex", text);
    why = NULL;
    uint8_t *t = copy_exact((const uint8_t *)text, SPOOL_ID_TEXT);
    rc = spool_id_parse((const char *)t, SPOOL_ID_TEXT, &back, &why);
    free(t);
    if (rc != 0)
        FAIL("parse(format(id)) failed: %s", why ? why : "(no message)");
    same_id(id, &back, "parse(format(id))");

    /* Hyphenated form: 8-4-4-4-12, parses back. */
    char hy[37];
    memset(hy, 0x7f, sizeof hy);
    spool_id_format_hyphenated(id, hy);
    if (hy[36] != '\0' || strlen(hy) != 36)
        FAIL("format_hyphenated: not 36 characters and a NUL");
    if (hy[8] != '-' || hy[13] != '-' || hy[18] != '-' || hy[23] != '-')
        FAIL("format_hyphenated: '%s' has its hyphens misplaced", hy);
    for (int i = 0, j = 0; i < 36; i++) {
        if (hy[i] == '-')
            continue;
        if (hy[i] != text[j++])
            FAIL("format_hyphenated '%s' and format '%s' disagree", hy, text);
    }
    why = NULL;
    t = copy_exact((const uint8_t *)hy, 36);
    rc = spool_id_parse((const char *)t, 36, &back, &why);
    free(t);
    if (rc != 0)
        FAIL("parse(format_hyphenated(id)) failed: %s", why ? why : "(no message)");
    same_id(id, &back, "parse(format_hyphenated(id))");

    /* LocalDisk path: the bare suffix, and below a directory. */
    char suffix[SPOOL_ID_PATH_SUFFIX + 1];
    memset(suffix, 0x7f, sizeof suffix);
    spool_id_path_suffix(id, suffix);
    if (suffix[SPOOL_ID_PATH_SUFFIX] != '\0' || strlen(suffix) != SPOOL_ID_PATH_SUFFIX)
        FAIL("path_suffix: not %d characters and a NUL", SPOOL_ID_PATH_SUFFIX);
    why = NULL;
    t = copy_exact((const uint8_t *)suffix, SPOOL_ID_PATH_SUFFIX);
    rc = spool_id_from_path((const char *)t, SPOOL_ID_PATH_SUFFIX, &back, &why);
    free(t);
    if (rc != 0)
        FAIL("from_path(path_suffix(id)) failed on '%s': %s", suffix, why ? why : "(no message)");
    same_id(id, &back, "from_path(path_suffix(id))");
    /* Without the leading slash (a relative path), and under a directory. */
    why = NULL;
    t = copy_exact((const uint8_t *)suffix + 1, SPOOL_ID_PATH_SUFFIX - 1);
    rc = spool_id_from_path((const char *)t, SPOOL_ID_PATH_SUFFIX - 1, &back, &why);
    free(t);
    if (rc != 0)
        FAIL("from_path('%s') failed: %s", suffix + 1, why ? why : "(no message)");
    same_id(id, &back, "from_path(relative path_suffix(id))");
    char full[64];
    int n = snprintf(full, sizeof full, "/var/spool/data%s", suffix);
    why = NULL;
    t = copy_exact((const uint8_t *)full, (size_t)n);
    rc = spool_id_from_path((const char *)t, (size_t)n, &back, &why);
    free(t);
    if (rc != 0)
        FAIL("from_path('%s') failed: %s", full, why ? why : "(no message)");
    same_id(id, &back, "from_path(dir + path_suffix(id))");

    /* Time-ordered key. */
    uint8_t key[SPOOL_ID_BYTES];
    spool_id_to_key(id, key);
    why = NULL;
    t = copy_exact(key, SPOOL_ID_BYTES);
    rc = spool_id_from_key(t, SPOOL_ID_BYTES, &back, &why);
    free(t);
    if (rc != 0)
        FAIL("from_key(to_key(id)) failed: %s", why ? why : "(no message)");
    same_id(id, &back, "from_key(to_key(id))");
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | key[i];
    if (v >> 4 != spool_id_timestamp(id))
        FAIL("to_key: the key does not start with the timestamp");

    /* Raw bytes. */
    why = NULL;
    t = copy_exact(id->b, SPOOL_ID_BYTES);
    rc = spool_id_from_bytes(t, SPOOL_ID_BYTES, &back, &why);
    free(t);
    if (rc != 0)
        FAIL("from_bytes(bytes(id)) failed: %s", why ? why : "(no message)");
    same_id(id, &back, "from_bytes(bytes(id))");

    if (spool_id_compare(id, id) != 0)
        FAIL("compare(id, id) != 0");
}

/* Two accepted ids: key order, compare and equality agree. */
static void check_order(const spool_id *a, const spool_id *b)
{
    uint8_t ka[SPOOL_ID_BYTES], kb[SPOOL_ID_BYTES];
    spool_id_to_key(a, ka);
    spool_id_to_key(b, kb);
    int k = memcmp(ka, kb, SPOOL_ID_BYTES), c = spool_id_compare(a, b), r = spool_id_compare(b, a);
    if ((k < 0) != (c < 0) || (k > 0) != (c > 0) || (c < 0) != (r > 0) || (c > 0) != (r < 0))
        FAIL("compare disagrees with key order");
    if ((c == 0) != (memcmp(a->b, b->b, SPOOL_ID_BYTES) == 0))
        FAIL("compare == 0 but the bytes differ (or the reverse)");
    if (spool_id_timestamp(a) < spool_id_timestamp(b) && c >= 0)
        FAIL("an older id does not sort first");
}

static spool_id last_ok;
static int have_last;

static void accepted(const spool_id *id)
{
    check_id(id);
    if (have_last)
        check_order(&last_ok, id);
    last_ok = *id;
    have_last = 1;
}

static void fuzz_parse(const uint8_t *data, size_t len)
{
    uint8_t *s = copy_exact(data, len);
    uint8_t want[16];
    int expect = model_parse(s, len, want);
    const char *why = NULL;
    spool_id id;
    int rc = spool_id_parse((const char *)s, len, &id, &why);
    if (rc == 0) {
        if (!expect)
            FAIL("parse accepted a %zu-byte input that is not a v1 UUID text", len);
        if (memcmp(id.b, want, 16) != 0)
            FAIL("parse gave other bytes than the text denotes");
        accepted(&id);
        /* Formats back to the lowercase input. */
        char text[37];
        if (len == 32)
            spool_id_format(&id, text);
        else
            spool_id_format_hyphenated(&id, text);
        for (size_t i = 0; i < len; i++)
            if ((uint8_t)text[i] != lower(s[i]))
                FAIL("parse then format gave '%s', not the lowercase input", text);
    } else {
        check_rejection(rc, why, "spool_id_parse", len);
        if (expect)
            FAIL("parse rejected a valid %zu-byte id text: %s", len, why);
    }
    /* Case does not matter: the lowercased input gives the same answer. */
    for (size_t i = 0; i < len; i++)
        s[i] = lower(s[i]);
    spool_id id2;
    why = NULL;
    int rc2 = spool_id_parse((const char *)s, len, &id2, &why);
    if (rc2 != 0)
        check_rejection(rc2, why, "spool_id_parse (lowercased)", len);
    if ((rc == 0) != (rc2 == 0))
        FAIL("parse answers differently for the lowercased input");
    if (rc == 0)
        same_id(&id, &id2, "parse(lowercase(s))");
    free(s);
}

static void fuzz_from_bytes(const uint8_t *data, size_t len)
{
    uint8_t *b = copy_exact(data, len);
    int expect = len == 16 && model_v1(b);
    const char *why = NULL;
    spool_id id;
    int rc = spool_id_from_bytes(b, len, &id, &why);
    if (rc == 0) {
        if (!expect)
            FAIL("from_bytes accepted %zu bytes that are not a v1 UUID", len);
        if (memcmp(id.b, b, 16) != 0)
            FAIL("from_bytes changed the bytes");
        accepted(&id);
    } else {
        check_rejection(rc, why, "spool_id_from_bytes", len);
        if (expect)
            FAIL("from_bytes rejected a v1 UUID: %s", why);
    }
    free(b);
}

static void fuzz_from_path(const uint8_t *data, size_t len)
{
    uint8_t *p = copy_exact(data, len);
    uint8_t want[16];
    int expect = model_path(p, len, want);
    const char *why = NULL;
    spool_id id;
    int rc = spool_id_from_path((const char *)p, len, &id, &why);
    if (rc == 0) {
        if (!expect)
            FAIL("from_path accepted a %zu-byte path the layout does not allow", len);
        if (memcmp(id.b, want, 16) != 0)
            FAIL("from_path gave other bytes than the path denotes");
        accepted(&id);
        char suffix[SPOOL_ID_PATH_SUFFIX + 1];
        spool_id_path_suffix(&id, suffix);
        for (size_t i = 0; i < SPOOL_ID_PATH_SUFFIX - 1; i++)
            if ((uint8_t)suffix[SPOOL_ID_PATH_SUFFIX - 1 - i] != lower(p[len - 1 - i]))
                FAIL("path_suffix(from_path(p)) '%s' is not the end of p in lower case", suffix);
    } else {
        check_rejection(rc, why, "spool_id_from_path", len);
        if (expect)
            FAIL("from_path rejected a valid %zu-byte path: %s", len, why);
    }
    free(p);
}

static void fuzz_from_key(const uint8_t *data, size_t len)
{
    uint8_t *k = copy_exact(data, len);
    uint8_t want[16];
    int expect = model_key(k, len, want);
    const char *why = NULL;
    spool_id id;
    int rc = spool_id_from_key(k, len, &id, &why);
    if (rc == 0) {
        if (!expect)
            FAIL("from_key accepted a %zu-byte key that is not a v1 id's", len);
        if (memcmp(id.b, want, 16) != 0)
            FAIL("from_key gave other bytes than the key denotes");
        accepted(&id);
        uint8_t again[SPOOL_ID_BYTES];
        spool_id_to_key(&id, again);
        if (memcmp(again, k, SPOOL_ID_BYTES) != 0)
            FAIL("to_key(from_key(k)) != k");
    } else {
        check_rejection(rc, why, "spool_id_from_key", len);
        if (expect)
            FAIL("from_key rejected a valid key: %s", why);
    }
    free(k);
}

static void fuzz_all(const uint8_t *data, size_t len)
{
    fuzz_parse(data, len);
    fuzz_from_bytes(data, len);
    fuzz_from_path(data, len);
    fuzz_from_key(data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    have_last = 0;
    fuzz_all(data, size);
    /* The lengths the forms have, cut from the front and from the back,
     * so that short mutations of a long input still reach them. */
    static const size_t lens[] = {16, 32, 36, SPOOL_ID_PATH_SUFFIX - 1, SPOOL_ID_PATH_SUFFIX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        if (size > lens[i]) {
            fuzz_all(data, lens[i]);
            fuzz_all(data + size - lens[i], lens[i]);
        }
    }
    return 0;
}
