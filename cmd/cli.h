/* cli.h — what the command files share: global options, the common argp
 * children (--json/-v/-q and the token options), and the output helpers.
 * Only cmd/main.c maps library errors to exit statuses. */
#pragma once

#include <argp.h>
#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

#include "../lib/internal.h"
#include "../lib/fuse_plan.h"
#include "../lib/p11.h"

struct cli {
        fl_ctx *ctx;
        const char *cmd;  /* "keygen", "verify keyset", … */
        bool json;
        int verbosity;    /* -1 quiet, 0 normal, 1 -v, 2 -vv */
        struct token_opts tok;
        const char *token_uri_opt; /* --token as given */
        bool force;       /* --force: replace output files that exist */
        struct cli_ledger_opts {
                const char *db, *station, *operator; /* --db/--station/--operator as given (cli_ledger.c) */
        } led;
};

/* The process-wide CLI state (one command per process). */
struct cli *cli_get(void);

/* argp children every command includes: general options, and (for commands
 * that touch a token) --token/--module/--pin-source. */
extern const struct argp cli_common_argp;
extern const struct argp cli_token_argp;
/* The usual children lists: token + general options, or general only. */
extern const struct argp_child cli_token_children[];
extern const struct argp_child cli_common_children[];
/* --force (commands that write files), and token + general + --force. */
extern const struct argp cli_force_argp;
extern const struct argp_child cli_token_force_children[];
/* The overwrite rule: 0 when path does not exist (or is a directory, which
 * the writer refuses as bad input) or --force was given; otherwise -EEXIST
 * naming it. Call for every output before doing any work. */
int cli_out_check(struct cli *cli, const char *path);

/* Print one JSON object as one line on stdout (--json mode). Takes ownership. */
void cli_json_out(json_object *obj);
/* The result object printed last (still held back so main() can add the
 * error to it), or NULL: for a field known only after printing. */
json_object *cli_json_last(void);

/* ---- the ledger (cmd/cli_ledger.c) --------------------------------------- */

struct ledger;
/* --db PATH, --station ID, --operator ID: the one set of ledger options. */
extern const struct argp cli_ledger_argp;
/* ledger + token + general options; ledger + --force + token + general;
 * ledger + general. */
extern const struct argp_child cli_ledger_token_children[];
extern const struct argp_child cli_ledger_token_force_children[];
extern const struct argp_child cli_ledger_children[];
/* Open the ledger (ledger_path(--db)) for writing. Commands that record what
 * they made call this before any work, so a ledger that cannot be written
 * fails the command before a key, file or signature exists. */
int cli_ledger_open(struct cli *cli, struct ledger **ret);
/* `fuseline ledger sync` and `fuseline ledger migrate` (cmd/ledger_sync.c). */
int cmd_ledger_sync(struct cli *cli, int argc, char **argv);
int cmd_ledger_migrate(struct cli *cli, int argc, char **argv);
/* Append n "record" events (no ECID, outcome "ok") for `command`, one
 * transaction, details[i] a JSON object (ownership taken, NULL ok). On
 * success: --json adds "event_id" (the last event's id) to the last result
 * object, text mode says "recorded: ledger event N in PATH" on stderr. On failure
 * the work is done and stays done: the error says `done` (what exists), that
 * it is not on the record and why, --json adds "event_id": null; the exit
 * status is the ledger error's (1 disk full/busy/I/O, 5 a tampered ledger).
 * ret_first_id (may be NULL): the first event's id. */
int cli_ledger_record(struct cli *cli, struct ledger *l, const char *command, json_object **details, size_t n,
                      const char *done, int64_t *ret_first_id);
/* Event details for a key ceremony: mode, the manifest (path, SHA-256 of
 * the file as written), chip, profile, token label/serial and the keys from
 * index first_key on (cli_key_event each). Never a key value. */
struct keyset;
struct ks_key;
json_object *cli_keyset_event(struct cli *cli, const char *mode, const struct keyset *ks, const char *path,
                              size_t first_key);
/* One key: role, type, label, uri, public_key_sha256 / tegra_pkc_hash
 * (key pairs) or kcv (secret keys), certificate_sha256 when it has one,
 * imported. */
json_object *cli_key_event(const struct ks_key *k);
/* A new result object that starts {"command": command, "ok": ok}, the way
 * every --json result does. */
json_object *cli_json_result(const char *command, bool ok);
/* A JSON array of n strings (problems, checked items, notes). */
json_object *cli_json_strings(char *const *v, size_t n);
/* How a verify command ends: "WHAT: PASS" or "WHAT: FAIL" on stdout (text
 * mode), and with problems -EBADMSG naming how many and the first. */
int cli_verdict(struct cli *cli, const char *what, char *const *problems, size_t n);
/* A fuse diff (plan against a read-back): the per-fuse JSON array, and the
 * text table (key values never shown, nor their bit counts). */
json_object *cli_diff_fuses_json(const struct fuse_diff *d);
void cli_diff_print(const struct fuse_diff *d);
/* A number from the command line: decimal ("0100" is one hundred, never
 * octal) or 0x hex, nothing else (no sign, no spaces, no suffix). -EINVAL
 * when it is not one, -ERANGE above max. */
int cli_number(const char *s, uint64_t max, uint64_t *ret);
/* burn --commit's typed confirmation on /dev/tty: the operator types the
 * last 6 hex digits of the ECID (cmd/burn.c; also used by the station). */
bool cli_confirm_ecid(const char *instance, const char *ecid, const char *br_cid, const char *summary);
/* Progress/info line on stderr unless -q. */
void cli_info(const char *fmt, ...) FL_PRINTF(1, 2);

/* A signing session (lib/sign.h) on the token a keyset or a --key URI
 * pins; the --token/$FUSELINE_TOKEN URI may only narrow it (cmd/sign.c). */
typedef struct sign_session sign_session;
int cli_sign_session(struct cli *cli, const char *keyset, const char *key_uri, bool login, sign_session **ret);

/* The PIN callback for token options (cmd/pin.c): an env:VAR source,
 * $FUSELINE_PIN_FILE, $FUSELINE_PIN, then a prompt on the terminal. */
int cli_pin(fl_ctx *ctx, const struct token_pin_request *rq, void *userdata, char **ret);

/* Each command: returns 0 or a negative errno-style code; the error text is
 * the context's last error (or set with fl_err before returning). */
typedef int (*cmd_fn)(struct cli *cli, int argc, char **argv);

int cmd_keygen(struct cli *cli, int argc, char **argv);
int cmd_verify(struct cli *cli, int argc, char **argv);
int cmd_fuse_xml(struct cli *cli, int argc, char **argv);
int cmd_sign(struct cli *cli, int argc, char **argv);
int cmd_ledger(struct cli *cli, int argc, char **argv);
int cmd_enroll(struct cli *cli, int argc, char **argv);
int cmd_burn(struct cli *cli, int argc, char **argv);
int cmd_devices(struct cli *cli, int argc, char **argv);
int cmd_ekb(struct cli *cli, int argc, char **argv);
int cmd_luks_passphrase(struct cli *cli, int argc, char **argv);
int cmd_ftpm_ek_cert(struct cli *cli, int argc, char **argv);
int cmd_ftpm_device(struct cli *cli, int argc, char **argv);
int cmd_station(struct cli *cli, int argc, char **argv);

/* keygen modes other than secure-boot keys (cmd/keygen.c dispatches). */
int cmd_keygen_uefi(struct cli *cli, int argc, char **argv);
int cmd_keygen_identity_ca(struct cli *cli, int argc, char **argv);
int cmd_keygen_export(struct cli *cli, int argc, char **argv); /* --export-pub, --random */
/* sign modes (cmd/sign.c dispatches --uefi-var/--uefi-payload). */
int cmd_sign_uefi(struct cli *cli, int argc, char **argv);
int cmd_sign_encrypt(struct cli *cli, int argc, char **argv); /* --encrypt aes-gcm */

/* verify subcommands (cmd/verify.c dispatches on argv[1]). */
int cmd_verify_keyset(struct cli *cli, int argc, char **argv);
int cmd_verify_ledger(struct cli *cli, int argc, char **argv);
int cmd_verify_signature(struct cli *cli, int argc, char **argv);
int cmd_verify_uefi(struct cli *cli, int argc, char **argv);
int cmd_verify_cert(struct cli *cli, int argc, char **argv);
int cmd_verify_fuses(struct cli *cli, int argc, char **argv);
int cmd_verify_ekb(struct cli *cli, int argc, char **argv);

/* The exit status for a return value (the README table); for per-item
 * results such as batch JSON Lines. */
int cli_exit_code(int r);
/* The CLI's words for a library hint (lib/fuseline.h, enum fl_hint): which
 * option gives the input the message asks for; NULL for FL_HINT_NONE. */
const char *cli_hint_text(enum fl_hint h);
/* text, or "text (hint)" in buf; value is the number a hint carries
 * (FL_HINT_BSI_RESERVED: the bits), else 0. */
const char *cli_with_hint(const char *text, enum fl_hint h, uint32_t value, char *buf, size_t len);

/* Parse with argp, exiting 2 on usage errors. Returns the argp result. */
int cli_parse(const struct argp *argp, int argc, char **argv, void *input);
