/* rcm.h — Jetsons in USB recovery mode (RCM/APX), found with libusb-1.0:
 * vendor 0x0955 devices whose product id is a T194/T234 recovery id of
 * chip.h's module table (shared/reference/jetson-fuses.md §8), each with
 * the instance string NVIDIA's tegraflash.py/tegrarcm_v2 take with
 * `--instance` (`<bus>-<port.port…>`, §6: the bus number and the port path
 * through the hubs, as nvmfuse.sh forms it from sysfs busnum and devpath),
 * and a station's port allow-list. Nothing here opens a device: the
 * descriptors come from sysfs, so listing needs no access rights. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define RCM_VENDOR 0x0955
/* libusb reports at most 7 port numbers (USB allows 7 tiers); the longest
 * instance, "255-255.255.255.255.255.255.255", is 31 characters. */
#define RCM_DEPTH_MAX 7
#define RCM_INSTANCE_MAX 32
/* A station's allow-list is a handful of jig sockets; a bound keeps a
 * runaway $FUSELINE_PORTS from becoming an allocation. */
#define RCM_PORTS_MAX 256

struct rcm_device {
        char instance[RCM_INSTANCE_MAX]; /* "1-2.3": always passes rcm_instance_check */
        uint8_t bus, address;            /* the USB bus number and device address */
        uint8_t ports[RCM_DEPTH_MAX];    /* the port path, root hub port first */
        uint8_t n_ports;
        uint16_t pid;                    /* recovery-mode product id (vendor 0x0955) */
        enum fl_chip chip;
        const char *module;              /* chip.h's module name (static) */
};

/* A station's allowed instances. Zero-initialise; rcm_ports_clear frees.
 * NULL or empty means every port. */
struct rcm_ports {
        char (*v)[RCM_INSTANCE_MAX];
        size_t n;
};

/* 0 if instance is `<bus>-<port>[.<port>…]`: decimal numbers 1..255 without
 * leading zeros or signs, at most RCM_DEPTH_MAX ports, nothing else (no
 * spaces); -EINVAL naming the instance and the rule otherwise. */
int rcm_instance_check(fl_ctx *ctx, const char *instance);

/* Parse a comma- and/or whitespace-separated list of instances into *ret
 * (which it first empties). -EINVAL naming the offending entry for a bad
 * instance, a duplicate, an empty list or more than RCM_PORTS_MAX entries;
 * *ret is left empty then. */
int rcm_ports_parse(fl_ctx *ctx, const char *list, struct rcm_ports *ret);
/* The same, appending to ports (for a repeated option). On error ports is
 * unchanged. */
int rcm_ports_add(fl_ctx *ctx, struct rcm_ports *ports, const char *list);
void rcm_ports_clear(struct rcm_ports *ports);
/* true if allow is NULL or empty, or lists instance exactly (a hub's
 * instance does not allow what is behind it: a jig names its sockets). */
bool rcm_port_allowed(const struct rcm_ports *allow, const char *instance);

/* Every recovery-mode T194/T234 Jetson on an allowed port, sorted by bus and
 * port path; *ret_n may be 0 (then *ret is NULL). Other devices are
 * ignored; a T186/T210 Jetson in recovery mode on an allowed port is named
 * in a warning and ignored. libusb errors become -ENODEV (USB unusable) or -ENOMEM with
 * libusb's text in the message. Free with rcm_devices_free. */
int rcm_list(fl_ctx *ctx, const struct rcm_ports *allow, struct rcm_device **ret, size_t *ret_n);
void rcm_devices_free(struct rcm_device *v);

/* Block until a recovery-mode T194/T234 Jetson that was not present when the
 * call started appears on an allowed port (a board re-entering recovery
 * mode counts: it comes back with a new device address), and describe it in
 * *ret. Uses libusb hot-plug events where libusb has them, polling
 * otherwise. timeout_ms > 0; -ETIMEDOUT when nothing came in time. */
int rcm_wait(fl_ctx *ctx, const struct rcm_ports *allow, int timeout_ms, struct rcm_device *ret);
/* rcm_wait's polling path (a fresh enumeration every interval_ms), used
 * when libusb has no hot-plug support; callable directly so that it is
 * tested on machines where libusb does. */
int rcm_wait_poll(fl_ctx *ctx, const struct rcm_ports *allow, int timeout_ms, int interval_ms,
                  struct rcm_device *ret);
