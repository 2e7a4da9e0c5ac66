/* log.c: placeholder until the module lands. */
#include "core/log.h"
