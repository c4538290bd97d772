-- Runs busted under the product: `build/luaio tools/busted.lua [args]`.
-- Specs find the C module and the Lua sources embedded in build/luaio.
require "busted.runner"({standalone = false})
