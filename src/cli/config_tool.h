/*
 * config_tool: `indimail [-c FILE] config check|dump|diff|keys`: the check
 * of `indimaild -t`, the effective configuration as `key = value` lines in
 * Lua syntax with its defaults marked (postconf -n / -d), and the keys
 * there are. docs/operations.md, "Checking and viewing the configuration".
 */
#ifndef INDIMAIL_CONFIG_TOOL_H
#define INDIMAIL_CONFIG_TOOL_H

/* argv[0] is "config"; returns the exit code (2: a usage error). */
int	config_tool_main(const char *config, int argc, char **argv);

#endif
