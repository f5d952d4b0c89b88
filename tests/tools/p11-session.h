/* p11-session.h — what the small PKCS#11 test tools (tests/tools/p11-mkkey,
 * tests/bench/p11-signrate) do the same way: load a module, find a token
 * by label, and log in with a PIN read from a file (never argv); then log
 * out and unload. Header-only: each tool is one C file. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

/* "PROG: WHAT: reason" on stderr; returns the tools' failure status. */
static int p11t_die(const char *prog, const char *what, CK_RV rv)
{
        fprintf(stderr, "%s: %s: %s\n", prog, what, p11_kit_strerror(rv));
        return 1;
}

/* A session on the token labelled `label` (read-write when rw), logged in
 * as the user. Returns 0, or 1 after saying why on stderr. */
static int p11t_login(const char *prog, const char *module, const char *label, const char *pin_file, bool rw,
                      CK_FUNCTION_LIST **ret_m, CK_SESSION_HANDLE *ret_s)
{
        CK_FUNCTION_LIST *m;
        CK_SLOT_ID slots[32], slot = (CK_SLOT_ID)-1;
        CK_ULONG n = 32;
        CK_SESSION_HANDLE s;
        char pin[256];
        size_t pl;
        FILE *f;
        CK_RV rv;

        f = fopen(pin_file, "re");
        if (!f) {
                fprintf(stderr, "%s: %s: cannot open\n", prog, pin_file);
                return 1;
        }
        pl = fread(pin, 1, sizeof(pin) - 1, f);
        fclose(f);
        while (pl && (pin[pl - 1] == '\n' || pin[pl - 1] == '\r'))
                pl--;
        pin[pl] = 0;

        m = p11_kit_module_load(module, 0);
        if (!m) {
                fprintf(stderr, "%s: %s: %s\n", prog, module, p11_kit_message());
                return 1;
        }
        rv = p11_kit_module_initialize(m);
        if (rv != CKR_OK)
                return p11t_die(prog, "C_Initialize", rv);
        rv = m->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv != CKR_OK)
                return p11t_die(prog, "C_GetSlotList", rv);
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;
                char tl[33];
                if (m->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
                        continue;
                memcpy(tl, ti.label, 32);
                tl[32] = 0;
                for (int j = 31; j >= 0 && tl[j] == ' '; j--)
                        tl[j] = 0;
                if (!strcmp(tl, label))
                        slot = slots[i];
        }
        if (slot == (CK_SLOT_ID)-1) {
                fprintf(stderr, "%s: no token '%s'\n", prog, label);
                return 1;
        }
        rv = m->C_OpenSession(slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL, NULL, &s);
        if (rv != CKR_OK)
                return p11t_die(prog, "C_OpenSession", rv);
        rv = m->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
        memset(pin, 0, sizeof(pin));
        if (rv != CKR_OK)
                return p11t_die(prog, "C_Login", rv);
        *ret_m = m;
        *ret_s = s;
        return 0;
}

static void p11t_logout(CK_FUNCTION_LIST *m, CK_SESSION_HANDLE s)
{
        m->C_Logout(s);
        m->C_CloseSession(s);
        p11_kit_module_finalize(m);
        p11_kit_module_release(m);
}
