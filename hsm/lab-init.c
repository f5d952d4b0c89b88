/* lab-init.c — initialise a PKCS#11 token (SoftHSM2's free slot) with a
 * label, an SO PIN and a user PIN read from files, so no PIN ever sits in a
 * command line. Used by hsm/lab-token.sh; not part of the fuseline CLI.
 *
 *   fuseline-lab-init MODULE LABEL SO_PIN_FILE USER_PIN_FILE
 *
 * Exit 0: initialised (or a token with LABEL exists already: nothing done).
 * Exit 1: failure, with one line on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

static int read_pin(const char *path, char *buf, size_t cap)
{
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f) {
                fprintf(stderr, "fuseline-lab-init: %s: cannot open\n", path);
                return -1;
        }
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = 0;
        if (n < 4) {
                fprintf(stderr, "fuseline-lab-init: %s: PIN shorter than 4 characters\n", path);
                return -1;
        }
        return 0;
}

/* memset that the compiler may not drop (no libcrypto here). */
static void wipe(char *p, size_t n)
{
        volatile char *v = p;
        while (n--)
                *v++ = 0;
}

static void pad_label(const char *label, unsigned char out[32])
{
        size_t n = strlen(label);
        memset(out, ' ', 32);
        memcpy(out, label, n > 32 ? 32 : n);
}

int main(int argc, char **argv)
{
        CK_FUNCTION_LIST *m;
        CK_SLOT_ID slots[64];
        CK_ULONG n = 64;
        CK_SESSION_HANDLE s;
        CK_RV rv;
        char so[256], pin[256];
        unsigned char label[32];
        int ret = 1;
        CK_SLOT_ID free_slot = (CK_SLOT_ID)-1;

        if (argc != 5) {
                fprintf(stderr, "usage: fuseline-lab-init MODULE LABEL SO_PIN_FILE USER_PIN_FILE\n");
                return 2;
        }
        if (read_pin(argv[3], so, sizeof(so)) < 0 || read_pin(argv[4], pin, sizeof(pin)) < 0) {
                wipe(so, sizeof(so));
                wipe(pin, sizeof(pin));
                return 1;
        }
        pad_label(argv[2], label);
        m = p11_kit_module_load(argv[1], 0);
        if (!m) {
                fprintf(stderr, "fuseline-lab-init: %s: %s\n", argv[1], p11_kit_message());
                wipe(so, sizeof(so));
                wipe(pin, sizeof(pin));
                return 1;
        }
        rv = p11_kit_module_initialize(m);
        if (rv != CKR_OK) {
                fprintf(stderr, "fuseline-lab-init: C_Initialize failed: %s\n", p11_kit_strerror(rv));
                p11_kit_module_release(m);
                wipe(so, sizeof(so));
                wipe(pin, sizeof(pin));
                return 1;
        }
        rv = m->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv != CKR_OK)
                goto out;
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;
                if (m->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
                        continue;
                if (ti.flags & CKF_TOKEN_INITIALIZED) {
                        if (!memcmp(ti.label, label, 32)) {
                                ret = 0; /* exists: idempotent */
                                goto done;
                        }
                } else if (free_slot == (CK_SLOT_ID)-1) {
                        free_slot = slots[i];
                }
        }
        if (free_slot == (CK_SLOT_ID)-1) {
                fprintf(stderr, "fuseline-lab-init: no uninitialised token slot in %s\n", argv[1]);
                goto done;
        }
        rv = m->C_InitToken(free_slot, (CK_UTF8CHAR *)so, strlen(so), label);
        if (rv != CKR_OK)
                goto out;
        /* SoftHSM2 moves the initialised token to a new slot id: find it again. */
        n = 64;
        rv = m->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv != CKR_OK)
                goto out;
        free_slot = (CK_SLOT_ID)-1;
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;
                if (m->C_GetTokenInfo(slots[i], &ti) == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED) &&
                    !memcmp(ti.label, label, 32))
                        free_slot = slots[i];
        }
        rv = m->C_OpenSession(free_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
        if (rv != CKR_OK)
                goto out;
        rv = m->C_Login(s, CKU_SO, (CK_UTF8CHAR *)so, strlen(so));
        if (rv == CKR_OK)
                rv = m->C_InitPIN(s, (CK_UTF8CHAR *)pin, strlen(pin));
        m->C_Logout(s);
        m->C_CloseSession(s);
        if (rv != CKR_OK)
                goto out;
        ret = 0;
        goto done;
out:
        fprintf(stderr, "fuseline-lab-init: %s\n", p11_kit_strerror(rv));
done:
        wipe(so, sizeof(so));
        wipe(pin, sizeof(pin));
        p11_kit_module_finalize(m);
        p11_kit_module_release(m);
        return ret;
}
