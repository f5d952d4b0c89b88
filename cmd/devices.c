/* devices.c — `fuseline devices`: the recovery-mode Jetsons this station can
 * see (lib/rcm.c), optionally only on its own ports, optionally waiting for
 * the next one to be plugged in. Options and printing only. */
#include <argp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/rcm.h"
#include "cli.h"

enum { O_WAIT = 0x2000, O_PORT };

#define WAIT_MAX_S 86400
#define MAX_PORT_OPTS RCM_PORTS_MAX

struct args {
        const char *wait;
        const char *port[MAX_PORT_OPTS];
        size_t n_port;
        bool too_many_ports;
};

static const struct argp_option options[] = {
        { "wait", O_WAIT, "SECONDS", 0,
          "Wait up to SECONDS (1..86400) for a Jetson that is not there yet to enter recovery mode, and print "
          "only that one",
          1 },
        { "port", O_PORT, "INSTANCE", 0,
          "Only this USB port (tegraflash instance, e.g. 1-2.3); repeat, or give a comma-separated list "
          "(default: $FUSELINE_PORTS, else every port)",
          1 },
        { 0 }
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
        struct args *a = state->input;

        switch (key) {
        case O_WAIT:
                a->wait = arg;
                break;
        case O_PORT:
                if (a->n_port == MAX_PORT_OPTS)
                        a->too_many_ports = true;
                else
                        a->port[a->n_port++] = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char doc[] =
        "List the NVIDIA Jetsons (Xavier T194, Orin T234) that are in USB recovery mode, with the instance "
        "string tegraflash takes (<bus>-<port.port…>), the chip, the module and the USB bus/device number. "
        "Other USB devices, and NVIDIA devices that are not in recovery mode, are not listed; a TX2 or Nano "
        "(T186/T210) in recovery mode is named in a warning on stderr and not listed."
        "\v"
        "Examples:\n"
        "  fuseline devices\n"
        "  fuseline devices --json\n"
        "  fuseline devices --port 1-2.1 --port 1-2.2\n"
        "  FUSELINE_PORTS=1-2.1,1-2.2 fuseline devices --wait 600\n"
        "\n"
        "With --wait only a board that was not there when the command started counts (one that re-enters "
        "recovery mode does: it comes back with a new device number); it is printed alone. --port (or "
        "$FUSELINE_PORTS, read only when no --port is given) restricts everything to the station's own "
        "sockets; an instance names one port exactly, never the hub behind it.\n"
        "With --json: one object per device (JSON Lines), then a summary object {\"command\":\"devices\", "
        "\"ok\":true, \"count\":N, …}.\n"
        "Exit status: 0 ok (also when no Jetson is found: the text output says \"no recovery-mode Jetson "
        "found\"), 2 invalid option (a malformed instance names itself), 4 --wait timed out, or USB "
        "itself is unusable.";

static const struct argp argp = { options, parse_opt, NULL, doc, cli_common_children, NULL, NULL };

static int parse_wait(struct cli *cli, const char *s, int *ret_ms)
{
        uint64_t v;

        if (cli_number(s, WAIT_MAX_S, &v) < 0 || v < 1)
                goto bad;
        *ret_ms = (int)v * 1000;
        return 0;
bad:
        return fl_err(cli->ctx, -EINVAL, "--wait: '%s' is not a whole number of seconds 1..%d", s, WAIT_MAX_S);
}

/* --port options, else $FUSELINE_PORTS (empty counts as unset), else none. */
static int load_ports(struct cli *cli, const struct args *a, struct rcm_ports *ret)
{
        struct rcm_ports p = { 0 };
        const char *env;
        int r;

        if (a->too_many_ports)
                return fl_err(cli->ctx, -EINVAL, "--port: more than %d given", MAX_PORT_OPTS);
        for (size_t i = 0; i < a->n_port; i++) {
                r = rcm_ports_add(cli->ctx, &p, a->port[i]);
                if (r < 0) {
                        rcm_ports_clear(&p);
                        return fl_err(cli->ctx, r, "--port: %s", fl_ctx_last_error(cli->ctx));
                }
        }
        if (!a->n_port && (env = getenv("FUSELINE_PORTS")) && *env) {
                r = rcm_ports_parse(cli->ctx, env, &p);
                if (r < 0)
                        return fl_err(cli->ctx, r, "$FUSELINE_PORTS: %s", fl_ctx_last_error(cli->ctx));
        }
        *ret = p;
        return 0;
}

static json_object *device_json(const struct rcm_device *d)
{
        json_object *o = json_object_new_object();
        char hex[8];

        json_object_object_add(o, "instance", json_object_new_string(d->instance));
        json_object_object_add(o, "chip", json_object_new_string(chip_name(d->chip)));
        json_object_object_add(o, "module", json_object_new_string(d->module));
        snprintf(hex, sizeof(hex), "%04x", RCM_VENDOR);
        json_object_object_add(o, "vid", json_object_new_string(hex));
        snprintf(hex, sizeof(hex), "%04x", d->pid);
        json_object_object_add(o, "pid", json_object_new_string(hex));
        json_object_object_add(o, "bus", json_object_new_int(d->bus));
        json_object_object_add(o, "address", json_object_new_int(d->address));
        return o;
}

static void print_devices(struct cli *cli, const struct rcm_device *v, size_t n, const struct rcm_ports *allow,
                          int wait_ms)
{
        if (cli->json) {
                json_object *o = cli_json_result("devices", true);

                for (size_t i = 0; i < n; i++)
                        cli_json_out(device_json(&v[i]));
                json_object_object_add(o, "count", json_object_new_int((int)n));
                if (allow->n) {
                        json_object *ports = json_object_new_array();
                        for (size_t i = 0; i < allow->n; i++)
                                json_object_array_add(ports, json_object_new_string(allow->v[i]));
                        json_object_object_add(o, "ports", ports);
                }
                if (wait_ms)
                        json_object_object_add(o, "waited", json_object_new_boolean(1));
                cli_json_out(o);
                return;
        }
        if (!n) {
                if (allow->n)
                        printf("no recovery-mode Jetson found on the %zu allowed port(s)\n", allow->n);
                else
                        printf("no recovery-mode Jetson found\n");
                return;
        }
        printf("%-16s %-5s %-22s %s\n", "INSTANCE", "CHIP", "MODULE", "BUS/DEV");
        for (size_t i = 0; i < n; i++)
                printf("%-16s %-5s %-22s %03u/%03u\n", v[i].instance, chip_name(v[i].chip), v[i].module, v[i].bus,
                       v[i].address);
}

int cmd_devices(struct cli *cli, int argc, char **argv)
{
        struct args a;
        struct rcm_ports allow = { 0 };
        struct rcm_device *v = NULL, one;
        size_t n = 0;
        int wait_ms = 0, r;

        memset(&a, 0, sizeof(a));
        cli_parse(&argp, argc, argv, &a);
        if (a.wait) {
                r = parse_wait(cli, a.wait, &wait_ms);
                if (r < 0)
                        return r;
        }
        r = load_ports(cli, &a, &allow);
        if (r < 0)
                return r;
        if (wait_ms) {
                if (!cli->json)
                        cli_info("waiting up to %d s for a Jetson to enter recovery mode%s…", wait_ms / 1000,
                                 allow.n ? " on an allowed port" : "");
                r = rcm_wait(cli->ctx, &allow, wait_ms, &one);
                if (r == 0)
                        print_devices(cli, &one, 1, &allow, wait_ms);
        } else {
                r = rcm_list(cli->ctx, &allow, &v, &n);
                if (r == 0)
                        print_devices(cli, v, n, &allow, 0);
        }
        rcm_devices_free(v);
        rcm_ports_clear(&allow);
        return r;
}
