/* p11-signrate.c — benchmark helper: the token's raw signing rate, i.e. N
 * C_SignInit/C_Sign calls in one logged-in session with nothing else around
 * them (no file I/O, no hashing, no encoding). RSA keys sign RSA-PSS-SHA256
 * over a 32-byte digest, EC keys ECDSA over it. PIN from a file.
 *
 *   p11-signrate MODULE TOKEN_LABEL PIN_FILE KEY_LABEL N
 * Prints "N signatures in S s: R/s". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

static int die(const char *what, CK_RV rv)
{
        fprintf(stderr, "p11-signrate: %s: %s\n", what, p11_kit_strerror(rv));
        return 1;
}

int main(int argc, char **argv)
{
        CK_FUNCTION_LIST *m;
        CK_SLOT_ID slots[32], slot = (CK_SLOT_ID)-1;
        CK_ULONG n = 32, got = 0;
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE key;
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_KEY_TYPE kt = 0;
        CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
        CK_MECHANISM mech;
        unsigned char dgst[32], sig[1024];
        struct timespec t0, t1;
        char pin[256];
        long count;
        size_t pl;
        FILE *f;
        CK_RV rv;

        if (argc != 6) {
                fprintf(stderr, "usage: p11-signrate MODULE TOKEN_LABEL PIN_FILE KEY_LABEL N\n");
                return 2;
        }
        count = atol(argv[5]);
        f = fopen(argv[3], "re");
        if (!f)
                return 1;
        pl = fread(pin, 1, sizeof(pin) - 1, f);
        fclose(f);
        while (pl && (pin[pl - 1] == '\n' || pin[pl - 1] == '\r'))
                pl--;
        pin[pl] = 0;
        m = p11_kit_module_load(argv[1], 0);
        if (!m)
                return 1;
        if ((rv = p11_kit_module_initialize(m)) != CKR_OK)
                return die("C_Initialize", rv);
        if ((rv = m->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
                return die("C_GetSlotList", rv);
        for (CK_ULONG i = 0; i < n; i++) {
                CK_TOKEN_INFO ti;
                char label[33];
                if (m->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
                        continue;
                memcpy(label, ti.label, 32);
                label[32] = 0;
                for (int j = 31; j >= 0 && label[j] == ' '; j--)
                        label[j] = 0;
                if (!strcmp(label, argv[2]))
                        slot = slots[i];
        }
        if (slot == (CK_SLOT_ID)-1)
                return 1;
        if ((rv = m->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK)
                return die("C_OpenSession", rv);
        rv = m->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
        memset(pin, 0, sizeof(pin));
        if (rv != CKR_OK)
                return die("C_Login", rv);
        {
                CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, argv[4], strlen(argv[4]) } };
                CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
                m->C_FindObjectsInit(s, t, 2);
                m->C_FindObjects(s, &key, 1, &got);
                m->C_FindObjectsFinal(s);
                if (got != 1) {
                        fprintf(stderr, "p11-signrate: no private key '%s'\n", argv[4]);
                        return 1;
                }
                if ((rv = m->C_GetAttributeValue(s, key, &a, 1)) != CKR_OK)
                        return die("C_GetAttributeValue", rv);
        }
        if (kt == CKK_RSA)
                mech = (CK_MECHANISM){ CKM_RSA_PKCS_PSS, &pss, sizeof(pss) };
        else
                mech = (CK_MECHANISM){ CKM_ECDSA, NULL, 0 };
        memset(dgst, 0x5a, sizeof(dgst));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < count; i++) {
                CK_ULONG sl = sizeof(sig);
                dgst[0] = (unsigned char)i;
                if ((rv = m->C_SignInit(s, &mech, key)) != CKR_OK)
                        return die("C_SignInit", rv);
                if ((rv = m->C_Sign(s, dgst, sizeof(dgst), sig, &sl)) != CKR_OK)
                        return die("C_Sign", rv);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        {
                double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
                printf("%ld signatures in %.3f s: %.1f/s\n", count, sec, (double)count / sec);
        }
        m->C_Logout(s);
        m->C_CloseSession(s);
        p11_kit_module_finalize(m);
        p11_kit_module_release(m);
        return 0;
}
