/* ledger_canon.c — the canonical bytes of an event and its chain hash.
 *
 * Canonical event bytes (what the chain hashes; also README.md):
 *
 *   F(x)    = u32be(len(x)) ‖ x          a field: 4-byte big-endian length, then the bytes
 *   NULL    = ff ff ff ff                 an absent field (distinct from an empty one)
 *   I(n)    = F(i64be(n))                 an integer: its 8-byte big-endian two's complement
 *
 *   canon   = F("fuseline-event/1") ‖ I(id) ‖ F(time) ‖ F(station) ‖ F(operator)
 *             ‖ F(command) ‖ F(ecid)|NULL ‖ F(kind) ‖ I(intent_id)|NULL
 *             ‖ F(outcome) ‖ F(details)
 *   hash    = SHA-256(prev_hash ‖ canon)  prev_hash: the previous event's hash,
 *                                         32 zero bytes for the first event
 *
 * Text fields are the UTF-8 bytes exactly as stored (no terminator, no
 * normalisation at hash time); details is the stored JSON text byte for
 * byte — the ledger stores it re-serialised compactly by json-c once, when
 * the event is appended, so the hash never depends on how a reader formats
 * JSON. The tag names the format: a later format gets a new tag. */
#include "ledger_int.h"

/* ---- canonical bytes ---------------------------------------------------- */

int canon_field(struct fl_buf *b, const void *data, size_t n)
{
        unsigned char len[4];

        if (!data) {
                memset(len, 0xff, sizeof(len));
                return fl_buf_put(b, len, sizeof(len));
        }
        if (n >= 0xffffffffu)
                return -E2BIG;
        len[0] = (unsigned char)(n >> 24);
        len[1] = (unsigned char)(n >> 16);
        len[2] = (unsigned char)(n >> 8);
        len[3] = (unsigned char)n;
        if (fl_buf_put(b, len, sizeof(len)) < 0)
                return -ENOMEM;
        return fl_buf_put(b, data, n);
}

int canon_str(struct fl_buf *b, const char *s)
{
        return canon_field(b, s, s ? strlen(s) : 0);
}

int canon_int(struct fl_buf *b, int64_t v)
{
        unsigned char be[8];
        uint64_t u = (uint64_t)v;

        for (int i = 7; i >= 0; i--, u >>= 8)
                be[i] = (unsigned char)u;
        return canon_field(b, be, sizeof(be));
}

static int canon_build(const struct ledger_row *row, struct fl_buf *b)
{
        int r = 0;

        r |= canon_str(b, CANON_TAG);
        r |= canon_int(b, row->id);
        r |= canon_str(b, row->time);
        r |= canon_str(b, row->station);
        r |= canon_str(b, row->operator);
        r |= canon_str(b, row->command);
        r |= canon_str(b, row->ecid);
        r |= canon_str(b, row->kind);
        r |= row->intent_id ? canon_int(b, row->intent_id) : canon_field(b, NULL, 0);
        r |= canon_str(b, row->outcome);
        r |= canon_str(b, row->details);
        return r ? -ENOMEM : 0;
}

int ledger_event_canon(const struct ledger_row *row, unsigned char **ret, size_t *ret_len)
{
        struct fl_buf b = { 0 };
        int r = canon_build(row, &b);

        if (r < 0) {
                free(b.p);
                return r;
        }
        *ret = b.p;
        *ret_len = b.len;
        return 0;
}

int hash_with(const struct ledger_row *row, const unsigned char prev[LEDGER_HASH_LEN], struct fl_buf *b,
              unsigned char out[LEDGER_HASH_LEN])
{
        unsigned int n = 0;
        int r;

        b->len = 0;
        if (fl_buf_put(b, prev, LEDGER_HASH_LEN) < 0)
                return -ENOMEM;
        r = canon_build(row, b);
        if (r < 0)
                return r;
        if (!EVP_Digest(b->p, b->len, out, &n, EVP_sha256(), NULL) || n != LEDGER_HASH_LEN)
                return -EIO;
        return 0;
}

int ledger_event_hash(const struct ledger_row *row, const unsigned char prev[LEDGER_HASH_LEN],
                      unsigned char out[LEDGER_HASH_LEN])
{
        struct fl_buf b = { 0 };
        int r = hash_with(row, prev, &b, out);

        free(b.p);
        return r;
}
