/*
 * lua_config_limits: the limits = {...}, timeouts = {...} and
 * auth_fail_limit = {...} sections of the server: each key with its range,
 * times given in seconds and kept in milliseconds (the AUTH window in
 * seconds, as the shared counters count it).
 */
#include "lua_config_int.h"

void
cfg_limits(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "command_line", "text_line",
	    "message_size", "recipients", "connections", "connections_per_ip",
	    "errors", "hook_instructions", "lua_memory", "junk_commands",
	    "tarpit_after", "tarpit_delay", "data_memory", "tarpit_max", NULL };

	cfg_check_keys(L, t, "limits", keys);
	cfg_set_number(L, t, "command_line", "limits.command_line", 512, 65536,
	    1, &c->max_command_line, 1);
	cfg_set_number(L, t, "text_line", "limits.text_line", 1000, 1 << 20, 1,
	    &c->max_text_line, 1);
	cfg_set_number(L, t, "message_size", "limits.message_size", 1024,
	    1 << 30, 1, &c->max_message_size, 1);
	cfg_set_number(L, t, "recipients", "limits.recipients", 1, 100000, 1,
	    &c->max_recipients, 1);
	cfg_set_number(L, t, "connections", "limits.connections", 1, 1000000, 1,
	    &c->max_connections, 0);
	cfg_set_number(L, t, "connections_per_ip", "limits.connections_per_ip",
	    1, 1000000, 1, &c->max_connections_per_ip, 0);
	cfg_set_number(L, t, "errors", "limits.errors", 1, 1000, 1,
	    &c->max_errors, 0);
	cfg_set_number(L, t, "hook_instructions", "limits.hook_instructions",
	    1000, 1e12, 1, &c->hook_instructions, 2);
	cfg_set_number(L, t, "lua_memory", "limits.lua_memory", 1 << 20,
	    1e12, 1, &c->lua_memory, 1);
	cfg_set_number(L, t, "junk_commands", "limits.junk_commands", 1,
	    100000, 1, &c->max_junk, 0);
	cfg_set_number(L, t, "tarpit_after", "limits.tarpit_after", 0, 100000,
	    1, &c->tarpit_after, 0);
	cfg_set_number(L, t, "tarpit_delay", "limits.tarpit_delay", 0, 60, 1000,
	    &c->tarpit_delay, 0);
	cfg_set_number(L, t, "tarpit_max", "limits.tarpit_max", 0, 3600, 1000,
	    &c->tarpit_max, 0);
	cfg_set_number(L, t, "data_memory", "limits.data_memory", 1 << 20,
	    1e13, 1, &c->data_memory, 1);
}

void
cfg_timeouts(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "command", "data", "data_total", "tls",
	    "hook", "drain", "watchdog", NULL };

	cfg_check_keys(L, t, "timeouts", keys);
	cfg_set_number(L, t, "command", "timeouts.command", 0.05, 86400, 1000,
	    &c->timeout_command, 0);
	cfg_set_number(L, t, "data", "timeouts.data", 0.05, 86400, 1000,
	    &c->timeout_data, 0);
	cfg_set_number(L, t, "data_total", "timeouts.data_total", 0.05, 86400,
	    1000, &c->timeout_data_total, 0);
	cfg_set_number(L, t, "tls", "timeouts.tls", 0.05, 86400, 1000,
	    &c->timeout_tls, 0);
	cfg_set_number(L, t, "watchdog", "timeouts.watchdog", 0.5, 3600, 1000,
	    &c->timeout_watchdog, 0);
	cfg_set_number(L, t, "hook", "timeouts.hook", 0.05, 86400, 1000,
	    &c->timeout_hook, 0);
	cfg_set_number(L, t, "drain", "timeouts.drain", 0, 86400, 1000,
	    &c->timeout_drain, 0);
}

void
cfg_auth_fail(lua_State *L, int t, struct auth_fail_conf *a)
{
	static const char *keys[] = { "per_ip", "per_user", "window", "delay",
	    "delay_max", NULL };

	cfg_check_keys(L, t, "auth_fail_limit", keys);
	cfg_set_number(L, t, "per_ip", "auth_fail_limit.per_ip", 0, 1000000,
	    1, &a->per_ip, 0);
	cfg_set_number(L, t, "per_user", "auth_fail_limit.per_user", 0,
	    1000000, 1, &a->per_user, 0);
	cfg_set_number(L, t, "window", "auth_fail_limit.window", 1, 86400, 1,
	    &a->window_s, 0);
	cfg_set_number(L, t, "delay", "auth_fail_limit.delay", 0, 30, 1000,
	    &a->delay_ms, 0);
	cfg_set_number(L, t, "delay_max", "auth_fail_limit.delay_max", 0, 30,
	    1000, &a->delay_max_ms, 0);
	if (a->delay_max_ms < a->delay_ms)
		cfg_bad(L, "auth_fail_limit.delay_max", "is less than delay");
}
