/*
 * rocks_kumo_write.c: writes a RocksDB database the way KumoMTA's rocks
 * spool does (crates/spool/src/rocks.rs, ../shared/reference/FACTS.md):
 * the default column family, key = the 16 bytes of a version-1 UUID, value
 * = the raw bytes, each entry one WriteBatch put.  Used by
 * spec/backends/rocksdb/rocksdb_spec.lua to check that the spool reads
 * such a database as it is.
 *
 *   rocks_kumo_write DIR N     writes N entries, prints "hex value" lines
 *   rocks_kumo_write DIR dump  prints every key (hex) and value, as a
 *                              reader that knows only RocksDB sees them
 */
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int dump = strcmp(argv[2], "dump") == 0;
    int n = atoi(argv[2]);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_compression(o, rocksdb_snappy_compression);
    char *err = NULL;
    rocksdb_t *db = rocksdb_open(o, argv[1], &err);
    if (err != NULL) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    if (dump) {
        rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
        rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t kl, vl;
            const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &kl);
            const char *v = rocksdb_iter_value(it, &vl);
            for (size_t i = 0; i < kl; i++)
                printf("%02x", k[i]);
            printf(" %.*s\n", (int)vl, v);
        }
        rocksdb_iter_destroy(it);
        rocksdb_readoptions_destroy(ro);
        rocksdb_close(db);
        rocksdb_options_destroy(o);
        return 0;
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    for (int i = 0; i < n; i++) {
        spool_id id;
        spool_id_new(&id);
        char hex[SPOOL_ID_TEXT + 1], value[64];
        spool_id_format(&id, hex);
        int len = snprintf(value, sizeof value, "message %d written as kumod writes it", i);
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        rocksdb_writebatch_put(wb, (const char *)id.b, sizeof id.b, value, (size_t)len);
        rocksdb_write(db, wo, wb, &err);
        rocksdb_writebatch_destroy(wb);
        if (err != NULL) {
            fprintf(stderr, "write: %s\n", err);
            return 1;
        }
        printf("%s %s\n", hex, value);
    }
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    return 0;
}
