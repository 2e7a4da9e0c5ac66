/* reaper.h: placeholder until it lands. */
#ifndef CGW_PH_REAPER_H
#define CGW_PH_REAPER_H
#endif
