/* output.c — pieces of command output that commands build the same way
 * (JSON result objects, verify verdicts); printing JSON stays in cmd/main.c. */
#include "cli.h"

json_object *cli_json_result(const char *command, bool ok)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "command", json_object_new_string(command));
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        return o;
}

json_object *cli_json_strings(char *const *v, size_t n)
{
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

int cli_verdict(struct cli *cli, const char *what, char *const *problems, size_t n)
{
        if (!cli->json)
                printf("%s: %s\n", what, n ? "FAIL" : "PASS");
        return n ? fl_err(cli->ctx, -EBADMSG, "%s: %zu problem(s); first: %s", what, n, problems[0]) : 0;
}
