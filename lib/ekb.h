/* ekb.h — NVIDIA's Encrypted Key Blob (eks_t234.img / eks_t194.img) as
 * gen_ekb.py writes it (ekb-ftpm-luks.md §2): the legacy container (R32,
 * R35.1), EKB 1.0 (FV given) and EKB 2.0 (FV in the header), built from a
 * keyset with the key chain computed in the token, parsed, and verified with
 * a diagnosis that names the damaged region. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyset.h"
#include "p11.h"

enum ekb_format {
        EKB_FMT_NONE = 0,
        EKB_FMT_LEGACY, /* no version field, no content header, MAC over IV ‖ ciphertext */
        EKB_FMT_1_0,    /* gen_ekb 1.2–1.5: FV compiled into OP-TEE, given with --fv */
        EKB_FMT_2_0,    /* gen_ekb 1.6: a random FV per image at offset 16 */
};

const char *ekb_format_name(enum ekb_format f);      /* "legacy", "1.0", "2.0" */
enum ekb_format ekb_format_from_name(const char *s); /* EKB_FMT_NONE if unknown */

#define EKB_IMAGE_MAX (256 * 1024) /* the EKS partition of the T234 QSPI layouts */
#define EKB_MIN_SIZE 1024          /* gen_ekb pads `size` up to this with filler */
#define EKB_MAX_RECORDS 32

/* A parsed image: pointers into the caller's buffer. */
struct ekb_image {
        enum ekb_format fmt;
        uint16_t major, minor;
        const unsigned char *fv;  /* 2.0 only */
        const unsigned char *cmac;
        const unsigned char *iv;
        const unsigned char *ct;
        size_t enc_len;
        const unsigned char *mac_data; /* what the CMAC covers: [content header ‖] IV ‖ ciphertext */
        size_t mac_len;
        size_t mac_off;    /* file offset of mac_data */
        size_t filler_len;
};

/* Structural parse (no keys). Any problem is -EBADMSG with a message that
 * starts "NAME: <region>:" (header, FV, content header, ciphertext, filler). */
int ekb_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, struct ekb_image *ret);

struct ekb_rec {
        uint32_t tag;
        size_t off; /* of the value, in the plaintext */
        size_t len;
};

/* Walk a decrypted record stream (LE32 tag ‖ LE32 len ‖ value … 0/0, then
 * PKCS#7 bytes unless the stream filled whole blocks). The legacy container
 * holds payload ‖ disk key without tags; they are reported as tags 1 and 2
 * (16 + 16 bytes on t194, 32 + 16 on t234). -EBADMSG naming the offset. */
int ekb_records_parse(fl_ctx *ctx, const char *name, enum ekb_format fmt, enum fl_chip chip,
                      const unsigned char *plain, size_t len, struct ekb_rec *recs, size_t cap, size_t *ret_n);

/* One record beyond the keyset's keys (tags 3, 5, 91–97). */
struct ekb_record {
        uint32_t tag;
        const unsigned char *value;
        size_t len;
};

struct ekb_build_req {
        enum ekb_format fmt;
        const char *root_role;         /* oem-k1 | oem-k2 | kek2; NULL: the keyset's only root */
        const unsigned char *fv;       /* 16 bytes; required for 1.0/legacy, NULL: random for 2.0 */
        const unsigned char *iv;       /* 16 bytes; NULL: random (the token's RNG) */
        const struct ekb_record *extra; /* written after tags 1, 2, 4, in this order */
        size_t n_extra;
};

struct ekb_result {
        unsigned char *data;
        size_t len;
        unsigned char fv[16], iv[16];
        char root_role[16];
        char sha256[65];
        uint32_t tags[EKB_MAX_RECORDS];
        size_t n_tags;
};

/* Build an EKB from ks: tag 1 = ekb-payload, tag 2 = ekb-disk, tag 4 =
 * ekb-auth (when the keyset has it), then req->extra. EKB_RK = AES-ECB(root,
 * FV) in the token, EKB_EK/EKB_AK by the CMAC KDF in the token, the content
 * encrypted (AES-CBC) and MACed (AES-CMAC) in the token with session keys.
 * The record stream itself is assembled in wiped host memory: the payload
 * keys' values are not block-aligned in it, so no wrapping mechanism can
 * produce gen_ekb's bytes. */
int ekb_build(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, const struct ekb_build_req *req,
              struct ekb_result *ret);
void ekb_result_clear(struct ekb_result *r);

struct ekb_verify_req {
        const char *name;
        const unsigned char *data;
        size_t len;
        const char *root_role;   /* NULL: try the keyset's roots as OP-TEE does (oem-k1, then oem-k2) */
        const unsigned char *fv; /* 1.0/legacy: the FV (16 bytes); ignored for 2.0 */
        /* fTPM records (91-94): the keyset file (its EK CA certificate lies
         * beside it; NULL: the chain is not checked) and the Device_SN tag 91
         * must hold (10 bytes; NULL: any well-formed one). */
        const char *keyset_path;
        const unsigned char *ftpm_sn;
};

#define EKB_REPORT_MAX_PROBLEMS 16

struct ekb_report_rec {
        uint32_t tag;
        size_t len;
        bool ok;
        char note[160];
};

struct ekb_report {
        enum ekb_format fmt;
        char root_role[16];    /* the root whose CMAC verified ("" if none) */
        char release[200];     /* which gen_ekb / L4T release writes this */
        char sha256[65];
        struct ekb_report_rec recs[EKB_MAX_RECORDS];
        size_t n_recs;
        char *problems[EKB_REPORT_MAX_PROBLEMS]; /* each names the region */
        size_t n_problems;
        /* 1 + the index of the first problem that is not a defect of a
         * well-formed thing but a record that is not the thing at all (a tag
         * 93 that is no certificate); 0: none. */
        size_t malformed;
};

/* Decrypt and check an image against ks. Returns <0 only when the check could
 * not run (token, PIN, bad request); everything wrong with the image is a
 * problem in the report. */
int ekb_verify(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, const struct ekb_verify_req *req,
               struct ekb_report *rep);
void ekb_report_clear(struct ekb_report *rep);
/* Add one problem (a line naming the region or record) to a report. */
void ekb_report_problem(struct ekb_report *rep, const char *fmt, ...) FL_PRINTF(2, 3);

/* Where a one-byte change to mac_data would make the CMAC verify, given
 * EKB_AK: block index (0-based) and byte offset within mac_data, or -1. The
 * CMAC is CBC-MAC with an invertible cipher, so the chain can be run forward
 * from the start and backward from the stored tag; the single block where
 * they cannot meet without a change is the damaged one. Exposed for tests. */
int ekb_locate_damage(const unsigned char ak[16], const unsigned char *mac_data, size_t mac_len,
                      const unsigned char tag[16], long *ret_offset, bool *ret_tag_damaged);
