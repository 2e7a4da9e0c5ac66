/* run.h: placeholder until it lands. */
#ifndef CGW_PH_RUN_H
#define CGW_PH_RUN_H
#endif
