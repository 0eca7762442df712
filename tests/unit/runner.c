/* Runs every registered test in a child process with a 20 s timeout.
 * Usage: unit-tests [substring]  — runs the tests whose name contains substring.
 * Ends with "N passed, N failed"; exits 1 when any test failed. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/unit.h"

#define MAX_TESTS 1024

static struct {
    const char *name;
    const char *file;
    hk_test_fn fn;
} tests[MAX_TESTS];
static int n_tests;

void hk_test_register(const char *name, const char *file, hk_test_fn fn)
{
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].file = file;
    tests[n_tests].fn = fn;
    n_tests++;
}

char *hk_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open fixture %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read fixture %s\n", path);
        exit(1);
    }
    fclose(f);
    buf[size] = '\0';
    if (len)
        *len = (size_t)size;
    return buf;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;

    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            tests[i].fn();
            exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (ok) {
            passed++;
            printf("ok     %s\n", tests[i].name);
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("FAILED %s (%s, signal %d)\n", tests[i].name, tests[i].file,
                       WTERMSIG(status));
            else
                printf("FAILED %s (%s)\n", tests[i].name, tests[i].file);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
