/* sign_encrypt.c — `fuseline sign --encrypt aes-gcm`: AES-GCM encryption
 * inside the token with a fuse key (the SBK), what tegrasign_v3's
 * do_aes_gcm asks its HSM back-end for. Parsing and printing only; the work
 * is in lib/sign.c. */
#include <stdlib.h>
#include <string.h>


#include "../lib/sign.h"
#include "cli.h"

enum {
        OPT_ENCRYPT = 0x2200,
        OPT_KEYSET,
        OPT_ROLE,
        OPT_KEY,
        OPT_IN,
        OPT_OUT,
        OPT_TAG_OUT,
        OPT_IV,
        OPT_AAD,
};

struct encrypt_args {
        const char *mode, *keyset, *role, *key, *in, *out, *tag_out, *iv, *aad;
};

static error_t encrypt_parse(int key, char *arg, struct argp_state *state)
{
        struct encrypt_args *a = state->input;

        switch (key) {
        case OPT_ENCRYPT:
                if (strcmp(arg, "aes-gcm"))
                        argp_error(state, "--encrypt '%s': the token encrypts with aes-gcm only", arg);
                a->mode = arg;
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_ROLE:
                a->role = arg;
                break;
        case OPT_KEY:
                a->key = arg;
                break;
        case OPT_IN:
                a->in = arg;
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_TAG_OUT:
                a->tag_out = arg;
                break;
        case OPT_IV:
                a->iv = arg;
                break;
        case OPT_AAD:
                a->aad = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->mode)
                        argp_error(state, "--encrypt aes-gcm is required");
                if (!a->in || !a->out || !a->tag_out || !a->iv)
                        argp_error(state, "--encrypt needs --in, --out, --tag-out and --iv");
                if (!!a->role + !!a->key != 1)
                        argp_error(state, "--encrypt needs a key: --keyset FILE --role ROLE, or --key URI");
                if (a->role && !a->keyset)
                        argp_error(state, "--role %s needs --keyset", a->role);
                if (a->key && a->keyset)
                        argp_error(state, "give either --key URI or --keyset with --role, not both");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const struct argp_option encrypt_options[] = {
        { "encrypt", OPT_ENCRYPT, "MODE", 0, "aes-gcm", 1 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest (its token is used unless --token is given)", 1 },
        { "role", OPT_ROLE, "ROLE", 0, "Fuse-key role: sbk, oem-k1, oem-k2, kek*", 1 },
        { "key", OPT_KEY, "URI", 0, "PKCS#11 URI of a CKK_AES key instead of a role", 1 },
        { "in", OPT_IN, "FILE", 0, "Plaintext (read whole, up to 256 MiB)", 1 },
        { "iv", OPT_IV, "FILE", 0, "The IV, raw bytes (1-256; tegrasign uses 12)", 1 },
        { "aad", OPT_AAD, "FILE", 0, "Additional authenticated data, raw bytes (default: none)", 1 },
        { "out", OPT_OUT, "FILE", 0, "Ciphertext (as long as the plaintext)", 1 },
        { "tag-out", OPT_TAG_OUT, "FILE", 0, "The 16-byte GCM tag", 1 },
        { 0 }
};

static const char encrypt_doc[] =
        "Encrypt a file with AES-GCM inside the token, with a fuse key that never leaves it.\v"
        "CKM_AES_GCM with the role's CKK_AES object, a 128-bit tag; the result is what any AES-GCM "
        "implementation gives for the same key, IV and AAD. Ciphertext and tag are written atomically, both "
        "or neither. A token without CKM_AES_GCM is an error naming it. A production keyset must be on the "
        "manifest's token (exit 6 otherwise).\n\n"
        "Examples:\n"
        "  fuseline keygen --random 12 --keyset keyset.json --out iv.bin\n"
        "  fuseline sign --encrypt aes-gcm --keyset keyset.json --role sbk --iv iv.bin --aad hdr.bin \\\n"
        "      --in fw.bin --out fw.enc --tag-out fw.tag\n"
        "Exit: 0 ok, 2 bad input (not an AES role, IV length, missing file), 3 token/PIN, 6 interlock.";

static const struct argp encrypt_argp = { encrypt_options, encrypt_parse, NULL, encrypt_doc, cli_token_force_children,
                                          NULL, NULL };

int cmd_sign_encrypt(struct cli *cli, int argc, char **argv)
{
        struct encrypt_args a = { 0 };
        sign_session *ss = NULL;
        unsigned char *iv = NULL, *aad = NULL;
        size_t iv_len = 0, aad_len = 0;
        struct gcm_result res = { 0 };
        int r;

        cli_parse(&encrypt_argp, argc, argv, &a);
        if ((r = cli_out_check(cli, a.out)) < 0 || (r = cli_out_check(cli, a.tag_out)) < 0)
                return r;
        r = file_read(cli->ctx, a.iv, SIGN_GCM_IV_MAX, &iv, &iv_len);
        if (r < 0)
                goto out;
        if (a.aad) {
                r = file_read(cli->ctx, a.aad, SIGN_GCM_AAD_MAX, &aad, &aad_len);
                if (r < 0)
                        goto out;
        }
        r = cli_sign_session(cli, a.keyset, a.keyset ? NULL : a.key, true, &ss);
        if (r < 0)
                goto out;
        {
                struct gcm_request req = {
                        .role = a.role,
                        .key_uri = a.key,
                        .in = a.in,
                        .out = a.out,
                        .tag_out = a.tag_out,
                        .iv = iv,
                        .iv_len = iv_len,
                        .aad = aad,
                        .aad_len = aad_len,
                };
                r = sign_aes_gcm_file(ss, &req, &res);
        }
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *jo = cli_json_result("sign", true);
                json_object_object_add(jo, "encrypt", json_object_new_string("aes-gcm"));
                json_object_object_add(jo, "in", json_object_new_string(a.in));
                json_object_object_add(jo, "out", json_object_new_string(a.out));
                json_object_object_add(jo, "tag_out", json_object_new_string(a.tag_out));
                json_object_object_add(jo, "key", json_object_new_string(a.role ? a.role : a.key));
                json_object_object_add(jo, "bytes", json_object_new_int64((int64_t)res.bytes));
                json_object_object_add(jo, "key_fingerprint", json_object_new_string(res.key_fpr));
                cli_json_out(jo);
        } else {
                printf("encrypted %s -> %s, tag %s (aes-gcm, %zu bytes, key %s)\n", a.in, a.out, a.tag_out,
                       res.bytes, res.key_fpr);
        }
        r = 0;
out:
        free(iv);
        free(aad);
        sign_session_close(ss);
        return r;
}
