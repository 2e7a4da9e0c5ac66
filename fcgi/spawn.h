/* spawn.h: placeholder until it lands. */
#ifndef CGW_PH_SPAWN_H
#define CGW_PH_SPAWN_H
#endif
