/* keygen.c — (being written) */
#include "cli.h"
int cmd_keygen(struct cli *cli, int argc, char **argv) { (void)cli; (void)argc; (void)argv; return -ENOTSUP; }
int cmd_verify_keyset(struct cli *cli, int argc, char **argv) { (void)cli; (void)argc; (void)argv; return -ENOTSUP; }
