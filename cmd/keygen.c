/* keygen.c — (being written by the lead) */
#include <string.h>

#include "cli.h"

int cmd_keygen(struct cli *cli, int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                /* dispatch: other keygen modes (one line each) */
                (void)argv[i];
        }
        (void)cli;
        return -ENOTSUP;
}

int cmd_verify_keyset(struct cli *cli, int argc, char **argv) { (void)cli; (void)argc; (void)argv; return -ENOTSUP; }
