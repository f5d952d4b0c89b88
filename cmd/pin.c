/* pin.c — where the CLI gets a token PIN the library cannot read itself
 * (the library reads no environment and never prompts): an env:VAR PIN
 * source, then $FUSELINE_PIN_FILE, $FUSELINE_PIN, and a no-echo prompt on
 * the controlling terminal. Installed as the token options' pin_cb. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

#define PIN_MAX 256

static int pin_from_env(fl_ctx *ctx, const char *var, char **ret)
{
        const char *v = getenv(var);
        char *pin;

        if (!v || !*v)
                return fl_err(ctx, -EACCES, "PIN source env:%s: variable not set", var);
        pin = strdup(v);
        if (!pin)
                return -ENOMEM;
        *ret = pin;
        return 0;
}

/* While echo is off, a Ctrl-C (or kill) must not leave the operator's
 * terminal without echo: the handler restores it, then lets the signal do
 * what it would have done. */
static int tty_fd = -1;
static struct termios tty_saved;
static const int tty_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };

static void tty_restore_and_reraise(int sig)
{
        if (tty_fd >= 0)
                tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
        signal(sig, SIG_DFL);
        raise(sig);
}

static int pin_from_tty(fl_ctx *ctx, const char *label, char **ret)
{
        struct sigaction sa = { 0 }, prev[FL_ARRAY_SIZE(tty_signals)];
        struct termios old, noecho;
        char buf[PIN_MAX];
        char *pin;
        size_t n;
        int fd;

        fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fl_err(ctx, -EACCES,
                              "token '%s' needs a PIN and none was given: use --pin-source file:PATH, "
                              "FUSELINE_PIN_FILE or run on a terminal", label);
        if (tcgetattr(fd, &old) < 0) {
                close(fd);
                return fl_err(ctx, -EACCES, "cannot prompt for the PIN: not a terminal");
        }
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        noecho.c_lflag |= ECHONL;
        dprintf(fd, "PIN for token '%s': ", label);
        tty_saved = old;
        tty_fd = fd;
        sa.sa_handler = tty_restore_and_reraise;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < FL_ARRAY_SIZE(tty_signals); i++)
                sigaction(tty_signals[i], &sa, &prev[i]);
        tcsetattr(fd, TCSAFLUSH, &noecho);
        n = 0;
        for (;;) {
                char c;
                ssize_t k = read(fd, &c, 1);
                if (k <= 0 || c == '\n' || c == '\r')
                        break;
                if (n < sizeof(buf) - 1)
                        buf[n++] = c;
        }
        buf[n] = 0;
        tcsetattr(fd, TCSAFLUSH, &old);
        for (size_t i = 0; i < FL_ARRAY_SIZE(tty_signals); i++)
                sigaction(tty_signals[i], &prev[i], NULL);
        tty_fd = -1;
        close(fd);
        pin = strdup(buf);
        explicit_bzero(buf, sizeof(buf));
        if (!pin)
                return -ENOMEM;
        *ret = pin;
        return 0;
}

int cli_pin(fl_ctx *ctx, const struct token_pin_request *rq, void *userdata, char **ret)
{
        const char *s;

        (void)userdata;
        if (rq->pin_source) /* env:VAR */
                return pin_from_env(ctx, rq->pin_source + 4, ret);
        if ((s = getenv("FUSELINE_PIN_FILE")) && *s)
                return token_pin_from_file(ctx, s, rq->production, ret);
        if ((s = getenv("FUSELINE_PIN")) && *s)
                return pin_from_env(ctx, "FUSELINE_PIN", ret);
        return pin_from_tty(ctx, rq->token_label, ret);
}
