/* event.c: placeholder until the module lands. */
#include "core/event.h"
