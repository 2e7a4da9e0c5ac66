/* poller.h: placeholder until it lands. */
#ifndef CGW_PH_POLLER_H
#define CGW_PH_POLLER_H
#endif
