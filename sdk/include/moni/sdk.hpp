// The moni C++ plugin SDK: include this and nothing else from moni.
// See docs/plugin-guide.md for a walkthrough.
#pragma once

#include <moni/batch.hpp>
#include <moni/config.hpp>
#include <moni/duration.hpp>
#include <moni/http.hpp>
#include <moni/plugin.hpp>
#include <moni/plugin_abi.h>
#include <moni/result.hpp>
#include <moni/sample.hpp>
#include <moni/storage.hpp>
#include <moni/version.hpp>
