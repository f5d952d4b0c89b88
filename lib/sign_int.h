/* sign_int.h — what the sign*.c files share (internal to lib/sign*.c). */
#pragma once

#include <fcntl.h>
#include <libgen.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "keyset.h"
#include "sign.h"
#include "signer.h"
#include "tegra_key.h"

/* Read block for streamed hashing: large enough that syscalls do not
 * dominate, small enough to be constant memory for any image. */
#define HASH_BLOCK (1024 * 1024)
#define SIG_FILE_MAX (64 * 1024)
#define PEM_LABEL "SIGNATURE"

enum scheme_kind { K_RSA_PSS, K_RSA_PKCS1, K_ECDSA, K_EDDSA, K_HMAC, K_CMAC };


struct scheme_info {
        enum sign_scheme s;
        const char *name;
        enum scheme_kind kind;
        const char *md;      /* prehash digest (RSA, ECDSA) */
        size_t md_len;
        unsigned long mech;  /* CKM_* */
        unsigned long ck_md; /* CKM_SHA* for PSS params */
        unsigned long mgf;   /* CKG_MGF1_* */
        size_t salt_len;     /* RSA-PSS salt length */
};

const struct scheme_info *scheme_get(enum sign_scheme s);

struct sign_session {
        fl_ctx *ctx;
        fl_token *tok;
        struct keyset *ks;
        char *ks_path;
        struct sign_key **keys;
        size_t n_keys;
        /* Mechanisms already found present (bit per scheme), so a batch
         * asks the token once. */
        unsigned mech_ok;
};

/* A looked-up key with what it was looked up by (the same role serves two
 * objects for a fuse key: the AES key, and its HMAC twin). */
struct cached_key {
        struct sign_key k; /* first: callers see only this */
        char *lookup;
        bool by_role, private_obj, hmac;
};
