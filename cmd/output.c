/* output.c — pieces of command output that commands build the same way
 * (JSON result objects, verify verdicts); printing JSON stays in cmd/main.c. */
#include <string.h>

#include "cli.h"

json_object *cli_json_result(const char *command, bool ok)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "command", json_object_new_string(command));
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        return o;
}

json_object *cli_json_strings(char *const *v, size_t n)
{
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

int cli_verdict(struct cli *cli, const char *what, char *const *problems, size_t n)
{
        if (!cli->json)
                printf("%s: %s\n", what, n ? "FAIL" : "PASS");
        return n ? fl_err(cli->ctx, -EBADMSG, "%s: %zu problem(s); first: %s", what, n, problems[0]) : 0;
}

static const char *state_name(enum fuse_diff_state s)
{
        return s == FD_EQUAL ? "equal" : s == FD_BURN ? "burn" : "conflict";
}

static void hex0x(const unsigned char *v, size_t len, char *out)
{
        out[0] = '0';
        out[1] = 'x';
        hex_encode(v, len, out + 2);
}

/* Text form of a fuse value: words in full, hashes shortened, keys never. */
static void show_value(const struct fuse_def *d, const unsigned char *v, bool full, char *out, size_t len)
{
        char hex[2 * FUSE_VALUE_MAX + 3];
        bool zero = true;

        for (size_t i = 0; i < d->size; i++)
                zero &= v[i] == 0;
        if (d->secret) {
                snprintf(out, len, "%s", zero ? "(blank)" : "(key)");
                return;
        }
        hex0x(v, d->size, hex);
        if (!full && d->size > 8)
                snprintf(out, len, "%.18s…", hex);
        else
                snprintf(out, len, "%s", hex);
}

json_object *cli_diff_fuses_json(const struct fuse_diff *d)
{
        json_object *arr = json_object_new_array();
        char hex[2 * FUSE_VALUE_MAX + 3];

        for (size_t i = 0; i < d->n; i++) {
                const struct fuse_diff_item *it = &d->v[i];
                json_object *o = json_object_new_object();

                json_object_object_add(o, "name", json_object_new_string(it->def->name));
                json_object_object_add(o, "size", json_object_new_int((int)it->def->size));
                json_object_object_add(o, "status", json_object_new_string(state_name(it->state)));
                if (it->def->secret) {
                        char cur[16];
                        show_value(it->def, it->current, true, cur, sizeof(cur));
                        json_object_object_add(o, "secret", json_object_new_boolean(1));
                        json_object_object_add(o, "current", json_object_new_string(cur[1] == 'b' ? "blank" : "set"));
                } else {
                        hex0x(it->current, it->def->size, hex);
                        json_object_object_add(o, "current", json_object_new_string(hex));
                        hex0x(it->planned, it->def->size, hex);
                        json_object_object_add(o, "planned", json_object_new_string(hex));
                        hex0x(it->burn, it->def->size, hex);
                        json_object_object_add(o, "burn", json_object_new_string(hex));
                }
                /* A key's bit counts are its Hamming weight: information about
                 * the secret, so they are not shown for key fuses. */
                if (!it->def->secret) {
                        json_object_object_add(o, "bits_to_set", json_object_new_int((int)it->bits_to_set));
                        json_object_object_add(o, "bits_to_clear", json_object_new_int((int)it->bits_to_clear));
                }
                if (it->reserved_kept) {
                        snprintf(hex, sizeof(hex), "0x%x", it->reserved_kept);
                        json_object_object_add(o, "reserved_kept", json_object_new_string(hex));
                }
                if (it->note[0]) {
                        char note[FL_ERRMSG_MAX];
                        json_object_object_add(o, "note", json_object_new_string(cli_with_hint(
                                                                  it->note, it->hint, it->hint_value, note, sizeof(note))));
                }
                json_object_array_add(arr, o);
        }
        return arr;
}

void cli_diff_print(const struct fuse_diff *d)
{
        printf("%-20s %-20s %-20s %-20s %s\n", "FUSE", "CURRENT", "PLANNED", "BURN", "STATUS");
        for (size_t i = 0; i < d->n; i++) {
                const struct fuse_diff_item *it = &d->v[i];
                char cur[40], pl[40], bu[40], st[64];

                show_value(it->def, it->current, false, cur, sizeof(cur));
                show_value(it->def, it->planned, false, pl, sizeof(pl));
                show_value(it->def, it->burn, false, bu, sizeof(bu));
                if (it->state == FD_BURN && it->def->size <= 8) {
                        uint64_t set = 0;
                        for (size_t k = 0; k < it->def->size; k++)
                                set = set << 8 | (uint64_t)(it->burn[k] & ~it->current[k] & 0xff);
                        snprintf(st, sizeof(st), "burn: set bits 0x%llx", (unsigned long long)set);
                } else if (it->state == FD_BURN && it->def->secret) {
                        snprintf(st, sizeof(st), "burn: key value");
                } else if (it->state == FD_BURN) {
                        snprintf(st, sizeof(st), "burn: set %u bits", it->bits_to_set);
                } else {
                        snprintf(st, sizeof(st), "%s", it->state == FD_EQUAL ? "equal (nothing to burn)" : "CONFLICT");
                }
                char note[FL_ERRMSG_MAX];
                printf("%-20s %-20s %-20s %-20s %s%s%s\n", it->def->name, cur, pl, bu, st, it->note[0] ? ": " : "",
                       cli_with_hint(it->note, it->hint, it->hint_value, note, sizeof(note)));
        }
}

int cli_number(const char *s, uint64_t max, uint64_t *ret)
{
        const char *digits = "0123456789";
        int base = 10;
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                s += 2;
                base = 16;
                digits = "0123456789abcdefABCDEF";
                if (!*s)
                        return -EINVAL;
        }
        if (strspn(s, digits) != strlen(s))
                return -EINVAL;
        for (; *s; s++) {
                unsigned d = *s <= '9' ? (unsigned)(*s - '0') : (unsigned)((*s | 0x20) - 'a' + 10);
                if (v > (UINT64_MAX - d) / (unsigned)base)
                        return -ERANGE;
                v = v * (unsigned)base + d;
        }
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}
