/* p11-mkkey.c — test helper: generate a P-256 key pair in a token with
 * chosen CKA_EXTRACTABLE and CKA_SENSITIVE on the private half, to exercise
 * the production interlock. pkcs11-tool and p11tool cannot make a private
 * key that is neither extractable nor sensitive; this can. The PIN comes
 * from a file, never argv. CKA_ID is the label's bytes.
 *
 *   p11-mkkey MODULE TOKEN_LABEL PIN_FILE LABEL EXTRACTABLE(0|1) SENSITIVE(0|1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11-session.h"

static const char prog[] = "p11-mkkey";

/* DER OID of prime256v1 */
static const unsigned char p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

int main(int argc, char **argv)
{
        CK_FUNCTION_LIST *m = NULL;
        CK_SESSION_HANDLE s = 0;
        CK_OBJECT_HANDLE pub, priv;
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_BBOOL ext, sens;
        CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
        CK_RV rv;

        if (argc != 7) {
                fprintf(stderr, "usage: p11-mkkey MODULE TOKEN_LABEL PIN_FILE LABEL EXTRACTABLE SENSITIVE\n");
                return 2;
        }
        ext = atoi(argv[5]) ? CK_TRUE : CK_FALSE;
        sens = atoi(argv[6]) ? CK_TRUE : CK_FALSE;
        if (p11t_login(prog, argv[1], argv[2], argv[3], true, &m, &s))
                return 1;
        {
                CK_ATTRIBUTE pt[] = {
                        { CKA_TOKEN, &yes, sizeof(yes) },
                        { CKA_VERIFY, &yes, sizeof(yes) },
                        { CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid) },
                        { CKA_LABEL, argv[4], strlen(argv[4]) },
                        { CKA_ID, argv[4], strlen(argv[4]) },
                };
                CK_ATTRIBUTE kt[] = {
                        { CKA_TOKEN, &yes, sizeof(yes) },     { CKA_PRIVATE, &yes, sizeof(yes) },
                        { CKA_SIGN, &yes, sizeof(yes) },      { CKA_EXTRACTABLE, &ext, sizeof(ext) },
                        { CKA_SENSITIVE, &sens, sizeof(sens) }, { CKA_LABEL, argv[4], strlen(argv[4]) },
                        { CKA_ID, argv[4], strlen(argv[4]) },  { CKA_DERIVE, &no, sizeof(no) },
                };
                rv = m->C_GenerateKeyPair(s, &mech, pt, 5, kt, 8, &pub, &priv);
                if (rv != CKR_OK)
                        return p11t_die(prog, "C_GenerateKeyPair", rv);
        }
        p11t_logout(m, s);
        return 0;
}
