/* fuzz-driver.c — runs a libFuzzer-style target (LLVMFuzzerTestOneInput)
 * under plain gcc, so the meson suite exercises every fuzz target: each
 * corpus file (arguments are files or directories) is fed as is, then in
 * deterministic variants (every truncation length up to 64, single-bit
 * flips over the first 256 bytes, and a byte-doubled copy). Files named by
 * a 40-digit SHA-1 are what libFuzzer's -merge=1 added to the corpus
 * (tests/fuzz/run-fuzzers.sh --merge): mutants already, each is fed once as
 * is. With clang (-Dfuzzing=true) the same target links against
 * -fsanitize=fuzzer instead of this file. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t n_runs;

static void feed(const unsigned char *d, size_t n)
{
        /* A private copy, so a target reading past the end trips ASan. */
        unsigned char *c = malloc(n ? n : 1);
        if (!c)
                abort();
        memcpy(c, d, n);
        LLVMFuzzerTestOneInput(c, n);
        free(c);
        n_runs++;
}

static void variants(const unsigned char *d, size_t n)
{
        unsigned char *m;

        feed(d, n);
        for (size_t k = 0; k < n && k < 64; k++)
                feed(d, k);
        m = malloc(2 * n + 1);
        if (!m)
                abort();
        memcpy(m, d, n);
        for (size_t i = 0; i < n && i < 256; i++)
                for (int b = 0; b < 8; b++) {
                        m[i] ^= (unsigned char)(1u << b);
                        feed(m, n);
                        m[i] ^= (unsigned char)(1u << b);
                }
        memcpy(m + n, d, n);
        feed(m, 2 * n);
        free(m);
}

/* A libFuzzer corpus file: its name is 40 lower-case hex digits. */
static bool merged(const char *path)
{
        const char *b = strrchr(path, '/');

        b = b ? b + 1 : path;
        if (strlen(b) != 40)
                return false;
        for (; *b; b++)
                if (!strchr("0123456789abcdef", *b))
                        return false;
        return true;
}

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        unsigned char *buf;
        long n;

        if (!f) {
                perror(path);
                return 1;
        }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
                fclose(f);
                free(buf);
                fprintf(stderr, "%s: read failed\n", path);
                return 1;
        }
        fclose(f);
        if (merged(path))
                feed(buf, (size_t)n);
        else
                variants(buf, (size_t)n);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        int bad = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        perror(argv[i]);
                        return 1;
                }
                if (S_ISDIR(st.st_mode)) {
                        DIR *d = opendir(argv[i]);
                        struct dirent *e;
                        while (d && (e = readdir(d))) {
                                char p[4096];
                                if (e->d_name[0] == '.')
                                        continue;
                                snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
                                bad |= run_file(p);
                        }
                        if (d)
                                closedir(d);
                } else {
                        bad |= run_file(argv[i]);
                }
        }
        printf("%zu inputs run\n", n_runs);
        return bad || n_runs == 0;
}
