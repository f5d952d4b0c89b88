/* test-ledger_pg.c — the PostgreSQL backend's pure parts (lib/ledger_pg.c),
 * no server needed: ?N placeholders rewritten to $N only outside literals,
 * identifiers and comments; the URI a message shows, with every spelling
 * of a password libpq accepts removed; a URI with a password refused
 * before any connection. tests/pg-backend.sh covers the rest on a server. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_int.h"

static void rewrite_is(const char *in, const char *want, int want_n)
{
        char *out = NULL;
        int n = ledger_pg_rewrite(in, &out);

        ck_assert_int_eq(n, want_n);
        ck_assert_str_eq(out, want);
        free(out);
}

START_TEST(test_rewrite)
{
        char *out = NULL;

        rewrite_is("SELECT id FROM events WHERE ecid = ?1 AND id < ?2", "SELECT id FROM events WHERE ecid = $1 AND id < $2",
                   2);
        rewrite_is("VALUES (?3, ?1)", "VALUES ($3, $1)", 3);
        rewrite_is("SELECT '?1', ?1", "SELECT '?1', $1", 1);
        rewrite_is("SELECT 'it''s ?2', \"col?1\" FROM t WHERE a = ?1", "SELECT 'it''s ?2', \"col?1\" FROM t WHERE a = $1",
                   1);
        rewrite_is("-- ?1 in a comment\nSELECT ?2", "-- ?1 in a comment\nSELECT $2", 2);
        /* jsonb's ? operators stay. */
        rewrite_is("SELECT d ? 'k', d ?| array['a'] FROM t", "SELECT d ? 'k', d ?| array['a'] FROM t", 0);
        rewrite_is("SELECT 'unterminated ?1", "SELECT 'unterminated ?1", 0);
        rewrite_is("SELECT ?12", "SELECT $12", 12);
        /* Block comments (nested, as PostgreSQL reads them) and
         * dollar-quoted strings keep their ?N; $1 is no tag. */
        rewrite_is("SELECT /* ?1 /* ?2 */ ?3 */ ?4", "SELECT /* ?1 /* ?2 */ ?3 */ $4", 4);
        rewrite_is("SELECT /* unterminated ?1", "SELECT /* unterminated ?1", 0);
        rewrite_is("SELECT $$ ?1 $$, $fl$ it's ?2 $$ $fl$, ?3", "SELECT $$ ?1 $$, $fl$ it's ?2 $$ $fl$, $3", 3);
        rewrite_is("SELECT $t$ unterminated ?1", "SELECT $t$ unterminated ?1", 0);
        rewrite_is("SELECT ?1, $1", "SELECT $1, $1", 1);
        rewrite_is("SELECT a$b$ FROM t WHERE x = ?1 AND y$ = ?2", "SELECT a$b$ FROM t WHERE x = $1 AND y$ = $2", 2);
        rewrite_is("SELECT a*?1/?2", "SELECT a*$1/$2", 2);
        ck_assert_int_eq(ledger_pg_rewrite("SELECT ?0", &out), -EINVAL);
        ck_assert_int_eq(ledger_pg_rewrite("SELECT ?65536", &out), -EINVAL);
        ck_assert_ptr_null(out);
}
END_TEST

static void scrub_is(const char *in, const char *want)
{
        char *out = ledger_pg_uri_scrub(in);

        ck_assert_ptr_nonnull(out);
        ck_assert_str_eq(out, want);
        free(out);
}

START_TEST(test_scrub)
{
        scrub_is("postgresql:///fuseline?host=/run/postgresql", "postgresql:///fuseline?host=/run/postgresql");
        scrub_is("postgresql://station:s3cret@ledger.factory:5432/fuseline",
                 "postgresql://station@ledger.factory:5432/fuseline");
        scrub_is("postgresql://:s3cret@ledger/fuseline", "postgresql://@ledger/fuseline");
        scrub_is("postgresql:///fuseline?host=/s&password=s3cret&user=u", "postgresql:///fuseline?host=/s&user=u");
        scrub_is("postgresql:///fuseline?password=s3cret", "postgresql:///fuseline");
        scrub_is("postgresql:///fuseline?user=u&password=s3cret", "postgresql:///fuseline?user=u");
        scrub_is("postgresql:///fuseline?password=a&password=b&user=u", "postgresql:///fuseline?user=u");
        /* libpq decodes the keyword, and ends the userinfo at the first '@'
         * before a '/', whatever comes between. */
        scrub_is("postgres://u@h/db?pass%77ord=s3cret", "postgres://u@h/db");
        scrub_is("postgres://u@h/db?%70assword=s3cret&sslmode=require", "postgres://u@h/db?sslmode=require");
        scrub_is("postgresql://u:p?x&y@host/db", "postgresql://u@host/db");
        /* Removing a parameter can turn what is left into a userinfo with
         * a password: scrubbed again until nothing changes. */
        scrub_is("postgresql://p?&password=/s&pass:word=r@h/db", "postgresql://p?&pass@h/db");
        /* The query after a bracketed host holding a '?'. */
        scrub_is("postgresql://[x?y]/db?password=z&user=u", "postgresql://[x?y]/db?user=u");
        /* '@' after the path is no userinfo. */
        scrub_is("postgresql://host/db?application_name=a:b@c", "postgresql://host/db?application_name=a:b@c");
}
END_TEST

START_TEST(test_password_refused)
{
        const char *uris[] = {
                "postgresql://u:Hunter2@127.0.0.1:1/fuseline",
                "postgresql:///fuseline?host=/nonexistent&password=Hunter2",
                "postgresql:///fuseline?host=/nonexistent&pass%77ord=Hunter2",
        };
        fl_ctx *ctx = NULL;

        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
        for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
                struct ledger *l = NULL;
                const char *last;
                ck_assert_int_eq(ledger_open(ctx, uris[i], LEDGER_READ, &l), -EINVAL);
                ck_assert_ptr_null(l);
                last = fl_ctx_last_error(ctx);
                ck_assert_ptr_nonnull(last);
                ck_assert_ptr_nonnull(strstr(last, "put the password in ~/.pgpass"));
                ck_assert_ptr_null(strstr(last, "Hunter2"));
        }
        fl_ctx_free(ctx);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("ledger_pg");
        TCase *tc = tcase_create("pure");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_rewrite);
        tcase_add_test(tc, test_scrub);
        tcase_add_test(tc, test_password_refused);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
