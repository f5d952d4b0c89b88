/* rcm.c — recovery-mode Jetsons over libusb-1.0: enumeration, instance
 * strings, the port allow-list, and waiting for the next board (hot-plug or
 * polling). libusb errors are translated here, with libusb's own text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libusb.h>

#include "chip.h"
#include "rcm.h"

/* ---- instances and the allow-list ---------------------------------------- */

/* One decimal number 1..255 without a leading zero at *p; advances *p.
 * -1 when there is none. */
static int parse_num(const char **p)
{
        const char *s = *p;
        int v = 0, n = 0;

        if (*s < '1' || *s > '9')
                return -1;
        while (*s >= '0' && *s <= '9' && n < 4) {
                v = v * 10 + (*s - '0');
                s++;
                n++;
        }
        if (v > 255)
                return -1;
        *p = s;
        return v;
}

/* The rule without a context, so every generated instance is checked with
 * exactly what users' instances are checked with. */
static const char *instance_problem(const char *s)
{
        const char *p = s;
        int depth = 0;

        if (parse_num(&p) < 0)
                return "the bus number must be a decimal 1..255 without leading zeros";
        if (*p != '-')
                return "expected '-' after the bus number";
        p++;
        for (;;) {
                if (parse_num(&p) < 0)
                        return "each port must be a decimal 1..255 without leading zeros";
                if (++depth > RCM_DEPTH_MAX)
                        return "more than 7 ports deep";
                if (*p == '\0')
                        return NULL;
                if (*p != '.')
                        return "ports are separated by '.' and nothing may follow the last";
                p++;
        }
}

int rcm_instance_check(fl_ctx *ctx, const char *instance)
{
        const char *why = instance_problem(instance);

        if (why)
                return fl_err(ctx, -EINVAL, "USB instance '%.64s%s': expected <bus>-<port>[.<port>…] "
                              "(e.g. 1-2.3): %s", instance, strlen(instance) > 64 ? "…" : "", why);
        return 0;
}

void rcm_ports_clear(struct rcm_ports *ports)
{
        if (!ports)
                return;
        free(ports->v);
        ports->v = NULL;
        ports->n = 0;
}

static bool ports_has(const struct rcm_ports *p, size_t n, const char *instance)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(p->v[i], instance))
                        return true;
        return false;
}

int rcm_ports_add(fl_ctx *ctx, struct rcm_ports *ports, const char *list)
{
        static const char seps[] = ", \t\r\n";
        size_t n = ports->n, added = 0, cap = ports->n;
        char (*v)[RCM_INSTANCE_MAX] = NULL;
        struct rcm_ports tmp;
        const char *p = list;
        int r;

        /* Count first, so the array is allocated once and ports stays
         * untouched on any error. */
        for (const char *q = list; *q;) {
                q += strspn(q, seps);
                if (!*q)
                        break;
                cap++;
                q += strcspn(q, seps);
        }
        if (cap == n)
                return fl_err(ctx, -EINVAL, "USB port list '%.64s': no instance in it", list);
        if (cap > RCM_PORTS_MAX)
                return fl_err(ctx, -EINVAL, "USB port list: more than %d instances", RCM_PORTS_MAX);
        v = calloc(cap, sizeof(*v));
        if (!v)
                return fl_err(ctx, -ENOMEM, "out of memory");
        if (n)
                memcpy(v, ports->v, n * sizeof(*v));
        tmp.v = v;
        while (*p) {
                size_t len;

                p += strspn(p, seps);
                if (!*p)
                        break;
                len = strcspn(p, seps);
                if (len >= RCM_INSTANCE_MAX) {
                        r = fl_err(ctx, -EINVAL, "USB instance '%.*s…': too long to be <bus>-<port>[.<port>…]",
                                   RCM_INSTANCE_MAX, p);
                        goto fail;
                }
                memcpy(v[n + added], p, len);
                v[n + added][len] = '\0';
                r = rcm_instance_check(ctx, v[n + added]);
                if (r < 0)
                        goto fail;
                if (ports_has(&tmp, n + added, v[n + added])) {
                        r = fl_err(ctx, -EINVAL, "USB port list: %s is listed twice", v[n + added]);
                        goto fail;
                }
                added++;
                p += len;
        }
        free(ports->v);
        ports->v = v;
        ports->n = n + added;
        return 0;
fail:
        free(v);
        return r;
}

int rcm_ports_parse(fl_ctx *ctx, const char *list, struct rcm_ports *ret)
{
        struct rcm_ports p = { 0 };
        int r;

        rcm_ports_clear(ret);
        r = rcm_ports_add(ctx, &p, list);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

bool rcm_port_allowed(const struct rcm_ports *allow, const char *instance)
{
        if (!allow || allow->n == 0)
                return true;
        return ports_has(allow, allow->n, instance);
}

/* ---- libusb ---------------------------------------------------------------- */

/* libusb's errors at the boundary: anything that makes USB unusable is
 * "device absent or unreachable"; the message keeps libusb's words. */
static int usb_err(fl_ctx *ctx, int lr, const char *what)
{
        int r;

        switch (lr) {
        case LIBUSB_ERROR_NO_MEM:
                r = -ENOMEM;
                break;
        case LIBUSB_ERROR_TIMEOUT:
                r = -ETIMEDOUT;
                break;
        case LIBUSB_ERROR_INVALID_PARAM:
        case LIBUSB_ERROR_NOT_SUPPORTED:
                r = -EIO;
                break;
        default:
                r = -ENODEV;
                break;
        }
        return fl_err(ctx, r, "USB: %s: %s (%s)", what, libusb_strerror(lr), libusb_error_name(lr));
}

static int usb_open(fl_ctx *ctx, libusb_context **ret)
{
        int lr = libusb_init(ret);

        return lr < 0 ? usb_err(ctx, lr, "cannot initialise libusb") : 0;
}

enum { DESCRIBE_WARN = 1 };

/* Fill *ret if d is a recovery-mode T194/T234 Jetson on an allowed port: 1
 * if so, 0 if the device is something else, elsewhere, or unusable (said in
 * a warning with DESCRIBE_WARN when it is a Jetson this station should know
 * about). */
static int describe(fl_ctx *ctx, libusb_device *d, const struct rcm_ports *allow, unsigned flags,
                    struct rcm_device *ret)
{
        struct libusb_device_descriptor desc;
        const struct chip_module *m, *u = NULL;
        struct rcm_device rd = { 0 };
        uint8_t bus = libusb_get_bus_number(d), addr = libusb_get_device_address(d);
        int warn = flags & DESCRIBE_WARN ? FL_LOG_WARN : FL_LOG_DEBUG;
        int n, lr, len;

        lr = libusb_get_device_descriptor(d, &desc);
        if (lr < 0) {
                fl_log(ctx, FL_LOG_DEBUG, "USB bus %u device %u: no device descriptor: %s", bus, addr,
                       libusb_strerror(lr));
                return 0;
        }
        if (desc.idVendor != RCM_VENDOR)
                return 0;
        m = chip_module_by_pid(desc.idProduct);
        if (!m && !(u = chip_module_unsupported(desc.idProduct))) {
                fl_log(ctx, FL_LOG_DEBUG, "USB bus %u device %u: 0955:%04x is not a Jetson in recovery mode; "
                       "ignored", bus, addr, desc.idProduct);
                return 0;
        }
        n = libusb_get_port_numbers(d, rd.ports, sizeof(rd.ports));
        if (n <= 0) {
                /* Without the port path tegraflash cannot be pointed at this
                 * board, and guessing would risk the neighbour's. */
                fl_log(ctx, warn, "USB bus %u device %u: %s (0955:%04x) has no port path (%s); ignored", bus,
                       addr, m ? m->name : u->name, desc.idProduct,
                       n < 0 ? libusb_strerror(n) : "libusb cannot see its hub chain");
                return 0;
        }
        len = snprintf(rd.instance, sizeof(rd.instance), "%u-", bus);
        for (int i = 0; i < n; i++)
                len += snprintf(rd.instance + len, sizeof(rd.instance) - (size_t)len, i ? ".%u" : "%u",
                                rd.ports[i]);
        if (instance_problem(rd.instance)) {
                fl_log(ctx, warn, "USB bus %u device %u: %s: port path %s is not a valid instance; ignored", bus,
                       addr, m ? m->name : u->name, rd.instance);
                return 0;
        }
        if (!rcm_port_allowed(allow, rd.instance)) {
                fl_log(ctx, FL_LOG_DEBUG, "%s: %s is not on an allowed port; ignored", rd.instance,
                       m ? m->name : u->name);
                return 0;
        }
        if (!m) {
                fl_log(ctx, warn, "%s: %s in recovery mode (0955:%04x): fuseline provisions T194 and T234 "
                       "modules only; ignored", rd.instance, u->name, desc.idProduct);
                return 0;
        }
        rd.bus = bus;
        rd.address = addr;
        rd.n_ports = (uint8_t)n;
        rd.pid = desc.idProduct;
        rd.chip = m->chip;
        rd.module = m->name;
        *ret = rd;
        return 1;
}

static int devcmp(const void *a, const void *b)
{
        const struct rcm_device *x = a, *y = b;

        if (x->bus != y->bus)
                return x->bus < y->bus ? -1 : 1;
        for (size_t i = 0; i < x->n_ports && i < y->n_ports; i++)
                if (x->ports[i] != y->ports[i])
                        return x->ports[i] < y->ports[i] ? -1 : 1;
        return (int)x->n_ports - (int)y->n_ports;
}

/* Every recovery-mode Jetson on an allowed port, sorted. */
static int enumerate(fl_ctx *ctx, const struct rcm_ports *allow, unsigned flags, struct rcm_device **ret,
                     size_t *ret_n)
{
        libusb_context *usb = NULL;
        libusb_device **list = NULL;
        struct rcm_device *v = NULL;
        ssize_t cnt;
        size_t n = 0;
        int r;

        r = usb_open(ctx, &usb);
        if (r < 0)
                return r;
        cnt = libusb_get_device_list(usb, &list);
        if (cnt < 0) {
                r = usb_err(ctx, (int)cnt, "cannot list USB devices");
                goto out;
        }
        if (cnt > 0) {
                v = calloc((size_t)cnt, sizeof(*v));
                if (!v) {
                        r = fl_err(ctx, -ENOMEM, "out of memory");
                        goto out;
                }
        }
        for (ssize_t i = 0; i < cnt; i++) {
                if (describe(ctx, list[i], allow, flags, &v[n]) == 1)
                        n++;
        }
        if (n)
                qsort(v, n, sizeof(*v), devcmp);
        else {
                free(v);
                v = NULL;
        }
        *ret = v;
        *ret_n = n;
        v = NULL;
        r = 0;
out:
        free(v);
        if (list)
                libusb_free_device_list(list, 1);
        libusb_exit(usb);
        return r;
}

int rcm_list(fl_ctx *ctx, const struct rcm_ports *allow, struct rcm_device **ret, size_t *ret_n)
{
        return enumerate(ctx, allow, DESCRIBE_WARN, ret, ret_n);
}

void rcm_devices_free(struct rcm_device *v)
{
        free(v);
}

/* ---- waiting ---------------------------------------------------------------- */

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_timeout(fl_ctx *ctx, const struct rcm_ports *allow, int timeout_ms)
{
        char t[32];

        if (timeout_ms % 1000 == 0)
                snprintf(t, sizeof(t), "%d s", timeout_ms / 1000);
        else
                snprintf(t, sizeof(t), "%d ms", timeout_ms);
        if (allow && allow->n)
                return fl_err(ctx, -ETIMEDOUT, "no new recovery-mode Jetson appeared within %s on the %zu "
                              "allowed port(s) (%s%s)", t, allow->n, allow->v[0], allow->n > 1 ? ", …" : "");
        return fl_err(ctx, -ETIMEDOUT, "no new recovery-mode Jetson appeared within %s", t);
}

static bool same_device(const struct rcm_device *a, const struct rcm_device *b)
{
        return a->bus == b->bus && a->address == b->address && a->pid == b->pid;
}

int rcm_wait_poll(fl_ctx *ctx, const struct rcm_ports *allow, int timeout_ms, int interval_ms,
                  struct rcm_device *ret)
{
        struct rcm_device *before = NULL, *now = NULL;
        size_t n_before = 0, n_now = 0;
        int64_t deadline;
        int r;

        if (timeout_ms <= 0 || interval_ms <= 0)
                return fl_err(ctx, -EINVAL, "USB wait: the timeout and interval must be positive");
        deadline = now_ms() + timeout_ms;
        r = enumerate(ctx, allow, DESCRIBE_WARN, &before, &n_before);
        if (r < 0)
                return r;
        for (;;) {
                int64_t left = deadline - now_ms();
                struct timespec ts;

                if (left <= 0) {
                        r = wait_timeout(ctx, allow, timeout_ms);
                        break;
                }
                if (left > interval_ms)
                        left = interval_ms;
                ts.tv_sec = left / 1000;
                ts.tv_nsec = (long)(left % 1000) * 1000000;
                nanosleep(&ts, NULL);

                r = enumerate(ctx, allow, 0, &now, &n_now);
                if (r < 0)
                        break;
                for (size_t i = 0; i < n_now && r != 1; i++) {
                        bool seen = false;
                        for (size_t j = 0; j < n_before && !seen; j++)
                                seen = same_device(&now[i], &before[j]);
                        if (!seen) {
                                *ret = now[i];
                                r = 1;
                        }
                }
                /* A board that left and came back at the same address is new
                 * too: compare with the latest picture, not the first. */
                rcm_devices_free(before);
                before = now;
                n_before = n_now;
                now = NULL;
                if (r == 1) {
                        r = 0;
                        break;
                }
        }
        rcm_devices_free(before);
        rcm_devices_free(now);
        return r;
}

struct hotplug_wait {
        fl_ctx *ctx;
        const struct rcm_ports *allow;
        bool found;
        struct rcm_device dev;
};

static int LIBUSB_CALL on_arrival(libusb_context *usb, libusb_device *d, libusb_hotplug_event ev, void *data)
{
        struct hotplug_wait *w = data;
        struct rcm_device rd;

        (void)usb;
        (void)ev;
        if (w->found || describe(w->ctx, d, w->allow, DESCRIBE_WARN, &rd) != 1)
                return 0;
        w->dev = rd;
        w->found = true;
        return 1; /* deregisters the callback */
}

static int wait_hotplug(fl_ctx *ctx, const struct rcm_ports *allow, int timeout_ms, struct rcm_device *ret)
{
        struct hotplug_wait w = { .ctx = ctx, .allow = allow };
        libusb_context *usb = NULL;
        libusb_hotplug_callback_handle h;
        int64_t deadline = now_ms() + timeout_ms;
        bool registered = false;
        int r, lr;

        r = usb_open(ctx, &usb);
        if (r < 0)
                return r;
        /* No ENUMERATE flag: what is plugged in already is not news. Events
         * that arrive between libusb_init's scan and this registration are
         * queued and still delivered below. */
        lr = libusb_hotplug_register_callback(usb, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, 0, RCM_VENDOR,
                                              LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, on_arrival, &w,
                                              &h);
        if (lr < 0) {
                r = usb_err(ctx, lr, "cannot watch for USB devices");
                goto out;
        }
        registered = true;
        while (!w.found) {
                int64_t left = deadline - now_ms();
                struct timeval tv;

                if (left <= 0) {
                        r = wait_timeout(ctx, allow, timeout_ms);
                        goto out;
                }
                tv.tv_sec = left / 1000;
                tv.tv_usec = (long)(left % 1000) * 1000;
                lr = libusb_handle_events_timeout_completed(usb, &tv, NULL);
                if (lr < 0 && lr != LIBUSB_ERROR_INTERRUPTED) {
                        r = usb_err(ctx, lr, "waiting for USB events");
                        goto out;
                }
        }
        registered = false; /* on_arrival returned 1: libusb deregistered it */
        *ret = w.dev;
        r = 0;
out:
        if (registered)
                libusb_hotplug_deregister_callback(usb, h);
        libusb_exit(usb);
        return r;
}

int rcm_wait(fl_ctx *ctx, const struct rcm_ports *allow, int timeout_ms, struct rcm_device *ret)
{
        if (timeout_ms <= 0)
                return fl_err(ctx, -EINVAL, "USB wait: the timeout must be positive");
        if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG))
                return wait_hotplug(ctx, allow, timeout_ms, ret);
        fl_log(ctx, FL_LOG_DEBUG, "libusb has no hot-plug support here: polling for new devices");
        return rcm_wait_poll(ctx, allow, timeout_ms, 250, ret);
}
