/* test-ledger.c — lib/ledger: the canonical bytes against a hand-written
 * vector, the chain against a recomputation written here from the format
 * (raw sqlite3 + OpenSSL, not the ledger's code), tampering by raw SQL with
 * the triggers dropped (edit, delete, reorder, re-link, truncate, state
 * tables), migration of a version-1 database, refusing foreign/newer/garbage
 * files, intents and results, devices and certificates, field validation,
 * the time and ECID parsers, CSV/JSON escaping, and concurrent writers. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "ledger.h"
#include "ledger_db.h"

#define ECID1 "80012344705df1172c0000000d020080"
#define ECID2 "80012344705df1172c0000000d020081"

static char tmpdir[256];
static char dbpath[300];
static fl_ctx *ctx;

static void setup(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-ledger.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        snprintf(dbpath, sizeof(dbpath), "%s/l.db", tmpdir);
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
        /* The library reads no environment: the caller sets its defaults. */
        ledger_defaults_set(NULL, "st-1", "op-1");
}

static void teardown(void)
{
        char cmd[400];

        fl_ctx_free(ctx);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
}

/* ---- helpers independent of lib/ledger ---------------------------------- */

static sqlite3 *raw_open(void)
{
        sqlite3 *db = NULL;

        ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
        return db;
}

static void raw_exec(const char *sql)
{
        sqlite3 *db = raw_open();
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

        ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(db);
}

static long long raw_int(const char *sql)
{
        sqlite3 *db = raw_open();
        sqlite3_stmt *st;
        long long v = -1;

        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static void put_field(unsigned char **p, const void *data, long len)
{
        if (len < 0) {
                memset(*p, 0xff, 4);
                *p += 4;
                return;
        }
        (*p)[0] = (unsigned char)(len >> 24);
        (*p)[1] = (unsigned char)(len >> 16);
        (*p)[2] = (unsigned char)(len >> 8);
        (*p)[3] = (unsigned char)len;
        memcpy(*p + 4, data, (size_t)len);
        *p += 4 + len;
}

static void put_text(unsigned char **p, const unsigned char *s)
{
        put_field(p, s, s ? (long)strlen((const char *)s) : -1);
}

static void put_int(unsigned char **p, sqlite3_int64 v, bool null)
{
        unsigned char be[8];

        for (int i = 0; i < 8; i++)
                be[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
        put_field(p, be, null ? -1 : 8);
}

/* SHA-256(prev ‖ canon) of the current row of `st` (columns id..details),
 * written from the documented format. */
static void ref_hash(sqlite3_stmt *st, const unsigned char prev[32], unsigned char out[32])
{
        static unsigned char buf[1 << 20];
        unsigned char *p = buf;

        memcpy(p, prev, 32);
        p += 32;
        put_text(&p, (const unsigned char *)"fuseline-event/1");
        put_int(&p, sqlite3_column_int64(st, 0), false);
        for (int i = 1; i <= 6; i++)
                put_text(&p, sqlite3_column_text(st, i));
        put_int(&p, sqlite3_column_int64(st, 7), sqlite3_column_type(st, 7) == SQLITE_NULL);
        put_text(&p, sqlite3_column_text(st, 8));
        put_text(&p, sqlite3_column_text(st, 9));
        ck_assert(EVP_Digest(buf, (size_t)(p - buf), out, NULL, EVP_sha256(), NULL));
}

/* Recompute the whole chain; returns the number of events, or -(id) of the
 * first event whose stored hash or prev_hash differs. */
static long long ref_chain(void)
{
        sqlite3 *db = raw_open();
        sqlite3_stmt *st;
        unsigned char prev[32] = { 0 }, h[32];
        long long n = 0;

        ck_assert_int_eq(sqlite3_prepare_v2(db,
                                            "SELECT id, time, station, operator, command, ecid, kind, intent_id, "
                                            "outcome, details, prev_hash, hash FROM events ORDER BY id",
                                            -1, &st, NULL),
                         SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
                ref_hash(st, prev, h);
                if (sqlite3_column_int64(st, 0) != n + 1 || sqlite3_column_bytes(st, 11) != 32 ||
                    memcmp(sqlite3_column_blob(st, 10), prev, 32) || memcmp(sqlite3_column_blob(st, 11), h, 32)) {
                        n = -sqlite3_column_int64(st, 0);
                        break;
                }
                memcpy(prev, h, 32);
                n++;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

/* Re-hash one event in place with the reference code (an attacker who
 * knows the format), the triggers dropped. */
static void raw_rehash(long long id)
{
        sqlite3 *db = raw_open();
        sqlite3_stmt *st, *up;
        unsigned char h[32];
        char sql[200];

        snprintf(sql, sizeof(sql),
                 "SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash "
                 "FROM events WHERE id = %lld",
                 id);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ref_hash(st, sqlite3_column_blob(st, 10), h);
        sqlite3_finalize(st);
        ck_assert_int_eq(sqlite3_prepare_v2(db, "UPDATE events SET hash = ?1 WHERE id = ?2", -1, &up, NULL), SQLITE_OK);
        sqlite3_bind_blob(up, 1, h, 32, SQLITE_STATIC);
        sqlite3_bind_int64(up, 2, id);
        ck_assert_int_eq(sqlite3_step(up), SQLITE_DONE);
        sqlite3_finalize(up);
        sqlite3_close(db);
}

/* A self-signed P-256 certificate made with OpenSSL directly. */
static unsigned char *make_cert(const char *cn, long serial, size_t *ret_len)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        X509 *x = X509_new();
        X509_NAME *n = X509_NAME_new();
        unsigned char *der = NULL;
        int len;

        ck_assert_ptr_nonnull(k);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_subject_name(x, n);
        X509_set_issuer_name(x, n);
        ASN1_TIME_set_string(X509_getm_notBefore(x), "20240501000000Z");
        ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z");
        X509_set_pubkey(x, k);
        ck_assert(X509_sign(x, k, EVP_sha256()) > 0);
        len = i2d_X509(x, &der);
        ck_assert_int_gt(len, 0);
        *ret_len = (size_t)len;
        X509_NAME_free(n);
        X509_free(x);
        EVP_PKEY_free(k);
        return der;
}

static struct ledger *open_w(void)
{
        struct ledger *l = NULL;

        ck_assert_msg(ledger_open(ctx, dbpath, LEDGER_WRITE, &l) == 0, "%s", fl_ctx_last_error(ctx));
        return l;
}

static struct ledger *open_r(void)
{
        struct ledger *l = NULL;

        ck_assert_msg(ledger_open(ctx, dbpath, LEDGER_READ, &l) == 0, "%s", fl_ctx_last_error(ctx));
        return l;
}

static int64_t append(struct ledger *l, const char *ecid, enum ledger_kind kind, int64_t intent, const char *outcome)
{
        struct ledger_event ev = { .command = "burn", .ecid = ecid, .kind = kind, .intent_id = intent,
                                   .outcome = outcome, .details = "{\"plan\":\"abc\"}" };
        struct ledger_appended a;

        ck_assert_msg(ledger_append(l, &ev, &a) == 0, "%s", fl_ctx_last_error(ctx));
        return a.id;
}

static void fill(int n)
{
        struct ledger *l = open_w();

        for (int i = 0; i < n; i++)
                append(l, i % 2 ? ECID1 : ECID2, LEDGER_RECORD, 0, "ok");
        ledger_close(l);
}

static struct ledger_report verify_now(void)
{
        struct ledger *l = open_r();
        struct ledger_report rep;

        ck_assert_msg(ledger_verify(l, &rep) == 0, "%s", fl_ctx_last_error(ctx));
        ledger_close(l);
        return rep;
}

static void drop_guards(void)
{
        raw_exec("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;");
}

/* ---- canonical bytes ---------------------------------------------------- */

START_TEST(t_canon_vector)
{
        /* Written out by hand from the format in README.md. */
        static const unsigned char want[] = {
                0, 0, 0, 16, 'f', 'u', 's', 'e', 'l', 'i', 'n', 'e', '-', 'e', 'v', 'e', 'n', 't', '/', '1',
                0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2,                           /* id 258 */
                0, 0, 0, 20, '2', '0', '2', '4', '-', '0', '5', '-', '0', '1', 'T', '1', '2', ':', '3', '0',
                ':', '4', '5', 'Z',                                           /* time */
                0, 0, 0, 1, 's',                                              /* station */
                0, 0, 0, 0,                                                   /* operator "" */
                0, 0, 0, 4, 'b', 'u', 'r', 'n',                               /* command */
                0xff, 0xff, 0xff, 0xff,                                       /* ecid NULL */
                0, 0, 0, 6, 'r', 'e', 's', 'u', 'l', 't',                     /* kind */
                0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7,                           /* intent_id 7 */
                0, 0, 0, 2, 'o', 'k',                                         /* outcome */
                0, 0, 0, 2, '{', '}',                                         /* details */
        };
        struct ledger_row row = { .id = 258, .time = "2024-05-01T12:30:45Z", .station = "s", .operator = "",
                                  .command = "burn", .ecid = NULL, .kind = "result", .intent_id = 7,
                                  .outcome = "ok", .details = "{}" };
        unsigned char prev[32], buf[32 + sizeof(want)], want_hash[32], got_hash[32];
        unsigned char *canon;
        size_t len;

        ck_assert_int_eq(ledger_event_canon(&row, &canon, &len), 0);
        ck_assert_uint_eq(len, sizeof(want));
        ck_assert_mem_eq(canon, want, sizeof(want));
        free(canon);

        for (int i = 0; i < 32; i++)
                prev[i] = (unsigned char)i;
        memcpy(buf, prev, 32);
        memcpy(buf + 32, want, sizeof(want));
        ck_assert(EVP_Digest(buf, sizeof(buf), want_hash, NULL, EVP_sha256(), NULL));
        ck_assert_int_eq(ledger_event_hash(&row, prev, got_hash), 0);
        ck_assert_mem_eq(got_hash, want_hash, 32);

        /* NULL and "" differ: an ECID of "" must not hash like no ECID. */
        row.ecid = "";
        ck_assert_int_eq(ledger_event_hash(&row, prev, buf), 0);
        ck_assert_mem_ne(buf, want_hash, 32);
}
END_TEST

/* ---- the chain ---------------------------------------------------------- */

START_TEST(t_chain_recompute)
{
        struct ledger *l;
        struct ledger_appended a[3];
        struct ledger_event evs[3] = {
                { .command = "keygen", .kind = LEDGER_RECORD, .outcome = "ok" },
                { .command = "burn", .ecid = "0x" "80012344705DF1172C0000000D020080", .kind = LEDGER_INTENT,
                  .outcome = "pending", .details = "{ \"plan_sha256\" : \"ab\",  \"n\": [1, 2.50] }" },
                { .command = "burn", .ecid = ECID1, .kind = LEDGER_RESULT, .intent_id = 2, .outcome = "ok" },
        };
        struct ledger_report rep;
        char details[200] = "";

        l = open_w();
        ck_assert_int_eq(ledger_schema_version(l), LEDGER_SCHEMA_VERSION);
        ck_assert_msg(ledger_append_batch(l, evs, 3, a) == 0, "%s", fl_ctx_last_error(ctx));
        ck_assert_int_eq(a[0].id, 1);
        ck_assert_int_eq(a[2].id, 3);
        for (int i = 0; i < 20; i++)
                append(l, ECID2, LEDGER_RECORD, 0, "ok");
        ledger_close(l);

        ck_assert_int_eq(ref_chain(), 23);
        /* The ECID is stored normalised; details compactly re-serialised. */
        ck_assert_int_eq(raw_int("SELECT count(*) FROM events WHERE id = 2 AND ecid = '" ECID1 "'"), 1);
        {
                sqlite3 *db = raw_open();
                sqlite3_stmt *st;
                sqlite3_prepare_v2(db, "SELECT details, station, operator FROM events WHERE id = 2", -1, &st, NULL);
                ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
                snprintf(details, sizeof(details), "%s", sqlite3_column_text(st, 0));
                ck_assert_str_eq((const char *)sqlite3_column_text(st, 1), "st-1");
                ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), "op-1");
                sqlite3_finalize(st);
                sqlite3_close(db);
        }
        ck_assert_str_eq(details, "{\"plan_sha256\":\"ab\",\"n\":[1,2.50]}");

        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ck_assert_uint_eq(rep.events, 23);
        ck_assert_int_eq(rep.head_id, 23);
        ck_assert_uint_eq(rep.n_dangling, 0);
        ledger_report_clear(&rep);
        {
                sqlite3 *db = raw_open();
                sqlite3_stmt *st;
                sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
                ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
                ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
                sqlite3_finalize(st);
                sqlite3_close(db);
        }
}
END_TEST

START_TEST(t_triggers_refuse)
{
        sqlite3 *db;
        char *err = NULL;

        fill(3);
        db = raw_open();
        ck_assert_int_ne(sqlite3_exec(db, "UPDATE events SET outcome = 'x' WHERE id = 2", NULL, NULL, &err), SQLITE_OK);
        ck_assert_ptr_nonnull(strstr(err, "append-only"));
        sqlite3_free(err);
        ck_assert_int_ne(sqlite3_exec(db, "DELETE FROM events WHERE id = 3", NULL, NULL, &err), SQLITE_OK);
        ck_assert_ptr_nonnull(strstr(err, "append-only"));
        sqlite3_free(err);
        sqlite3_close(db);
        ck_assert_int_eq(ref_chain(), 3);
}
END_TEST

START_TEST(t_tamper_edit)
{
        struct ledger_report rep;

        fill(6);
        drop_guards();
        raw_exec("UPDATE events SET outcome = 'failed' WHERE id = 4");
        ck_assert_int_eq(ref_chain(), -4);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_EDITED);
        ck_assert_int_eq(rep.bad_id, 4);
        ck_assert_ptr_nonnull(strstr(rep.message, "event 4"));
        ck_assert_ptr_nonnull(strstr(rep.message, "edited"));
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_tamper_edit_details_whitespace)
{
        struct ledger_report rep;

        /* Same JSON meaning, other bytes: still an edit. */
        fill(3);
        drop_guards();
        raw_exec("UPDATE events SET details = replace(details, ':', ': ') WHERE id = 2");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_EDITED);
        ck_assert_int_eq(rep.bad_id, 2);
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_tamper_delete)
{
        struct ledger_report rep;

        fill(6);
        drop_guards();
        raw_exec("DELETE FROM events WHERE id = 3");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_DELETED);
        ck_assert_int_eq(rep.bad_id, 4);
        ck_assert_ptr_nonnull(strstr(rep.message, "event 3"));
        ck_assert_int_eq(rep.head_id, 2);
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_tamper_reorder)
{
        struct ledger_report rep;

        fill(6);
        drop_guards();
        raw_exec("UPDATE events SET id = -1 WHERE id = 3; UPDATE events SET id = 3 WHERE id = 4;"
                 "UPDATE events SET id = 4 WHERE id = -1;");
        ck_assert_int_eq(ref_chain(), -3);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_REORDERED);
        ck_assert_int_eq(rep.bad_id, 3);
        ck_assert_ptr_nonnull(strstr(rep.message, "event 4, moved"));
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_tamper_relink)
{
        struct ledger_report rep;

        /* Edit event 3 and recompute its hash: 3 is self-consistent, but 4
         * no longer follows it. */
        fill(6);
        drop_guards();
        raw_exec("UPDATE events SET outcome = 'failed' WHERE id = 3");
        raw_rehash(3);
        ck_assert_int_eq(ref_chain(), -4);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_BROKEN_LINK);
        ck_assert_int_eq(rep.bad_id, 4);
        ck_assert_ptr_nonnull(strstr(rep.message, "event 3"));
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_tamper_truncate)
{
        struct ledger_report rep;
        struct ledger *l;

        fill(5);
        drop_guards();
        raw_exec("DELETE FROM events WHERE id >= 4");
        ck_assert_int_eq(ref_chain(), 3); /* what is left chains fine… */
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_TRUNCATED); /* …but ids 4..5 were issued */
        ck_assert_int_eq(rep.bad_id, 4);
        ledger_report_clear(&rep);

        /* A later append does not paper over the gap. */
        l = open_w();
        ck_assert_int_eq(append(l, ECID1, LEDGER_RECORD, 0, "ok"), 6);
        ledger_close(l);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_DELETED);
        ck_assert_int_eq(rep.bad_id, 6);
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_tamper_types)
{
        struct ledger_report rep;

        /* A text hash, a NUL smuggled into a text column. */
        fill(3);
        drop_guards();
        raw_exec("UPDATE events SET outcome = CAST(x'6f6b0078' AS TEXT) WHERE id = 2");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_MALFORMED);
        ck_assert_int_eq(rep.bad_id, 2);
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_schema_guard_missing)
{
        struct ledger_report rep;

        fill(2);
        raw_exec("DROP TRIGGER events_no_delete");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_SCHEMA);
        ck_assert_ptr_nonnull(strstr(rep.message, "events_no_delete"));
        ledger_report_clear(&rep);
}
END_TEST

/* ---- intents ------------------------------------------------------------ */

START_TEST(t_intents)
{
        struct ledger *l = open_w();
        struct ledger_dangling *d = NULL;
        struct ledger_report rep;
        struct ledger_event ev = { .command = "burn", .ecid = ECID2, .kind = LEDGER_RESULT, .outcome = "ok" };
        size_t n = 0;
        int64_t i1, i2, rec;

        i1 = append(l, ECID1, LEDGER_INTENT, 0, "pending");
        i2 = append(l, ECID1, LEDGER_INTENT, 0, "pending");
        rec = append(l, ECID1, LEDGER_RECORD, 0, "ok");
        ck_assert_int_eq(ledger_dangling_list(l, NULL, &d, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(d[0].id, i1);
        ck_assert_int_eq(d[1].id, i2);
        free(d);

        append(l, ECID1, LEDGER_RESULT, i1, "ok");
        /* closed already */
        ev.ecid = ECID1;
        ev.intent_id = i1;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EEXIST);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "closed already"));
        /* another device's intent */
        ev.ecid = ECID2;
        ev.intent_id = i2;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EINVAL);
        /* not an intent; no such event; a result without an intent id */
        ev.ecid = ECID1;
        ev.intent_id = rec;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EINVAL);
        ev.intent_id = 999;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EINVAL);
        ev.intent_id = 0;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EINVAL);
        /* none of the refused ones was written */
        ck_assert_int_eq(raw_int("SELECT count(*) FROM events"), 4);

        ck_assert_int_eq(ledger_dangling_list(l, ECID1, &d, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(d[0].id, i2);
        ck_assert_str_eq(d[0].ecid, ECID1);
        free(d);
        ck_assert_int_eq(ledger_dangling_list(l, ECID2, &d, &n), 0);
        ck_assert_uint_eq(n, 0);
        free(d);
        ledger_close(l);

        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ck_assert_uint_eq(rep.n_dangling, 1);
        ck_assert_int_eq(rep.dangling[0].id, i2);
        ledger_report_clear(&rep);
}
END_TEST

/* ---- devices and certificates ------------------------------------------- */

START_TEST(t_devices)
{
        struct ledger *l = open_w();
        struct ledger_device dev = { .chip = FL_CHIP_T234, .serial = "SN-1", .module = "p3701-0004",
                                     .state = LEDGER_STATE_PLANNED };
        struct ledger_event ev = { .command = "burn", .ecid = ECID1, .kind = LEDGER_RECORD, .outcome = "ok",
                                   .device = &dev };
        struct ledger_device_info info;
        struct ledger_report rep;

        ck_assert_int_eq(ledger_append(l, &ev, NULL), 0);
        ck_assert_int_eq(ledger_device_get(l, ECID1, &info), 0);
        ck_assert_str_eq(info.state, "planned");
        ck_assert_str_eq(info.chip, "t234");
        ck_assert_str_eq(info.serial, "SN-1");
        ck_assert_str_eq(info.module, "p3701-0004");
        ledger_device_info_clear(&info);
        ck_assert_int_eq(ledger_device_get(l, ECID2, &info), -ENOENT);

        /* state changes, identity facts do not */
        dev = (struct ledger_device){ .state = LEDGER_STATE_FUSED };
        ck_assert_int_eq(ledger_append(l, &ev, NULL), 0);
        dev = (struct ledger_device){ .chip = FL_CHIP_T194 };
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EEXIST);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "t234"));
        dev = (struct ledger_device){ .serial = "SN-2" };
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EEXIST);
        /* a serial belongs to one ECID */
        ev.ecid = ECID2;
        dev = (struct ledger_device){ .serial = "SN-1" };
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EEXIST);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), ECID1));
        ck_assert_int_eq(raw_int("SELECT count(*) FROM events"), 2);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM devices"), 1);
        ledger_close(l);
        {
                sqlite3 *db = raw_open();
                char *err = NULL;
                ck_assert_int_ne(sqlite3_exec(db, "DELETE FROM devices", NULL, NULL, &err), SQLITE_OK);
                ck_assert_ptr_nonnull(strstr(err, "never deleted"));
                sqlite3_free(err);
                sqlite3_close(db);
        }

        ck_assert_int_eq(ref_chain(), 2);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ledger_report_clear(&rep);

        /* The state table is checked against the events' snapshots. */
        raw_exec("UPDATE devices SET state = 'enrolled'");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_STATE);
        ck_assert_ptr_nonnull(strstr(rep.message, "enrolled"));
        ledger_report_clear(&rep);
        raw_exec("UPDATE devices SET state = 'fused'");
        raw_exec("INSERT INTO devices VALUES ('" ECID2 "', NULL, NULL, NULL, 'x', 'x', 'fused')");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_STATE);
        ck_assert_ptr_nonnull(strstr(rep.message, ECID2));
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_certificates)
{
        struct ledger *l = open_w();
        size_t len1, len2, n;
        unsigned char *der1 = make_cert("dev one", 0x1a2b, &len1), *der2 = make_cert("dev two", 77, &len2);
        struct ledger_cert c = { .der = der1, .der_len = len1 };
        struct ledger_device dev = { .state = LEDGER_STATE_ENROLLED };
        struct ledger_event ev = { .command = "enroll", .ecid = ECID1, .kind = LEDGER_RECORD, .outcome = "ok",
                                   .device = &dev, .cert = &c };
        struct ledger_cert_info cur, *list;
        struct ledger_report rep;
        unsigned char md[32];
        char fp1[65], fp2[65];

        EVP_Digest(der1, len1, md, NULL, EVP_sha256(), NULL);
        hex_encode(md, 32, fp1);
        EVP_Digest(der2, len2, md, NULL, EVP_sha256(), NULL);
        hex_encode(md, 32, fp2);

        ck_assert_msg(ledger_append(l, &ev, NULL) == 0, "%s", fl_ctx_last_error(ctx));
        ck_assert_int_eq(ledger_cert_current(l, ECID1, &cur), 0);
        ck_assert_str_eq(cur.fingerprint, fp1);
        ck_assert_str_eq(cur.serial, "1a2b");
        ck_assert_str_eq(cur.issuer, "CN=dev one");
        ck_assert_str_eq(cur.not_before, "2024-05-01T00:00:00Z");
        ck_assert_str_eq(cur.not_after, "9999-12-31T23:59:59Z");
        ck_assert_str_eq(cur.status, "valid");
        ck_assert_uint_eq(cur.der_len, len1);
        ck_assert_mem_eq(cur.der, der1, len1);
        ledger_cert_info_clear(&cur);

        /* the same certificate twice; a second one without supersede */
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EEXIST);
        c.der = der2;
        c.der_len = len2;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EEXIST);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), fp1));
        c.supersede = true;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), 0);
        ck_assert_int_eq(ledger_cert_current(l, ECID1, &cur), 0);
        ck_assert_str_eq(cur.fingerprint, fp2);
        ledger_cert_info_clear(&cur);
        ck_assert_int_eq(ledger_cert_list(l, ECID1, &list, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(list[0].status, "superseded");
        ck_assert_str_eq(list[1].status, "valid");
        ledger_cert_list_free(list, n);
        ck_assert_int_eq(ledger_cert_current(l, ECID2, &cur), -ENOENT);

        /* garbage DER */
        c.der = (const unsigned char *)"\x30\x03\x02\x01\x01";
        c.der_len = 5;
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EINVAL);
        ledger_close(l);

        ck_assert_int_eq(ref_chain(), 2);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ledger_report_clear(&rep);

        /* A revived old certificate shows (status may change in SQL)… */
        {
                char sql[300];
                snprintf(sql, sizeof(sql),
                         "UPDATE certificates SET status = 'superseded' WHERE status = 'valid';"
                         "UPDATE certificates SET status = 'valid' WHERE fingerprint = '%s'", fp1);
                raw_exec(sql);
        }
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_STATE);
        ck_assert_ptr_nonnull(strstr(rep.message, fp1));
        ck_assert_ptr_nonnull(strstr(rep.message, "'valid'"));
        ledger_report_clear(&rep);
        /* …and so does a swapped DER once the guard is gone. */
        raw_exec("UPDATE certificates SET status = 'superseded' WHERE fingerprint <> '' AND status = 'valid'");
        {
                char sql[300];
                snprintf(sql, sizeof(sql), "UPDATE certificates SET status = 'valid' WHERE fingerprint = '%s'", fp2);
                raw_exec(sql);
        }
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ledger_report_clear(&rep);
        raw_exec("DROP TRIGGER certificates_fixed; UPDATE certificates SET der = x'3000' WHERE rowid = 2");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_STATE);
        ck_assert_ptr_nonnull(strstr(rep.message, "DER was changed"));
        ledger_report_clear(&rep);

        free(der1);
        free(der2);
}
END_TEST

/* ---- validation --------------------------------------------------------- */

START_TEST(t_validation)
{
        struct ledger *l = open_w();
        struct ledger_device dev = { .state = LEDGER_STATE_FUSED };
        struct {
                struct ledger_event ev;
                const char *msg;
        } bad[] = {
                { { .command = "", .outcome = "ok" }, "command" },
                { { .command = "burn" }, "outcome" },
                { { .command = "bu\trn", .outcome = "ok" }, "control" },
                { { .command = "burn", .outcome = "o\xc3(k" }, "UTF-8" },
                { { .command = "burn", .outcome = "\xc0\xaf" }, "UTF-8" },
                { { .command = "burn", .outcome = "ok", .station = "a\nb" }, "station" },
                { { .command = "burn", .outcome = "ok", .details = "[1,2]" }, "JSON object" },
                { { .command = "burn", .outcome = "ok", .details = "{\"a\":1} x" }, "JSON object" },
                { { .command = "burn", .outcome = "ok", .details = "{\"a\":" }, "JSON object" },
                { { .command = "burn", .outcome = "ok", .details = "{\"device\":1}" }, "ledger's own" },
                { { .command = "burn", .outcome = "ok", .time = "2024-05-01 12:00:00" }, "time" },
                { { .command = "burn", .outcome = "ok", .time = "2024-02-30T00:00:00Z" }, "time" },
                { { .command = "burn", .outcome = "ok", .intent_id = 1 }, "only a result" },
                { { .command = "burn", .outcome = "ok", .ecid = "xyz" }, "not hex" },
                { { .command = "burn", .outcome = "ok", .ecid = "8001" }, "32" },
                { { .command = "burn", .outcome = "ok", .device = &dev }, "needs the ECID" },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                fl_err_clear(ctx);
                ck_assert_int_eq(ledger_append(l, &bad[i].ev, NULL), -EINVAL);
                ck_assert_msg(strstr(fl_ctx_last_error(ctx), bad[i].msg), "case %zu: '%s' lacks '%s'", i,
                              fl_ctx_last_error(ctx), bad[i].msg);
        }
        ck_assert_int_eq(raw_int("SELECT count(*) FROM events"), 0);
        ledger_close(l);
}
END_TEST

START_TEST(t_ecid_parse)
{
        char out[LEDGER_ECID_LEN + 1];

        ck_assert_int_eq(ledger_ecid_parse(ctx, "0x80012344705DF1172C0000000D020080", out), 0);
        ck_assert_str_eq(out, ECID1);
        ck_assert_int_eq(ledger_ecid_parse(ctx, ECID1, out), 0);
        ck_assert_str_eq(out, ECID1);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "", out), -EINVAL);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "0x", out), -EINVAL);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "80012344705df1172c0000000d02008", out), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "31 hex digits"));
        ck_assert_int_eq(ledger_ecid_parse(ctx, "80012344705df1172c0000000d0200800", out), -EINVAL);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "80012344705df1172c0000000d02008g", out), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "not hex"));
        ck_assert_int_eq(ledger_ecid_parse(ctx, " 80012344705df1172c0000000d020080", out), -EINVAL);
}
END_TEST

START_TEST(t_time_parse)
{
        /* now = 2024-05-01T12:30:45Z (date -u -d @1714566645) */
        const time_t now = 1714566645;
        static const struct {
                const char *in, *want;
        } good[] = {
                { "2024-05-01", "2024-05-01T00:00:00Z" },
                { "2024-05-01T12:30", "2024-05-01T12:30:00Z" },
                { "2024-05-01T12:30:45Z", "2024-05-01T12:30:45Z" },
                { "2024-05-01 12:30:45", "2024-05-01T12:30:45Z" },
                { "2024-05-01t12:30:45.999z", "2024-05-01T12:30:45Z" },
                { "2024-05-01T14:00+02:00", "2024-05-01T12:00:00Z" },
                { "2024-05-01T14:00:00+0200", "2024-05-01T12:00:00Z" },
                { "2024-05-01T00:30-05", "2024-05-01T05:30:00Z" },
                { "2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00Z" },
                { "2024-02-29", "2024-02-29T00:00:00Z" },
                { "@1714566645", "2024-05-01T12:30:45Z" },
                { "@0", "1970-01-01T00:00:00Z" },
                { "45s", "2024-05-01T12:30:00Z" },
                { "30m", "2024-05-01T12:00:45Z" },
                { "24h", "2024-04-30T12:30:45Z" },
                { "7d", "2024-04-24T12:30:45Z" },
                { "2w", "2024-04-17T12:30:45Z" },
                { "9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z" },
        };
        static const char *const bad[] = {
                "", "2023-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "2024-05-01T24:00", "2024-05-01T12:60",
                "2024-05-01T12:30:60", "1969-12-31", "10000-01-01", "2024-5-1", "2024-05-01T", "2024-05-01T12",
                "2024-05-01T12:30Zx", "2024-05-01T12:30+2400", "@", "@-5", "@99999999999999", "7x", "d", "-7d",
                "99999999999d", "1970-01-01T00:30+01:00", "2024-05-01T12:30:45.1234567890Z", "now",
                "2024-05-01T12:30:45.Z",
        };
        char out[LEDGER_TIME_LEN];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                ck_assert_msg(ledger_time_parse(ctx, good[i].in, now, out) == 0, "%s: %s", good[i].in,
                              fl_ctx_last_error(ctx));
                ck_assert_msg(!strcmp(out, good[i].want), "%s -> %s, want %s", good[i].in, out, good[i].want);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_msg(ledger_time_parse(ctx, bad[i], now, out) == -EINVAL, "'%s' accepted as %s", bad[i],
                              out);
                ck_assert_ptr_nonnull(fl_ctx_last_error(ctx));
        }
}
END_TEST

/* ---- opening ------------------------------------------------------------ */

START_TEST(t_open_missing_read)
{
        struct ledger *l = NULL;
        struct stat st;

        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_READ, &l), -ENOENT);
        ck_assert_ptr_null(l);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), dbpath));
        ck_assert_int_eq(stat(dbpath, &st), -1); /* not created */
}
END_TEST

/* Which backend a location names (lib/ledger_db.c). */
START_TEST(t_backend_for_location)
{
        static const char *const uris[] = { "postgresql://ledger@db.example/fuseline", "postgres://db/fuseline",
                                            "postgresql://" };
        static const char *const paths[] = { "fuseline.db", "/var/lib/fuseline/ledger.db", "./postgresql://x",
                                             "postgresql:/db", "postgres:db", "xpostgres://db", "" };
        const struct ldb_ops *pg;
        struct ledger *l = NULL;
        struct stat st;
        int cwd;

        for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
                ck_assert_msg(ldb_is_uri(uris[i]), "%s is a URI", uris[i]);
                ck_assert_msg(ldb_ops_for(uris[i]) != &ldb_sqlite_ops, "%s went to SQLite", uris[i]);
        }
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                ck_assert_msg(!ldb_is_uri(paths[i]), "'%s' is a path", paths[i]);
                ck_assert_msg(ldb_ops_for(paths[i]) == &ldb_sqlite_ops, "'%s' did not go to SQLite", paths[i]);
        }
        ck_assert(!ldb_is_uri(NULL));
        ck_assert_str_eq(ldb_sqlite_ops.name, "sqlite");
        for (int q = 0; q < LDBQ__MAX; q++)
                ck_assert_msg(ldb_sqlite_ops.query[q] && *ldb_sqlite_ops.query[q], "sqlite query %d missing", q);

        pg = ldb_ops_for("postgresql://db/fuseline");
        if (pg) {
                ck_assert_str_eq(pg->name, "postgresql");
                for (int q = 0; q < LDBQ__MAX; q++)
                        ck_assert_msg(pg->query[q] && *pg->query[q], "postgresql query %d missing", q);
                return;
        }
        /* Without the PostgreSQL backend a URI is refused, and nothing named
         * after it appears on disk. */
        cwd = open(".", O_RDONLY | O_DIRECTORY);
        ck_assert_int_ge(cwd, 0);
        ck_assert_int_eq(chdir(tmpdir), 0);
        ck_assert_int_eq(ledger_open(ctx, "postgresql://db/fuseline", LEDGER_WRITE, &l), -EINVAL);
        ck_assert_ptr_null(l);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "PostgreSQL support is not built in"));
        ck_assert_int_eq(stat("postgresql:", &st), -1);
        ck_assert_int_eq(fchdir(cwd), 0);
        close(cwd);
}
END_TEST

/* A value a column refuses (NOT NULL, CHECK) is bad input (-EINVAL, as the
 * PostgreSQL backend maps 23502/23514); a unique key or a guard a conflict
 * (-EEXIST). */
START_TEST(t_constraint_errnos)
{
        struct ledger *l = open_w();

        ck_assert_int_eq(ldb_exec(l, "INSERT INTO devices (ecid, first_seen, last_seen, state) VALUES "
                                     "('0123456789abcdef0123456789abcdef', 'a', 'b', 'bogus')"),
                         -EINVAL);
        ck_assert_int_eq(ldb_exec(l, "INSERT INTO devices (ecid, first_seen, last_seen, state) VALUES "
                                     "('0123456789abcdef0123456789abcdef', NULL, 'b', 'blank')"),
                         -EINVAL);
        ck_assert_int_eq(ldb_exec(l, "INSERT INTO devices (ecid, first_seen, last_seen, state) VALUES "
                                     "('0123456789abcdef0123456789abcdef', 'a', 'b', 'blank')"),
                         0);
        ck_assert_int_eq(ldb_exec(l, "INSERT INTO devices (ecid, first_seen, last_seen, state) VALUES "
                                     "('0123456789abcdef0123456789abcdef', 'a', 'b', 'blank')"),
                         -EEXIST);
        ck_assert_int_eq(ldb_exec(l, "DELETE FROM devices"), -EEXIST);
        ledger_close(l);
}
END_TEST

START_TEST(t_open_not_sqlite)
{
        struct ledger *l = NULL;
        FILE *f = fopen(dbpath, "w");

        fputs("this is not a database, just some text that is long enough to have a header........\n", f);
        fclose(f);
        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_READ, &l), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "not an SQLite database"));
        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_WRITE, &l), -EINVAL);
        ck_assert_ptr_null(l);
}
END_TEST

START_TEST(t_open_foreign_sqlite)
{
        struct ledger *l = NULL;

        raw_exec("CREATE TABLE inventory (a, b); INSERT INTO inventory VALUES (1, 2);");
        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_WRITE, &l), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "not a fuseline ledger"));
        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_READ, &l), -EINVAL);
        /* untouched */
        ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_master"), 1);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), 0);
}
END_TEST

START_TEST(t_open_empty_read)
{
        struct ledger *l = NULL;
        FILE *f = fopen(dbpath, "w");

        fclose(f);
        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_READ, &l), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "no fuseline ledger"));
        /* an empty file is fine to start a ledger in */
        l = open_w();
        ledger_close(l);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
}
END_TEST

START_TEST(t_open_newer_schema)
{
        struct ledger *l = NULL;

        fill(1);
        raw_exec("PRAGMA user_version = 99");
        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_READ, &l), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "schema version 99 is newer"));
        ck_assert_int_eq(ledger_open(ctx, dbpath, LEDGER_WRITE, &l), -EINVAL);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), 99);
}
END_TEST

START_TEST(t_read_mode_refuses_append)
{
        struct ledger *l;
        struct ledger_event ev = { .command = "burn", .outcome = "ok" };

        fill(1);
        l = open_r();
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EINVAL);
        ledger_close(l);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM events"), 1);
}
END_TEST

/* The version-1 schema exactly as released (a fixture: an old database). */
static const char v1_schema[] =
        "CREATE TABLE devices (ecid TEXT PRIMARY KEY NOT NULL CHECK (length(ecid) = 32 AND ecid NOT GLOB "
        "'*[^0-9a-f]*'), chip TEXT CHECK (chip IN ('t194', 't234')), module TEXT, serial TEXT UNIQUE, first_seen "
        "TEXT NOT NULL, last_seen TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN "
        "('blank','planned','fused-test','fused','enrolled','failed'))) STRICT;"
        "CREATE TABLE certificates (fingerprint TEXT PRIMARY KEY NOT NULL, ecid TEXT NOT NULL REFERENCES "
        "devices(ecid), der BLOB NOT NULL, issuer TEXT NOT NULL, serial TEXT NOT NULL, not_before TEXT NOT NULL, "
        "not_after TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('valid','superseded','revoked')), added "
        "TEXT NOT NULL) STRICT;"
        "CREATE INDEX certificates_ecid ON certificates(ecid);"
        "CREATE UNIQUE INDEX certificates_one_valid ON certificates(ecid) WHERE status = 'valid';"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, station TEXT NOT NULL, "
        "operator TEXT NOT NULL, command TEXT NOT NULL, ecid TEXT, kind TEXT NOT NULL CHECK (kind IN "
        "('record','intent','result')), intent_id INTEGER REFERENCES events(id), outcome TEXT NOT NULL, details "
        "TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL) STRICT;"
        "CREATE INDEX events_ecid ON events(ecid) WHERE ecid IS NOT NULL;"
        "CREATE INDEX events_intent ON events(intent_id) WHERE intent_id IS NOT NULL;"
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'x'); END;"
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'x'); END;"
        "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates BEGIN SELECT RAISE(ABORT, 'x'); END;"
        "CREATE TRIGGER certificates_fixed BEFORE UPDATE OF fingerprint, ecid, der, issuer, serial, not_before, "
        "not_after, added ON certificates BEGIN SELECT RAISE(ABORT, 'x'); END;"
        "CREATE TRIGGER devices_no_delete BEFORE DELETE ON devices BEGIN SELECT RAISE(ABORT, 'x'); END;"
        "PRAGMA user_version = 1; PRAGMA application_id = 1179403335;";

START_TEST(t_migrate_v1)
{
        struct ledger *l;
        struct ledger_report rep;
        sqlite3 *db;
        sqlite3_stmt *st;
        unsigned char zero[32] = { 0 }, h[32];

        /* An old database with one event, its hash made by the reference. */
        raw_exec(v1_schema);
        raw_exec("INSERT INTO events VALUES (1, '2024-05-01T00:00:00Z', 'old', 'op', 'keygen', NULL, 'record', "
                 "NULL, 'ok', '{}', zeroblob(32), zeroblob(32))");
        db = raw_open();
        sqlite3_prepare_v2(db, "SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details "
                               "FROM events", -1, &st, NULL);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ref_hash(st, zero, h);
        sqlite3_finalize(st);
        sqlite3_exec(db, "DROP TRIGGER events_no_update", NULL, NULL, NULL);
        sqlite3_prepare_v2(db, "UPDATE events SET hash = ?1", -1, &st, NULL);
        sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        sqlite3_exec(db, "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'x'); END;",
                     NULL, NULL, NULL);
        sqlite3_close(db);

        /* Reading does not migrate. */
        l = open_r();
        ck_assert_int_eq(ledger_schema_version(l), 1);
        ck_assert_int_eq(ledger_verify(l, &rep), 0);
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ck_assert_uint_eq(rep.events, 1);
        ledger_report_clear(&rep);
        ledger_close(l);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), 1);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_master WHERE name = 'checkpoints'"), 0);

        /* Writing does, and the chain goes on from the old head. */
        l = open_w();
        ck_assert_int_eq(ledger_schema_version(l), LEDGER_SCHEMA_VERSION);
        ck_assert_int_eq(append(l, ECID1, LEDGER_RECORD, 0, "ok"), 2);
        ledger_close(l);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_master WHERE name = 'checkpoints'"), 1);
        ck_assert_int_eq(ref_chain(), 2);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ledger_report_clear(&rep);
}
END_TEST

/* ---- reading and export formats ----------------------------------------- */

START_TEST(t_iter_filters)
{
        struct ledger *l = open_w();
        struct ledger_event ev = { .command = "burn", .kind = LEDGER_RECORD, .outcome = "ok" };
        struct ledger_filter f = { .ecid = ECID1 };
        struct ledger_iter *it;
        const struct ledger_row *row;
        int64_t ids[8];
        int n = 0;

        const char *times[] = { "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "2024-05-03T00:00:00Z" };
        for (int i = 0; i < 6; i++) {
                struct ledger_appended a;
                ev.time = times[i % 3];
                ev.ecid = i < 3 ? ECID1 : ECID2;
                ck_assert_int_eq(ledger_append(l, &ev, &a), 0);
                ck_assert_str_eq(a.time, times[i % 3]);
        }
        ck_assert_int_eq(ledger_iter_new(l, &f, &it), 0);
        while (ledger_iter_next(it, &row) > 0)
                ids[n++] = row->id;
        ledger_iter_free(it);
        ck_assert_int_eq(n, 3);
        ck_assert_int_eq(ids[0], 1);
        ck_assert_int_eq(ids[2], 3);

        f = (struct ledger_filter){ .since = "2024-05-02T00:00:00Z" };
        n = 0;
        ck_assert_int_eq(ledger_iter_new(l, &f, &it), 0);
        while (ledger_iter_next(it, &row) > 0)
                ids[n++] = row->id;
        ledger_iter_free(it);
        ck_assert_int_eq(n, 4);
        ck_assert_int_eq(ids[0], 2);
        ck_assert_int_eq(ids[1], 3);
        ck_assert_int_eq(ids[2], 5);

        f.ecid = ECID2;
        n = 0;
        ck_assert_int_eq(ledger_iter_new(l, &f, &it), 0);
        while (ledger_iter_next(it, &row) > 0)
                ids[n++] = row->id;
        ledger_iter_free(it);
        ck_assert_int_eq(n, 2);
        ledger_close(l);
}
END_TEST

START_TEST(t_csv_escaping)
{
        struct ledger_row row = { .id = 12, .time = "2024-05-01T00:00:00Z", .station = "line 1, bay 2",
                                  .operator = "say \"hi\"", .command = "burn", .ecid = NULL, .kind = "result",
                                  .intent_id = 11, .outcome = " padded", .details = "{\"e\":\"a\\nb\",\"q\":\"\\\"\"}" };
        char *line;
        const char *want = "12,2024-05-01T00:00:00Z,\"line 1, bay 2\",\"say \"\"hi\"\"\",burn,,result,11,\" padded\","
                           "\"{\"\"e\"\":\"\"a\\nb\"\",\"\"q\"\":\"\"\\\"\"\"\"}\","
                           "0000000000000000000000000000000000000000000000000000000000000000,"
                           "0101010101010101010101010101010101010101010101010101010101010101";

        memset(row.hash, 1, sizeof(row.hash));
        line = ledger_row_csv(&row);
        ck_assert_str_eq(line, want);
        free(line);

        /* A raw line break inside a field (only a tampered row has one). */
        row.outcome = "a\r\nb";
        row.intent_id = 0;
        line = ledger_row_csv(&row);
        ck_assert_ptr_nonnull(strstr(line, ",result,,\"a\r\nb\","));
        free(line);
        ck_assert_str_eq(ledger_csv_header(),
                         "id,time,station,operator,command,ecid,kind,intent_id,outcome,details,prev_hash,hash");
}
END_TEST

START_TEST(t_json_row)
{
        struct ledger_row row = { .id = 3, .time = "t", .station = "s\"x", .operator = "o", .command = "c",
                                  .ecid = ECID1, .kind = "record", .outcome = "ok", .details = "{\"k\":[1,2]}" };
        json_object *o = ledger_row_json(&row), *v;

        ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                         "{\"id\":3,\"time\":\"t\",\"station\":\"s\\\"x\",\"operator\":\"o\",\"command\":\"c\","
                         "\"ecid\":\"" ECID1 "\",\"kind\":\"record\",\"intent_id\":null,\"outcome\":\"ok\","
                         "\"details\":{\"k\":[1,2]},"
                         "\"prev_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                         "\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"}");
        json_object_put(o);
        /* Stored details that are not JSON (a tampered row) stay visible. */
        row.details = "not json";
        o = ledger_row_json(&row);
        ck_assert(json_object_object_get_ex(o, "details", &v));
        ck_assert_str_eq(json_object_get_string(v), "not json");
        json_object_put(o);
}
END_TEST

/* ---- concurrency and crashes -------------------------------------------- */

START_TEST(t_concurrent_writers)
{
        enum { PROCS = 4, EACH = 60 };
        pid_t pids[PROCS];
        struct ledger_report rep;

        fill(1); /* created before the race, like a running line */
        for (int p = 0; p < PROCS; p++) {
                pids[p] = fork();
                ck_assert_int_ge(pids[p], 0);
                if (pids[p] == 0) {
                        fl_ctx *c;
                        struct ledger *l;
                        int bad = 0;
                        fl_ctx_new(&c);
                        if (ledger_open(c, dbpath, LEDGER_WRITE, &l) < 0)
                                _exit(2);
                        for (int i = 0; i < EACH; i++) {
                                char d[64];
                                struct ledger_event ev = { .command = "burn", .kind = LEDGER_RECORD, .outcome = "ok",
                                                           .details = d };
                                snprintf(d, sizeof(d), "{\"p\":%d,\"i\":%d}", p, i);
                                if (ledger_append(l, &ev, NULL) < 0)
                                        bad++;
                        }
                        ledger_close(l);
                        fl_ctx_free(c);
                        _exit(bad ? 1 : 0);
                }
        }
        for (int p = 0; p < PROCS; p++) {
                int status;
                ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", p);
        }
        ck_assert_int_eq(ref_chain(), 1 + PROCS * EACH);
        ck_assert_int_eq(raw_int("SELECT count(DISTINCT details) FROM events WHERE details LIKE '{\"p\":%'"),
                         PROCS * EACH);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ledger_report_clear(&rep);
}
END_TEST

START_TEST(t_fresh_file_race)
{
        enum { PROCS = 4 };
        pid_t pids[PROCS];

        /* Several processes creating the same new ledger at once. */
        for (int p = 0; p < PROCS; p++) {
                pids[p] = fork();
                if (pids[p] == 0) {
                        fl_ctx *c;
                        struct ledger *l;
                        struct ledger_event ev = { .command = "burn", .kind = LEDGER_RECORD, .outcome = "ok" };
                        int r;
                        fl_ctx_new(&c);
                        r = ledger_open(c, dbpath, LEDGER_WRITE, &l);
                        if (r == 0)
                                r = ledger_append(l, &ev, NULL);
                        if (r < 0)
                                fprintf(stderr, "race writer: %s\n", fl_ctx_last_error(c));
                        _exit(r < 0);
                }
        }
        for (int p = 0; p < PROCS; p++) {
                int status;
                waitpid(pids[p], &status, 0);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", p);
        }
        ck_assert_int_eq(ref_chain(), PROCS);
        ck_assert_int_eq(raw_int("PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
}
END_TEST

START_TEST(t_busy_timeout)
{
        struct ledger *l;
        sqlite3 *db;
        struct ledger_event ev = { .command = "burn", .kind = LEDGER_RECORD, .outcome = "ok" };

        fill(1);
        /* Someone holds the write lock and does not let go. */
        db = raw_open();
        ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        l = open_w();
        ledger_set_busy_timeout(l, 300);
        ck_assert_int_eq(ledger_append(l, &ev, NULL), -EBUSY);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "other writers"));
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
        ck_assert_int_eq(ledger_append(l, &ev, NULL), 0);
        ledger_close(l);
        ck_assert_int_eq(ref_chain(), 2);
}
END_TEST

/* ---- signed checkpoints (Ed25519 file key made with OpenSSL) ------------- */

/* Sign a checkpoint of the current head with key k, outside lib/ledger. */
static void make_checkpoint(EVP_PKEY *k, struct ledger_checkpoint *cp, unsigned char sig[64],
                            unsigned char **spki, int *spki_len)
{
        unsigned char msg[256], *p = msg;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t sig_len = 64;
        sqlite3 *db = raw_open();
        sqlite3_stmt *st;

        ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", -1, &st, NULL),
                         SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        cp->event_id = sqlite3_column_int64(st, 0);
        memcpy(cp->head, sqlite3_column_blob(st, 1), 32);
        sqlite3_finalize(st);
        sqlite3_close(db);
        snprintf(cp->time, sizeof(cp->time), "2024-05-01T00:00:00Z");
        /* the documented bytes, built here */
        put_text(&p, (const unsigned char *)"fuseline-checkpoint/1");
        put_int(&p, cp->event_id, false);
        put_field(&p, cp->head, 32);
        put_text(&p, (const unsigned char *)cp->time);
        ck_assert(EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1);
        ck_assert(EVP_DigestSign(md, sig, &sig_len, msg, (size_t)(p - msg)) == 1);
        EVP_MD_CTX_free(md);
        *spki = NULL;
        *spki_len = i2d_PUBKEY(k, spki);
        cp->role = "station";
        cp->key_uri = "pkcs11:token=lab;object=station";
        cp->scheme = "ed25519";
        cp->public_key = *spki;
        cp->public_key_len = (size_t)*spki_len;
        cp->signature = sig;
        cp->signature_len = sig_len;
}

START_TEST(t_checkpoint_message)
{
        static const unsigned char want[] = {
                0, 0, 0, 21, 'f', 'u', 's', 'e', 'l', 'i', 'n', 'e', '-', 'c', 'h', 'e', 'c', 'k', 'p', 'o', 'i', 'n',
                't', '/', '1', 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 32,
                0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                0, 0, 0, 20, '2', '0', '2', '4', '-', '0', '5', '-', '0', '1', 'T', '0', '0', ':', '0', '0', ':',
                '0', '0', 'Z',
        };
        unsigned char head[32], *msg;
        size_t len;

        memset(head, 0xaa, sizeof(head));
        ck_assert_int_eq(ledger_checkpoint_message(7, head, "2024-05-01T00:00:00Z", &msg, &len), 0);
        ck_assert_uint_eq(len, sizeof(want));
        ck_assert_mem_eq(msg, want, sizeof(want));
        free(msg);
}
END_TEST

START_TEST(t_checkpoints)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        struct ledger_checkpoint cp = { 0 };
        struct ledger_report rep;
        struct ledger *l;
        unsigned char sig[64], *spki, md[32];
        char fpr[65];
        int spki_len;
        int64_t id = 0;

        fill(4);
        make_checkpoint(k, &cp, sig, &spki, &spki_len);
        EVP_Digest(spki, (size_t)spki_len, md, NULL, EVP_sha256(), NULL);
        hex_encode(md, 32, fpr);
        l = open_w();
        /* a bad signature, a head that is not there: refused, nothing stored */
        sig[0] ^= 1;
        ck_assert_int_eq(ledger_checkpoint_add(l, &cp, NULL), -EBADMSG);
        sig[0] ^= 1;
        cp.event_id = 3;
        ck_assert_int_eq(ledger_checkpoint_add(l, &cp, NULL), -EBADMSG);
        cp.event_id = 4;
        ck_assert_int_eq(raw_int("SELECT count(*) FROM checkpoints"), 0);
        ck_assert_int_eq(ledger_checkpoint_add(l, &cp, &id), 0);
        ck_assert_int_eq(id, 1);
        append(l, ECID1, LEDGER_RECORD, 0, "ok");
        ledger_close(l);

        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
        ck_assert_uint_eq(rep.n_checkpoints, 1);
        ck_assert_int_eq(rep.checkpoint_event, 4);
        ck_assert_str_eq(rep.checkpoint_role, "station");
        ledger_report_clear(&rep);

        /* trusted keys: the right one, another role, another key */
        {
                struct ledger_trust good = { "station", fpr }, role = { "line", fpr }, key = { "station", "00" };
                struct ledger *r = open_r();
                ck_assert_int_eq(ledger_verify_trusted(r, &good, 1, &rep), 0);
                ck_assert_int_eq(rep.fault, LEDGER_FAULT_NONE);
                ledger_report_clear(&rep);
                ck_assert_int_eq(ledger_verify_trusted(r, &role, 1, &rep), 0);
                ck_assert_int_eq(rep.fault, LEDGER_FAULT_CHECKPOINT);
                ck_assert_ptr_nonnull(strstr(rep.message, "does not have"));
                ledger_report_clear(&rep);
                ck_assert_int_eq(ledger_verify_trusted(r, &key, 1, &rep), 0);
                ck_assert_int_eq(rep.fault, LEDGER_FAULT_CHECKPOINT);
                ledger_report_clear(&rep);
                ledger_close(r);
        }

        /* History rewritten from event 2 on, every hash recomputed: the
         * chain is self-consistent again, the checkpoint is not. */
        drop_guards();
        raw_exec("UPDATE events SET outcome = 'failed' WHERE id = 2");
        for (long long i = 2; i <= 5; i++) {
                char sql[160];
                raw_rehash(i);
                if (i < 5) {
                        snprintf(sql, sizeof(sql),
                                 "UPDATE events SET prev_hash = (SELECT hash FROM events WHERE id = %lld) WHERE id = %lld",
                                 i, i + 1);
                        raw_exec(sql);
                }
        }
        ck_assert_int_eq(ref_chain(), 5);
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_CHECKPOINT);
        ck_assert_int_eq(rep.bad_id, 4);
        ck_assert_ptr_nonnull(strstr(rep.message, "rewritten"));
        ledger_report_clear(&rep);

        /* and the guards on the checkpoints table */
        raw_exec("DROP TRIGGER checkpoints_no_delete; DELETE FROM checkpoints");
        rep = verify_now();
        ck_assert_int_eq(rep.fault, LEDGER_FAULT_SCHEMA);
        ledger_report_clear(&rep);

        OPENSSL_free(spki);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
}
END_TEST

/* ---- store and forward: the forwarded proof in details ------------------- */

static void fwd_sample(struct ledger_fwd *f, int64_t intent)
{
        memset(f, 0, sizeof(*f));
        snprintf(f->spool, sizeof(f->spool), "%s", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
        f->seq = 42;
        memset(f->prev, 0xa5, sizeof(f->prev));
        memset(f->hash, 0x5a, sizeof(f->hash));
        f->intent_id = intent;
}

/* Attach, then split: the original text comes back byte for byte, for the
 * texts the ledger stores (json-c's compact output of the caller's
 * details, appended through ledger_append so the stored bytes are real). */
START_TEST(t_fwd_roundtrip)
{
        static const char *const inputs[] = {
                NULL, /* {} */
                "{\"a\":1}",
                "{\"log\":\"/var/log/x, \\\"quoted\\\".log\",\"n\":1.50,\"big\":12345678901234567890}",
                "{\"u\":\"caf\\u00e9 \\u2603 \\ud83d\\ude00\",\"ctl\":\"\\u0001\\t\\n\",\"slash\":\"a/b\\/c\"}",
                "{\"nested\":{\"forwardedX\":[1,{\"k\":null}],\"e\":1e3,\"neg\":-0.0},\"t\":true}",
                "{ \"spaced\" : [ 1 , 2 ] , \"x\" : \"}\" }",
        };
        struct ledger *l = open_w();
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        size_t i = 0;

        for (size_t k = 0; k < FL_ARRAY_SIZE(inputs); k++) {
                struct ledger_event ev = { .command = "test", .outcome = "ok", .details = inputs[k],
                                           .ecid = ECID1, .device = &(struct ledger_device){ .state = LEDGER_STATE_FUSED } };
                ck_assert_int_eq(ledger_append(l, &ev, NULL), 0);
        }
        /* and plain "{}": no details, no device */
        ck_assert_int_eq(ledger_append(l, &(struct ledger_event){ .command = "test", .outcome = "ok" }, NULL), 0);
        ck_assert_int_eq(ledger_iter_new(l, NULL, &it), 0);
        while (ledger_iter_next(it, &row) > 0) {
                for (int64_t intent = 0; intent <= 7; intent += 7) {
                        struct ledger_fwd f, g;
                        char *att = NULL, *orig = NULL;
                        json_object *o;

                        fwd_sample(&f, intent);
                        ck_assert_int_eq(ledger_fwd_attach(row->details, &f, &att), 0);
                        /* still one JSON object, the proof its last member */
                        o = json_tokener_parse(att);
                        ck_assert_ptr_nonnull(o);
                        ck_assert(json_object_object_get_ex(o, "forwarded", NULL));
                        json_object_put(o);
                        ck_assert_int_eq(ledger_fwd_split(att, &orig, &g), 0);
                        ck_assert_str_eq(orig, row->details);
                        ck_assert_str_eq(g.spool, f.spool);
                        ck_assert_int_eq(g.seq, 42);
                        ck_assert_int_eq(g.intent_id, intent);
                        ck_assert_mem_eq(g.prev, f.prev, LEDGER_HASH_LEN);
                        ck_assert_mem_eq(g.hash, f.hash, LEDGER_HASH_LEN);
                        free(att);
                        free(orig);
                }
                i++;
        }
        ledger_iter_free(it);
        ck_assert_uint_eq(i, FL_ARRAY_SIZE(inputs) + 1);
        ledger_close(l);
}
END_TEST

/* json-c's compact re-serialisation of what the ledger stores is a fixed
 * point: so a reader that removes the member with json-c instead of as
 * text gets the same bytes too. */
START_TEST(t_fwd_jsonc_fixed_point)
{
        struct ledger *l = open_w();
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        struct ledger_event ev = { .command = "test", .outcome = "ok",
                                   .details = "{\"n\":1.50,\"u\":\"caf\\u00e9\",\"s\":\"a/b\",\"e\":1e3,\"c\":\"\\u001f\"}" };

        ck_assert_int_eq(ledger_append(l, &ev, NULL), 0);
        ck_assert_int_eq(ledger_iter_new(l, NULL, &it), 0);
        ck_assert_int_eq(ledger_iter_next(it, &row), 1);
        {
                struct ledger_fwd f;
                char *att = NULL;
                json_object *o;
                fwd_sample(&f, 0);
                ck_assert_int_eq(ledger_fwd_attach(row->details, &f, &att), 0);
                o = json_tokener_parse(att);
                ck_assert_ptr_nonnull(o);
                json_object_object_del(o, "forwarded");
                ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                                 row->details);
                json_object_put(o);
                free(att);
        }
        ledger_iter_free(it);
        ledger_close(l);
}
END_TEST

START_TEST(t_fwd_split_refuses)
{
        static const char *const bad[] = {
                /* not last */
                "{\"forwarded\":{\"spool\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                "\"seq\":1,\"prev\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"},\"a\":1}",
                /* an extra member in the proof */
                "{\"forwarded\":{\"spool\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                "\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"x\":1}}",
                /* seq as a string */
                "{\"forwarded\":{\"spool\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                "\"seq\":\"1\",\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"}}",
                /* upper-case hex */
                "{\"forwarded\":{\"spool\":\"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\","
                "\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"}}",
                /* whitespace the writer never puts there */
                "{\"forwarded\": {\"spool\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                "\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"}}",
                /* the original carries a "forwarded" of its own (a duplicate key) */
                "{\"forwarded\":1,\"forwarded\":{\"spool\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                "\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"}}",
                /* seq 0, a negative intent */
                "{\"forwarded\":{\"spool\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                "\"seq\":0,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"}}",
                "{\"forwarded\":{\"spool\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                "\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"hash\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"intent_id\":-3}}",
                "{\"forwarded\":\"x\"}",
        };
        struct ledger_fwd f, g;
        char *att = NULL, *orig = NULL;

        for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
                ck_assert_msg(ledger_fwd_split(bad[i], &orig, &g) == -EBADMSG, "case %zu accepted", i);
        ck_assert_ptr_null(orig);
        /* no proof at all, and text that is not JSON: not a forwarded event */
        ck_assert_int_eq(ledger_fwd_split("{\"a\":\"forwarded\"}", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ledger_fwd_split("{\"forwarded\":", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ledger_fwd_split("{}", NULL, NULL), -ENOENT);
        /* the exact text the writer makes for {} is accepted */
        fwd_sample(&f, 0);
        ck_assert_int_eq(ledger_fwd_attach("{}", &f, &att), 0);
        ck_assert_int_eq(ledger_fwd_split(att, &orig, &g), 0);
        ck_assert_str_eq(orig, "{}");
        free(orig);
        free(att);
        /* attach refuses what is not an object text, or a bad proof */
        ck_assert_int_eq(ledger_fwd_attach("[1]", &f, &att), -EINVAL);
        f.seq = 0;
        ck_assert_int_eq(ledger_fwd_attach("{}", &f, &att), -EINVAL);
}
END_TEST

static Suite *ledger_suite(void)
{
        Suite *s = suite_create("ledger");
        TCase *tc = tcase_create("ledger");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_canon_vector);
        tcase_add_test(tc, t_chain_recompute);
        tcase_add_test(tc, t_triggers_refuse);
        tcase_add_test(tc, t_tamper_edit);
        tcase_add_test(tc, t_tamper_edit_details_whitespace);
        tcase_add_test(tc, t_tamper_delete);
        tcase_add_test(tc, t_tamper_reorder);
        tcase_add_test(tc, t_tamper_relink);
        tcase_add_test(tc, t_tamper_truncate);
        tcase_add_test(tc, t_tamper_types);
        tcase_add_test(tc, t_schema_guard_missing);
        tcase_add_test(tc, t_intents);
        tcase_add_test(tc, t_devices);
        tcase_add_test(tc, t_certificates);
        tcase_add_test(tc, t_validation);
        tcase_add_test(tc, t_ecid_parse);
        tcase_add_test(tc, t_time_parse);
        tcase_add_test(tc, t_fwd_roundtrip);
        tcase_add_test(tc, t_fwd_jsonc_fixed_point);
        tcase_add_test(tc, t_fwd_split_refuses);
        tcase_add_test(tc, t_open_missing_read);
        tcase_add_test(tc, t_backend_for_location);
        tcase_add_test(tc, t_constraint_errnos);
        tcase_add_test(tc, t_open_not_sqlite);
        tcase_add_test(tc, t_open_foreign_sqlite);
        tcase_add_test(tc, t_open_empty_read);
        tcase_add_test(tc, t_open_newer_schema);
        tcase_add_test(tc, t_read_mode_refuses_append);
        tcase_add_test(tc, t_migrate_v1);
        tcase_add_test(tc, t_iter_filters);
        tcase_add_test(tc, t_csv_escaping);
        tcase_add_test(tc, t_json_row);
        tcase_add_test(tc, t_concurrent_writers);
        tcase_add_test(tc, t_fresh_file_race);
        tcase_add_test(tc, t_busy_timeout);
        tcase_add_test(tc, t_checkpoint_message);
        tcase_add_test(tc, t_checkpoints);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(ledger_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
