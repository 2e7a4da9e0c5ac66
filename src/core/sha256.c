/* sha256.c: placeholder until the module lands. */
#include "core/sha256.h"
