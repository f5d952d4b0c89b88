/* uefi_int.h — what the uefi*.c files share (not for other modules).
 * Files:
 *   uefi.c          byte formats: GUIDs, EFI_TIME, variables, ESL, .auth
 *   uefi_conf.c     uefi_keys.conf, .dts, dtc
 *   uefi_common.c   helpers of the operations below
 *   uefi_keygen.c   bundle generation
 *   uefi_update.c   signed updates and payload signatures
 *   uefi_verify.c   bundle verification */
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <p11-kit/pkcs11.h>

#include "tegra_key.h"
#include "proc.h"
#include "uefi.h"

extern char **environ;

#define ESL_HDR 28     /* EFI_SIGNATURE_LIST header */
#define AUTH_HDR 40    /* EFI_TIME + WIN_CERTIFICATE_UEFI_GUID up to CertData */
#define WIN_CERT_HDR 24
#define PAYLOAD_MAX ((size_t)1 << 30)
#define BUNDLE_FILE_MAX ((size_t)16 << 20)
#define ID_LEN 16

/* Helpers shared by the uefi*.c files (defined in the file named). */
/* uefi_common.c */
char *path_join(const char *dir, const char *name);
/* uefi_conf.c */
bool plain_file_name(const char *s);
/* uefi_common.c */
int read_in_dir(fl_ctx *ctx, const char *dir, const char *name, unsigned char **ret, size_t *ret_len);
/* uefi_common.c: the conf variable names of the signed updates, per variable */
extern const char *const update_prefix[];
