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

#include "../tools/p11-session.h"

static const char prog[] = "p11-signrate";

int main(int argc, char **argv)
{
        CK_FUNCTION_LIST *m = NULL;
        CK_ULONG got = 0;
        CK_SESSION_HANDLE s = 0;
        CK_OBJECT_HANDLE key;
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_KEY_TYPE kt = 0;
        CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
        CK_MECHANISM mech;
        unsigned char dgst[32], sig[1024];
        struct timespec t0, t1;
        long count;
        CK_RV rv;

        if (argc != 6) {
                fprintf(stderr, "usage: p11-signrate MODULE TOKEN_LABEL PIN_FILE KEY_LABEL N\n");
                return 2;
        }
        count = atol(argv[5]);
        if (p11t_login(prog, argv[1], argv[2], argv[3], false, &m, &s))
                return 1;
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
                        return p11t_die(prog, "C_GetAttributeValue", rv);
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
                        return p11t_die(prog, "C_SignInit", rv);
                if ((rv = m->C_Sign(s, dgst, sizeof(dgst), sig, &sl)) != CKR_OK)
                        return p11t_die(prog, "C_Sign", rv);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        {
                double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
                printf("%ld signatures in %.3f s: %.1f/s\n", count, sec, (double)count / sec);
        }
        p11t_logout(m, s);
        return 0;
}
