/* bus.c: placeholder until the module lands. */
#include "core/bus.h"
