package.cpath = "build/?.so;" .. package.cpath
local m = require("indimail_batch")

-- src/lib/batch.c: group commit on the libuv thread pool. Items added
-- while a batch runs form the next batch; a batcher with a max takes at
-- most that many (a batch may hold a file open per item until its flush).

describe("the batcher", function()
  it("takes every waiting item into the next batch when it has no max", function()
    local sizes, once = m.batch_sizes(600, 0)
    assert.same({ 1, 599 }, sizes)   -- the first starts alone, the rest wait for it
    assert.is_true(once)
  end)

  it("takes at most max items a batch, the rest forming the next batches, in order", function()
    local sizes, once = m.batch_sizes(600, 256)
    assert.same({ 1, 256, 256, 87 }, sizes)
    assert.is_true(once)
    sizes, once = m.batch_sizes(257, 256)
    assert.same({ 1, 256 }, sizes)
    assert.is_true(once)
    sizes, once = m.batch_sizes(3, 1)
    assert.same({ 1, 1, 1 }, sizes)
    assert.is_true(once)
  end)
end)
