/* ledger_export.c — the export formats of events (CSV, JSON). */
#include "ledger_int.h"

/* ---- export formats ----------------------------------------------------- */

const char *ledger_csv_header(void)
{
        return "id,time,station,operator,command,ecid,kind,intent_id,outcome,details,prev_hash,hash";
}

static int csv_field(struct fl_buf *b, const char *s, bool first)
{
        size_t n = s ? strlen(s) : 0;
        bool quote = n && (strpbrk(s, ",\"\r\n") || s[0] == ' ' || s[n - 1] == ' ');
        int r = 0;

        if (!first)
                r |= fl_buf_put(b, ",", 1);
        if (!s)
                return r;
        if (!quote)
                return r | fl_buf_put(b, s, n);
        r |= fl_buf_put(b, "\"", 1);
        for (const char *p = s; *p; p++)
                r |= *p == '"' ? fl_buf_put(b, "\"\"", 2) : fl_buf_put(b, p, 1);
        return r | fl_buf_put(b, "\"", 1);
}

char *ledger_row_csv(const struct ledger_row *row)
{
        char id[24], intent[24], prev[2 * LEDGER_HASH_LEN + 1], hash[2 * LEDGER_HASH_LEN + 1];
        struct fl_buf b = { 0 };
        int r = 0;

        snprintf(id, sizeof(id), "%lld", (long long)row->id);
        snprintf(intent, sizeof(intent), "%lld", (long long)row->intent_id);
        hex_encode(row->prev_hash, LEDGER_HASH_LEN, prev);
        hex_encode(row->hash, LEDGER_HASH_LEN, hash);
        r |= csv_field(&b, id, true);
        r |= csv_field(&b, row->time, false);
        r |= csv_field(&b, row->station, false);
        r |= csv_field(&b, row->operator, false);
        r |= csv_field(&b, row->command, false);
        r |= csv_field(&b, row->ecid, false);
        r |= csv_field(&b, row->kind, false);
        r |= csv_field(&b, row->intent_id ? intent : NULL, false);
        r |= csv_field(&b, row->outcome, false);
        r |= csv_field(&b, row->details, false);
        r |= csv_field(&b, prev, false);
        r |= csv_field(&b, hash, false);
        r |= fl_buf_put(&b, "", 1);
        if (r) {
                free(b.p);
                return NULL;
        }
        return (char *)b.p;
}

json_object *ledger_row_json(const struct ledger_row *row)
{
        char prev[2 * LEDGER_HASH_LEN + 1], hash[2 * LEDGER_HASH_LEN + 1];
        json_object *o = json_object_new_object(), *details = NULL;

        if (!o)
                return NULL;
        hex_encode(row->prev_hash, LEDGER_HASH_LEN, prev);
        hex_encode(row->hash, LEDGER_HASH_LEN, hash);
        if (row->details) {
                details = json_tokener_parse(row->details);
                if (!details || !json_object_is_type(details, json_type_object)) {
                        json_object_put(details);
                        details = json_object_new_string(row->details);
                }
        }
        json_object_object_add(o, "id", json_object_new_int64(row->id));
        json_object_object_add(o, "time", json_object_new_string(row->time ? row->time : ""));
        json_object_object_add(o, "station", json_object_new_string(row->station ? row->station : ""));
        json_object_object_add(o, "operator", json_object_new_string(row->operator ? row->operator : ""));
        json_object_object_add(o, "command", json_object_new_string(row->command ? row->command : ""));
        json_object_object_add(o, "ecid", row->ecid ? json_object_new_string(row->ecid) : NULL);
        json_object_object_add(o, "kind", json_object_new_string(row->kind ? row->kind : ""));
        json_object_object_add(o, "intent_id", row->intent_id ? json_object_new_int64(row->intent_id) : NULL);
        json_object_object_add(o, "outcome", json_object_new_string(row->outcome ? row->outcome : ""));
        json_object_object_add(o, "details", details);
        json_object_object_add(o, "prev_hash", json_object_new_string(prev));
        json_object_object_add(o, "hash", json_object_new_string(hash));
        return o;
}
