// moni's release version, shared by the host and in-tree plugins.
#pragma once

#define MONI_VERSION_STRING "0.1.0"
