/* testenv.c: placeholder */
#include "testenv.h"
