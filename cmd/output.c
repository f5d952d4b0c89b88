/* output.c — pieces of command output that every command builds the same
 * way (JSON result objects); printing them stays in cmd/main.c. */
#include "cli.h"

json_object *cli_json_result(const char *command, bool ok)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "command", json_object_new_string(command));
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        return o;
}
