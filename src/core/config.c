/* config.c: placeholder until the module lands. */
#include "core/config.h"
