/* uefi_common.c — what the UEFI operations (keygen, updates, payloads,
 * bundle checks) share: paths, reading bundle files, the conf's update
 * variable names. */
#include "uefi_int.h"

/* ---- operations: shared helpers ---------------------------------------------------------------- */

char *path_join(const char *dir, const char *name)
{
        char *p = NULL;
        size_t n = strlen(dir);

        if (asprintf(&p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name) < 0)
                return NULL;
        return p;
}

const char *const update_prefix[] = { [UEFI_VAR_KEK] = "UEFI_UPDATE_PRE_SIGNED_KEK",
                                      [UEFI_VAR_DB] = "UEFI_UPDATE_PRE_SIGNED_DB",
                                      [UEFI_VAR_DBX] = "UEFI_UPDATE_PRE_SIGNED_DBX" };

int read_in_dir(fl_ctx *ctx, const char *dir, const char *name, unsigned char **ret, size_t *ret_len)
{
        char *p = path_join(dir, name);
        int r;

        if (!p)
                return -ENOMEM;
        r = file_read(ctx, p, BUNDLE_FILE_MAX, ret, ret_len);
        free(p);
        return r;
}
