/*
 * remove_races.c: the answers of removes that race, on every built kind,
 * through one handle (so that the group commit puts requests touching
 * the same ids into one batch):
 *   - 8 threads remove the same stored ids, singly and with remove_many
 *     (an id listed twice in one call): each id is answered "removed"
 *     exactly once over all threads;
 *   - 8 threads each store an id, remove it (1), remove it again (0),
 *     store it again and remove_many it twice over (1), all at once: each
 *     answer is the one a one-by-one commit gives;
 *   - afterwards no id loads;
 *   - a quarantine racing a store of the same id never loses the store:
 *     the new bytes are live, or in quarantine (the store came first).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "tap.h"

#define THREADS 8
#define SHARED 64

static spool *S;
static spool_id shared_ids[SHARED];
static atomic_int removed_count[SHARED];
static atomic_int failures, wrong;
static int rounds;
static char first_error[SPOOL_ERROR_MESSAGE_MAX + 32];

static void note_failure(const char *what, const spool_error *err)
{
    if (atomic_fetch_add(&failures, 1) == 0)
        snprintf(first_error, sizeof first_error, "%s: %s", what, err->message);
}

/* Removes every shared id once in an order of its own: half of them
 * singly, the others with remove_many listing the id twice. */
static void *remover(void *arg)
{
    long t = (long)arg;
    for (int i = 0; i < SHARED; i++) {
        int k = (int)((i * 37 + t * 11) % SHARED); /* 37 is prime to 64: a permutation */
        spool_error err;
        if ((i + t) % 2 == 0) {
            int was = 0;
            if (spool_remove(S, &shared_ids[k], NULL, &was, &err) != 0)
                note_failure("remove", &err);
            else
                atomic_fetch_add(&removed_count[k], was);
            continue;
        }
        spool_id twice[2] = {shared_ids[k], shared_ids[k]};
        size_t n = 0;
        if (spool_remove_many(S, twice, 2, NULL, &n, &err) != 0)
            note_failure("remove_many", &err);
        else
            atomic_fetch_add(&removed_count[k], (int)n);
    }
    return NULL;
}

/* Store, remove, remove again, store again, remove_many twice over, on
 * ids of its own, round after round. */
static void *cycler(void *arg)
{
    long t = (long)arg;
    char data[512];
    memset(data, 'a' + (int)t, sizeof data);
    for (int r = 0; r < rounds; r++) {
        spool_error err;
        spool_id id;
        spool_id_new(&id);
        int was = -1;
        size_t n = 99;
        if (spool_store(S, &id, data, sizeof data, NULL, &err) != 0) {
            note_failure("store", &err);
            continue;
        }
        if (spool_remove(S, &id, NULL, &was, &err) != 0)
            note_failure("remove", &err);
        else if (was != 1)
            atomic_fetch_add(&wrong, 1);
        if (spool_remove(S, &id, NULL, &was, &err) != 0)
            note_failure("second remove", &err);
        else if (was != 0)
            atomic_fetch_add(&wrong, 1);
        if (spool_store(S, &id, data, sizeof data, NULL, &err) != 0) {
            note_failure("store again", &err);
            continue;
        }
        spool_id twice[2] = {id, id};
        if (spool_remove_many(S, twice, 2, NULL, &n, &err) != 0)
            note_failure("remove_many", &err);
        else if (n != 1)
            atomic_fetch_add(&wrong, 1);
    }
    return NULL;
}

/* One quarantine and one store of the same id at once. */
static spool_id race_id;
static pthread_barrier_t race_start;
static int race_q_rc, race_s_rc;

static void *race_quarantine(void *arg)
{
    (void)arg;
    spool_error err;
    pthread_barrier_wait(&race_start);
    race_q_rc = spool_quarantine(S, &race_id, "race", &err);
    return NULL;
}

static void *race_store(void *arg)
{
    (void)arg;
    spool_error err;
    pthread_barrier_wait(&race_start);
    race_s_rc = spool_store(S, &race_id, "new", 3, NULL, &err);
    return NULL;
}

/* Whether id loads with bytes "new". */
static int loads_new(const spool_id *id)
{
    void *data;
    size_t len;
    spool_error err;
    if (spool_load(S, id, &data, &len, &err) != 0)
        return 0;
    int good = len == 3 && memcmp(data, "new", 3) == 0;
    spool_free(data);
    return good;
}

/* Returns how many rounds lost the store. */
static int quarantine_races(int n)
{
    int lost = 0;
    pthread_barrier_init(&race_start, NULL, 2);
    for (int i = 0; i < n; i++) {
        spool_error err;
        spool_id_new(&race_id);
        if (spool_store(S, &race_id, "old", 3, NULL, &err) != 0) {
            note_failure("store old", &err);
            continue;
        }
        pthread_t a, b;
        pthread_create(&a, NULL, race_quarantine, NULL);
        pthread_create(&b, NULL, race_store, NULL);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        if (race_s_rc != 0)
            continue; /* nothing acknowledged */
        if (loads_new(&race_id))
            ;
        else if (race_q_rc == 0 && spool_restore(S, &race_id, &err) == 0 && loads_new(&race_id))
            ;
        else
            lost++;
        int was;
        spool_remove(S, &race_id, NULL, &was, &err);
        spool_purge_quarantined(S, &race_id, &was, &err);
    }
    pthread_barrier_destroy(&race_start);
    return lost;
}

/* Removes the test's directory; exits 2 when it cannot. */
static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        exit(2);
}

static void run_kind(const char *kind)
{
    char dir[] = "/tmp/spool-removeraces-XXXXXX";
    if (mkdtemp(dir) == NULL)
        exit(2);
    spool_params p;
    spool_error err;
    spool_params_init(&p);
    p.path = dir;
    p.kind = kind;
    p.reserve_bytes = 0;
    int opened = spool_open(&p, &S, &err) == 0;
    ok(opened, "%s: open (%s)", kind, opened ? "ok" : err.message);
    if (!opened) {
        remove_dir(dir);
        return;
    }
    atomic_store(&failures, 0);
    atomic_store(&wrong, 0);
    int not_once = 0;
    for (int round = 0; round < rounds / 10 + 1; round++) {
        spool_item items[SHARED];
        for (int i = 0; i < SHARED; i++) {
            spool_id_new(&shared_ids[i]);
            items[i] = (spool_item){shared_ids[i], "shared", 6};
            atomic_store(&removed_count[i], 0);
        }
        if (spool_store_many(S, items, SHARED, NULL, &err) != 0) {
            note_failure("store_many", &err);
            continue;
        }
        pthread_t th[THREADS];
        for (long t = 0; t < THREADS; t++)
            pthread_create(&th[t], NULL, remover, (void *)t);
        for (int t = 0; t < THREADS; t++)
            pthread_join(th[t], NULL);
        for (int i = 0; i < SHARED; i++) {
            not_once += atomic_load(&removed_count[i]) != 1;
            void *data;
            size_t len;
            if (spool_load(S, &shared_ids[i], &data, &len, &err) == 0) {
                spool_free(data);
                atomic_fetch_add(&wrong, 1);
            }
        }
    }
    ok(atomic_load(&failures) == 0 && atomic_load(&wrong) == 0 && not_once == 0,
       "%s: %d threads removing the same ids: each removed exactly once, none left (%d not once, %d "
       "left, %d failures; first: %s)",
       kind, THREADS, not_once, atomic_load(&wrong), atomic_load(&failures), first_error);
    atomic_store(&failures, 0);
    atomic_store(&wrong, 0);
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, cycler, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    ok(atomic_load(&failures) == 0 && atomic_load(&wrong) == 0,
       "%s: %d threads x %d store/remove/remove/store/remove_many twice: every answer as committed one by one (%d "
       "wrong, %d failures; first: %s)",
       kind, THREADS, rounds, atomic_load(&wrong), atomic_load(&failures), first_error);
    atomic_store(&failures, 0);
    int lost = quarantine_races(rounds);
    ok(lost == 0 && atomic_load(&failures) == 0,
       "%s: %d quarantines racing a store of the same id: the store's bytes live or in quarantine (%d lost, %d "
       "failures; first: %s)",
       kind, rounds, lost, atomic_load(&failures), first_error);
    spool_close(S);
    remove_dir(dir);
}

int main(void)
{
    rounds = getenv("SPOOL_SANITIZE") ? 40 : 300;
    for (size_t i = 0; spool_backend_kind(i) != NULL; i++)
        run_kind(spool_backend_kind(i));
    return tap_done();
}
