/* auth.c: placeholder until the module lands. */
#include "core/auth.h"
