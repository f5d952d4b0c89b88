/* fuzz-ledger-sql.c — a tampered ledger: the input is SQL run against a
 * copy of a valid ledger (events, intents, a device, certificates) with its
 * guard triggers dropped, as someone with the sqlite3 CLI could. The result
 * is then read the way the reading commands do (verify, export, show).
 * This reaches the row-level paths that raw file bytes rarely do: NULLs
 * and wrong types in columns, odd JSON in details, broken certificates.
 * Must never crash, leak or hang. ATTACH and anything else that could
 * touch other files is refused by an authorizer. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "fuzz-ledger.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fl_ctx *ctx;
static char seed[64], work[64];
static unsigned char *seed_bytes;
static size_t seed_len;

static void cleanup(void)
{
        fuzz_unlink_db(seed);
        fuzz_unlink_db(work);
        free(seed_bytes);
}

static unsigned char *make_cert(const char *cn, size_t *ret_len)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        X509 *x = X509_new();
        X509_NAME *n = X509_NAME_new();
        unsigned char *der = NULL;
        int len;

        if (!k || !x || !n)
                abort();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_subject_name(x, n);
        X509_set_issuer_name(x, n);
        ASN1_TIME_set_string(X509_getm_notBefore(x), "20240501000000Z");
        ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z");
        X509_set_pubkey(x, k);
        if (X509_sign(x, k, EVP_sha256()) <= 0 || (len = i2d_X509(x, &der)) <= 0)
                abort();
        *ret_len = (size_t)len;
        X509_NAME_free(n);
        X509_free(x);
        EVP_PKEY_free(k);
        return der;
}

/* A valid ledger with something of everything, kept as bytes. */
static void make_seed(void)
{
        static const char e1[] = "80012344705df1172c0000000d020080";
        struct ledger *l;
        struct ledger_appended in;
        size_t len1, len2;
        unsigned char *der1 = make_cert("one", &len1), *der2 = make_cert("two", &len2);
        struct ledger_cert c1 = { der1, len1, false }, c2 = { der2, len2, true };
        struct ledger_device dev = { .chip = FL_CHIP_T234, .serial = "SN-1", .state = LEDGER_STATE_PLANNED };
        struct ledger_event ev = { .time = "2024-05-01T10:00:00Z", .station = "s", .operator = "o",
                                   .command = "burn", .ecid = e1, .kind = LEDGER_INTENT, .outcome = "pending",
                                   .details = "{\"plan\":\"ab\",\"n\":[1,2]}" };
        FILE *f;
        long n;

        snprintf(seed, sizeof(seed), "/tmp/fuzz-ledger-seed.%d.db", (int)getpid());
        snprintf(work, sizeof(work), "/tmp/fuzz-ledger-work.%d.db", (int)getpid());
        atexit(cleanup);
        fuzz_unlink_db(seed);
        if (ledger_open(ctx, seed, LEDGER_WRITE, &l) < 0 || ledger_append(l, &ev, &in) < 0)
                abort();
        ev.kind = LEDGER_RESULT;
        ev.intent_id = in.id;
        ev.outcome = "ok";
        ev.device = &dev;
        if (ledger_append(l, &ev, NULL) < 0)
                abort();
        ev = (struct ledger_event){ .time = "2024-05-02T10:00:00Z", .station = "s", .operator = "o",
                                    .command = "enroll", .ecid = e1, .outcome = "ok", .cert = &c1 };
        if (ledger_append(l, &ev, NULL) < 0)
                abort();
        ev.cert = &c2;
        if (ledger_append(l, &ev, NULL) < 0)
                abort();
        ev = (struct ledger_event){ .station = "s", .operator = "o", .command = "burn",
                                    .ecid = "80012344705df1172c0000000d020081", .kind = LEDGER_INTENT,
                                    .outcome = "pending" };
        if (ledger_append(l, &ev, NULL) < 0)
                abort();
        ledger_close(l);
        free(der1);
        free(der2);
        /* The guards go now, once, so an input that changes nothing leaves
         * the file byte for byte as it was (and is skipped). */
        {
                sqlite3 *db = NULL;
                if (sqlite3_open_v2(seed, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
                    sqlite3_exec(db, "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; "
                                     "DROP TRIGGER certificates_fixed; PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK)
                        abort();
                /* Rollback-journal mode from here on: no -wal/-shm files per run. */
                sqlite3_close(db);
        }

        f = fopen(seed, "rb");
        if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET))
                abort();
        seed_bytes = malloc((size_t)n);
        if (!seed_bytes || fread(seed_bytes, 1, (size_t)n, f) != (size_t)n)
                abort();
        seed_len = (size_t)n;
        fclose(f);
}

static bool same_as_seed(void)
{
        static bool seen_once;
        FILE *f = fopen(work, "rb");
        unsigned char *buf = malloc(seed_len + 1);
        bool same;

        if (!f || !buf)
                abort();
        same = fread(buf, 1, seed_len + 1, f) == seed_len && !memcmp(buf, seed_bytes, seed_len);
        fclose(f);
        free(buf);
        if (same && !seen_once) {
                seen_once = true;
                return false;
        }
        return same;
}

static int deny_outside(void *u, int action, const char *a, const char *b, const char *c, const char *d)
{
        (void)u;
        (void)a;
        (void)b;
        (void)c;
        (void)d;
        return action == SQLITE_ATTACH || action == SQLITE_DETACH ? SQLITE_DENY : SQLITE_OK;
}

static int stop_long(void *u)
{
        return ++*(int *)u > 2000; /* ~2M VM steps, then interrupt */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        sqlite3 *db = NULL;
        char *sql;
        int fd, steps = 0;

        if (!ctx) {
                fuzz_sqlite_plain_malloc();
                if (fl_ctx_new(&ctx) < 0)
                        abort();
                make_seed();
        }
        fuzz_unlink_db(work);
        fd = open(work, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, seed_bytes, seed_len) != (ssize_t)seed_len)
                abort();
        close(fd);

        sql = fuzz_cstr(data, size);
        if (!sql)
                abort();
        if (sqlite3_open_v2(work, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
                sqlite3_set_authorizer(db, deny_outside, NULL);
                sqlite3_progress_handler(db, 1000, stop_long, &steps);
                sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
                sqlite3_exec(db, sql, NULL, NULL, NULL);
        }
        sqlite3_close(db);
        free(sql);
        if (same_as_seed())
                return 0; /* most mutants do not parse: the seed is read once */

        fuzz_ledger_check_file(ctx, work);
        return 0;
}
