/* identity_int.h — what the identity_*.c files share: headers, limits and
 * small helpers (internal to lib/identity*.c). */
#pragma once

#include <libgen.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <p11-kit/pkcs11.h>

#include "identity.h"
#include "ledger.h"
#include "signer.h"
#include "tegra_key.h"

#define CSR_FILE_MAX (1024 * 1024)
#define KEY_ID_LEN 16
#define DEVICE_KEY_GENERATIONS 100


/* ---- small helpers ---------------------------------------------------------------- */

/* Relative paths recorded in a keyset are relative to the keyset's own
 * directory, so a keyset directory can move between stations intact. */
static inline char *path_resolve(const char *ks_path, const char *p)
{
        return p[0] == '/' ? strdup(p) : path_beside(ks_path, p);
}

static inline const char *extra_str(const struct ks_key *k, const char *name)
{
        return ks_key_extra_str(k, name);
}

static inline int extra_set(struct ks_key *k, const char *name, const char *value)
{
        json_object *v;

        if (!k->extra && !(k->extra = json_object_new_object()))
                return -ENOMEM;
        v = json_object_new_string(value);
        if (!v || json_object_object_add(k->extra, name, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static inline enum x509_hash hash_for_key(EVP_PKEY *pk)
{
        /* Match the hash to the CA key's strength (RFC 5480 §4, NIST SP 800-57). */
        if (EVP_PKEY_is_a(pk, "EC")) {
                int bits = EVP_PKEY_get_bits(pk);
                return bits > 384 ? X509H_SHA512 : bits > 256 ? X509H_SHA384 : X509H_SHA256;
        }
        return X509H_SHA256;
}

static inline int cert_serial_hex(X509 *x, char out[41])
{
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        unsigned char b[20];
        int n;

        out[0] = 0;
        if (!bn)
                return -ENOMEM;
        n = BN_num_bytes(bn);
        if (n > 20 || BN_is_negative(bn)) {
                BN_free(bn);
                return -EINVAL;
        }
        BN_bn2bin(bn, b);
        hex_encode(b, (size_t)n, out);
        BN_free(bn);
        return 0;
}

/* A one-line text for a field that came from outside (names, serials). */
static inline bool text_ok(const char *s, size_t max, bool ascii_no_space)
{
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        return false;
                if (ascii_no_space && (*p <= 0x20 || *p > 0x7e))
                        return false;
        }
        return true;
}

/* Add one problem line to a check report (identity_profile.c). */
void identity_problem(struct identity_check *c, const char *fmt, ...) FL_PRINTF(2, 3);
