/*
 * spool_options.c: backend tuning as name/value rows in spool_params,
 * checked against the backend's own option declarations
 * (spool_backend.h) and written into the backend's own struct at open.
 * The core names no backend's settings: a backend's options live in its
 * file, and this reads them by table.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "spool_backend.h"

/* Records key.name = (number, text) in p, replacing an earlier value of
 * the same option.  Returns 0, or -1 (misuse) on an empty key or name or
 * a full table. */
static int tune(spool_params *p, const char *key, const char *name, double number, const char *text,
                spool_error *err)
{
    if (p == NULL || key == NULL || key[0] == '\0' || name == NULL || name[0] == '\0')
        return spool_error_set(err, SPOOL_MISUSE, "tuning: a backend options key and an option name are required");
    size_t i = 0;
    while (i < p->ntuning && !(strcmp(p->tuning[i].key, key) == 0 && strcmp(p->tuning[i].name, name) == 0))
        i++;
    if (i == SPOOL_TUNING_MAX)
        return spool_error_set(err, SPOOL_MISUSE, "%s.%s: at most %d tuning options can be set", key, name,
                               SPOOL_TUNING_MAX);
    p->tuning[i] = (spool_tuning){.key = key, .name = name, .text = text, .number = number};
    if (i == p->ntuning)
        p->ntuning++;
    return 0;
}

int spool_params_tune_number(spool_params *p, const char *key, const char *name, double value, spool_error *err)
{
    return tune(p, key, name, value, NULL, err);
}

int spool_params_tune_text(spool_params *p, const char *key, const char *name, const char *value, spool_error *err)
{
    if (value == NULL)
        return spool_error_set(err, SPOOL_MISUSE, "%s.%s: a text value is required", key ? key : "?",
                               name ? name : "?");
    return tune(p, key, name, 0, value, err);
}

/* 1 + the index of v among the comma-separated names (any case), or 0. */
static int enum_index(const char *values, const char *v)
{
    size_t len = strlen(v);
    const char *at = values;
    for (int i = 1; at != NULL && *at != '\0'; i++) {
        const char *end = strchr(at, ',');
        size_t n = end ? (size_t)(end - at) : strlen(at);
        if (n == len && strncasecmp(at, v, n) == 0)
            return i;
        if (end == NULL)
            break;
        at = end + 1;
    }
    return 0;
}

/* What a value of option o must be, for the error message. */
static void expected(const spool_option *o, char *buf, size_t size)
{
    switch (o->type) {
    case SPOOL_OPT_INT:
    case SPOOL_OPT_INT64:
        snprintf(buf, size, "an integer in [%lld, %lld]", (long long)o->min, (long long)o->max);
        break;
    case SPOOL_OPT_POW2:
        snprintf(buf, size, "a power of two in [%lld, %lld]", (long long)o->min, (long long)o->max);
        break;
    case SPOOL_OPT_BOOL:
        snprintf(buf, size, "a boolean (0 or 1)");
        break;
    case SPOOL_OPT_STRING:
        snprintf(buf, size, "a string");
        break;
    case SPOOL_OPT_ENUM:
        snprintf(buf, size, "one of %s", o->values ? o->values : "(none)");
        break;
    case SPOOL_OPT_DURATION:
        snprintf(buf, size, "seconds in [%lld, %lld]", (long long)o->min, (long long)o->max);
        break;
    }
}

/* Checks row t against o and writes it at o->offset in out.  Returns 0,
 * or -1 with a misuse error naming the option. */
static int apply_one(const spool_option *o, const spool_tuning *t, char *out, spool_error *err)
{
    void *field = out + o->offset;
    double v = t->number;
    int ok;
    switch (o->type) {
    case SPOOL_OPT_STRING:
        if ((ok = t->text != NULL))
            *(const char **)field = t->text;
        break;
    case SPOOL_OPT_ENUM: {
        int i = t->text != NULL && o->values != NULL ? enum_index(o->values, t->text) : 0;
        if ((ok = i > 0))
            *(int *)field = i;
        break;
    }
    case SPOOL_OPT_BOOL:
        if ((ok = t->text == NULL && (v == 0 || v == 1)))
            *(int *)field = (int)v;
        break;
    case SPOOL_OPT_DURATION:
        if ((ok = t->text == NULL && isfinite(v) && v >= (double)o->min && v <= (double)o->max))
            *(double *)field = v;
        break;
    default: { /* the integers */
        ok = t->text == NULL && isfinite(v) && v == floor(v) && v >= (double)o->min && v <= (double)o->max;
        int64_t n = ok ? (int64_t)v : 0;
        if (ok && o->type == SPOOL_OPT_POW2)
            ok = n > 0 && (n & (n - 1)) == 0;
        if (!ok)
            break;
        if (n == 0 && o->zero_is != 0)
            n = o->zero_is;
        if (o->type == SPOOL_OPT_INT64)
            *(int64_t *)field = n;
        else
            *(int *)field = (int)n;
        break;
    }
    }
    if (ok)
        return 0;
    char want[160], got[96];
    expected(o, want, sizeof want);
    if (t->text != NULL)
        snprintf(got, sizeof got, "\"%.80s\"", t->text);
    else
        snprintf(got, sizeof got, "%.17g", v);
    return spool_error_set(err, SPOOL_MISUSE, "%s.%s: expected %s, got %s", t->key, t->name, want, got);
}

int spool_options_apply(const spool_backend *b, const spool_params *p, void *out, spool_error *err)
{
    for (size_t i = 0; i < p->ntuning; i++) {
        const spool_tuning *t = &p->tuning[i];
        if (b->options_key == NULL || strcmp(t->key, b->options_key) != 0)
            continue;
        const spool_option *o = b->options;
        while (o != NULL && o->name != NULL && strcmp(o->name, t->name) != 0)
            o++;
        if (o == NULL || o->name == NULL) {
            char known[512] = "";
            for (o = b->options; o != NULL && o->name != NULL; o++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", known[0] ? ", " : "",
                         o->name);
            return spool_error_set(err, SPOOL_MISUSE, "%s.%s: the %s backend has no such option (known: %s)", t->key,
                                   t->name, b->kind, known);
        }
        if (apply_one(o, t, out, err) != 0)
            return -1;
    }
    return 0;
}
