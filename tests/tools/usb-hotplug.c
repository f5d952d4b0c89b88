/* usb-hotplug.c — plug a virtual USB device in while a program runs: the
 * `devices --wait` tests. umockdev-run cannot add devices at run time, so
 * this builds the testbed itself (libumockdev), runs CMD in it, and once CMD
 * has said it is waiting, adds the devices of NEW.umockdev (written by
 * `mkusb.py --no-parents`) and sends an "add" uevent for each, as the
 * kernel does when a board enters recovery mode.
 *
 *   usb-hotplug BASE.umockdev NEW.umockdev READY DELAY_MS -- CMD [ARG...]
 *
 * CMD's stderr passes through this program; the first line containing READY
 * starts a DELAY_MS pause (time for CMD to start watching after saying so),
 * then the devices are added. Exits with CMD's status (128+N for a signal);
 * 125 for a failure of its own, 124 when READY never came. The testbed's
 * preload library must be in LD_PRELOAD for this program too (libudev looks
 * the new device up when the uevent is sent), so it re-executes itself with
 * it when it is missing. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <umockdev.h>

#define PRELOAD "libumockdev-preload.so.0"

static int die(const char *what)
{
        fprintf(stderr, "usb-hotplug: %s\n", what);
        return 125;
}

static int add_devices(UMockdevTestbed *tb, const char *path)
{
        GError *err = NULL;
        gchar *text = NULL;
        int n = 0;

        if (!g_file_get_contents(path, &text, NULL, &err)) {
                fprintf(stderr, "usb-hotplug: %s: %s\n", path, err->message);
                g_error_free(err);
                return -1;
        }
        if (!umockdev_testbed_add_from_string(tb, text, &err)) {
                fprintf(stderr, "usb-hotplug: %s: %s\n", path, err->message);
                g_error_free(err);
                g_free(text);
                return -1;
        }
        /* One uevent per device record ("P: /devices/..."), in file order. */
        for (char *line = text; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (!strncmp(line, "P: /devices/", 12)) {
                        gchar *sys = g_strconcat("/sys", line + 3, NULL);
                        umockdev_testbed_uevent(tb, sys, "add");
                        g_free(sys);
                        n++;
                }
                line = nl ? nl + 1 : NULL;
        }
        g_free(text);
        return n;
}

int main(int argc, char **argv)
{
        const char *pre = getenv("LD_PRELOAD");
        UMockdevTestbed *tb;
        GError *err = NULL;
        FILE *child_err;
        char line[4096];
        bool added = false;
        long delay_ms;
        int pipefd[2], status, rc;
        pid_t pid;

        if (argc < 7 || strcmp(argv[5], "--"))
                return die("usage: usb-hotplug BASE.umockdev NEW.umockdev READY DELAY_MS -- CMD [ARG...]");
        if (!pre || !strstr(pre, "libumockdev-preload")) {
                gchar *v = pre && *pre ? g_strconcat(PRELOAD, ":", pre, NULL) : g_strdup(PRELOAD);
                setenv("LD_PRELOAD", v, 1);
                g_free(v);
                execv("/proc/self/exe", argv);
                return die("cannot re-execute with the umockdev preload library");
        }
        delay_ms = strtol(argv[4], NULL, 10);

        tb = umockdev_testbed_new(); /* sets $UMOCKDEV_DIR for the child */
        if (!umockdev_testbed_add_from_file(tb, argv[1], &err)) {
                fprintf(stderr, "usb-hotplug: %s: %s\n", argv[1], err->message);
                g_error_free(err);
                g_object_unref(tb);
                return 125;
        }
        if (pipe(pipefd) < 0) {
                g_object_unref(tb);
                return die("pipe failed");
        }
        pid = fork();
        if (pid < 0) {
                g_object_unref(tb);
                return die("fork failed");
        }
        if (pid == 0) {
                dup2(pipefd[1], STDERR_FILENO);
                close(pipefd[0]);
                close(pipefd[1]);
                execvp(argv[6], argv + 6);
                fprintf(stderr, "usb-hotplug: cannot run %s: %s\n", argv[6], strerror(errno));
                _exit(127);
        }
        close(pipefd[1]);
        child_err = fdopen(pipefd[0], "r");
        rc = 0;
        while (child_err && fgets(line, sizeof(line), child_err)) {
                fputs(line, stderr);
                fflush(stderr);
                if (!added && strstr(line, argv[3])) {
                        struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000 };
                        nanosleep(&ts, NULL);
                        if (add_devices(tb, argv[2]) <= 0) {
                                rc = 125;
                                kill(pid, SIGTERM);
                        }
                        added = true;
                }
        }
        if (child_err)
                fclose(child_err);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        g_object_unref(tb);
        if (rc)
                return rc;
        if (!added) {
                fprintf(stderr, "usb-hotplug: the command never printed '%s'\n", argv[3]);
                return 124;
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
