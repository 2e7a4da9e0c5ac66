/* store.c: placeholder until the module lands. */
#include "core/store.h"
