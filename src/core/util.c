/* util.c: placeholder until the module lands. */
#include "core/util.h"
