/* keygen.h — creating a product's secure-boot key set in a token (and
 * importing keys made elsewhere), and checking a keyset against its token. */
#pragma once

#include "keyset.h"
#include "p11.h"

struct keygen_req {
        enum fl_chip chip;
        enum key_type pkc_type;
        unsigned pkc_count;          /* 1..3 (t234), 1 (t194) */
        const char *fuse_roles[16];  /* "sbk", "oem-k1", … */
        size_t n_fuse_roles;
        const char *name;            /* label prefix */
        bool lab;
        const char *out;             /* keygen_run: manifest to create */
};

/* Generate every key of req in the token opened with opts and write the
 * manifest req->out (which must not exist). All or nothing: on any failure,
 * the manifest included, the objects this call created are destroyed. */
int keygen_run(fl_ctx *ctx, const struct token_opts *opts, const struct keygen_req *req, struct keyset **ret);

/* Import one key (pem_path: RSA/EC private key for pkcN; hex_path: fuse key
 * value) into the token, append it to ks and write ks to path (replacing it
 * atomically, or creating it when new_keyset: then ks is empty and gets its
 * token/profile fields from req and the token). All or nothing. */
int keygen_import(fl_ctx *ctx, const struct token_opts *opts, struct keyset *ks, const struct keygen_req *req,
                  const char *role, const char *pem_path, const char *hex_path, bool new_keyset, const char *path);

/* Generate secret keys (EKB payload keys, or fuse keys a keyset lacks) in
 * the keyset's token, append them to ks and rewrite path atomically. All or
 * nothing: on failure the objects made are destroyed and path is untouched. */
int keygen_add(fl_ctx *ctx, const struct token_opts *opts, struct keyset *ks, const char *const *roles, size_t n,
               const char *path);

/* Parse a fuse key file: NVIDIA's word format ("0x12345678 0x9abcdef0 …",
 * big-endian words) or one hex string with an optional 0x. */
int fusekey_parse(fl_ctx *ctx, const char *name, const unsigned char *text, size_t len, size_t want,
                  struct fl_secret *ret);

#define KEYSET_REPORT_MAX_PROBLEMS 8

struct keyset_report_key {
        char role[24];
        char *problems[KEYSET_REPORT_MAX_PROBLEMS];
        size_t n_problems;
};

struct keyset_report {
        struct keyset_report_key *keys;
        size_t n_keys;
        size_t n_problems;
        const char *first_role;
        const char *first_problem;
};

/* Check ks against its token. Returns <0 only when the check could not run
 * (token absent, PIN); mismatches go into the report. */
int keygen_verify(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, struct keyset_report *rep);
void keyset_report_free(struct keyset_report *rep);
