/* p11_mech.h — symmetric mechanisms on token keys that the EKB and LUKS
 * chains need (AES-ECB/CBC, AES-CMAC, the SP 800-108 CMAC KDF) and
 * short-lived session keys for intermediate values. Kept out of p11.c so the
 * token layer stays small; built on its accessors. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "p11.h"

/* AES-ECB encryption of len bytes (a multiple of 16) with a token key. */
int token_aes_ecb_encrypt(fl_token *tok, token_obj key, const unsigned char *in, size_t len, unsigned char *out);
/* AES-CBC without padding (len a multiple of 16), encrypt or decrypt. */
int token_aes_cbc(fl_token *tok, token_obj key, bool encrypt, const unsigned char iv[16], const unsigned char *in,
                  size_t len, unsigned char *out);
/* AES-CMAC (16 bytes) with a token AES key. */
int token_aes_cmac(fl_token *tok, token_obj key, const unsigned char *in, size_t len, unsigned char out[16]);
/* An AES key for this session only (CKA_TOKEN false, sensitive, not
 * extractable): where a chain's intermediate key has to be used again. */
int token_session_aes(fl_token *tok, const unsigned char *value, size_t len, token_obj *ret);

/* The SP 800-108 counter-mode KDF with AES-CMAC as PRF, as NVIDIA's EKB and
 * LUKS tools use it: one 16-byte block, message
 * 01 ‖ label ‖ 00 ‖ context ‖ 00000080 (1-byte counter, 32-bit big-endian
 * length in bits). The message is built by kdf_cmac_message (≤ 16+len). */
size_t kdf_cmac_message(const char *label, const unsigned char *context, size_t context_len, unsigned char *out,
                        size_t cap);
int token_kdf_cmac(fl_token *tok, token_obj key, const char *label, const unsigned char *context, size_t context_len,
                   unsigned char out[16]);

/* Software AES-CMAC over a key held in memory (diagnosis and tests only:
 * every value fuseline makes is computed in the token). */
int soft_aes_cmac(const unsigned char *key, size_t key_len, const unsigned char *in, size_t len,
                  unsigned char out[16]);
