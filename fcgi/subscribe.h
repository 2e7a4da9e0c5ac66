/* subscribe.h: placeholder until it lands. */
#ifndef CGW_PH_SUBSCRIBE_H
#define CGW_PH_SUBSCRIBE_H
#endif
