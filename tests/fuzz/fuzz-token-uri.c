/* fuzz-token-uri.c — the token-narrowing rule (lib/signer.c
 * signer_token_uri): input "PINNED\nNARROW". Any bytes give a URI, -EINVAL
 * (unparseable) or -ENXIO (a different token); a URI given back names the
 * same token attributes as the pinned one wherever that names them (a
 * narrowing URI never redirects), and every attribute the narrowing URI
 * names. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "signer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static P11KitUri *parse(const char *s)
{
        P11KitUri *u = p11_kit_uri_new();

        if (!u)
                abort();
        if (p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK) {
                p11_kit_uri_free(u);
                return NULL;
        }
        return u;
}

/* Every field set in want is set, and equal, in have. */
static void covers(const CK_TOKEN_INFO *have, const CK_TOKEN_INFO *want)
{
#define F(name)                                                                                   \
        if (want->name[0] && memcmp(have->name, want->name, sizeof(want->name)))               \
                abort();
        F(label)
        F(serialNumber)
        F(manufacturerID)
        F(model)
#undef F
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *buf = malloc(size + 1), *nl, *out = NULL;
        const char *pinned, *narrow;
        P11KitUri *pu, *nu, *ou;
        fl_ctx *ctx = NULL;
        int r;

        if (!buf || fl_ctx_new(&ctx) < 0)
                abort();
        memcpy(buf, data, size);
        buf[size] = 0;
        if (strlen(buf) != size) /* C strings: a NUL ends the input */
                goto done;
        nl = strchr(buf, '\n');
        pinned = buf;
        narrow = "";
        if (nl) {
                *nl = 0;
                narrow = nl + 1;
        }
        r = signer_token_uri(ctx, pinned, "pinned", narrow, "narrow", &out);
        if (r < 0) {
                if ((r != -EINVAL && r != -ENXIO && r != -ENOMEM) || out || !fl_ctx_last_error(ctx))
                        abort();
                goto done;
        }
        if (!out)
                abort();
        if (!*narrow || !strcmp(narrow, pinned)) {
                if (strcmp(out, pinned))
                        abort();
                goto done;
        }
        pu = parse(pinned);
        nu = parse(narrow);
        ou = parse(out);
        if (!pu || !nu || !ou)
                abort(); /* accepted inputs parse, and so does the result */
        covers(p11_kit_uri_get_token_info(ou), p11_kit_uri_get_token_info(pu));
        covers(p11_kit_uri_get_token_info(ou), p11_kit_uri_get_token_info(nu));
        p11_kit_uri_free(pu);
        p11_kit_uri_free(nu);
        p11_kit_uri_free(ou);
done:
        free(out);
        free(buf);
        fl_ctx_free(ctx);
        return 0;
}
