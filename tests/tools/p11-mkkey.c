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

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

/* DER OID of prime256v1 */
static const unsigned char p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

static int die(const char *what, CK_RV rv)
{
        fprintf(stderr, "p11-mkkey: %s: %s\n", what, p11_kit_strerror(rv));
        return 1;
}

int main(int argc, char **argv)
{
        CK_FUNCTION_LIST *m;
        CK_SLOT_ID slots[32];
        CK_ULONG n = 32;
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE pub, priv;
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_BBOOL ext, sens;
        CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
        CK_RV rv;
        char pin[256];
        size_t pl;
        FILE *f;
        CK_SLOT_ID slot = (CK_SLOT_ID)-1;

        if (argc != 7) {
                fprintf(stderr, "usage: p11-mkkey MODULE TOKEN_LABEL PIN_FILE LABEL EXTRACTABLE SENSITIVE\n");
                return 2;
        }
        ext = atoi(argv[5]) ? CK_TRUE : CK_FALSE;
        sens = atoi(argv[6]) ? CK_TRUE : CK_FALSE;
        f = fopen(argv[3], "re");
        if (!f) {
                fprintf(stderr, "p11-mkkey: %s: cannot open\n", argv[3]);
                return 1;
        }
        pl = fread(pin, 1, sizeof(pin) - 1, f);
        fclose(f);
        while (pl && (pin[pl - 1] == '\n' || pin[pl - 1] == '\r'))
                pl--;
        pin[pl] = 0;

        m = p11_kit_module_load(argv[1], 0);
        if (!m) {
                fprintf(stderr, "p11-mkkey: %s: %s\n", argv[1], p11_kit_message());
                return 1;
        }
        rv = p11_kit_module_initialize(m);
        if (rv != CKR_OK)
                return die("C_Initialize", rv);
        rv = m->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv != CKR_OK)
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
        if (slot == (CK_SLOT_ID)-1) {
                fprintf(stderr, "p11-mkkey: no token '%s'\n", argv[2]);
                return 1;
        }
        rv = m->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
        if (rv != CKR_OK)
                return die("C_OpenSession", rv);
        rv = m->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
        memset(pin, 0, sizeof(pin));
        if (rv != CKR_OK)
                return die("C_Login", rv);
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
                        return die("C_GenerateKeyPair", rv);
        }
        m->C_Logout(s);
        m->C_CloseSession(s);
        p11_kit_module_finalize(m);
        p11_kit_module_release(m);
        return 0;
}
