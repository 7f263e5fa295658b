package.cpath = "build/?.so;" .. package.cpath
local m = require("indimail_metrics")

-- src/lib/metrics.c: the registry every process of the daemon counts into
-- (anonymous shared memory mapped before the forks), and its Prometheus
-- text exposition; src/mail/mail_metrics.c: the MTA's families.

-- The value of the sample line `name{labels}` (labels as rendered), or nil.
local function sample(text, name, labels)
	local key = name .. (labels and ("{" .. labels .. "}") or "")
	for line in text:gmatch("[^\n]+") do
		local k, v = line:match("^(.-) (%S+)$")
		if k == key then
			return tonumber(v)
		end
	end
	return nil
end

-- Every histogram's buckets are cumulative and +Inf equals _count.
local function check_histograms(text)
	local last, n = {}, 0
	for line in text:gmatch("[^\n]+") do
		local name, labels, v = line:match('^(%S+)_bucket{(.-)le="[^"]+"} (%d+)$')
		if name then
			local series = name .. "{" .. labels
			assert.is_true(tonumber(v) >= (last[series] or 0), line)
			last[series] = tonumber(v)
			if line:find('le="+Inf"', 1, true) then
				local base = labels:gsub(",$", "")
				local count = sample(text, name .. "_count", base ~= "" and base or nil)
				assert.are.equal(count, tonumber(v), line)
				n = n + 1
			end
		end
	end
	return n
end

describe("the metrics registry", function()
	it("renders HELP and TYPE, counters, gauges and escaped label values", function()
		m.start()
		m.inc("plain", nil, 2)
		m.inc("labeled", { 'a"b\\c\nd' })
		m.set("gauge", { "0", "active" }, -3)
		local t = m.render()
		assert.truthy(t:find("# HELP test_events_total Events\n# TYPE test_events_total counter\n", 1, true))
		assert.truthy(t:find("# HELP test_connections_total Connections \\\\ by \"listener\"\\nsecond line\n", 1, true))
		assert.are.equal(2, sample(t, "test_events_total"))
		assert.are.equal(1, sample(t, "test_connections_total", 'listener="a\\"b\\\\c\\nd"'))
		assert.are.equal(-3, sample(t, "test_queue_messages", 'queue="0",state="active"'))
		assert.truthy(t:find("# TYPE test_queue_messages gauge\n", 1, true))
	end)

	it("shows a family without labels at 0 before anything counts", function()
		m.start()
		assert.are.equal(0, sample(m.render(), "test_events_total"))
	end)

	it("counts dynamic label values past the cap under other", function()
		m.start()
		for _, p in ipairs({ "a", "b", "c", "d", "e", "a" }) do
			m.inc("dynamic", { "rcpt", p })
		end
		local t = m.render()
		assert.are.equal(2, sample(t, "test_rejected_total", 'stage="rcpt",policy="a"'))
		assert.are.equal(1, sample(t, "test_rejected_total", 'stage="rcpt",policy="c"'))
		assert.is_nil(sample(t, "test_rejected_total", 'stage="rcpt",policy="d"'))
		assert.are.equal(2, sample(t, "test_rejected_total", 'stage="rcpt",policy="other"'))
	end)

	it("renders histograms with cumulative buckets, _sum in seconds and _count", function()
		m.start()
		for _, us in ipairs({ 50, 100, 5000, 50000 }) do
			m.observe("hist", { "rcpt" }, us)
		end
		local t = m.render()
		local L = 'stage="rcpt",le='
		assert.are.equal(2, sample(t, "test_duration_seconds_bucket", L .. '"0.0001"'))
		assert.are.equal(2, sample(t, "test_duration_seconds_bucket", L .. '"0.001"'))
		assert.are.equal(3, sample(t, "test_duration_seconds_bucket", L .. '"0.01"'))
		assert.are.equal(4, sample(t, "test_duration_seconds_bucket", L .. '"+Inf"'))
		assert.are.equal(4, sample(t, "test_duration_seconds_count", 'stage="rcpt"'))
		assert.are.near(0.05515, sample(t, "test_duration_seconds_sum", 'stage="rcpt"'), 1e-9)
		assert.are.equal(1, check_histograms(t))
	end)

	it("adds up what several processes count at the same time", function()
		m.start()
		assert.are.equal(6, m.hammer(6, 20000))
		local t = m.render()
		assert.are.equal(120000, sample(t, "test_events_total"))
		assert.are.equal(120000, sample(t, "test_connections_total", 'listener="smtp"'))
		assert.are.equal(120000, sample(t, "test_duration_seconds_count", 'stage="rcpt"'))
		assert.are.equal(1, check_histograms(t))
	end)
end)

describe("the MTA's families", function()
	setup(function()
		m.mail_start({ "smtp", "submission" }, 2)
	end)

	it("start with a series per listener, queue state and delivery result", function()
		local t = m.render()
		assert.are.equal(0, sample(t, "indimail_connections_total", 'listener="submission"'))
		assert.are.equal(0, sample(t, "indimail_messages_accepted_total", 'listener="smtp"'))
		assert.are.equal(0, sample(t, "indimail_queue_messages", 'queue="1",state="deferred"'))
		assert.are.equal(0, sample(t, "indimail_deliveries_total", 'result="bounced",class="relay"'))
		assert.are.equal(0, sample(t, "indimail_directory_cache_lookups_total", 'result="negative_hit"'))
		assert.are.equal(1, sample(t, "indimail_build_info", 'version="0.13.0-dev"'))
		assert.is_true(sample(t, "indimail_start_time_seconds") > 1.7e9)
		assert.are.equal(2, check_histograms(t))
	end)

	it("take a refusal's reason from its enhanced status, class or cause", function()
		m.reject("RCPT", "550 5.7.1 Relaying denied", "")
		m.reject("mail", "451 Try again later", "greylist")
		m.reject("?", "500 5.5.2 Syntax error", "")
		m.reject("connect", "connection limit", "")
		local t = m.render()
		local f = "indimail_messages_rejected_total"
		assert.are.equal(1, sample(t, f, 'stage="rcpt",reason="5.7.1",policy=""'))
		assert.are.equal(1, sample(t, f, 'stage="mail",reason="4xx",policy="greylist"'))
		assert.are.equal(1, sample(t, f, 'stage="command",reason="5.5.2",policy=""'))
		assert.are.equal(1, sample(t, f, 'stage="connect",reason="connection limit",policy=""'))
	end)
end)
