/* fuse-xml-rate.c — bench-fuse-xml's in-process figure: fuse_xml_check
 * (parse + every rule) on one file, N times in a loop, beside its named
 * baseline measured in the same run on the same bytes: libxml2 parsing
 * them alone (xmlReadMemory + xmlFreeDoc, the floor fuse_xml_check cannot
 * go below). The file must pass the check, or the figure would time an
 * early rejection: exit 1 then. Never installed.
 *
 *   fuse-xml-rate FILE CHIP N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libxml/parser.h>

#include "fuse_xml.h"

static double now_us(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
        fl_ctx *ctx = NULL;
        unsigned char *data = NULL;
        size_t len = 0;
        enum fl_chip chip;
        long n;
        double t0, ours, base;
        int rc = 1;

        if (argc != 4 || (chip = chip_from_name(argv[2])) == FL_CHIP_NONE || (n = strtol(argv[3], NULL, 10)) < 1) {
                fprintf(stderr, "usage: fuse-xml-rate FILE t194|t234 N\n");
                return 2;
        }
        if (fl_ctx_new(&ctx) < 0 || file_read(ctx, argv[1], 1 << 20, &data, &len) < 0) {
                fprintf(stderr, "fuse-xml-rate: %s: %s\n", argv[1], ctx ? fl_ctx_last_error(ctx) : "out of memory");
                goto out;
        }
        t0 = now_us();
        for (long i = 0; i < n; i++) {
                struct fuse_problems probs = { 0 };
                int r = fuse_xml_check(ctx, data, len, chip, NULL, NULL, &probs);
                size_t np = probs.n;

                fuse_problems_free(&probs);
                if (r < 0 || np) {
                        fprintf(stderr, "fuse-xml-rate: %s does not pass the check (%zu problems)\n", argv[1], np);
                        goto out;
                }
        }
        ours = (now_us() - t0) / (double)n;
        t0 = now_us();
        for (long i = 0; i < n; i++) {
                xmlDocPtr doc = xmlReadMemory((const char *)data, (int)len, "fuse.xml", "UTF-8",
                                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
                if (!doc) {
                        fprintf(stderr, "fuse-xml-rate: libxml2 does not parse %s\n", argv[1]);
                        goto out;
                }
                xmlFreeDoc(doc);
        }
        base = (now_us() - t0) / (double)n;
        printf("in-process, %zu bytes: fuse_xml_check %.1f us; libxml2 parse alone %.1f us; ratio %.2f\n", len, ours,
               base, ours / base);
        rc = 0;
out:
        free(data);
        fl_ctx_free(ctx);
        return rc;
}
