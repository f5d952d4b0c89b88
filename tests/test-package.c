/* test-package.c — offline fuse packages built here, in the shape
 * odmfuse.sh --noburn writes them: fusecmd.sh parsed into the exact argv,
 * hostile fusecmd.sh variants refused with a message naming the construct,
 * files kept inside bootloader/, what a T234 package burns read from the
 * blob at the tail of its FSKP image (its XML ignored), what a T194 package
 * burns read from its XML, and the check against a plan: byte for byte,
 * differences named without key values, and the mode rules. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_blob.h"
#include "fuse_xml.h"
#include "package.h"

static fl_ctx *ctx;
static char tmp[4096];
static int pkg_no;

#define T234_ARGS                                                                                                \
        "--bl uefi_jetson_with_dtb.bin --sdram_config tegra234-p3767-0000-sdram.dts --odmdata "           \
        "gbe-uphy-config-8,hsstp-lane-map-3,hsio-uphy-config-0 --bins \"mb2_bootloader fskp_t234_updated.bin; " \
        "mts_mce mce_flash_o10_cr_prod.bin; bpmp_fw bpmp_t234-TE950M-A1_prod.bin\" --cfg flash.xml "          \
        "--chip 0x23 --concat_cpubl_bldtb --cpubl uefi_jetson.bin"
#define T234_FUSECMD(cmd)                                                                                        \
        "#!/bin/bash\nexport PATH=.:${PATH}\neval './tegraflash.py " T234_ARGS " --cmd \"" cmd "\"'\n"
#define T194_FUSECMD(cmd)                                                                                        \
        "#!/bin/bash\neval './tegraflash.py --bl nvtboot_recovery_cpu_t194.bin --sdram_config "                 \
        "tegra194-mb1-bct-memcfg-p2888.cfg,tegra194-memcfg-sw-override.cfg --odmdata 0x9190000 --bins "         \
        "\"mb2_bootloader nvtboot_recovery_t194.bin; mts_preboot preboot_c10_prod_cr.bin\" --chip \"0x19 0\" "  \
        "--cmd \"" cmd "\"'\n"

static void setup(void)
{
        snprintf(tmp, sizeof(tmp), "%s/test-package.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(tmp));
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        char cmd[4200];

        fl_ctx_free(ctx);
        ctx = NULL;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
}

static void load_vec(const char *file, unsigned char **data, size_t *len)
{
        char path[4096];

        ck_assert_ptr_nonnull(getenv("VECTORS"));
        snprintf(path, sizeof(path), "%s/fuse-blob/%s", getenv("VECTORS"), file);
        ck_assert_msg(file_read(ctx, path, 1 << 20, data, len) == 0, "%s", fl_ctx_last_error(ctx));
}

static void write_file(const char *path, const void *data, size_t len)
{
        FILE *f = fopen(path, "wb");

        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
}

/* A package directory: bootloader/fusecmd.sh, the --cmd XML (a vector XML),
 * and the FSKP image = MB2-looking bytes + the vector blob. */
static char *make_pkg(const char *fusecmd, const char *xml_name, const char *vec, const char *mb2_name)
{
        static char dir[4200];
        char p[4400];
        unsigned char *x, *b;
        size_t xl, bl;

        snprintf(dir, sizeof(dir), "%s/pkg%d", tmp, pkg_no++);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        snprintf(p, sizeof(p), "%s/bootloader", dir);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/bootloader/fusecmd.sh", dir);
        write_file(p, fusecmd, strlen(fusecmd));
        if (vec) {
                char f[256];
                snprintf(f, sizeof(f), "%s.xml", vec);
                load_vec(f, &x, &xl);
                snprintf(p, sizeof(p), "%s/bootloader/%s", dir, xml_name);
                write_file(p, x, xl);
                free(x);
                if (mb2_name) {
                        unsigned char *img;
                        snprintf(f, sizeof(f), "%s.blob", vec);
                        load_vec(f, &b, &bl);
                        img = malloc(4096 + bl);
                        for (size_t i = 0; i < 4096; i++)
                                img[i] = (unsigned char)(i * 131 + 7);
                        memcpy(img + 4096, b, bl);
                        snprintf(p, sizeof(p), "%s/bootloader/%s", dir, mb2_name);
                        write_file(p, img, 4096 + bl);
                        free(img);
                        free(b);
                }
        }
        snprintf(p, sizeof(p), "%s/bootloader/flash.xml", dir);
        write_file(p, "<partition_layout/>\n", 20);
        return dir;
}

static struct fuse_plan *vec_plan(const char *vec, enum fl_chip chip)
{
        struct fuse_problems probs = { 0 };
        struct fuse_plan *p = NULL;
        unsigned char *x;
        size_t xl;
        char f[256];

        snprintf(f, sizeof(f), "%s.xml", vec);
        load_vec(f, &x, &xl);
        ck_assert_int_eq(fuse_xml_parse(ctx, x, xl, chip, &p, &probs), 0);
        ck_assert_uint_eq(probs.n, 0);
        free(x);
        return p;
}

static struct fuse_package *open_ok(const char *dir)
{
        struct fuse_package *pkg = NULL;

        ck_assert_msg(package_open(ctx, dir, &pkg) == 0, "%s", fl_ctx_last_error(ctx));
        return pkg;
}

/* What bash itself passes to tegraflash.py when it runs the package's
 * fusecmd.sh (an independent word splitter): a stub tegraflash.py prints
 * its arguments NUL-separated. Compared with package_argv plus --cmd. */
static void assert_bash_agrees(const char *dir, const struct fuse_package *pkg)
{
        static const char stub[] = "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done\n";
        char p[4400], cmd[4600], out[16384];
        const char *const *argv;
        size_t n, len, k = 0, pos = 0;
        FILE *f;

        snprintf(p, sizeof(p), "%s/bootloader/tegraflash.py", dir);
        write_file(p, stub, strlen(stub));
        ck_assert_int_eq(chmod(p, 0755), 0);
        snprintf(cmd, sizeof(cmd), "cd '%s/bootloader' && bash ./fusecmd.sh", dir);
        f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        len = fread(out, 1, sizeof(out), f);
        ck_assert_int_eq(pclose(f), 0);
        argv = package_argv(pkg, &n);
        for (; pos < len; k++) {
                const char *want = k < n ? argv[k] : k == n ? "--cmd" : k == n + 1 ? package_cmd(pkg) : "(none)";
                ck_assert_msg(!strcmp(out + pos, want), "word %zu: bash gives '%s', fuseline '%s'", k, out + pos, want);
                pos += strlen(out + pos) + 1;
        }
        ck_assert_uint_eq(k, n + 2);
}

static bool has_problem(const struct fuse_problems *probs, const char *rule, const char *fuse, const char *words)
{
        for (size_t i = 0; i < probs->n; i++)
                if (!strcmp(probs->v[i].rule, rule) && (!fuse || !strcmp(probs->v[i].fuse, fuse)) &&
                    (!words || strstr(probs->v[i].msg, words)))
                        return true;
        return false;
}

/* ---- fusecmd.sh ---------------------------------------------------------- */

START_TEST(t_open_t234)
{
        char *dir = make_pkg(T234_FUSECMD("burnfuses fuse_AbC123.xml"), "fuse_AbC123.xml", "t234-prod-full",
                             "fskp_t234_updated.bin");
        struct fuse_package *pkg = open_ok(dir);
        static const char *const want[] = {
                "--bl", "uefi_jetson_with_dtb.bin", "--sdram_config", "tegra234-p3767-0000-sdram.dts", "--odmdata",
                "gbe-uphy-config-8,hsstp-lane-map-3,hsio-uphy-config-0", "--bins",
                "mb2_bootloader fskp_t234_updated.bin; mts_mce mce_flash_o10_cr_prod.bin; bpmp_fw "
                "bpmp_t234-TE950M-A1_prod.bin",
                "--cfg", "flash.xml", "--chip", "0x23", "--concat_cpubl_bldtb", "--cpubl", "uefi_jetson.bin",
        };
        const char *const *argv;
        size_t n = 0;
        char real[4200];

        ck_assert_int_eq(package_chip(pkg), FL_CHIP_T234);
        ck_assert_int_eq(package_form(pkg), PACKAGE_BURN);
        ck_assert_str_eq(package_mb2(pkg), "fskp_t234_updated.bin");
        ck_assert_str_eq(package_xml(pkg), "fuse_AbC123.xml");
        ck_assert_str_eq(package_cmd(pkg), "burnfuses fuse_AbC123.xml");
        argv = package_argv(pkg, &n);
        ck_assert_uint_eq(n, FL_ARRAY_SIZE(want));
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(argv[i], want[i]);
        ck_assert_ptr_null(argv[n]);
        ck_assert_ptr_nonnull(realpath(dir, real));
        strcat(real, "/bootloader");
        ck_assert_str_eq(package_bootloader_dir(pkg), real);
        assert_bash_agrees(dir, pkg);
        package_free(pkg);
}
END_TEST

START_TEST(t_open_t194)
{
        char *dir = make_pkg(T194_FUSECMD("burnfuses dummy fuse_Xy9.xml"), "fuse_Xy9.xml", "t194-prod", "nvtboot_recovery_t194.bin");
        struct fuse_package *pkg = open_ok(dir);
        const char *const *argv;
        size_t n;

        ck_assert_int_eq(package_chip(pkg), FL_CHIP_T194);
        ck_assert_int_eq(package_form(pkg), PACKAGE_BURN_DUMMY);
        ck_assert_str_eq(package_xml(pkg), "fuse_Xy9.xml");
        ck_assert_str_eq(package_mb2(pkg), "nvtboot_recovery_t194.bin");
        argv = package_argv(pkg, &n);
        ck_assert_uint_eq(n, 10);
        ck_assert_str_eq(argv[8], "--chip");
        ck_assert_str_eq(argv[9], "0x19 0");
        ck_assert_str_eq(argv[5], "0x9190000");
        assert_bash_agrees(dir, pkg);
        package_free(pkg);
}
END_TEST

/* Quoting as the shell would: escapes inside double quotes, adjacent parts,
 * blank lines, trailing blanks; bash agrees word for word. */
START_TEST(t_shell_words)
{
        static const char text[] = "#!/bin/bash  \n\neval './tegraflash.py --chip 0x23 --odmdata a\"b c\"d "
                                   "--x \"q\\\"\\\\\\$\\`\\n\" --y \"\" --z\t\"sp  ace\"\"\"x "
                                   "--bins \"mb2_bootloader m.bin\" --cmd \"burnfuses  f.xml\"'  \n\n";
        char *dir = make_pkg(text, "f.xml", "t234-prod-full", "m.bin");
        struct fuse_package *pkg = open_ok(dir);
        const char *const *argv;
        size_t n;

        argv = package_argv(pkg, &n);
        ck_assert_uint_eq(n, 12);
        ck_assert_str_eq(argv[3], "ab cd");
        ck_assert_str_eq(argv[5], "q\"\\$`\\n");
        ck_assert_str_eq(argv[7], "");
        ck_assert_str_eq(argv[9], "sp  acex");
        ck_assert_str_eq(package_xml(pkg), "f.xml");
        assert_bash_agrees(dir, pkg);
        package_free(pkg);
}
END_TEST

static const struct {
        const char *text, *words;
} hostile[] = {
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --odmdata $X --bins \"mb2_bootloader m.bin\" --cmd "
          "\"burnfuses f.xml\"'\n",
          "line 2 column 45: '$' (shell expansion) outside quotes" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader $(id)\" --cmd \"burnfuses "
          "f.xml\"'\n",
          "'$' (shell expansion) inside double quotes" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --odmdata \"`id`\" --cmd \"burnfuses f.xml\"'\n",
          "command substitution" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"; rm -rf /'\n",
          "';' (command separator)" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\" | tee log'\n", "'|' (pipe)" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\" &'\n", "'&'" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\" >/dev/null'\n", "redirection" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\" 2<x'\n", "redirection" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cfg *.xml --cmd \"burnfuses f.xml\"'\n", "glob" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cfg a\\ b --cmd \"burnfuses f.xml\"'\n",
          "unquoted backslash" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\" # x'\n", "comment" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cfg ~/x --cmd \"burnfuses f.xml\"'\n", "tilde" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml'\n", "unterminated double quote" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\n"
          "eval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\n",
          "line 3: a second eval line (the first is line 2)" },
        { "#!/bin/bash\nrm -rf /\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\n",
          "line 2: 'rm -rf /' is not part of" },
        { "#!/bin/bash\nset -e\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\n", "line 2: 'set -e'" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\ncurl x\n",
          "after the eval line" },
        { "eval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\n", "line 1: " },
        { "#!/bin/sh\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\n", "is not #!/bin/bash" },
        { "#!/bin/bash\neval \"./tegraflash.py --chip 0x23 --cmd burnfuses\"\n", "must be eval '<command>'" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 '\\''x'\\'' --cmd \"burnfuses f.xml\"'\n",
          "must be eval '<command>'" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\r\n", "carriage return" },
        { "#!/bin/bash\neval 'python3 ./tegraflash.py --chip 0x23 --cmd \"burnfuses f.xml\"'\n",
          "runs 'python3', not ./tegraflash.py" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader /etc/passwd\" --cmd \"burnfuses "
          "f.xml\"'\n",
          "'/etc/passwd' is an absolute path" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --cfg ../../x.xml --cmd "
          "\"burnfuses f.xml\"'\n",
          "'../../x.xml' leaves bootloader/" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --key \"/home/k.pem\" "
          "--cmd \"burnfuses f.xml\"'\n",
          "absolute path" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --key=/home/k.pem "
          "--cmd \"burnfuses f.xml\"'\n",
          "'/home/k.pem' is an absolute path" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --sdram_config "
          "a.cfg,../b.cfg --cmd \"burnfuses f.xml\"'\n",
          "'../b.cfg' leaves" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --cmd \"burnfuses "
          "../f.xml\"'\n",
          "leaves bootloader/" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --instance 1-3 --cmd "
          "\"burnfuses f.xml\"'\n",
          "fuseline adds --instance" },
        { "#!/bin/bash\neval './tegraflash.py --chi 0x19 --chip 0x23 --bins \"mb2_bootloader m.bin\" --cmd "
          "\"burnfuses f.xml\"'\n",
          "'--chi' is how tegraflash would read --chip" },
        { "#!/bin/bash\neval './tegraflash.py --chip=0x23 --bins \"mb2_bootloader m.bin\" --cmd \"burnfuses "
          "f.xml\"'\n",
          "write --chip VALUE" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bin \"mb2_bootloader m.bin\" --cmd \"burnfuses "
          "f.xml\"'\n",
          "would read --bins" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x21 --cmd \"burnfuses f.xml\"'\n",
          "'0x21' is neither 0x19 (t194) nor 0x23" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --chip 0x19 --cmd \"burnfuses f.xml\"'\n",
          "--chip appears twice" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\"'\n", "has no --cmd" },
        { "#!/bin/bash\neval './tegraflash.py --bins \"mb2_bootloader m.bin\" --cmd \"burnfuses f.xml\"'\n",
          "has no --chip" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --cmd \"burnfuses "
          "fskp\"'\n",
          "not a plain .xml file name" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --cmd \"readfuses o.txt "
          "f.xml\"'\n",
          "is not \"burnfuses <xml>\"" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" --cmd \"burnfuses f.xml; "
          "reboot recovery\"'\n",
          "is not \"burnfuses <xml>\"" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mts_mce m.bin\" --cmd \"burnfuses f.xml\"'\n",
          "must name its FSKP image as mb2_bootloader" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader a.bin; mb2_bootloader b.bin\" "
          "--cmd \"burnfuses f.xml\"'\n",
          "names mb2_bootloader twice" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader\" --cmd \"burnfuses f.xml\"'\n",
          "is not \"kind file\"" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader a b\" --cmd \"burnfuses "
          "f.xml\"'\n",
          "is not \"kind file\"" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --cmd'\n", "--cmd has no value" },
        { "#!/bin/bash\n", "no eval './tegraflash.py" },
        { "", "empty file" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --bins \"mb2_bootloader m.bin\" -- --cmd \"burnfuses "
          "f.xml\"'\n",
          "bare '--'" },
        { "#!/bin/bash\neval './tegraflash.py --chip 0x23 --odmdata caf\xc3\xa9 --cmd \"burnfuses f.xml\"'\n",
          "non-printable byte 0xc3" },
};

START_TEST(t_hostile)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(hostile); i++) {
                struct fusecmd *fc = NULL;

                fl_err_clear(ctx);
                ck_assert_msg(fusecmd_parse(ctx, "fusecmd.sh", (const unsigned char *)hostile[i].text,
                                            strlen(hostile[i].text), &fc) == -EINVAL,
                              "accepted #%zu: %s", i, hostile[i].text);
                ck_assert_ptr_null(fc);
                ck_assert_msg(fl_ctx_last_error(ctx) && strstr(fl_ctx_last_error(ctx), hostile[i].words),
                              "#%zu: wanted '%s' in: %s", i, hostile[i].words,
                              fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : "(none)");
        }
}
END_TEST

START_TEST(t_binary)
{
        static const unsigned char nul[] = "#!/bin/bash\n\0eval 'x'\n";
        struct fusecmd *fc = NULL;
        char *big = malloc(FUSECMD_MAX_BYTES + 2);

        ck_assert_int_eq(fusecmd_parse(ctx, "f", nul, sizeof(nul) - 1, &fc), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "NUL"));
        memset(big, '\n', FUSECMD_MAX_BYTES + 1);
        memcpy(big, "#!/bin/bash\n", 12);
        ck_assert_int_eq(fusecmd_parse(ctx, "f", (unsigned char *)big, FUSECMD_MAX_BYTES + 1, &fc), -EINVAL);
        ck_assert_ptr_null(fc);
        free(big);
}
END_TEST

/* ---- the package directory ------------------------------------------------ */

START_TEST(t_files_inside)
{
        char *dir, p[4400], q[4500];
        struct fuse_package *pkg = NULL;

        /* The mb2 image or the XML missing. */
        dir = make_pkg(T234_FUSECMD("burnfuses f.xml"), "f.xml", "t234-prod-full", NULL);
        ck_assert_int_eq(package_open(ctx, dir, &pkg), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "mb2_bootloader image fskp_t234_updated.bin is not in"));
        dir = make_pkg(T234_FUSECMD("burnfuses f.xml"), "g.xml", "t234-prod-full", "fskp_t234_updated.bin");
        ck_assert_int_eq(package_open(ctx, dir, &pkg), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "the --cmd XML f.xml is not in the package"));

        /* The mb2 image a symlink to a file outside bootloader/. */
        dir = make_pkg(T234_FUSECMD("burnfuses f.xml"), "f.xml", "t234-prod-full", NULL);
        snprintf(p, sizeof(p), "%s/outside.bin", tmp);
        write_file(p, "x", 1);
        snprintf(q, sizeof(q), "%s/bootloader/fskp_t234_updated.bin", dir);
        ck_assert_int_eq(symlink(p, q), 0);
        ck_assert_int_eq(package_open(ctx, dir, &pkg), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "leads outside bootloader/"));

        /* A symlink the command does not even name, escaping: tegraflash
         * links every file of bootloader/ into its working directory. */
        dir = make_pkg(T234_FUSECMD("burnfuses f.xml"), "f.xml", "t234-prod-full", "fskp_t234_updated.bin");
        snprintf(q, sizeof(q), "%s/bootloader/sub", dir);
        ck_assert_int_eq(mkdir(q, 0755), 0);
        snprintf(q, sizeof(q), "%s/bootloader/sub/evil", dir);
        ck_assert_int_eq(symlink("../../../outside.bin", q), 0);
        ck_assert_int_eq(package_open(ctx, dir, &pkg), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "sub/evil: symlink leads outside"));
        /* Dangling, too. */
        ck_assert_int_eq(unlink(q), 0);
        ck_assert_int_eq(symlink("nowhere", q), 0);
        ck_assert_int_eq(package_open(ctx, dir, &pkg), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "does not resolve inside"));
        /* A symlink that stays inside is fine. */
        ck_assert_int_eq(unlink(q), 0);
        ck_assert_int_eq(symlink("../flash.xml", q), 0);
        pkg = open_ok(dir);
        package_free(pkg);
        pkg = NULL;

        /* No package, no bootloader/, no fusecmd.sh. */
        ck_assert_int_eq(package_open(ctx, "/nonexistent/fuseline-pkg", &pkg), -ENOENT);
        snprintf(p, sizeof(p), "%s/empty", tmp);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        ck_assert_int_eq(package_open(ctx, p, &pkg), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "no bootloader/ directory"));
        snprintf(q, sizeof(q), "%s/bootloader", p);
        ck_assert_int_eq(mkdir(q, 0755), 0);
        ck_assert_int_eq(package_open(ctx, p, &pkg), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "no bootloader/fusecmd.sh"));
        ck_assert_ptr_null(pkg);
}
END_TEST

/* ---- what a package burns, and the check ----------------------------------- */

START_TEST(t_plan_t234)
{
        /* The package XML is a different file altogether: on T234 only the
         * blob counts. */
        char *dir = make_pkg(T234_FUSECMD("burnfuses f.xml"), "f.xml", "t234-test-pkh-bsi", NULL);
        struct fuse_package *pkg;
        struct fuse_plan *got = NULL, *want = vec_plan("t234-prod-full", FL_CHIP_T234);
        unsigned char *b, *img;
        size_t bl;
        char p[4400];

        load_vec("t234-prod-full.blob", &b, &bl);
        img = calloc(1, 1000 + bl);
        memcpy(img + 1000, b, bl);
        snprintf(p, sizeof(p), "%s/bootloader/fskp_t234_updated.bin", dir);
        write_file(p, img, 1000 + bl);
        pkg = open_ok(dir);
        ck_assert_msg(package_plan(ctx, pkg, &got) == 0, "%s", fl_ctx_last_error(ctx));
        ck_assert_uint_eq(got->n, want->n);
        ck_assert_uint_eq(got->magic, FUSE_MAGIC);
        for (size_t i = 0; i < want->n; i++) {
                ck_assert_ptr_eq(got->e[i].def, want->e[i].def);
                ck_assert_int_eq(memcmp(got->e[i].value, want->e[i].value, want->e[i].def->size), 0);
        }
        fuse_plan_free(got);
        ck_assert_int_eq(package_check(ctx, pkg, want, PACKAGE_MODE_COMMIT, &(struct fuse_problems){ 0 }), 0);
        package_free(pkg);

        /* No blob at the tail: refused, naming the image. */
        img[999 + bl] ^= 1;
        memset(img + 1008, 0, 4); /* the length field no longer reaches the end */
        write_file(p, img, 1000 + bl - 1);
        pkg = open_ok(dir);
        ck_assert_int_eq(package_plan(ctx, pkg, &got), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "fskp_t234_updated.bin: no fuse blob"));
        package_free(pkg);
        free(img);
        free(b);
        fuse_plan_free(want);
}
END_TEST

START_TEST(t_check_t234)
{
        char *dir = make_pkg(T234_FUSECMD("burnfuses f.xml"), "f.xml", "t234-prod-full", "fskp_t234_updated.bin");
        struct fuse_package *pkg = open_ok(dir);
        struct fuse_plan *plan = vec_plan("t234-prod-full", FL_CHIP_T234);
        struct fuse_problems probs = { 0 };
        struct fuse_entry t;
        char sbk[65], oem[65];

        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_SHOW, &probs), 0);
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_COMMIT, &probs), 0);
        ck_assert_uint_eq(probs.n, 0);
        /* A FUSE package under a dry run would burn for real. */
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_DRY_RUN, &probs), -EPERM);
        ck_assert(has_problem(&probs, "mode", NULL, "would burn for real"));
        ck_assert_uint_eq(probs.n, 1);
        fuse_problems_free(&probs);

        /* A different key: named, value never shown. */
        hex_encode(fuse_plan_find(plan, "SecureBootKey")->value, 32, sbk);
        hex_encode(fuse_plan_find(plan, "OemK1")->value, 32, oem);
        plan->e[2].value[31] ^= 0x80;
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_COMMIT, &probs), -EBADMSG);
        ck_assert(has_problem(&probs, "value", "SecureBootKey", "values not shown"));
        ck_assert_uint_eq(probs.n, 1);
        for (size_t i = 0; i < probs.n; i++) {
                ck_assert_ptr_null(strstr(probs.v[i].msg, sbk));
                ck_assert_ptr_null(strstr(probs.v[i].msg, sbk + 40));
                ck_assert_ptr_null(strstr(probs.v[i].msg, oem));
        }
        ck_assert_ptr_null(strstr(fl_ctx_last_error(ctx), sbk + 40));
        plan->e[2].value[31] ^= 0x80;
        fuse_problems_free(&probs);

        /* A different word: shown. */
        plan->e[6].value[3] = 0x0b; /* BootSecurityInfo 0x209 -> 0x20b */
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_SHOW, &probs), -EBADMSG);
        ck_assert(has_problem(&probs, "value", "BootSecurityInfo", "the plan says 0x0000020b, the package burns 0x00000209"));
        plan->e[6].value[3] = 0x09;
        fuse_problems_free(&probs);

        /* Order is part of what burns. */
        t = plan->e[6];
        plan->e[6] = plan->e[7];
        plan->e[7] = t;
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_SHOW, &probs), -EBADMSG);
        ck_assert(has_problem(&probs, "order", NULL, "fuse 7 is SecurityMode in the plan, BootSecurityInfo in the package"));
        t = plan->e[6];
        plan->e[6] = plan->e[7];
        plan->e[7] = t;
        fuse_problems_free(&probs);

        /* A fuse the package does not burn, and one it burns beyond the plan;
         * and a mode refusal at the same time is listed too. */
        plan->n--; /* drop SecurityMode */
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_DRY_RUN, &probs), -EBADMSG);
        ck_assert(has_problem(&probs, "extra", "SecurityMode", NULL));
        ck_assert(has_problem(&probs, "mode", NULL, NULL));
        plan->n++;
        fuse_problems_free(&probs);
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_SHOW, &probs), 0);

        /* A plan holding a fuse whose blob id is unknown cannot be checked. */
        {
                unsigned char k[32] = { 9 };
                ck_assert_int_eq(fuse_plan_add(plan, chip_fuse(FL_CHIP_T234, "OemK2"), k, 0), 0);
                ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_SHOW, &probs), -EINVAL);
                ck_assert_str_eq(fl_ctx_last_error(ctx), "fuse-blob type id of OemK2 is not known [U]; fuseline "
                                                         "cannot check a package that burns it");
                plan->n--;
        }
        /* A plan for the other chip. */
        plan->chip = FL_CHIP_T194;
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_SHOW, &probs), -EBADMSG);
        ck_assert(has_problem(&probs, "chip", NULL, NULL));
        plan->chip = FL_CHIP_T234;
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        package_free(pkg);
}
END_TEST

START_TEST(t_check_t234_test_package)
{
        char *dir = make_pkg(T234_FUSECMD("burnfuses dummy f.xml"), "f.xml", "t234-test-pkh-bsi",
                             "fskp_t234_updated.bin");
        struct fuse_package *pkg = open_ok(dir);
        struct fuse_plan *plan = vec_plan("t234-test-pkh-bsi", FL_CHIP_T234);
        struct fuse_problems probs = { 0 };

        /* The real plan (FUSE) rehearsed by the TEST package. */
        ck_assert_uint_eq(plan->magic, FUSE_MAGIC_TEST);
        plan->magic = FUSE_MAGIC;
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_DRY_RUN, &probs), 0);
        ck_assert_uint_eq(probs.n, 0);
        /* It would burn nothing: not a commit (and it runs burnfuses dummy). */
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_COMMIT, &probs), -EPERM);
        ck_assert(has_problem(&probs, "mode", NULL, "would burn nothing"));
        ck_assert(has_problem(&probs, "mode", NULL, "burnfuses dummy"));
        fuse_problems_free(&probs);
        /* A TEST plan matches a TEST package too. */
        plan->magic = FUSE_MAGIC_TEST;
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_DRY_RUN, &probs), 0);
        package_free(pkg);

        /* A TEST plan against a FUSE package is a mismatch. */
        dir = make_pkg(T234_FUSECMD("burnfuses f.xml"), "f.xml", "t234-prod-full", "fskp_t234_updated.bin");
        pkg = open_ok(dir);
        fuse_plan_free(plan);
        plan = vec_plan("t234-prod-full", FL_CHIP_T234);
        plan->magic = FUSE_MAGIC_TEST;
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_COMMIT, &probs), -EBADMSG);
        ck_assert(has_problem(&probs, "magic", NULL, "burns for real"));
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        package_free(pkg);
}
END_TEST

START_TEST(t_check_t194)
{
        char *dir = make_pkg(T194_FUSECMD("burnfuses dummy fuse_1.xml"), "fuse_1.xml", "t194-prod", "nvtboot_recovery_t194.bin");
        struct fuse_package *pkg = open_ok(dir);
        struct fuse_plan *plan = vec_plan("t194-prod", FL_CHIP_T194), *got = NULL;
        struct fuse_problems probs = { 0 };
        char sbk[33];

        ck_assert_int_eq(package_plan(ctx, pkg, &got), 0);
        ck_assert_uint_eq(got->n, 4);
        ck_assert_str_eq(got->e[1].def->name, "SecureBootKey");
        fuse_plan_free(got);
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_DRY_RUN, &probs), 0);
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_COMMIT, &probs), -EPERM);
        ck_assert(has_problem(&probs, "mode", NULL, "would burn nothing"));
        fuse_problems_free(&probs);
        hex_encode(plan->e[1].value, 16, sbk);
        plan->e[1].value[0] ^= 1;
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_DRY_RUN, &probs), -EBADMSG);
        ck_assert(has_problem(&probs, "value", "SecureBootKey", "values not shown"));
        for (size_t i = 0; i < probs.n; i++)
                ck_assert_ptr_null(strstr(probs.v[i].msg, sbk + 2));
        plan->e[1].value[0] ^= 1;
        fuse_problems_free(&probs);
        package_free(pkg);

        dir = make_pkg(T194_FUSECMD("burnfuses fuse_1.xml"), "fuse_1.xml", "t194-prod", "nvtboot_recovery_t194.bin");
        pkg = open_ok(dir);
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_COMMIT, &probs), 0);
        ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_DRY_RUN, &probs), -EPERM);
        ck_assert(has_problem(&probs, "mode", NULL, "would burn for real"));
        fuse_problems_free(&probs);
        /* A malformed package XML is a malformed package. */
        {
                char p[4400];
                snprintf(p, sizeof(p), "%s/bootloader/fuse_1.xml", dir);
                static const char bad[] = "<genericfuse MagicId=\"0x45535546\" version=\"1.0.0\">"
                                          "<fuse name=\"Kek9\"/></genericfuse>";
                write_file(p, bad, strlen(bad));
                ck_assert_int_eq(package_check(ctx, pkg, plan, PACKAGE_MODE_COMMIT, &probs), -EINVAL);
                ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "fuse_1.xml: line 1: Kek9"));
        }
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        package_free(pkg);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("package");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, t_open_t234);
        tcase_add_test(tc, t_open_t194);
        tcase_add_test(tc, t_shell_words);
        tcase_add_test(tc, t_hostile);
        tcase_add_test(tc, t_binary);
        tcase_add_test(tc, t_files_inside);
        tcase_add_test(tc, t_plan_t234);
        tcase_add_test(tc, t_check_t234);
        tcase_add_test(tc, t_check_t234_test_package);
        tcase_add_test(tc, t_check_t194);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
