/* tegra_key.h — tegra-format public keys and the PKC hash that goes into the
 * PublicKeyHash fuse (T234: SHA-512 over a 384-byte buffer; T194: SHA-256
 * over a 1216-byte buffer with Montgomery values for RSA-3K), plus small
 * public-key helpers shared by keygen, fuse-xml and sign. */
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "internal.h"
#include "p11.h"

#define TEGRA_PKC_HASH_MAX 64
/* Largest tegra-format public key (RSA-3072's reversed modulus). */
#define TEGRA_PUBKEY_MAX_LEN 384
/* RSA-3072 Montgomery values: two 384-byte little-endian numbers. */
#define TEGRA_MONT_LEN 768

/* The PublicKeyHash value for pkey on chip. *ret_len is 64 (T234) or 32
 * (T194). -EINVAL (with a message naming what the chip accepts) for a key
 * type the chip does not take. */
int tegra_pkc_hash(fl_ctx *ctx, enum fl_chip chip, EVP_PKEY *pkey, unsigned char out[TEGRA_PKC_HASH_MAX],
                   size_t *ret_len);

/* Same, as the fuse XML writes it: "0x" + lower-case hex (malloc'd). */
int tegra_pkc_hash_hex(fl_ctx *ctx, enum fl_chip chip, EVP_PKEY *pkey, char **ret);

/* The PKC hash of a PEM public key (or private key) file, with what a
 * caller reports beside it. Messages name the file. */
struct pkc_hash_file {
        enum key_type type;
        char spki_sha256[65];
        char *hex; /* "0x…", malloc'd */
};
int tegra_pkc_hash_file(fl_ctx *ctx, enum fl_chip chip, const char *pem_path, struct pkc_hash_file *ret);
void pkc_hash_file_clear(struct pkc_hash_file *f);

/* The tegra-format public key bytes (T234 layout, §4 of jetson-fuses.md):
 * RSA rev(n); EC rev(X)‖rev(Y) (P-521 each padded to 68); Ed25519 raw. */
int tegra_pubkey_bytes(fl_ctx *ctx, EVP_PKEY *pkey, unsigned char *out, size_t outcap, size_t *ret_len);

/* The Montgomery values tegrasign_v3 --getmont writes (and T194's PKC hash
 * carries) for an RSA-3072 key: LE384(-n^-1 mod 2^3072) ‖ LE384(2^6144 mod n).
 * -EINVAL naming the key for any other key type. */
int tegra_rsa_montgomery(fl_ctx *ctx, EVP_PKEY *pkey, unsigned char out[TEGRA_MONT_LEN], size_t *ret_len);

/* The key type of a public/private key (KT_RSA2K, KT_P256, …; KT_NONE for
 * anything else, e.g. RSA-4096). */
enum key_type pkey_key_type(EVP_PKEY *pkey);

/* SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex (65 bytes). */
int pkey_spki_sha256(fl_ctx *ctx, EVP_PKEY *pkey, char out[65]);

/* Load a PEM public key, or the public half of an unencrypted PEM private
 * key (the file is read into a wiped buffer; encrypted keys are refused
 * rather than prompted for). -EINVAL naming the file otherwise. */
int pkey_load_pem(fl_ctx *ctx, const char *path, EVP_PKEY **ret);
/* The same for a private key only (imports: a public key cannot sign). */
int pkey_load_private_pem(fl_ctx *ctx, const char *path, EVP_PKEY **ret);
/* What both are built on: the file read into a wiped buffer, then a PEM
 * public key (when try_public) or else a PEM private key, any passphrase
 * coming from cb/u only. 0 with *ret NULL when nothing parses (the OpenSSL
 * error queue says why); below 0, with a message, when the file cannot be
 * read. */
int pkey_read_pem(fl_ctx *ctx, const char *path, bool try_public, pem_password_cb *cb, void *u, EVP_PKEY **ret);
