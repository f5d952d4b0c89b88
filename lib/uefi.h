/* uefi.h — UEFI Secure Boot key material for Jetson (JetPack 6): GUIDs,
 * EFI_TIME, EFI_SIGNATURE_LIST, the signed buffer and the time-based
 * authenticated variable (.auth = EFI_VARIABLE_AUTHENTICATION_2 + value),
 * NVIDIA's uefi_keys.conf and UefiDefault/UpdateSecurityKeys.dts, and the
 * operations built on them: a PK/KEK/db bundle from token keys, signed
 * append updates, payload signatures, and checking a bundle.
 * Byte layouts: shared/reference/uefi-secure-boot.md §1, Jetson files §3. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "keyset.h"
#include "p11.h"
#include "x509.h"

/* ---- GUIDs ------------------------------------------------------------------- */

/* 16 bytes in the on-disk EFI order (Data1 u32 LE, Data2/Data3 u16 LE,
 * Data4 as written). */
typedef struct {
        uint8_t b[16];
} efi_guid;

extern const efi_guid EFI_CERT_X509_GUID;
extern const efi_guid EFI_CERT_SHA256_GUID;
extern const efi_guid EFI_CERT_TYPE_PKCS7_GUID;
extern const efi_guid EFI_GLOBAL_VARIABLE_GUID;
extern const efi_guid EFI_IMAGE_SECURITY_DATABASE_GUID;

/* "8be4df61-93ca-11d2-aa0d-00e098032b8c" (either case, nothing else). The
 * message names `what` (an option or field) and the value. */
int uefi_guid_parse(fl_ctx *ctx, const char *what, const char *s, efi_guid *ret);
void uefi_guid_format(const efi_guid *g, char out[37]); /* lower case */
int uefi_guid_random(efi_guid *ret);                    /* RFC 4122 version 4 */
bool uefi_guid_eq(const efi_guid *a, const efi_guid *b);

/* ---- EFI_TIME ------------------------------------------------------------------ */

/* The fields a time-based authenticated variable may carry: Pad1,
 * Nanosecond, TimeZone, Daylight and Pad2 must be 0 (GMT), so they are not
 * represented. */
struct efi_time {
        uint16_t year; /* 1900..9999 */
        uint8_t month, day, hour, minute, second;
};

/* "YYYY-MM-DD HH:MM:SS", "YYYY-MM-DDTHH:MM:SS[Z]" or "YYYY-MM-DD" (00:00:00),
 * UTC, and a real calendar date. Anything else is -EINVAL naming `what`
 * and the value (efitools would silently write 1900-01-00 instead). */
int uefi_time_parse(fl_ctx *ctx, const char *what, const char *s, struct efi_time *ret);
void uefi_time_now(struct efi_time *ret);
/* Shift by seconds (calendar-correct). -EINVAL when it leaves 1900..9999. */
int uefi_time_add(struct efi_time *t, long seconds);
void uefi_time_format(const struct efi_time *t, char out[20]); /* "YYYY-MM-DD HH:MM:SS" */
void uefi_time_encode(const struct efi_time *t, uint8_t out[16]);
/* Decode 16 bytes; -EINVAL when the date is not real or a field that must
 * be zero is not. */
int uefi_time_decode(fl_ctx *ctx, const char *name, const uint8_t in[16], struct efi_time *ret);

/* ---- variables ------------------------------------------------------------------ */

#define UEFI_ATTR_NV 0x01u
#define UEFI_ATTR_BS 0x02u
#define UEFI_ATTR_RT 0x04u
#define UEFI_ATTR_TIME_AUTH 0x20u
#define UEFI_ATTR_APPEND 0x40u
#define UEFI_ATTRS_REPLACE 0x27u /* NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS */
#define UEFI_ATTRS_APPEND 0x67u  /* … |APPEND_WRITE */

enum uefi_var {
        UEFI_VAR_PK,
        UEFI_VAR_KEK,
        UEFI_VAR_DB,
        UEFI_VAR_DBX,
};

/* "PK", "KEK", "db", "dbx" (exact spelling). */
int uefi_var_from_name(const char *name, enum uefi_var *ret);
const char *uefi_var_name(enum uefi_var v);
const efi_guid *uefi_var_vendor(enum uefi_var v);

/* ---- EFI_SIGNATURE_LIST --------------------------------------------------------- */

/* One list holding one DER certificate (EFI_CERT_X509_GUID). */
int uefi_esl_x509(fl_ctx *ctx, const efi_guid *owner, const unsigned char *der, size_t der_len,
                  unsigned char **ret, size_t *ret_len);
/* One list of n SHA-256 hashes (EFI_CERT_SHA256_GUID, 32 bytes each). */
int uefi_esl_sha256(fl_ctx *ctx, const efi_guid *owner, const unsigned char *hashes, size_t n,
                    unsigned char **ret, size_t *ret_len);

struct uefi_esl_entry {
        efi_guid type;
        efi_guid owner;
        const unsigned char *data; /* points into the parsed buffer */
        size_t len;
        size_t list;   /* index of its EFI_SIGNATURE_LIST */
        size_t offset; /* of the EFI_SIGNATURE_DATA in the buffer */
};

/* Parse concatenated signature lists the way edk2 checks them (sizes
 * consistent, SignatureSize 16+32 for SHA-256, X.509 entries are
 * certificates). An empty buffer is zero entries. *ret is malloc'd. */
int uefi_esl_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len,
                   struct uefi_esl_entry **ret, size_t *ret_n);

/* ---- authenticated variables ----------------------------------------------------- */

/* VariableName (UTF-16LE, no NUL) ‖ VendorGuid ‖ Attributes (u32 LE) ‖
 * TimeStamp ‖ payload: what the PKCS#7 signature of a .auth covers. */
int uefi_signed_buffer(enum uefi_var v, uint32_t attrs, const struct efi_time *t, const void *payload, size_t len,
                       unsigned char **ret, size_t *ret_len);

/* EFI_VARIABLE_AUTHENTICATION_2 (TimeStamp, WIN_CERTIFICATE_UEFI_GUID with
 * a bare SignedData in the efitools profile) followed by the payload —
 * byte-identical to `sign-efi-sig-list [-a] -t TIME` for the same key,
 * certificate and payload. The result is verified before it is returned. */
int uefi_auth_build(fl_ctx *ctx, x509_signer *signer, X509 *cert, enum uefi_var v, uint32_t attrs,
                    const struct efi_time *t, const void *payload, size_t len, unsigned char **ret,
                    size_t *ret_len);

struct uefi_auth {
        struct efi_time time;
        const unsigned char *sig; /* CertData: the SignedData (into the buffer) */
        size_t sig_len;
        const unsigned char *payload; /* the new value (into the buffer) */
        size_t payload_len;
};

/* Parse a .auth file as edk2 would: header sizes, revision 0x0200, type
 * WIN_CERT_TYPE_EFI_GUID, CertType PKCS7, a bare DER SignedData with a
 * two-byte length (edk2 checks CertData[1] and the SHA-256 OID at 13). */
int uefi_auth_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, struct uefi_auth *ret);
/* Parse and check the signature against signer's key for variable v with
 * attrs. -EBADMSG on a wrong signature. */
int uefi_auth_verify(fl_ctx *ctx, const char *name, enum uefi_var v, uint32_t attrs, const unsigned char *data,
                     size_t len, X509 *signer);

/* ---- Jetson files ------------------------------------------------------------------- */

#define UEFI_CONF_NAME "uefi_keys.conf"
#define UEFI_DEFAULT_DTS "UefiDefaultSecurityKeys.dts"
#define UEFI_DEFAULT_DTBO "UefiDefaultSecurityKeys.dtbo"
#define UEFI_UPDATE_DTS "UefiUpdateSecurityKeys.dts"
#define UEFI_UPDATE_DTBO "UefiUpdateSecurityKeys.dtbo"
#define UEFI_MAX_UPDATES 50 /* per variable, as gen_uefi_keys_dts.sh allows */

struct uefi_conf_var {
        char *name;
        char *value;
        unsigned line;
};

struct uefi_conf {
        struct uefi_conf_var *vars;
        size_t n;
};

/* Parse uefi_keys.conf without a shell: blank lines, # comments and
 * NAME="value"[;] (or NAME=value) lines only; values are plain file names
 * (no '/', no shell syntax). -EINVAL naming the file and line otherwise. */
int uefi_conf_parse(fl_ctx *ctx, const char *name, const char *text, size_t len, struct uefi_conf *ret);
void uefi_conf_free(struct uefi_conf *c);
const char *uefi_conf_get(const struct uefi_conf *c, const char *name);

/* UefiDefaultSecurityKeys.dts text (malloc'd): the node layout of NVIDIA's
 * gen_uefi_keys_dts.sh, each *Default variable holding raw ESL bytes. dbx
 * may be NULL. */
char *uefi_dts_default(const unsigned char *pk, size_t pk_len, const unsigned char *kek, size_t kek_len,
                       const unsigned char *db, size_t db_len, const unsigned char *dbx, size_t dbx_len);

struct uefi_update_blob {
        enum uefi_var var; /* KEK, db or dbx */
        const unsigned char *data;
        size_t len;
};
/* UefiUpdateSecurityKeys.dts text: kekSigned_N, dbSigned_N, dbxSigned_N
 * nodes (N counting per variable, in the order given) holding .auth bytes. */
char *uefi_dts_update(const struct uefi_update_blob *blobs, size_t n);

/* Compile a .dts into dtbo_path with dtc (-I dts -O dtb), atomically.
 * -ENOENT when dtc is not installed. */
int uefi_dtc(fl_ctx *ctx, const char *dts_path, const char *dtbo_path);
/* The dtc program to run (NULL or empty: "dtc" from PATH); the caller's
 * choice (the CLI: $FUSELINE_DTC), borrowed, set once at start-up. */
void uefi_dtc_set_program(const char *prog);

/* The bytes of property `prop` of node `path` ("/a/b/c") in a flattened
 * device tree. -ENOENT when absent, -EINVAL when the blob is malformed. */
int uefi_fdt_get(fl_ctx *ctx, const char *name, const unsigned char *fdt, size_t len, const char *path,
                 const char *prop, const unsigned char **ret, size_t *ret_len);

/* The `data = [ … ];` bytes of node `node` (its last path component) in a
 * .dts text (malloc'd). -ENOENT when absent, -EINVAL when malformed. */
int uefi_dts_get(fl_ctx *ctx, const char *name, const char *text, size_t len, const char *node,
                 unsigned char **ret, size_t *ret_len);

/* ---- operations ----------------------------------------------------------------------- */

enum uefi_role {
        UEFI_ROLE_PK,
        UEFI_ROLE_KEK,
        UEFI_ROLE_DB1,
        UEFI_ROLE_DB2,
        UEFI_ROLE_COUNT,
};

const char *uefi_role_name(enum uefi_role r); /* "uefi-pk", "uefi-kek", "uefi-db1", "uefi-db2" */

struct uefi_keygen_opts {
        const char *out_dir;  /* must not exist, or be empty */
        enum key_type type;   /* KT_RSA2K or KT_RSA3K */
        const char *name;     /* label prefix: labels are NAME-uefi-pk, … */
        const char *subject;  /* base DN "/O=Acme Robotics" (NULL: none); CN is added per key */
        unsigned days;        /* > 0 */
        efi_guid owner;
        struct efi_time time; /* of PK/KEK/db.auth; noPK.auth gets time + 1 s */
        unsigned db_count;    /* 1 or 2 */
        struct keyset *ks;    /* optional: gains the uefi-* roles, saved to ks_path */
        const char *ks_path;
        /* Import existing keys instead of generating them: PEM private keys
         * DIR/PK.key, DIR/KEK.key, DIR/db_1.key (DIR/db_2.key), RSA-2048 or
         * RSA-3072, unencrypted (NVIDIA's README makes them that way). They
         * become non-extractable token objects; type is then per key. */
        const char *import_dir;
};

struct uefi_keygen_key {
        enum uefi_role role;
        enum key_type type;
        bool imported;
        char *label;
        char *uri;
        char *cert_path; /* absolute */
        char cert_sha256[65];
        char spki_sha256[65];
        char *subject;
};

struct uefi_keygen_result {
        struct uefi_keygen_key keys[UEFI_ROLE_COUNT];
        size_t n_keys;
        char *out_dir; /* absolute */
        bool dtbo;     /* UefiDefaultSecurityKeys.dtbo written (dtc installed) */
};

/* Create the key pairs in the token (never replacing an object), their
 * self-signed certificates, and the bundle: PK/KEK/db_N .crt/.der, PK.esl,
 * KEK.esl, db.esl, PK.auth, KEK.auth, db.auth, noPK.auth, uefi_keys.conf,
 * UefiDefaultSecurityKeys.dts (+ .dtbo). All or nothing: the bundle appears
 * at out_dir by one rename, and on failure the objects made are destroyed. */
int uefi_keygen(fl_ctx *ctx, fl_token *tok, const struct uefi_keygen_opts *o, struct uefi_keygen_result *ret);
void uefi_keygen_result_free(struct uefi_keygen_result *r);

/* A signed append update (attributes 0x67) of KEK, db or dbx: one X.509
 * list per certificate (RSA only, as edk2 takes them) and one SHA-256 list
 * for all hashes. With conf_path, out_path must be in the conf's directory:
 * it is registered as the next UEFI_UPDATE_PRE_SIGNED_<VAR>_n and
 * UefiUpdateSecurityKeys.dts (+ .dtbo) there is rewritten. */
struct uefi_update_opts {
        enum uefi_var var;
        const char *const *certs; /* paths */
        size_t n_certs;
        const unsigned char *hashes; /* n_hashes × 32 bytes */
        size_t n_hashes;
        efi_guid owner;
        struct efi_time time;
        const char *out_path; /* created, never replaced */
        const char *conf_path;
};

struct uefi_update_result {
        size_t auth_len;
        char auth_sha256[65];
        char *conf_var; /* UEFI_UPDATE_PRE_SIGNED_DB_0 …, with conf_path */
        bool dtbo;
};

int uefi_sign_update(fl_ctx *ctx, x509_signer *signer, X509 *cert, const struct uefi_update_opts *o,
                     struct uefi_update_result *ret);
void uefi_update_result_free(struct uefi_update_result *r);

enum uefi_payload_mode {
        UEFI_PAYLOAD_SPLIT,  /* FILE.sig */
        UEFI_PAYLOAD_APPEND, /* FILE.unsigned kept; FILE = FILE padded to 2 KiB ‖ signature */
};

struct uefi_payload_result {
        char *sig_path;      /* split: FILE.sig */
        char *unsigned_path; /* append: FILE.unsigned */
        size_t sig_len;
        size_t padded_len; /* append: offset of the signature in FILE */
};

/* Sign a UEFI payload (kernel, kernel-dtb, initrd, extlinux.conf, boot.img)
 * as NVIDIA's l4t_uefi_sign_image.sh does with `openssl cms -sign -binary`.
 * Append mode refuses a FILE that has a FILE.unsigned already (it would be
 * signed twice). */
int uefi_sign_payload(fl_ctx *ctx, x509_signer *signer, X509 *cert, const char *path, enum uefi_payload_mode mode,
                      struct uefi_payload_result *ret);
void uefi_payload_result_free(struct uefi_payload_result *r);

struct uefi_verify_report {
        char **problems;
        size_t n_problems;
        char **checked; /* one line per thing found good */
        size_t n_checked;
        char **notes; /* neither (e.g. no .dtbo because dtc was absent) */
        size_t n_notes;
};

/* Check a bundle directory: every ESL and .auth parses, sizes and GUIDs,
 * each .auth's payload is the matching ESL and its signature is by the
 * right key (PK for PK/KEK/noPK, KEK for db; update .auth files too), the
 * conf names existing files in the directory, and the .dts/.dtbo carry the
 * ESL bytes. Returns <0 only when the check could not run; findings go into
 * the report. */
int uefi_verify_bundle(fl_ctx *ctx, const char *dir, struct uefi_verify_report *rep);
void uefi_verify_report_free(struct uefi_verify_report *rep);
